//! The check of a task's input against its kind's JSON schema.
//!
//! The runtime only checks that an input deserializes into the handler's Rust type; a kind
//! whose handler takes any JSON (a process handler, say) has only its schema to say what it
//! accepts. So every front door checks the schema before it starts a task, compiling each
//! kind's once: kinds are never replaced or removed once registered, so a compiled schema stays
//! right for its name.

use std::{collections::HashMap, sync::Arc};

use jsonschema::Validator;
use longrun::Runtime;
use parking_lot::Mutex;
use serde_json::Value;

/// How many schema violations one error lists.
const MAX_VIOLATIONS: usize = 5;
/// How long one violation's text may be: messages quote the input, which may be large.
const MAX_VIOLATION_CHARS: usize = 300;

/// Why an input may not start a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// No kind of that name is registered.
    #[error("unknown kind `{0}`")]
    UnknownKind(String),
    /// The input breaks the kind's schema; `violations` says where and how (the first few).
    #[error("the input does not match the input schema of kind `{kind}`: {}", violations.join("; "))]
    Invalid {
        /// The kind whose schema was broken.
        kind: String,
        /// One line per violation: where in the input (a JSON pointer) and what is wrong.
        violations: Vec<String>,
    },
}

/// Compiled input schemas by kind name; `None` for a kind whose schema does not compile (it is
/// logged once and the input goes unchecked: a server's mistake must not refuse every task).
///
/// ```
/// use longrun::{KindSpec, Runtime};
/// use longrun_surface::{InputError, InputSchemas};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let runtime = Runtime::new(Default::default());
/// let mut spec = KindSpec::new("greet");
/// spec.input_schema = json!({"type": "object", "required": ["name"]});
/// runtime
///     .register(spec, |_ctx, input: serde_json::Value| async move {
///         Ok::<_, longrun::TaskError>(input)
///     })
///     .unwrap();
///
/// let schemas = InputSchemas::default();
/// assert_eq!(schemas.check(&runtime, "greet", &json!({"name": "Ada"})), Ok(()));
/// assert!(matches!(schemas.check(&runtime, "greet", &json!({})), Err(InputError::Invalid { .. })));
/// assert!(matches!(schemas.check(&runtime, "nope", &json!({})), Err(InputError::UnknownKind(_))));
/// # }
/// ```
#[derive(Default)]
pub struct InputSchemas {
    compiled: Mutex<HashMap<String, Option<Arc<Validator>>>>,
}

impl InputSchemas {
    /// Whether `input` may start a task of `kind` on `runtime`.
    pub fn check(&self, runtime: &Runtime, kind: &str, input: &Value) -> Result<(), InputError> {
        let Some(validator) = self.validator(runtime, kind)? else {
            return Ok(());
        };
        let mut violations = validator.iter_errors(input).peekable();
        if violations.peek().is_none() {
            return Ok(());
        }
        let violations = violations
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
        Err(InputError::Invalid {
            kind: kind.to_owned(),
            violations,
        })
    }

    fn validator(
        &self,
        runtime: &Runtime,
        kind: &str,
    ) -> Result<Option<Arc<Validator>>, InputError> {
        if let Some(cached) = self.compiled.lock().get(kind) {
            return Ok(cached.clone());
        }
        let spec = runtime
            .kind(kind)
            .ok_or_else(|| InputError::UnknownKind(kind.to_owned()))?;
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
        Ok(validator)
    }
}
