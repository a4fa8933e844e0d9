//! The targets: each builds a world (a runtime with a few kinds, its door, live tasks and
//! sessions), makes inputs from real messages, and checks each answer's shape.

pub(crate) mod a2a;
pub(crate) mod config;
pub(crate) mod mcp;
pub(crate) mod process;
pub(crate) mod v1;

use std::collections::HashMap;

use longrun_surface::{Auth, Principal};
use serde_json::Value;

/// The bearer tokens of the two principals every door's world knows.
pub(crate) const ALICE: &str = "token-alice";
pub(crate) const BOB: &str = "token-bob";

/// `alice` and `bob`, by their tokens.
pub(crate) fn auth() -> Auth {
    Auth::Tokens(HashMap::from([
        (ALICE.to_owned(), Principal::from("alice")),
        (BOB.to_owned(), Principal::from("bob")),
    ]))
}

/// The first task id (`task_` and 32 hex digits) anywhere in `value`.
pub(crate) fn task_id(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => {
            let hex = text.strip_prefix("task_")?;
            (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| text.clone())
        }
        Value::Array(items) => items.iter().find_map(task_id),
        Value::Object(map) => map.values().find_map(task_id),
        _ => None,
    }
}

/// Replaces each `{name}` of `ids` in `text`.
pub(crate) fn fill(text: &str, ids: &[(&str, String)]) -> String {
    let mut text = text.to_owned();
    for (name, id) in ids {
        if text.contains(name) {
            text = text.replace(name, id);
        }
    }
    text
}
