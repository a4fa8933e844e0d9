//! The runtime's default clock: wall time that follows tokio's (pausable) time.

use longrun_core::{Clock, SystemClock, Timestamp};
use tokio::time::Instant;

/// Wall-clock time anchored at creation and advanced by tokio's clock, so tests with
/// `#[tokio::test(start_paused = true)]` see timestamps move exactly as timers do.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: Timestamp,
    anchor: Instant,
}

impl TokioClock {
    /// Anchors at the system clock's current time. Call inside a tokio runtime.
    pub fn new() -> Self {
        Self {
            wall: SystemClock.now(),
            anchor: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.wall.saturating_add(self.anchor.elapsed())
    }
}
