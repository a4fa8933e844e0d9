//! A worker's outbox: the events pushed to it, numbered, kept for a reconnecting stream.
//!
//! Events are appended whether a stream is open or not, so nothing is lost while a worker
//! reconnects; a stream resumes after the `Last-Event-ID` it names. The outbox keeps the last
//! [`KEPT`] events: a worker away for longer than that many events learns what it missed from
//! its heartbeat (the assignments it still holds), not from the stream.
//!
//! One stream per worker: opening one closes the one before (the `generation` check), so a
//! worker that reconnected without the server noticing the old connection's end does not get
//! every event twice.

use std::{collections::VecDeque, sync::Arc};

use futures_core::Stream;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// How many events an outbox keeps for a reconnecting stream.
pub const KEPT: usize = 1024;

/// One pushed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerEvent {
    /// Increasing per worker, from 1: the SSE `id`.
    pub id: u64,
    /// The SSE `event`: the message's `type`.
    pub name: &'static str,
    /// The SSE `data`: one JSON object.
    pub data: String,
}

#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    events: VecDeque<Arc<WorkerEvent>>,
    last_id: u64,
    /// Bumped by each new stream; an older stream ends when it sees a newer one.
    generation: u64,
    /// The worker left or was lost: every stream ends.
    closed: bool,
}

impl Outbox {
    pub(crate) fn push(&self, name: &'static str, data: String) {
        {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            state.last_id += 1;
            let event = WorkerEvent {
                id: state.last_id,
                name,
                data,
            };
            state.events.push_back(Arc::new(event));
            if state.events.len() > KEPT {
                state.events.pop_front();
            }
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_waiters();
    }

    /// The events after `after` (all kept ones for `None`), then every later one as it comes,
    /// until a newer stream opens or the outbox closes.
    pub(crate) fn stream(
        self: Arc<Self>,
        after: Option<u64>,
    ) -> impl Stream<Item = Arc<WorkerEvent>> + Send + 'static {
        let generation = {
            let mut state = self.state.lock();
            state.generation += 1;
            state.generation
        };
        // Older streams wake, see the newer generation, and end.
        self.changed.notify_waiters();
        let cursor = after.unwrap_or(0);
        futures_util::stream::unfold((self, cursor), move |(outbox, mut cursor)| async move {
            loop {
                let found = {
                    let changed = outbox.changed.notified();
                    let mut changed = std::pin::pin!(changed);
                    changed.as_mut().enable();
                    let next = {
                        let state = outbox.state.lock();
                        if state.closed || state.generation != generation {
                            return None;
                        }
                        // Ids are consecutive, so the next event's place follows from the first's.
                        let first = state
                            .events
                            .front()
                            .map_or(state.last_id + 1, |event| event.id);
                        let index = cursor.saturating_add(1).saturating_sub(first);
                        usize::try_from(index)
                            .ok()
                            .and_then(|index| state.events.get(index).cloned())
                    };
                    if next.is_none() {
                        changed.await;
                    }
                    next
                };
                if let Some(event) = found {
                    cursor = event.id;
                    return Some((event, (outbox, cursor)));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_stream_resumes_after_the_last_event_it_saw() {
        let outbox = Arc::new(Outbox::default());
        outbox.push("start", "a".into());
        outbox.push("cancel", "b".into());
        let mut all = Box::pin(outbox.clone().stream(None));
        assert_eq!(all.next().await.unwrap().data, "a");
        assert_eq!(all.next().await.unwrap().data, "b");
        drop(all);
        let mut resumed = Box::pin(outbox.clone().stream(Some(1)));
        assert_eq!(resumed.next().await.unwrap().id, 2);
        outbox.push("answer", "c".into());
        assert_eq!(resumed.next().await.unwrap().data, "c");
    }

    #[tokio::test]
    async fn a_new_stream_ends_the_old_one_and_closing_ends_all() {
        let outbox = Arc::new(Outbox::default());
        let mut old = Box::pin(outbox.clone().stream(None));
        let mut new = Box::pin(outbox.clone().stream(None));
        assert!(old.next().await.is_none());
        outbox.close();
        assert!(new.next().await.is_none());
    }

    #[tokio::test]
    async fn only_the_last_events_are_kept() {
        let outbox = Arc::new(Outbox::default());
        for n in 0..KEPT + 10 {
            outbox.push("answer", n.to_string());
        }
        let mut stream = Box::pin(outbox.clone().stream(Some(0)));
        assert_eq!(stream.next().await.unwrap().id, 11);
    }
}
