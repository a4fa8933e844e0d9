//! The oracles: whether an answer is a result or an error in its protocol's own shape.
//!
//! Each check returns what is wrong, in words that go into the finding's file.

use serde_json::Value;

use crate::exchange::Reply;

/// Parses a JSON body, or says why it is not one.
pub(crate) fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|error| {
        format!(
            "the body is not JSON ({error}): {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    })
}

/// Whether `body` nests deeper than serde_json reads (128 levels). JSON sets no such limit: a
/// page of tasks whose input nests 126 levels is JSON all the same, and is left unchecked.
fn too_deep(body: &[u8]) -> bool {
    matches!(
        // `Value`, not `IgnoredAny`: serde_json skips ignored values without a depth limit.
        serde_json::from_slice::<Value>(body),
        Err(error) if error.to_string().starts_with("recursion limit exceeded")
    )
}

/// `/v1`: an error status carries `{"error": {"code": "…", "message": "…"}}` and nothing else;
/// a success declared JSON parses.
pub(crate) fn v1(reply: &Reply) -> Result<(), String> {
    if too_deep(&reply.body) {
        return Ok(());
    }
    if reply.status >= 400 {
        let body = json(&reply.body)?;
        let error = &body["error"];
        let good = body.as_object().is_some_and(|object| object.len() == 1)
            && error["code"].as_str().is_some_and(|code| !code.is_empty())
            && error["message"].as_str().is_some_and(|m| !m.is_empty());
        if !good {
            return Err(format!(
                "HTTP {} without the /v1 error shape: {body}",
                reply.status
            ));
        }
        return Ok(());
    }
    if reply.is_json() {
        json(&reply.body)?;
    }
    stream_is_json(reply)
}

/// Every message of an event stream is JSON.
fn stream_is_json(reply: &Reply) -> Result<(), String> {
    for event in reply
        .events
        .iter()
        .flatten()
        .filter(|event| !event.is_empty())
    {
        serde_json::from_str::<Value>(event)
            .map_err(|error| format!("a stream message is not JSON ({error}): {event}"))?;
    }
    Ok(())
}

/// A JSON-RPC 2.0 answer: a response (with `result` or an `error` of integer `code` and string
/// `message`), or, where the server may talk first (`requests`), a request or notification.
pub(crate) fn jsonrpc_message(message: &Value, requests: bool) -> Result<(), String> {
    let Some(object) = message.as_object() else {
        return Err(format!("a JSON-RPC message is not an object: {message}"));
    };
    if object.get("jsonrpc") != Some(&Value::from("2.0")) {
        return Err(format!(
            "a JSON-RPC message without \"jsonrpc\": \"2.0\": {message}"
        ));
    }
    if object.contains_key("method") {
        return if requests && message["method"].is_string() {
            Ok(())
        } else {
            Err(format!(
                "an unexpected JSON-RPC request from the server: {message}"
            ))
        };
    }
    let id = &message["id"];
    if !(id.is_string() || id.is_number() || id.is_null()) || !object.contains_key("id") {
        return Err(format!("a JSON-RPC response without a valid id: {message}"));
    }
    match (object.get("result"), object.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(error)) => {
            let good =
                error["code"].is_i64() && error["message"].as_str().is_some_and(|m| !m.is_empty());
            if good {
                Ok(())
            } else {
                Err(format!(
                    "a JSON-RPC error object without an integer code and a message: {message}"
                ))
            }
        }
        _ => Err(format!(
            "a JSON-RPC response needs exactly one of result and error: {message}"
        )),
    }
}

/// A JSON-RPC endpoint's whole answer: a response, a batch of them (never empty), or for a
/// notification nothing (`202`); event-stream messages are each a JSON-RPC message.
/// `request` is the body sent: a response to it repeats its id.
pub(crate) fn jsonrpc(reply: &Reply, request: &[u8], requests: bool) -> Result<(), String> {
    if too_deep(&reply.body) {
        return Ok(());
    }
    if let Some(events) = &reply.events {
        // An event with empty data is the priming event of a resumable stream (an id and a
        // `retry`, no message), which the Streamable HTTP transport sends first.
        for event in events.iter().filter(|event| !event.is_empty()) {
            let message = json(event.as_bytes())?;
            jsonrpc_message(&message, requests)?;
        }
        return Ok(());
    }
    if reply.body.is_empty() {
        return if reply.status == 202 || (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(format!(
                "HTTP {} with an empty body, not a JSON-RPC error",
                reply.status
            ))
        };
    }
    match json(&reply.body)? {
        Value::Array(batch) if batch.is_empty() => Err(
            "an empty JSON array: a batch with no response must be answered with nothing".into(),
        ),
        Value::Array(batch) => batch.iter().try_for_each(|m| jsonrpc_message(m, false)),
        message => {
            jsonrpc_message(&message, false)?;
            same_id(request, &message)
        }
    }
}

/// A response to a well-formed request carries the request's id (a string or an integer), or
/// for an error, null.
fn same_id(request: &[u8], response: &Value) -> Result<(), String> {
    let Ok(request) = serde_json::from_slice::<Value>(request) else {
        return Ok(());
    };
    let id = &request["id"];
    let well_formed = request["jsonrpc"] == "2.0"
        && request["method"].is_string()
        && (id.is_string() || id.is_i64() || id.is_u64());
    // A null id is what an error sent before the body is read (no token, a wrong content
    // type) can say; any other id must be the request's.
    if well_formed && !response["id"].is_null() && response["id"] != *id {
        return Err(format!(
            "the response's id {} is not the request's {id}: {response}",
            response["id"]
        ));
    }
    Ok(())
}

/// A2A's HTTP+JSON binding: an error status carries a `google.rpc.Status` (`{"error": {"code":
/// <the HTTP status>, "status": "…", "message": "…"}}`); a success is JSON or a stream of it.
pub(crate) fn a2a_rest(reply: &Reply) -> Result<(), String> {
    if too_deep(&reply.body) {
        return Ok(());
    }
    if reply.status >= 400 {
        let body = json(&reply.body)?;
        let error = &body["error"];
        let good = error["code"].as_u64() == Some(u64::from(reply.status))
            && error["status"].as_str().is_some_and(|s| !s.is_empty())
            && error["message"].as_str().is_some_and(|m| !m.is_empty());
        if !good {
            return Err(format!(
                "HTTP {} without A2A's error body: {body}",
                reply.status
            ));
        }
        return Ok(());
    }
    if reply.is_json() || !reply.body.is_empty() && reply.events.is_none() {
        json(&reply.body)?;
    }
    stream_is_json(reply)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn jsonrpc_messages_are_told_apart() {
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {}});
        let error =
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "x"}});
        let both = json!({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}});
        let string_code =
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "x"}});
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "elicitation/create"});
        assert_eq!(jsonrpc_message(&ok, false), Ok(()));
        assert_eq!(jsonrpc_message(&error, false), Ok(()));
        assert!(jsonrpc_message(&both, false).is_err());
        assert!(jsonrpc_message(&string_code, false).is_err());
        assert!(jsonrpc_message(&request, false).is_err());
        assert_eq!(jsonrpc_message(&request, true), Ok(()));
    }
}
