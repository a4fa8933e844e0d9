//! The agent inbox: per session, messages from tasks and the outcomes of background and
//! detached tasks, waiting for the agent's next turn.
//!
//! Draining is acknowledged: [`Inbox::drain`] hands out every unacknowledged item and holds the
//! session's drain lease until [`Drained::ack`] removes them or the [`Drained`] is dropped (then
//! the same items come again at the next drain). One drain at a time per session, so nothing is
//! delivered twice once acknowledged, and nothing is lost before.

use std::{collections::HashMap, sync::Arc};

use longrun_core::{InboxEntry, InboxItem, Session, TaskId, store::NewInboxItem};
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::{error::Error, runtime::Inner};

/// Per-session wake-ups and drain leases. Entries exist only while somebody holds an
/// [`Inbox`] for the session, so memory follows use.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<Session, Arc<SessionState>>>,
}

#[derive(Default)]
pub(crate) struct SessionState {
    arrived: Notify,
    lease: Arc<tokio::sync::Mutex<()>>,
}

impl Sessions {
    fn state(&self, session: &Session) -> Arc<SessionState> {
        self.map.lock().entry(session.clone()).or_default().clone()
    }

    pub(crate) fn wake(&self, session: &Session) {
        if let Some(state) = self.map.lock().get(session) {
            state.arrived.notify_waiters();
        }
    }

    /// Forgets sessions nobody holds an inbox for.
    pub(crate) fn forget_idle(&self) {
        let mut map = self.map.lock();
        map.retain(|_, state| Arc::strong_count(state) > 1);
        if map.capacity() > 4 * map.len() + 64 {
            map.shrink_to_fit();
        }
    }
}

/// One session's inbox.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
    session: Session,
    state: Arc<SessionState>,
}

impl Inbox {
    pub(crate) fn new(inner: Arc<Inner>, session: Session) -> Self {
        let state = inner.sessions.state(&session);
        Self {
            inner,
            session,
            state,
        }
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Every unacknowledged item, oldest first (at most `max`). Waits while another drain of
    /// this session is unacknowledged.
    pub async fn drain(&self, max: usize) -> Result<Drained, Error> {
        let lease = self.state.lease.clone().lock_owned().await;
        let items = self.inner.store.peek(&self.session, 0, max.max(1)).await?;
        Ok(Drained {
            inbox: self.clone(),
            items,
            _lease: lease,
        })
    }

    /// Resolves as soon as the inbox holds an item (at once if it already does), so an agent
    /// can be woken instead of polling.
    pub async fn ready(&self) -> Result<(), Error> {
        loop {
            let arrived = self.state.arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            arrived.as_mut().enable();
            if !self.inner.store.peek(&self.session, 0, 1).await?.is_empty() {
                return Ok(());
            }
            arrived.await;
        }
    }

    /// Places an entry about `task` in this inbox, as a task's `notify_agent` does (for code
    /// that delivers on a task's behalf, such as a terminal callback).
    pub async fn push(&self, task: TaskId, entry: InboxEntry) -> Result<(), Error> {
        let item = NewInboxItem {
            session: self.session.clone(),
            task,
            at: self.inner.clock.now(),
            entry,
        };
        self.inner.store.push(item).await?;
        self.inner.sessions.wake(&self.session);
        Ok(())
    }
}

/// Items handed out by [`Inbox::drain`]; acknowledge them with [`Drained::ack`].
pub struct Drained {
    inbox: Inbox,
    items: Vec<InboxItem>,
    _lease: OwnedMutexGuard<()>,
}

impl Drained {
    /// The items, oldest first.
    pub fn items(&self) -> &[InboxItem] {
        &self.items
    }

    /// Whether the drain found nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes the drained items for good; returns how many.
    pub async fn ack(self) -> Result<usize, Error> {
        let Some(last) = self.items.last() else {
            return Ok(0);
        };
        let inbox = &self.inbox;
        Ok(inbox
            .inner
            .store
            .acknowledge(&inbox.session, last.position)
            .await?)
    }
}
