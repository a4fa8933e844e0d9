//! JSON-RPC 2.0 messages as the 2025-11-25 layer reads and writes them: plain JSON values, so
//! that nothing a server sends is lost to a typed union (see the `legacy` module docs).

use serde_json::{Value, json};

use crate::error::RpcError;

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// The answer to one of our requests.
    Response {
        id: Value,
        outcome: Result<Value, RpcError>,
    },
    /// A request of the server's (an elicitation, a sampling request, a ping).
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A notification (progress, task status, a log line).
    Notification { method: String, params: Value },
}

impl Message {
    /// Classifies one JSON value; `None` when it is no JSON-RPC message at all.
    pub(crate) fn parse(value: Value) -> Option<Self> {
        let Value::Object(mut object) = value else {
            return None;
        };
        let params = object.remove("params").unwrap_or(Value::Null);
        let method = object
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match (method, object.remove("id")) {
            (Some(method), Some(id)) if !id.is_null() => Some(Self::Request { id, method, params }),
            (Some(method), _) => Some(Self::Notification { method, params }),
            (None, id) => {
                let id = id.unwrap_or(Value::Null);
                if let Some(error) = object.remove("error") {
                    let error = serde_json::from_value(error.clone()).unwrap_or_else(|_| {
                        RpcError::new(RpcError::INTERNAL_ERROR, format!("malformed error {error}"))
                    });
                    Some(Self::Response {
                        id,
                        outcome: Err(error),
                    })
                } else {
                    object.remove("result").map(|result| Self::Response {
                        id,
                        outcome: Ok(result),
                    })
                }
            }
        }
    }
}

/// A request.
pub(crate) fn request(id: &Value, method: &str, params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A notification.
pub(crate) fn notification(method: &str, params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// The response to a request of the server's.
pub(crate) fn response(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        assert_eq!(
            Message::parse(json!({"jsonrpc": "2.0", "id": 3, "result": {"a": 1}})),
            Some(Message::Response {
                id: json!(3),
                outcome: Ok(json!({"a": 1}))
            })
        );
        assert_eq!(
            Message::parse(
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "m"}})
            ),
            Some(Message::Response {
                id: Value::Null,
                outcome: Err(RpcError::new(-32000, "m"))
            })
        );
        assert_eq!(
            Message::parse(json!({"jsonrpc": "2.0", "id": 0, "method": "ping"})),
            Some(Message::Request {
                id: json!(0),
                method: "ping".into(),
                params: Value::Null
            })
        );
        assert_eq!(
            Message::parse(
                json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"p": 1}})
            ),
            Some(Message::Notification {
                method: "notifications/progress".into(),
                params: json!({"p": 1})
            })
        );
        assert_eq!(Message::parse(json!([1, 2])), None);
        assert_eq!(Message::parse(json!({"jsonrpc": "2.0", "id": 1})), None);
    }
}
