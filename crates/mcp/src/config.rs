//! The `[mcp]` table of a config file: how the MCP door paces and bounds its calls.

use std::time::Duration;

use serde::Deserialize;

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
    /// the client resumes it with `Last-Event-ID` (SEP-1699 polling), so that proxies with
    /// request timeouts never cut a long call.
    pub stream_close_ms: u64,
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
        }
    }
}

impl Config {
    /// Whether tasks of `kind` gather their first answers before the task handle is returned.
    pub fn asks_before_task(&self, kind: &str) -> bool {
        self.ask_before_task.iter().any(|name| name == kind)
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
