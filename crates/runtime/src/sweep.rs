//! The retention sweeper: purges expired tasks and gives memory back.

use longrun_core::store::Purge;
use tokio_util::sync::CancellationToken;

use crate::runtime::Inner;

/// Purges expired tasks every `sweep_interval` until shutdown, and gives memory back.
pub(crate) async fn sweep(inner: std::sync::Weak<Inner>, shutdown: CancellationToken) {
    loop {
        let interval = match inner.upgrade() {
            Some(inner) => inner.options.sweep_interval,
            None => return,
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        let purge = Purge {
            now: inner.clock.now(),
            max_finished: inner.options.max_finished,
        };
        if let Err(error) = inner.store.purge(purge).await {
            tracing::warn!(%error, "retention sweep failed; retrying at the next interval");
        }
        if inner.live.capacity() > 4 * inner.live.len() + 64 {
            inner.live.shrink_to_fit();
        }
        inner.sessions.forget_idle();
    }
}
