//! Questions: how a handler's `ctx.ask(key, request)` becomes an MCP input request
//! (elicitation, sampling or roots), and how the client's answer becomes the value the handler
//! gets back.
//!
//! The convention, in order (docs/mcp.md says the same for handler authors):
//!
//! 1. A request with `"method"` set to `elicitation/create`, `sampling/createMessage` or
//!    `roots/list` is sent as it is, its `params` unchanged, and the handler gets the client's
//!    result object unchanged (`{"action": "accept", "content": {…}}`, a `CreateMessageResult`,
//!    a `ListRootsResult`).
//! 2. A request with a `messages` array is a sampling request whose params are the request
//!    itself (`maxTokens` defaults to 1000); the handler gets the `CreateMessageResult`.
//! 3. Anything else is an elicitation built from the request: `message` is shown; a
//!    `requestedSchema` (or `schema`) object schema is the form, and an accepted answer gives the
//!    handler the form's `content` object; otherwise the form has one field, `value`, typed by
//!    the request's `type` (`boolean`, `string`, `number` or `integer`; `string` when absent,
//!    with `enum`, `default`, `minimum`, `maximum`, `title` and `description` carried over),
//!    and an accepted answer gives the handler that field's value. A declined or cancelled
//!    derived elicitation gives the handler `null`.
//!
//! So the questions longrun's own clients ask (`{"type": "boolean", "message": "Continue?"}`)
//! work unchanged through MCP, and a handler written for MCP controls the exact wire.

use serde_json::{Map, Value, json};

use crate::error::Error;

/// The kind of request a question becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `elicitation/create`: ask the user.
    Elicitation,
    /// `sampling/createMessage`: ask the client's model.
    Sampling,
    /// `roots/list`: ask for the client's roots.
    Roots,
}

impl Method {
    /// The JSON-RPC method.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation/create",
            Self::Sampling => "sampling/createMessage",
            Self::Roots => "roots/list",
        }
    }

    /// The client capability that allows the request.
    pub(crate) fn capability(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::Sampling => "sampling",
            Self::Roots => "roots",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "elicitation/create" => Some(Self::Elicitation),
            "sampling/createMessage" => Some(Self::Sampling),
            "roots/list" => Some(Self::Roots),
            _ => None,
        }
    }
}

/// What the handler gets from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// The client's result, unchanged.
    Raw,
    /// An elicitation's `content` object (or `null` unless accepted).
    Form,
    /// One field of an elicitation's `content` (or `null` unless accepted).
    Field(&'static str),
}

/// One question a task asked, as MCP carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    method: Method,
    params: Map<String, Value>,
    shape: Shape,
}

/// The field of a derived one-field form.
const FIELD: &str = "value";

/// Keys of a derived question copied into its field's schema.
const FIELD_KEYS: [&str; 8] = [
    "enum",
    "enumNames",
    "default",
    "minimum",
    "maximum",
    "title",
    "description",
    "format",
];

impl Question {
    /// The question the handler's `request` (asked under `key`) becomes.
    pub(crate) fn from_request(key: &str, request: &Value) -> Self {
        let empty = Map::new();
        let object = request.as_object().unwrap_or(&empty);
        if let Some(method) = object
            .get("method")
            .and_then(Value::as_str)
            .and_then(Method::from_name)
        {
            let params = object
                .get("params")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            return Self {
                method,
                params,
                shape: Shape::Raw,
            };
        }
        if object.get("messages").is_some_and(Value::is_array) {
            let mut params = object.clone();
            params.entry("maxTokens").or_insert(json!(1000));
            return Self {
                method: Method::Sampling,
                params,
                shape: Shape::Raw,
            };
        }
        let message = object
            .get("message")
            .or_else(|| object.get("prompt"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("The task asks for `{key}`."), str::to_owned);
        let form = ["requestedSchema", "schema"]
            .iter()
            .filter_map(|name| object.get(*name))
            .find(|schema| schema.get("type").and_then(Value::as_str) == Some("object"));
        let (schema, shape) = match form {
            Some(schema) => (schema.clone(), Shape::Form),
            None => {
                let kind = object
                    .get("type")
                    .and_then(Value::as_str)
                    .filter(|kind| ["boolean", "string", "number", "integer"].contains(kind))
                    .unwrap_or("string");
                let mut field = Map::from_iter([("type".to_owned(), json!(kind))]);
                for name in FIELD_KEYS {
                    if let Some(value) = object.get(name) {
                        field.insert(name.to_owned(), value.clone());
                    }
                }
                let schema = json!({
                    "type": "object",
                    "properties": {FIELD: field},
                    "required": [FIELD],
                });
                (schema, Shape::Field(FIELD))
            }
        };
        let params = Map::from_iter([
            ("message".to_owned(), json!(message)),
            ("requestedSchema".to_owned(), schema),
        ]);
        Self {
            method: Method::Elicitation,
            params,
            shape,
        }
    }

    /// The request's method.
    pub(crate) fn method(&self) -> Method {
        self.method
    }

    /// The request's params.
    pub(crate) fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// `{"method": …, "params": …}`: an entry of a 2026-07-28 `inputRequests` map.
    pub(crate) fn input_request(&self) -> Value {
        json!({"method": self.method.as_str(), "params": self.params})
    }

    /// Whether a client with `capabilities` may be sent this request.
    pub(crate) fn allowed_by(&self, capabilities: &Value) -> bool {
        capabilities
            .get(self.method.capability())
            .is_some_and(Value::is_object)
    }

    /// The value the handler gets for the client's `response`, or why the response is not
    /// one this question takes.
    pub(crate) fn answer(&self, response: &Value) -> Result<Value, Error> {
        let Some(object) = response.as_object() else {
            return Err(Error::InvalidParams(format!(
                "the answer to a {} request must be an object, not `{}`",
                self.method.as_str(),
                short(response)
            )));
        };
        match self.method {
            Method::Elicitation => {
                let action = object.get("action").and_then(Value::as_str);
                if !matches!(action, Some("accept" | "decline" | "cancel")) {
                    return Err(Error::InvalidParams(
                        "an elicitation answer needs `action`: \"accept\", \"decline\" or \"cancel\""
                            .to_owned(),
                    ));
                }
                let content = object.get("content");
                if content.is_some_and(|content| !content.is_object()) {
                    return Err(Error::InvalidParams(
                        "an elicitation answer's `content` must be an object".to_owned(),
                    ));
                }
                let accepted = action == Some("accept");
                Ok(match &self.shape {
                    Shape::Raw => strip_meta(object),
                    Shape::Form if accepted => content.cloned().unwrap_or_else(|| json!({})),
                    Shape::Field(field) if accepted => content
                        .and_then(|content| content.get(*field))
                        .cloned()
                        .unwrap_or(Value::Null),
                    Shape::Form | Shape::Field(_) => Value::Null,
                })
            }
            Method::Sampling => {
                if object.get("content").is_none() {
                    return Err(Error::InvalidParams(
                        "a sampling answer is a CreateMessageResult, with `content`".to_owned(),
                    ));
                }
                Ok(strip_meta(object))
            }
            Method::Roots => {
                if !object.get("roots").is_some_and(Value::is_array) {
                    return Err(Error::InvalidParams(
                        "a roots answer is a ListRootsResult, with a `roots` array".to_owned(),
                    ));
                }
                Ok(strip_meta(object))
            }
        }
    }
}

/// The client's result without its `_meta` (the related-task key is the transport's business).
fn strip_meta(object: &Map<String, Value>) -> Value {
    let mut object = object.clone();
    object.remove("_meta");
    Value::Object(object)
}

/// The start of a value's JSON text, for messages about untrusted input.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_requests_go_out_unchanged_and_answers_come_back_unchanged() {
        let request = json!({"method": "elicitation/create", "params": {
            "message": "Delete a.txt?",
            "requestedSchema": {"type": "object", "properties": {"confirm": {"type": "boolean"}}},
        }});
        let question = Question::from_request("confirm", &request);
        assert_eq!(question.input_request(), request);
        let answer = json!({"action": "accept", "content": {"confirm": true}});
        assert_eq!(question.answer(&answer).unwrap(), answer);

        let roots = Question::from_request("roots", &json!({"method": "roots/list"}));
        assert_eq!(
            roots.input_request(),
            json!({"method": "roots/list", "params": {}})
        );
        assert!(roots.answer(&json!({"roots": []})).is_ok());
        assert!(roots.answer(&json!({"action": "accept"})).is_err());
    }

    #[test]
    fn a_request_with_messages_is_sampling() {
        let request =
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]});
        let question = Question::from_request("q", &request);
        assert_eq!(question.method(), Method::Sampling);
        assert_eq!(question.params()["maxTokens"], 1000);
        let reply = json!({"role": "assistant", "content": {"type": "text", "text": "hello"}, "model": "m"});
        assert_eq!(question.answer(&reply).unwrap(), reply);
    }

    #[test]
    fn plain_questions_become_one_field_forms() {
        let question = Question::from_request(
            "confirm",
            &json!({"type": "boolean", "message": "Continue?"}),
        );
        assert_eq!(question.method(), Method::Elicitation);
        assert_eq!(question.params()["message"], "Continue?");
        assert_eq!(
            question.params()["requestedSchema"],
            json!({"type": "object", "properties": {"value": {"type": "boolean"}}, "required": ["value"]})
        );
        let yes = json!({"action": "accept", "content": {"value": true}});
        assert_eq!(question.answer(&yes).unwrap(), json!(true));
        assert_eq!(
            question.answer(&json!({"action": "decline"})).unwrap(),
            Value::Null
        );

        let untyped = Question::from_request("name", &json!({}));
        assert_eq!(untyped.params()["message"], "The task asks for `name`.");
        assert_eq!(
            untyped.params()["requestedSchema"]["properties"]["value"]["type"],
            "string"
        );
    }

    #[test]
    fn a_schema_makes_a_whole_form() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
        let question = Question::from_request("who", &json!({"message": "Who?", "schema": schema}));
        assert_eq!(question.params()["requestedSchema"], schema);
        let answer = json!({"action": "accept", "content": {"name": "Ada"}});
        assert_eq!(question.answer(&answer).unwrap(), json!({"name": "Ada"}));
        assert_eq!(
            question.answer(&json!({"action": "cancel"})).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn malformed_answers_are_invalid_params() {
        let question = Question::from_request("q", &json!({"message": "?"}));
        for bad in [
            json!(12345),
            json!(null),
            json!({"action": "maybe"}),
            json!({"content": {}}),
            json!({"action": "accept", "content": [1]}),
        ] {
            assert_eq!(question.answer(&bad).unwrap_err().code(), -32602, "{bad}");
        }
    }

    #[test]
    fn capabilities_gate_each_method() {
        let elicit = Question::from_request("q", &json!({"message": "?"}));
        assert!(elicit.allowed_by(&json!({"elicitation": {}})));
        assert!(!elicit.allowed_by(&json!({"sampling": {}})));
        assert!(!elicit.allowed_by(&json!({})));
    }
}
