//! The `[mcp]` table of a config file: how the MCP door paces and bounds its calls, and the
//! prompts and resources it serves beside the tools (`[[mcp.prompts]]`, `[[mcp.resources]]`,
//! `[[mcp.resource_templates]]`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use serde_json::{Map, Value};

/// The config file's `[mcp]` table. Every key is optional.
///
/// ```
/// let config: longrun_mcp::Config = serde_json::from_str(r#"{"ask_before_task": ["book"]}"#)?;
/// assert_eq!(config.poll_interval_ms, 500);
/// assert!(config.asks_before_task("book"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How often clients are told to poll a running task (`pollInterval`, `pollIntervalMs`).
    pub poll_interval_ms: u64,
    /// The longest retention a 2025-11-25 client may ask for with `params.task.ttl`; longer
    /// requests are cut to it.
    pub max_ttl_ms: u64,
    /// Kinds whose tasks gather their first answers before the task handle is returned: a
    /// 2026-07-28 task call of such a kind answers with `InputRequiredResult` rounds (SEP-2322)
    /// until the task has no open question, and only then with the `CreateTaskResult`.
    pub ask_before_task: Vec<String>,
    /// After a task asks a question during a call that returns questions to the client (a
    /// 2026-07-28 `InputRequiredResult`), how long to wait for further questions, so that
    /// questions asked together are returned together.
    pub input_settle_ms: u64,
    /// How long a task whose questions went back in an `InputRequiredResult` waits for the
    /// client's retry before it is cancelled.
    pub input_wait_ms: u64,
    /// A 2025-11-25 session unused this long is forgotten; its client must initialize again.
    pub session_idle_ms: u64,
    /// The most 2025-11-25 sessions kept at once; beyond it the least recently used goes.
    pub max_sessions: usize,
    /// How long a 2025-11-25 stream waits for its client to come back (`GET` with
    /// `Last-Event-ID`) after its connection dropped, before the call counts its client gone;
    /// and how long an ended stream can still be replayed.
    pub resume_window_ms: u64,
    /// When not 0, a 2025-11-25 call's SSE stream is closed by the server after this long and
    /// the client resumes it with `Last-Event-ID` (SEP-1699 polling), so that a call outliving
    /// a proxy's request timeout is not cut; the resumed stream stays open to the end.
    pub stream_close_ms: u64,
    /// `[[mcp.prompts]]`: prompts served by `prompts/list` and `prompts/get`.
    pub prompts: Vec<Prompt>,
    /// `[[mcp.resources]]`: static resources, listed and read beside the tasks' artifacts.
    pub resources: Vec<Resource>,
    /// `[[mcp.resource_templates]]`: resources whose URI has `{variables}`, substituted into
    /// their text.
    pub resource_templates: Vec<ResourceTemplate>,
}

/// One `[[mcp.prompts]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// The prompt's name, as `prompts/get` names it.
    pub name: String,
    /// A title for people.
    #[serde(default)]
    pub title: Option<String>,
    /// What the prompt is for.
    pub description: String,
    /// Its arguments, substituted as `{name}` into the messages' text and URIs.
    #[serde(default)]
    pub arguments: Vec<PromptArgument>,
    /// Questions asked before the prompt is given (key → `elicitation/create` params); the
    /// accepted answer's fields are substituted like arguments. Over 2026-07-28 they come back
    /// as an `InputRequiredResult` (SEP-2322).
    #[serde(default)]
    pub asks: BTreeMap<String, Map<String, Value>>,
    /// The messages, in order.
    pub messages: Vec<PromptMessage>,
}

/// One argument of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptArgument {
    /// The argument's name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether `prompts/get` must give it.
    #[serde(default)]
    pub required: bool,
    /// The values `completion/complete` suggests, matched by prefix.
    #[serde(default)]
    pub values: Vec<String>,
}

/// One message of a prompt: exactly one of `text`, `image` or `resource`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptMessage {
    /// `user` (the default) or `assistant`.
    #[serde(default = "user")]
    pub role: String,
    /// A text block.
    #[serde(default)]
    pub text: Option<String>,
    /// An image block.
    #[serde(default)]
    pub image: Option<Media>,
    /// An embedded resource.
    #[serde(default)]
    pub resource: Option<Embedded>,
}

fn user() -> String {
    "user".to_owned()
}

/// Binary content: base64 `data`, or a `file` read when served.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// The content, base64.
    #[serde(default)]
    pub data: Option<String>,
    /// A file holding the content (relative to the config file).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Its MIME type.
    pub mime_type: String,
}

/// A resource embedded in a prompt message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    /// Its URI (arguments are substituted).
    pub uri: String,
    /// Its text (arguments are substituted).
    pub text: String,
    /// Its MIME type (default `text/plain`).
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// One `[[mcp.resources]]`: `text`, or a `file` read when served (as a blob unless its MIME
/// type is textual).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The resource's URI.
    pub uri: String,
    /// Its name.
    pub name: String,
    /// A title for people.
    #[serde(default)]
    pub title: Option<String>,
    /// What it is.
    #[serde(default)]
    pub description: Option<String>,
    /// Its MIME type (default `text/plain` for text, `application/octet-stream` for a file).
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Its content, as text.
    #[serde(default)]
    pub text: Option<String>,
    /// A file holding its content (relative to the config file).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// One `[[mcp.resource_templates]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTemplate {
    /// An RFC 6570 level-1 template: `{name}` matches one path segment.
    pub uri_template: String,
    /// Its name.
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: Option<String>,
    /// Its MIME type (default `text/plain`).
    #[serde(default)]
    pub mime_type: Option<String>,
    /// The content, with the URI's variables substituted as `{name}`.
    pub text: String,
    /// The values `completion/complete` suggests for each variable.
    #[serde(default)]
    pub values: BTreeMap<String, Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            poll_interval_ms: 500,
            max_ttl_ms: 24 * 3600 * 1000,
            ask_before_task: Vec::new(),
            input_settle_ms: 100,
            input_wait_ms: 10 * 60 * 1000,
            session_idle_ms: 3600 * 1000,
            max_sessions: 10_000,
            resume_window_ms: 60_000,
            stream_close_ms: 0,
            prompts: Vec::new(),
            resources: Vec::new(),
            resource_templates: Vec::new(),
        }
    }
}

impl Config {
    /// Whether tasks of `kind` gather their first answers before the task handle is returned.
    pub fn asks_before_task(&self, kind: &str) -> bool {
        self.ask_before_task.iter().any(|name| name == kind)
    }

    /// Makes the prompts' and resources' relative `file`s relative to `dir` (the config file's
    /// directory).
    pub fn resolve_files(&mut self, dir: &Path) {
        let resolve = |file: &mut Option<PathBuf>| {
            if let Some(path) = file
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        };
        for resource in &mut self.resources {
            resolve(&mut resource.file);
        }
        for prompt in &mut self.prompts {
            for message in &mut prompt.messages {
                if let Some(image) = &mut message.image {
                    resolve(&mut image.file);
                }
            }
        }
    }

    /// Whether prompts are configured (then the `prompts` capability is offered).
    pub(crate) fn has_prompts(&self) -> bool {
        !self.prompts.is_empty()
    }

    /// Whether anything has values to complete (then the `completions` capability is
    /// offered).
    pub(crate) fn has_completions(&self) -> bool {
        !self.prompts.is_empty() || !self.resource_templates.is_empty()
    }

    pub(crate) fn settle(&self) -> Duration {
        Duration::from_millis(self.input_settle_ms)
    }

    pub(crate) fn input_wait(&self) -> Duration {
        Duration::from_millis(self.input_wait_ms)
    }

    pub(crate) fn session_idle(&self) -> Duration {
        Duration::from_millis(self.session_idle_ms)
    }

    pub(crate) fn resume_window(&self) -> Duration {
        Duration::from_millis(self.resume_window_ms)
    }

    pub(crate) fn stream_close(&self) -> Option<Duration> {
        (self.stream_close_ms > 0).then(|| Duration::from_millis(self.stream_close_ms))
    }
}
