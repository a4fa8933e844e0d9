//! The bounds every door holds a caller to, configured once (`[limits]`) and read by all.

use std::time::Duration;

/// Bounds on what one request or one principal may take, the same on every door.
///
/// Sizes of inputs, answers, artifacts and event payloads are bounded by the runtime's own
/// [`longrun::limits::Bounds`]; a request over them is refused as too large as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes, on every door (413 above it, in the door's error
    /// shape). Keep it above the runtime's input bound, so that an oversized input gets the
    /// runtime's message, which names the input.
    pub body_bytes: usize,
    /// Most open streams (SSE event streams of `/v1`, MCP and A2A, together) one principal may
    /// hold at once; one more is refused as too many.
    pub streams_per_principal: usize,
    /// Longest a request may wait for a task before it is answered with the task as it stands
    /// (`wait_ms` on `/v1`, a blocking A2A `SendMessage`); longer waits are cut to it.
    pub max_wait: Duration,
    /// Most tasks on one page of a list; a larger page size is cut to it.
    pub max_page: usize,
    /// Most items one inbox drain returns; a larger `max` is cut to it.
    pub max_drain: usize,
    /// How often an idle stream sends a comment, so proxies keep it open.
    pub keep_alive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 2 << 20,
            streams_per_principal: 64,
            max_wait: Duration::from_secs(60),
            max_page: 500,
            max_drain: 500,
            keep_alive: Duration::from_secs(15),
        }
    }
}

impl Limits {
    /// How long to wait when a caller asks for `requested` (no limit asked: the longest).
    ///
    /// ```
    /// use std::time::Duration;
    /// use longrun_surface::Limits;
    ///
    /// let limits = Limits { max_wait: Duration::from_secs(3), ..Limits::default() };
    /// assert_eq!(limits.wait(Some(Duration::from_secs(1))), Duration::from_secs(1));
    /// assert_eq!(limits.wait(Some(Duration::from_secs(20))), Duration::from_secs(3));
    /// assert_eq!(limits.wait(None), Duration::from_secs(3));
    /// ```
    pub fn wait(&self, requested: Option<Duration>) -> Duration {
        requested.map_or(self.max_wait, |wait| wait.min(self.max_wait))
    }
}
