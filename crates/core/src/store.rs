//! Store traits: what a backend must do to keep tasks, their events and the agent inbox.
//!
//! The traits are small, split by job, and object-safe, so a runtime holds an
//! `Arc<dyn Store>` chosen from configuration at start-up. Every backend (in-memory, SQLite,
//! PostgreSQL) passes the one conformance suite in `longrun-store-tests`.
//!
//! # Ordering and durability
//!
//! Writes ([`TaskStore::create`], [`TaskStore::append`], [`TaskStore::append_with_inbox`],
//! [`InboxStore::push`]) take their place in the store's order when the method is *called*, not
//! when the returned [`Ack`] is awaited: a write called after another is applied after it. The
//! [`Ack`] resolves once the write is durable, and nobody may be told of a change before its ack
//! resolves. This lets a backend batch many writers into one commit (group commit) while callers
//! keep per-task order with nothing more than a short synchronous lock around the call.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    str::FromStr,
    sync::Arc,
    task::{Context, Poll},
};

use crate::{
    event::{Event, Seq},
    id::TaskId,
    inbox::{InboxEntry, InboxItem},
    state::{Refusal, Status},
    task::{Labels, Owner, Session, Task},
    time::Timestamp,
};

/// A boxed, sendable future, as the object-safe traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A task with this id already exists.
    #[error("task {0} already exists")]
    Duplicate(TaskId),
    /// The owner already has a stored task started under this idempotency key; nothing was
    /// created.
    #[error("idempotency key `{key}` of {owner} already names task {existing}")]
    KeyTaken {
        /// The owner.
        owner: Owner,
        /// The key.
        key: String,
        /// The task the key names.
        existing: TaskId,
    },
    /// No task with this id is stored.
    #[error("task {0} is not stored (it never existed, or expired and was purged)")]
    NotFound(TaskId),
    /// An event the state machine refuses for the stored task.
    #[error("event refused for task {task}: {refusal}")]
    Refused {
        /// The task.
        task: TaskId,
        /// Why.
        refusal: Refusal,
    },
    /// This writer no longer owns the task (another node took it over).
    #[error("task {0} is owned by another node now; this write was fenced off")]
    Fenced(TaskId),
    /// The backend failed; the write may or may not have happened.
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Resolves when a write is durable. See the module docs for ordering.
#[must_use = "a write is not durable until its Ack resolves"]
pub struct Ack(AckInner);

enum AckInner {
    Ready(Option<Result<(), Error>>),
    Pending(BoxFuture<'static, Result<(), Error>>),
}

impl Ack {
    /// An ack for a write that is already durable (or already failed).
    pub fn ready(result: Result<(), Error>) -> Self {
        Self(AckInner::Ready(Some(result)))
    }

    /// The result, if the write is already durable (or already failed), without waiting. Once
    /// taken, the ack must not be awaited.
    pub fn try_now(&mut self) -> Option<Result<(), Error>> {
        match &mut self.0 {
            AckInner::Ready(result) => result.take(),
            AckInner::Pending(_) => None,
        }
    }

    /// An ack that resolves with `future`.
    pub fn pending(future: impl Future<Output = Result<(), Error>> + Send + 'static) -> Self {
        Self(AckInner::Pending(Box::pin(future)))
    }
}

impl Future for Ack {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            AckInner::Ready(result) => Poll::Ready(
                result
                    .take()
                    .expect("an Ack must not be polled after it resolved"),
            ),
            AckInner::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ack")
    }
}

/// Which tasks a listing returns. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Any of these statuses (empty: any status).
    pub status: Vec<Status>,
    /// This kind.
    pub kind: Option<String>,
    /// This session.
    pub session: Option<Session>,
    /// This owner.
    pub owner: Option<Owner>,
    /// Every one of these labels, with these values.
    pub labels: Labels,
}

impl Filter {
    /// Whether `task` passes the filter. Every backend agrees with this function.
    pub fn matches(&self, task: &Task) -> bool {
        (self.status.is_empty() || self.status.contains(&task.status()))
            && self.kind.as_ref().is_none_or(|kind| *kind == task.kind)
            && self
                .session
                .as_ref()
                .is_none_or(|session| task.session.as_ref() == Some(session))
            && self.owner.as_ref().is_none_or(|owner| *owner == task.owner)
            && self
                .labels
                .iter()
                .all(|(key, value)| task.labels.get(key) == Some(value))
    }
}

/// Where a page of a listing ends: listings are ordered newest first, by creation time and then
/// id, and the next page starts after the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The last listed task's creation time.
    pub created_at: Timestamp,
    /// The last listed task's id.
    pub id: TaskId,
}

impl Cursor {
    /// The cursor just after `task`.
    pub fn after(task: &Task) -> Self {
        Self {
            created_at: task.created_at,
            id: task.id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.as_millis(), self.id)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || "invalid cursor: pass the `next` value of a previous page".to_owned();
        let (millis, id) = s.split_once('.').ok_or_else(invalid)?;
        Ok(Self {
            created_at: Timestamp::from_millis(millis.parse().map_err(|_| invalid())?),
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// A listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which tasks.
    pub filter: Filter,
    /// Start after this cursor (`None`: from the newest).
    pub after: Option<Cursor>,
    /// At most this many tasks (0 gives an empty page).
    pub limit: usize,
    /// Leave out tasks that have expired by this time.
    pub now: Timestamp,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The tasks, newest first.
    pub tasks: Vec<Task>,
    /// The cursor for the next page, if there may be one.
    pub next: Option<Cursor>,
}

/// What a purge should remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// Remove finished tasks that expired by this time.
    pub now: Timestamp,
    /// Then keep at most this many finished tasks, removing the earliest-finished first.
    pub max_finished: usize,
}

/// Keeps tasks and applies their events.
pub trait TaskStore: Send + Sync {
    /// Stores a new task together with its first event: the pair [`Task::create`] returned.
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack;

    /// Appends events (each task's in sequence) and folds them into the stored tasks with
    /// [`Task::apply`]. A refused or unknown event fails the whole call and changes nothing.
    fn append(&self, events: &[Arc<Event>]) -> Ack;

    /// Appends `events` as [`TaskStore::append`] does and places `item` at the end of its
    /// session's inbox, in one write: both happen or neither does, and the ack resolves once
    /// both are durable. A task's end goes this way when its outcome is for a session's inbox,
    /// so no inbox tells of an end the log does not hold (and no end is durable without its
    /// inbox item), and the pair costs one commit, not two in a row. A refused or unknown event
    /// fails the call and places nothing.
    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack;

    /// The stored task, expired or not.
    fn get(&self, id: TaskId) -> BoxFuture<'_, Result<Option<Task>, Error>>;

    /// A page of tasks, newest first.
    fn list(&self, query: &Query) -> BoxFuture<'_, Result<Page, Error>>;

    /// Tasks that have not ended, oldest first (by creation time, then id): what a runtime
    /// resumes after a restart.
    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<Task>, Error>>;
}

/// Keeps each task's events.
pub trait EventLog: Send + Sync {
    /// Events of `task` with sequence numbers above `after`, in order, at most `limit`. An
    /// unknown (or purged) task has no events: the answer is an empty list, not an error.
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>>;
}

/// What is placed in an inbox; the store assigns the position.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboxItem {
    /// The session.
    pub session: Session,
    /// The task it is about.
    pub task: TaskId,
    /// When.
    pub at: Timestamp,
    /// What it says.
    pub entry: InboxEntry,
}

/// Keeps the agent inbox of every session.
pub trait InboxStore: Send + Sync {
    /// Places an item at the end of its session's inbox. Positions come from one counter that
    /// never goes back, so a position is never reused, even after an inbox empties.
    fn push(&self, item: NewInboxItem) -> Ack;

    /// Items of `session` above position `after`, in order, at most `limit`.
    fn peek(
        &self,
        session: &Session,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<InboxItem>, Error>>;

    /// Removes the items of `session` up to and including `through`; returns how many.
    fn acknowledge(&self, session: &Session, through: u64) -> BoxFuture<'_, Result<usize, Error>>;
}

/// Removes what is no longer kept.
pub trait Retention: Send + Sync {
    /// Removes expired finished tasks and their events, then the earliest-finished beyond the
    /// cap, ordered by (finished_at, id). Unfinished tasks are never removed. Returns how many
    /// tasks were removed.
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>>;
}

/// Everything a runtime needs of a backend.
pub trait Store: TaskStore + EventLog + InboxStore + Retention {}

impl<T: TaskStore + EventLog + InboxStore + Retention + ?Sized> Store for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            created_at: Timestamp::from_millis(42),
            id: TaskId::random(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        assert!("nope".parse::<Cursor>().is_err());
        assert!("12.task_zz".parse::<Cursor>().is_err());
    }

    #[test]
    fn ack_resolves_ready_results() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut ack = Ack::ready(Ok(()));
        assert!(matches!(
            Pin::new(&mut ack).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }
}
