//! What bounds one call: the caller's TTL (after which the task is cancelled on the server
//! and the call fails with [`Error::TtlExpired`]) and the caller's cancellation token.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// The poll interval when the server suggests none.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// The shortest interval polled at, whatever the server suggests (a server asking for 0 ms
/// would otherwise be hammered).
pub(crate) const MIN_POLL: Duration = Duration::from_millis(50);
/// The longest interval polled at, so a TTL or a cancellation is never noticed much later.
pub(crate) const MAX_POLL: Duration = Duration::from_secs(30);

/// The interval to poll at: the server's suggestion, within bounds.
pub(crate) fn poll_interval(server: Option<Duration>) -> Duration {
    server.unwrap_or(DEFAULT_POLL).clamp(MIN_POLL, MAX_POLL)
}

/// The bounds of one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// The TTL the caller gave.
    pub(crate) ttl: Option<Duration>,
    deadline: Option<Instant>,
    cancel: Option<CancellationToken>,
}

/// How a raced future ended.
pub(crate) enum Outcome<T> {
    /// It finished.
    Done(T),
    /// The TTL ran out or the caller cancelled first.
    Stopped(Stop),
}

/// Why a call was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The TTL ran out.
    Ttl(Duration),
    /// The caller's token was cancelled.
    Cancelled,
}

impl Stop {
    /// Why, for the server (`notifications/cancelled` has a reason).
    pub(crate) fn reason(self) -> String {
        match self {
            Self::Ttl(ttl) => format!("the caller's TTL of {} ms ran out", ttl.as_millis()),
            Self::Cancelled => "cancelled by the caller".to_owned(),
        }
    }

    /// The error the call fails with.
    pub(crate) fn into_error(self, task_id: String) -> Error {
        match self {
            Self::Ttl(ttl) => Error::TtlExpired { task_id, ttl },
            Self::Cancelled => Error::Cancelled {
                task_id,
                reason: Some(self.reason()),
            },
        }
    }
}

impl Run {
    /// Starts the clock now.
    pub(crate) fn new(ttl: Option<Duration>, cancel: Option<CancellationToken>) -> Self {
        Self {
            ttl,
            deadline: ttl.map(|ttl| Instant::now() + ttl),
            cancel,
        }
    }

    /// Runs `future` until it finishes, the TTL runs out or the caller cancels.
    pub(crate) async fn race<F: Future>(&self, future: F) -> Outcome<F::Output> {
        let ttl = async {
            match (self.deadline, self.ttl) {
                (Some(deadline), Some(ttl)) => {
                    tokio::time::sleep_until(deadline).await;
                    ttl
                }
                _ => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &self.cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancelled => Outcome::Stopped(Stop::Cancelled),
            ttl = ttl => Outcome::Stopped(Stop::Ttl(ttl)),
            done = future => Outcome::Done(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_ttl_stops_a_call_that_runs_too_long() {
        let run = Run::new(Some(Duration::from_secs(2)), None);
        let slow = tokio::time::sleep(Duration::from_secs(3));
        assert!(matches!(
            run.race(slow).await,
            Outcome::Stopped(Stop::Ttl(ttl)) if ttl == Duration::from_secs(2)
        ));
        let quick = Run::new(Some(Duration::from_secs(2)), None);
        assert!(matches!(quick.race(async { 7 }).await, Outcome::Done(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_stops_a_call() {
        let token = CancellationToken::new();
        let run = Run::new(None, Some(token.clone()));
        token.cancel();
        assert!(matches!(
            run.race(std::future::pending::<()>()).await,
            Outcome::Stopped(Stop::Cancelled)
        ));
    }

    #[test]
    fn poll_intervals_stay_in_bounds() {
        assert_eq!(poll_interval(None), DEFAULT_POLL);
        assert_eq!(poll_interval(Some(Duration::ZERO)), MIN_POLL);
        assert_eq!(poll_interval(Some(Duration::from_secs(3600))), MAX_POLL);
        assert_eq!(
            poll_interval(Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
    }
}
