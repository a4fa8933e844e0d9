//! `GET /v1/kinds`, and the check of a task's input against its kind's JSON schema.
//!
//! The runtime only checks that an input deserializes into the handler's Rust type; a kind
//! whose handler takes any JSON (a process handler, say) has only its schema to say what it
//! accepts. So the API checks the schema itself, compiling each kind's once: kinds are never
//! replaced or removed once registered, so a compiled schema stays right for its name.

use std::{collections::HashMap, sync::Arc};

use axum::extract::State;
use jsonschema::Validator;
use parking_lot::Mutex;
use serde_json::Value;

use crate::{Api, auth::Caller, error::Error, model};

/// How many schema violations one error message lists.
const MAX_VIOLATIONS: usize = 5;
/// How long one violation's text may be: messages quote the input, which may be large.
const MAX_VIOLATION_CHARS: usize = 300;

/// Compiled input schemas by kind name; `None` for a kind whose schema does not compile (it is
/// logged once and the input goes unchecked: a server's mistake must not refuse every task).
#[derive(Default)]
pub(crate) struct Schemas {
    compiled: Mutex<HashMap<String, Option<Arc<Validator>>>>,
}

impl Schemas {
    /// Whether `input` may start a task of `kind`: 422 `unknown_kind` or `invalid_input` if not.
    pub(crate) fn check(&self, api: &Api, kind: &str, input: &Value) -> Result<(), Error> {
        let cached = self.compiled.lock().get(kind).cloned();
        let validator = match cached {
            Some(validator) => validator,
            None => {
                let spec = api
                    .runtime()
                    .kinds()
                    .into_iter()
                    .find(|spec| spec.name == kind)
                    .ok_or_else(|| Error::UnknownKind(kind.to_owned()))?;
                let validator = match jsonschema::validator_for(&spec.input_schema) {
                    Ok(validator) => Some(Arc::new(validator)),
                    Err(error) => {
                        tracing::warn!(kind, %error, "the kind's input schema does not compile; inputs go unchecked");
                        None
                    }
                };
                self.compiled
                    .lock()
                    .insert(kind.to_owned(), validator.clone());
                validator
            }
        };
        let Some(validator) = validator else {
            return Ok(());
        };
        let mut violations = validator.iter_errors(input).peekable();
        if violations.peek().is_none() {
            return Ok(());
        }
        let listed: Vec<String> = violations
            .take(MAX_VIOLATIONS)
            .map(|violation| {
                let path = violation.instance_path().to_string();
                let at = if path.is_empty() { "/" } else { &path };
                let mut text = format!("at `{at}`: {violation}");
                if text.chars().count() > MAX_VIOLATION_CHARS {
                    text = text.chars().take(MAX_VIOLATION_CHARS).collect::<String>() + "…";
                }
                text
            })
            .collect();
        Err(Error::InvalidInput(format!(
            "the input does not match the input schema of kind `{kind}` (GET /v1/kinds shows it): {}",
            listed.join("; ")
        )))
    }
}

/// The kinds this server runs.
#[utoipa::path(
    get,
    path = "/v1/kinds",
    tag = "kinds",
    responses(
        (status = 200, description = "The kinds, by name.", body = model::KindList),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(api): State<Api>,
    Caller(_): Caller,
) -> Result<axum::Json<model::KindList>, Error> {
    let kinds = api
        .runtime()
        .kinds()
        .iter()
        .map(model::Kind::from)
        .collect();
    Ok(axum::Json(model::KindList { kinds }))
}
