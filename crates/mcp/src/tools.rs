//! Kinds as tools: the tool list, a call's arguments as a task's input, and a task's output as
//! the call's `CallToolResult`.
//!
//! - The tool's name and description are the kind's. Its `inputSchema` is the kind's input
//!   schema, with `"type": "object"` added when the schema names no type. A kind whose input is
//!   not an object (a number, a list) gets one argument, `input`, holding it.
//! - 2025-11-25 lists `execution.taskSupport` from the kind; 2026-07-28 has no such field (a
//!   task-only tool answers `-32021` to a client without the tasks extension instead).
//! - An output that already is a `CallToolResult` (an object with a `content` array) is the
//!   result as it is, `isError` included; a string output is one text block; any other output
//!   is one text block holding its JSON, and also the `structuredContent` when it is an object.

use longrun::{KindSpec, kind::TaskSupport};
use serde_json::{Map, Value, json};

/// The argument that carries a non-object input.
const WRAPPED: &str = "input";

/// The tool a kind is, for `tools/list`. `legacy` adds 2025-11-25's `execution.taskSupport`.
pub(crate) fn tool(spec: &KindSpec, legacy: bool) -> Value {
    let description = if spec.description.is_empty() {
        format!("Runs a `{}` task.", spec.name)
    } else {
        spec.description.clone()
    };
    let mut tool = json!({
        "name": spec.name,
        "description": description,
        "inputSchema": input_schema(spec),
    });
    if let Some(output) = spec
        .output_schema
        .as_ref()
        .filter(|schema| schema.get("type").and_then(Value::as_str) == Some("object"))
    {
        tool["outputSchema"] = output.clone();
    }
    if legacy {
        let support = match spec.task_support {
            TaskSupport::Forbidden => "forbidden",
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        };
        tool["execution"] = json!({"taskSupport": support});
    }
    tool
}

/// Whether the kind's input is carried in the `input` argument.
fn wraps(spec: &KindSpec) -> bool {
    match spec.input_schema.get("type") {
        Some(Value::String(kind)) => kind != "object",
        Some(Value::Array(kinds)) => !kinds.iter().any(|kind| kind == "object"),
        _ => false,
    }
}

/// The tool's `inputSchema`: always an object schema, as MCP requires.
fn input_schema(spec: &KindSpec) -> Value {
    if wraps(spec) {
        return json!({
            "type": "object",
            "properties": {WRAPPED: spec.input_schema},
            "required": [WRAPPED],
        });
    }
    match &spec.input_schema {
        Value::Object(schema) => {
            let mut schema = schema.clone();
            if !schema.contains_key("type") {
                schema.insert("type".to_owned(), json!("object"));
            }
            Value::Object(schema)
        }
        // `true` or anything else unusual: every object is acceptable.
        _ => json!({"type": "object"}),
    }
}

/// The task input a call's `arguments` stand for.
pub(crate) fn input(spec: &KindSpec, mut arguments: Map<String, Value>) -> Value {
    if wraps(spec) {
        return arguments.remove(WRAPPED).unwrap_or(Value::Null);
    }
    Value::Object(arguments)
}

/// The `CallToolResult` (without `resultType`) a task's output stands for.
pub(crate) fn call_result(output: &Value) -> Map<String, Value> {
    if let Value::Object(object) = output
        && object.get("content").is_some_and(Value::is_array)
    {
        let mut result = object.clone();
        result.remove("resultType");
        return result;
    }
    let text = match output {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut result = Map::from_iter([(
        "content".to_owned(),
        json!([{"type": "text", "text": text}]),
    )]);
    if output.is_object() {
        result.insert("structuredContent".to_owned(), output.clone());
    }
    result
}

/// Whether a task's output is a tool error (`isError: true`).
pub(crate) fn is_error(output: &Value) -> bool {
    output.get("content").is_some_and(Value::is_array)
        && output.get("isError").and_then(Value::as_bool) == Some(true)
}

/// A tool error result, for a call refused before any task exists (an input that breaks the
/// tool's schema: MCP wants that reported to the model, not as a protocol error).
pub(crate) fn error_result(message: &str) -> Map<String, Value> {
    Map::from_iter([
        (
            "content".to_owned(),
            json!([{"type": "text", "text": message}]),
        ),
        ("isError".to_owned(), json!(true)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(schema: Value) -> KindSpec {
        let mut spec = KindSpec::new("k").task_support(TaskSupport::Required);
        spec.input_schema = schema;
        spec
    }

    #[test]
    fn object_kinds_are_tools_as_they_are() {
        let spec = kind(json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
        let legacy = tool(&spec, true);
        assert_eq!(legacy["inputSchema"], spec.input_schema);
        assert_eq!(legacy["execution"]["taskSupport"], "required");
        assert_eq!(legacy["description"], "Runs a `k` task.");
        assert!(tool(&spec, false).get("execution").is_none());
        let arguments = Map::from_iter([("n".to_owned(), json!(3))]);
        assert_eq!(input(&spec, arguments), json!({"n": 3}));
    }

    #[test]
    fn untyped_schemas_become_object_schemas() {
        assert_eq!(
            tool(&kind(json!({})), false)["inputSchema"],
            json!({"type": "object"})
        );
        assert_eq!(
            tool(&kind(json!(true)), false)["inputSchema"],
            json!({"type": "object"})
        );
    }

    #[test]
    fn other_inputs_travel_in_one_argument() {
        let spec = kind(json!({"type": "integer"}));
        assert_eq!(
            tool(&spec, false)["inputSchema"],
            json!({"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]})
        );
        let arguments = Map::from_iter([("input".to_owned(), json!(21))]);
        assert_eq!(input(&spec, arguments), json!(21));
    }

    #[test]
    fn outputs_become_call_results() {
        let text = call_result(&json!("done"));
        assert_eq!(
            Value::Object(text),
            json!({"content": [{"type": "text", "text": "done"}]})
        );
        let data = call_result(&json!({"n": 1}));
        assert_eq!(data["structuredContent"], json!({"n": 1}));
        assert_eq!(data["content"][0]["text"], "{\"n\":1}");
        let ready = json!({"content": [{"type": "text", "text": "no"}], "isError": true, "resultType": "x"});
        let result = call_result(&ready);
        assert!(result.get("resultType").is_none());
        assert!(is_error(&ready));
        assert!(!is_error(&json!({"isError": true})));
        assert_eq!(result["isError"], true);
    }
}
