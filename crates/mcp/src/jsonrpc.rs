//! JSON-RPC 2.0 messages: what a client sends, and the responses and requests the server sends.
//!
//! Messages stay `serde_json::Value`s inside: MCP results are open objects whose shape depends
//! on the method and the protocol generation, so each module builds its own.

use serde_json::{Map, Value, json};

use crate::error::Error;

/// One message from the client.
#[derive(Debug, Clone)]
pub(crate) enum Incoming {
    /// A request: it gets exactly one response.
    Request(Request),
    /// A notification: nothing answers it.
    Notification {
        /// The method.
        method: String,
        /// Its parameters (an empty object when absent).
        params: Map<String, Value>,
    },
    /// The client's response to a request the server sent (2025-11-25 only).
    Response {
        /// The id of the server's request.
        id: Value,
        /// The result, or the error object.
        outcome: Result<Value, Value>,
    },
}

/// A request from the client.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// A string or a number; echoed in the response.
    pub(crate) id: Value,
    /// The method.
    pub(crate) method: String,
    /// The parameters; an empty object when the request had none.
    pub(crate) params: Map<String, Value>,
}

impl Request {
    /// `params._meta`, when it is an object.
    pub(crate) fn meta(&self) -> Option<&Map<String, Value>> {
        self.params.get("_meta").and_then(Value::as_object)
    }
}

impl Incoming {
    /// Reads one message. A request whose id or params are malformed is still a request (so
    /// the error can name its id); anything else malformed is an invalid request.
    pub(crate) fn parse(value: Value) -> Result<Self, (Value, Error)> {
        let Value::Object(mut object) = value else {
            let what = if value.is_array() {
                "batches are not supported: send one JSON-RPC message per request"
            } else {
                "a JSON-RPC message must be a JSON object"
            };
            return Err((Value::Null, Error::InvalidRequest(what.to_owned())));
        };
        let id = object.remove("id");
        let id_ok = matches!(id, Some(Value::String(_) | Value::Number(_)));
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            let id = if id_ok {
                id.unwrap_or_default()
            } else {
                Value::Null
            };
            return Err((
                id,
                Error::InvalidRequest("`jsonrpc` must be \"2.0\"".to_owned()),
            ));
        }
        match object.remove("method") {
            Some(Value::String(method)) => {
                let params = match object.remove("params") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(params)) => params,
                    Some(_) => {
                        let id = if id_ok {
                            id.unwrap_or_default()
                        } else {
                            Value::Null
                        };
                        return Err((
                            id,
                            Error::InvalidRequest("`params` must be an object".to_owned()),
                        ));
                    }
                };
                match id {
                    None => Ok(Self::Notification { method, params }),
                    Some(id) if id_ok => Ok(Self::Request(Request { id, method, params })),
                    Some(_) => Err((
                        Value::Null,
                        Error::InvalidRequest("`id` must be a string or a number".to_owned()),
                    )),
                }
            }
            Some(_) => Err((
                if id_ok {
                    id.unwrap_or_default()
                } else {
                    Value::Null
                },
                Error::InvalidRequest("`method` must be a string".to_owned()),
            )),
            None => {
                let outcome = match (object.remove("result"), object.remove("error")) {
                    (Some(result), None) => Ok(result),
                    (None, Some(error)) => Err(error),
                    _ => {
                        return Err((
                            Value::Null,
                            Error::InvalidRequest(
                                "a message without `method` must be a response, with exactly \
                                 one of `result` and `error`"
                                    .to_owned(),
                            ),
                        ));
                    }
                };
                match id {
                    Some(id) if id_ok => Ok(Self::Response { id, outcome }),
                    _ => Err((
                        Value::Null,
                        Error::InvalidRequest("a response needs the id of its request".to_owned()),
                    )),
                }
            }
        }
    }
}

/// A successful response.
pub(crate) fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response.
pub(crate) fn error_response(id: &Value, error: &Error) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error.object()})
}

/// A notification from the server.
pub(crate) fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// A request from the server (2025-11-25 only: elicitation and sampling).
pub(crate) fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Result<Incoming, (Value, i64)> {
        Incoming::parse(value).map_err(|(id, error)| (id, error.code()))
    }

    #[test]
    fn reads_every_kind_of_message() {
        let request = parse(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})).unwrap();
        assert!(
            matches!(request, Incoming::Request(Request { ref method, .. }) if method == "ping")
        );
        let note = parse(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert!(matches!(note, Ok(Incoming::Notification { .. })));
        let answer = parse(json!({"jsonrpc": "2.0", "id": 3, "result": {"action": "accept"}}));
        assert!(matches!(
            answer,
            Ok(Incoming::Response { outcome: Ok(_), .. })
        ));
        let refusal = parse(json!({"jsonrpc": "2.0", "id": "x", "error": {"code": 1}}));
        assert!(matches!(
            refusal,
            Ok(Incoming::Response {
                outcome: Err(_),
                ..
            })
        ));
    }

    #[test]
    fn malformed_messages_are_invalid_requests_with_their_id_when_it_is_known() {
        let cases = [
            (json!([1, 2]), Value::Null),
            (json!("ping"), Value::Null),
            (json!({"id": 1, "method": "ping"}), json!(1)),
            (
                json!({"jsonrpc": "1.0", "id": "a", "method": "ping"}),
                json!("a"),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 2, "method": "ping", "params": [1]}),
                json!(2),
            ),
            (
                json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}),
                Value::Null,
            ),
            (json!({"jsonrpc": "2.0", "id": 4, "method": 5}), json!(4)),
            (json!({"jsonrpc": "2.0", "id": 5}), Value::Null),
            (json!({"jsonrpc": "2.0", "result": {}}), Value::Null),
        ];
        for (message, id) in cases {
            assert_eq!(
                parse(message.clone()).unwrap_err(),
                (id, -32600),
                "{message}"
            );
        }
    }
}
