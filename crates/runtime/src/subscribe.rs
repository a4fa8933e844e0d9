//! Subscriptions: one task's events from any sequence number, or every task's live events.
//!
//! A task subscription first replays the log from the store, then follows live publication.
//! It attaches to the live channel *before* reading the log, noting how far publication had
//! got, so no event falls between the two; an event seen twice is dropped by its sequence
//! number. A subscriber that falls more than its buffer behind is told so ([`Notice::Lagged`])
//! and resumes from the log on its own, so it never misses an event and never slows the task
//! or other subscribers.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use futures_core::Stream;
use longrun_core::{Event, Seq, TaskId};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{error::Error, live::TaskInfo, runtime::Inner};

/// How many events a subscription reads from the log at a time.
const PAGE: usize = 512;
/// How often a subscription to a task running elsewhere looks for new events.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// What a task subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The next event, in sequence.
    Event(Arc<Event>),
    /// The subscriber fell behind the live stream by `missed` events; the subscription goes
    /// on from the log, so no event is lost.
    Lagged {
        /// How many live events it missed.
        missed: u64,
    },
}

/// One task's events, in order, ending after the terminal event.
pub struct Subscription {
    inner: Arc<Inner>,
    id: TaskId,
    last: Seq,
    buffer: VecDeque<Arc<Event>>,
    live: Option<broadcast::Receiver<Arc<Event>>>,
    done: bool,
}

impl Subscription {
    pub(crate) fn new(inner: Arc<Inner>, id: TaskId, after: Seq) -> Self {
        Self {
            inner,
            id,
            last: after,
            buffer: VecDeque::new(),
            live: None,
            done: false,
        }
    }

    /// The sequence number of the last event yielded: resubscribe after it to resume.
    pub fn last_seq(&self) -> Seq {
        self.last
    }

    /// The next notice, or `None` after the terminal event.
    pub async fn next(&mut self) -> Result<Option<Notice>, Error> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                if event.seq <= self.last {
                    continue;
                }
                if event.seq != self.last.next() {
                    // A gap can only mean the live channel skipped ahead: go back to the log.
                    self.buffer.clear();
                    self.live = None;
                    continue;
                }
                self.last = event.seq;
                if event.is_terminal() {
                    self.done = true;
                    self.buffer.clear();
                    self.live = None;
                }
                return Ok(Some(Notice::Event(event)));
            }
            if self.done {
                return Ok(None);
            }
            match &mut self.live {
                Some(live) => match live.recv().await {
                    Ok(event) => self.buffer.push_back(event),
                    Err(RecvError::Lagged(missed)) => {
                        self.live = None;
                        return Ok(Some(Notice::Lagged { missed }));
                    }
                    // The task ended and its channel closed: the log has the rest.
                    Err(RecvError::Closed) => self.live = None,
                },
                // Boxed: `attach` runs once per subscription (and after a lag), and its
                // state (a store read, a watch, a timeout) would otherwise sit inline in
                // every waiting `next`, which a stream holds for as long as it is open.
                None => Box::pin(self.attach()).await?,
            }
        }
    }

    async fn attach(&mut self) -> Result<(), Error> {
        let published = self.inner.live(self.id).map(|live| {
            let mut state = live.state.lock();
            let capacity = self.inner.options.subscriber_buffer.max(1);
            let sender = state
                .subscribers
                .get_or_insert_with(|| broadcast::channel(capacity).0);
            self.live = Some(sender.subscribe());
            state.published
        });
        // Not running here: watch for changes elsewhere, registered before the log is read so
        // that a change in between still wakes us.
        let remote = published
            .is_none()
            .then(|| self.inner.watchers.watch(self.id));
        let woken = remote.as_ref().map(|remote| remote.notified());
        let mut woken = std::pin::pin!(woken);
        if let Some(woken) = woken.as_mut().as_pin_mut() {
            woken.enable();
        }
        let events = self.inner.store.read(self.id, self.last, PAGE).await?;
        match published {
            Some(published) => {
                let behind =
                    events.len() == PAGE && events.last().is_some_and(|e| e.seq < published);
                if behind {
                    // More log to read before the live channel's events make sense.
                    self.live = None;
                }
            }
            None if events.is_empty() => match self.inner.store.get(self.id).await? {
                Some(task) if !task.status().is_terminal() => {
                    // Stored but not running here (on another node, say): wait until its
                    // events change there, or look again after a while, as notices are hints.
                    if let Some(woken) = woken.as_pin_mut() {
                        let _ = tokio::time::timeout(POLL, woken).await;
                    }
                }
                // Ended after the log was read: read again, the end is in the log now.
                Some(task) if task.last_seq() > self.last => {}
                // Ended and everything yielded, or purged.
                _ => self.done = true,
            },
            None => {}
        }
        self.buffer.extend(events);
        Ok(())
    }

    /// The subscription as a stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<Notice, Error>> + Send {
        futures_util::stream::unfold(self, |mut subscription| async move {
            subscription
                .next()
                .await
                .transpose()
                .map(|notice| (notice, subscription))
        })
    }
}

/// An event published on the all-tasks stream, with who it belongs to.
#[derive(Debug, Clone)]
pub struct Published {
    /// The event.
    pub event: Arc<Event>,
    /// The task's kind, owner and session.
    pub info: TaskInfo,
}

/// What an all-tasks subscription yields.
#[derive(Debug, Clone)]
pub enum AllNotice {
    /// The next published event.
    Event(Published),
    /// The subscriber fell behind by `missed` events and skipped them. To catch up, read the
    /// tasks it cares about (or resubscribe to each from its last sequence number).
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// Every task's events as they are published: each task's in order, tasks interleaved.
pub struct AllSubscription {
    live: broadcast::Receiver<Published>,
}

impl AllSubscription {
    pub(crate) fn new(live: broadcast::Receiver<Published>) -> Self {
        Self { live }
    }

    /// The next notice, or `None` once the runtime is gone.
    pub async fn next(&mut self) -> Option<AllNotice> {
        match self.live.recv().await {
            Ok(published) => Some(AllNotice::Event(published)),
            Err(RecvError::Lagged(missed)) => Some(AllNotice::Lagged { missed }),
            Err(RecvError::Closed) => None,
        }
    }
}
