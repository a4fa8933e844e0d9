//! The writer: one thread that owns the write connection and commits every write, in the order
//! the calls were made, many calls to a transaction (group commit).
//!
//! # How a write travels
//!
//! 1. A store method encodes what it can on the caller's thread, then sends a [`Command`] on
//!    the channel before it returns. The channel's order is the store's order: that is the
//!    ordering contract of `longrun_core::store`.
//! 2. The writer blocks until a command arrives, then takes whatever else is already queued, up
//!    to `max_batch` writes. It never waits for more: a lone write commits at once, and writes
//!    that arrive during a commit form the next batch. That is group commit with no timer.
//! 3. In one transaction it applies each write in order. Appends are validated in memory
//!    first, against the cache below; a write that is refused fails alone and changes nothing,
//!    and the rest of the batch goes on. The rows of tasks changed by appends are rewritten once
//!    per batch, not once per event.
//! 4. It commits (the one fsync of the batch), and only then resolves the batch's acks. If
//!    SQLite fails anywhere in the batch, the transaction is rolled back and every ack of the
//!    batch fails with [`Error::Backend`].
//!
//! A purge is a job, not a write: each batch runs one bounded step of the oldest job after its
//! writes, so a purge of a million tasks never holds the writers up for long.
//!
//! # Invariants
//!
//! - Between batches, every entry of `cache` is an unfinished task exactly as committed. The
//!   cache is filled with every unfinished task at open and gains each task created unfinished,
//!   so a task missing from it has finished, is not stored, or was dropped after a failed
//!   batch; such a task is read from the table when a write needs it.
//! - During a batch, the entries of `Batch::touched` tasks hold the batch's uncommitted state,
//!   so later writes of the batch see earlier ones. After a commit, touched tasks that finished
//!   leave the cache; after a rollback, touched tasks are reloaded from the table.
//! - A refused write changes neither the cache nor the database: every check happens before
//!   its first statement.

mod handle;
mod purge;

use std::{
    collections::{HashMap, HashSet, VecDeque, hash_map},
    path::PathBuf,
    sync::{
        Arc,
        atomic::Ordering,
        mpsc::{self, Receiver},
    },
};

use longrun_core::{
    Event, Task, TaskId,
    store::{Error, NewInboxItem, Purge},
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

pub(crate) use self::handle::{Counters, Handle};
use self::{handle::stopped, purge::PurgeJob};
// The purge's queries, for the schema's test of their plans.
#[cfg(test)]
pub(crate) use self::purge::{EARLIEST_FINISHED, EXPIRED};
use crate::{
    codec::{self, TaskRow, encode_entry, encode_event, id_key},
    error::{Failure, backend},
    read,
};

/// Where a call's result goes once its batch's fate is known.
pub(crate) type Done<T> = oneshot::Sender<Result<T, Error>>;

/// Everything that wakes the writer.
pub(crate) enum Command {
    /// A write, batched with the others.
    Write(Write),
    /// A purge, run in steps after the writes of each batch.
    Purge {
        /// What to remove.
        purge: Purge,
        /// How many tasks were removed.
        done: Done<usize>,
    },
}

/// A write call, encoded on the caller's thread.
pub(crate) enum Write {
    /// [`TaskStore::create`](longrun_core::store::TaskStore::create).
    Create {
        task: Box<Task>,
        row: Box<TaskRow>,
        first: Encoded,
        done: Done<()>,
    },
    /// [`TaskStore::append`](longrun_core::store::TaskStore::append), and
    /// [`TaskStore::append_with_inbox`](longrun_core::store::TaskStore::append_with_inbox)
    /// with the inbox row placed in the same transaction once the events are in.
    Append {
        events: Vec<Encoded>,
        inbox: Option<InboxRow>,
        done: Done<()>,
    },
    /// [`InboxStore::push`](longrun_core::store::InboxStore::push).
    Push { row: InboxRow, done: Done<()> },
    /// [`InboxStore::acknowledge`](longrun_core::store::InboxStore::acknowledge).
    Acknowledge {
        session: String,
        through: i64,
        done: Done<usize>,
    },
}

/// An event and its row's JSON.
pub(crate) struct Encoded {
    event: Arc<Event>,
    body: String,
}

impl Encoded {
    /// Encodes `event`.
    pub(crate) fn new(event: &Arc<Event>) -> Result<Self, Error> {
        Ok(Self {
            body: encode_event(event)?,
            event: Arc::clone(event),
        })
    }
}

/// An inbox item's row, less the position the table gives it.
pub(crate) struct InboxRow {
    session: String,
    task: [u8; 16],
    at: i64,
    entry: String,
}

impl InboxRow {
    /// Encodes `item`.
    pub(crate) fn new(item: &NewInboxItem) -> Result<Self, Error> {
        Ok(Self {
            session: item.session.as_str().to_owned(),
            task: id_key(item.task),
            at: codec::millis(item.at),
            entry: encode_entry(&item.entry, item.task)?,
        })
    }
}

/// Why a write did not go through.
enum Stop {
    /// This call fails with this error; the rest of the batch goes on.
    Call(Error),
    /// SQLite failed: the whole batch is rolled back.
    Batch(Failure),
}

impl From<rusqlite::Error> for Stop {
    fn from(error: rusqlite::Error) -> Self {
        Self::Batch(Failure::new("writing to the database", error))
    }
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Self::Call(error)
    }
}

/// A call's result, waiting for its batch's commit.
enum Reply {
    Unit(Done<()>, Result<(), Error>),
    Count(Done<usize>, Result<usize, Error>),
}

impl Reply {
    fn send(self) {
        // A caller that dropped its ack no longer wants the answer.
        let _ = match self {
            Self::Unit(done, result) => done.send(result).ok(),
            Self::Count(done, result) => done.send(result).ok(),
        };
    }

    fn fail(self, why: &str) {
        let error = || backend("the transaction holding this write was rolled back", why);
        let _ = match self {
            Self::Unit(done, _) => done.send(Err(error())).ok(),
            Self::Count(done, _) => done.send(Err(error())).ok(),
        };
    }
}

/// What one batch has done so far.
#[derive(Default)]
struct Batch {
    /// Tasks whose cache entries the batch changed (see the invariants).
    touched: HashSet<TaskId>,
    /// Tasks whose rows must be rewritten from the cache before the commit.
    dirty: HashSet<TaskId>,
    /// One per write, in order.
    replies: Vec<Reply>,
}

impl Batch {
    /// Files a write's result; returns the failure if it sinks the batch.
    fn settle<T>(
        &mut self,
        done: Done<T>,
        result: Result<T, Stop>,
        reply: fn(Done<T>, Result<T, Error>) -> Reply,
    ) -> Option<Failure> {
        let (result, failure) = match result {
            Ok(value) => (Ok(value), None),
            Err(Stop::Call(error)) => (Err(error), None),
            // The result is replaced when the batch fails; this one is never sent.
            Err(Stop::Batch(failure)) => (Err(stopped()), Some(failure)),
        };
        self.replies.push(reply(done, result));
        failure
    }

    /// Files a write that was never applied because the batch had already failed.
    fn abandon(&mut self, write: Write) {
        self.replies.push(match write {
            Write::Create { done, .. } | Write::Append { done, .. } | Write::Push { done, .. } => {
                Reply::Unit(done, Err(stopped()))
            }
            Write::Acknowledge { done, .. } => Reply::Count(done, Err(stopped())),
        });
    }
}

/// A task the writer holds, with the key of its row (`tasks.key`), which its events are filed
/// under.
struct Held {
    key: i64,
    task: Task,
}

/// The writer's state, owned by its thread.
pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    /// The unfinished tasks (see the invariants).
    cache: HashMap<TaskId, Held>,
    max_batch: usize,
    counters: Arc<Counters>,
    /// Purges in the order they were asked for; the first runs a step in each batch.
    purges: VecDeque<PurgeJob>,
}

impl Writer {
    /// A writer on `conn`, a migrated connection to `path`, with its cache filled from the
    /// partial index of unfinished tasks.
    pub(crate) fn new(conn: Connection, path: PathBuf, max_batch: usize) -> Result<Self, Error> {
        let cache = read::unfinished_rows(&conn)?
            .into_iter()
            .map(|(key, task)| (task.id, Held { key, task }))
            .collect();
        Ok(Self {
            conn,
            path,
            cache,
            max_batch: max_batch.max(1),
            counters: Arc::default(),
            purges: VecDeque::new(),
        })
    }

    /// The thread's loop: one batch per wake-up, until the store is dropped and the queue is
    /// empty.
    fn run(mut self, commands: Receiver<Command>) {
        loop {
            // A purge whose caller went away is not worth finishing.
            self.purges.retain(|job| !job.done.is_closed());
            let mut writes = Vec::new();
            if self.purges.is_empty() {
                match commands.recv() {
                    Ok(command) => self.take(command, &mut writes),
                    // Every sender is gone and everything queued was handled.
                    Err(mpsc::RecvError) => return,
                }
            }
            while writes.len() < self.max_batch {
                match commands.try_recv() {
                    Ok(command) => self.take(command, &mut writes),
                    Err(_) => break,
                }
            }
            if !writes.is_empty() || !self.purges.is_empty() {
                self.run_batch(writes);
            }
        }
    }

    fn take(&mut self, command: Command, writes: &mut Vec<Write>) {
        match command {
            Command::Write(write) => writes.push(write),
            Command::Purge { purge, done } => self.purges.push_back(PurgeJob {
                purge,
                removed: 0,
                expired: false,
                done,
            }),
        }
    }

    /// Applies `writes` and a step of the first purge in one transaction, commits, and
    /// answers every caller.
    pub(crate) fn run_batch(&mut self, writes: Vec<Write>) {
        let mut batch = Batch::default();
        let mut failure = self
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .err()
            .map(|e| Failure::new("starting a transaction", e));
        for write in writes {
            if failure.is_some() {
                batch.abandon(write);
            } else {
                failure = self.apply(write, &mut batch);
            }
        }
        if failure.is_none() {
            failure = self.flush(&mut batch).err();
        }
        let mut purge_ran = false;
        let mut purge_finished = false;
        if failure.is_none()
            && let Some(job) = self.purges.front_mut()
        {
            purge_ran = true;
            match purge::step(&self.conn, job) {
                Ok(finished) => purge_finished = finished,
                Err(error) => failure = Some(Failure::new("purging finished tasks", error)),
            }
        }
        if failure.is_none() {
            failure = self
                .conn
                .execute_batch("COMMIT")
                .err()
                .map(|e| Failure::new(format!("committing to {}", self.path.display()), e));
        }
        match failure {
            None => self.committed(batch, purge_finished),
            Some(failure) => self.rolled_back(batch, &failure, purge_ran),
        }
    }

    fn apply(&mut self, write: Write, batch: &mut Batch) -> Option<Failure> {
        match write {
            Write::Create {
                task,
                row,
                first,
                done,
            } => {
                let result = self.create(batch, *task, &row, &first);
                batch.settle(done, result, Reply::Unit)
            }
            Write::Append {
                events,
                inbox,
                done,
            } => {
                // A refused append places nothing; a failing insert of the row sinks the
                // whole batch, the events with it: both or neither.
                let result = self
                    .append(batch, &events)
                    .and_then(|()| inbox.as_ref().map_or(Ok(()), |row| push(&self.conn, row)));
                batch.settle(done, result, Reply::Unit)
            }
            Write::Push { row, done } => {
                let result = push(&self.conn, &row);
                batch.settle(done, result, Reply::Unit)
            }
            Write::Acknowledge {
                session,
                through,
                done,
            } => {
                let result = acknowledge(&self.conn, &session, through);
                batch.settle(done, result, Reply::Count)
            }
        }
    }

    fn create(
        &mut self,
        batch: &mut Batch,
        task: Task,
        row: &TaskRow,
        first: &Encoded,
    ) -> Result<(), Stop> {
        let id = task.id;
        // The cache answers for unfinished tasks without a lookup; the unique index answers
        // for the others, and for tasks created earlier in this batch (their rows are already
        // in the transaction). A conflict inserts nothing, so a duplicate changes nothing.
        if self.cache.contains_key(&id) {
            return Err(Stop::Call(Error::Duplicate(id)));
        }
        if let Some(key) = &row.idempotency_key {
            // This connection is the only writer and sees the batch's own inserts, so the
            // answer holds until the commit; the unique index is the backstop.
            let existing: Option<Vec<u8>> = self
                .conn
                .prepare_cached(KEY_HOLDER)?
                .query_row(params![row.owner, key], |found| found.get(0))
                .optional()?;
            if let Some(existing) = existing {
                return Err(Stop::Call(Error::KeyTaken {
                    owner: task.owner.clone(),
                    key: key.clone(),
                    existing: codec::id_from_key(&existing)?,
                }));
            }
        }
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO tasks (id, kind, owner, session, status, created_at, finished_at, \
                 expires_at, idempotency_key, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                 ?10) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![
                row.id,
                row.kind,
                row.owner,
                row.session,
                row.status,
                row.created_at,
                row.finished_at,
                row.expires_at,
                row.idempotency_key,
                row.body,
            ])?;
        if inserted == 0 {
            return Err(Stop::Call(Error::Duplicate(id)));
        }
        let key = self.conn.last_insert_rowid();
        insert_event(&self.conn, key, first)?;
        batch.touched.insert(id);
        if task.finished_at().is_none() {
            self.cache.insert(id, Held { key, task });
        }
        Ok(())
    }

    fn append(&mut self, batch: &mut Batch, events: &[Encoded]) -> Result<(), Stop> {
        if let [one] = events
            && let Some(held) = self.cache.get_mut(&one.event.task)
        {
            // The hot path: one event for a task in the cache. `Task::apply` leaves the task
            // as it was when it refuses, so no copy is needed for a refusal to change nothing.
            held.task
                .apply(&one.event)
                .map_err(|refusal| refused(&one.event, refusal))?;
            batch.touched.insert(held.task.id);
            batch.dirty.insert(held.task.id);
            insert_event(&self.conn, held.key, one)?;
            return Ok(());
        }
        // Several events (or a task not in the cache): fold them all into copies first, so a
        // refusal of the last leaves the first unapplied.
        let mut staged: HashMap<TaskId, Held> = HashMap::new();
        for encoded in events {
            let event = &encoded.event;
            let held = match staged.entry(event.task) {
                hash_map::Entry::Occupied(slot) => slot.into_mut(),
                hash_map::Entry::Vacant(slot) => slot.insert(self.current(event.task)?),
            };
            held.task
                .apply(event)
                .map_err(|refusal| refused(event, refusal))?;
        }
        for encoded in events {
            // Every event's task was staged above.
            if let Some(held) = staged.get(&encoded.event.task) {
                insert_event(&self.conn, held.key, encoded)?;
            }
        }
        for (id, held) in staged {
            batch.touched.insert(id);
            batch.dirty.insert(id);
            self.cache.insert(id, held);
        }
        Ok(())
    }

    /// A copy of task `id` as this batch has it so far.
    fn current(&self, id: TaskId) -> Result<Held, Stop> {
        if let Some(held) = self.cache.get(&id) {
            return Ok(Held {
                key: held.key,
                task: held.task.clone(),
            });
        }
        let (key, task) = read::row(&self.conn, id)?.ok_or(Stop::Call(Error::NotFound(id)))?;
        Ok(Held { key, task })
    }

    /// Rewrites the rows of the tasks the batch's appends changed, once each.
    fn flush(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        let failed = |e| Failure::new("rewriting changed tasks", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "UPDATE tasks SET status = ?2, finished_at = ?3, expires_at = ?4, body = ?5 \
                 WHERE key = ?1",
            )
            .map_err(failed)?;
        for id in batch.dirty.drain() {
            let Some(held) = self.cache.get(&id) else {
                continue;
            };
            let row =
                TaskRow::new(&held.task).map_err(|e| Failure::new("rewriting changed tasks", e))?;
            stmt.execute(params![
                held.key,
                row.status,
                row.finished_at,
                row.expires_at,
                row.body
            ])
            .map_err(failed)?;
        }
        Ok(())
    }

    fn committed(&mut self, batch: Batch, purge_finished: bool) {
        // Counted before anyone hears of the commit, so a caller that awaited its ack reads
        // counters that include it.
        let writes = u64::try_from(batch.replies.len()).unwrap_or(u64::MAX);
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters.writes.fetch_add(writes, Ordering::Relaxed);
        for id in &batch.touched {
            if self
                .cache
                .get(id)
                .is_some_and(|held| held.task.finished_at().is_some())
            {
                self.cache.remove(id);
            }
        }
        if self.cache.capacity() > 4 * self.cache.len() + 1024 {
            self.cache.shrink_to(2 * self.cache.len());
        }
        for reply in batch.replies {
            reply.send();
        }
        if purge_finished && let Some(job) = self.purges.pop_front() {
            let _ = job.done.send(Ok(job.removed));
        }
    }

    fn rolled_back(&mut self, batch: Batch, failure: &Failure, purge_ran: bool) {
        if !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "rolling back a failed batch failed too");
        }
        tracing::warn!(
            %failure,
            writes = batch.replies.len(),
            "a batch of writes to the SQLite store was rolled back"
        );
        self.reload(&batch.touched);
        let why = failure.to_string();
        for reply in batch.replies {
            reply.fail(&why);
        }
        if purge_ran && let Some(job) = self.purges.pop_front() {
            let _ = job
                .done
                .send(Err(backend("a purge step was rolled back", why)));
        }
    }

    /// Makes the cache entries of `touched` match the table again after a rollback.
    fn reload(&mut self, touched: &HashSet<TaskId>) {
        for &id in touched {
            match read::row(&self.conn, id) {
                Ok(Some((key, task))) if task.finished_at().is_none() => {
                    self.cache.insert(id, Held { key, task });
                }
                // Finished, not stored, or unreadable: not cached. A task that cannot be read
                // now is read again from the table when a write next needs it.
                _ => {
                    self.cache.remove(&id);
                }
            }
        }
    }

    /// The task as the cache holds it, for tests.
    #[cfg(test)]
    pub(crate) fn cached(&self, id: TaskId) -> Option<&Task> {
        self.cache.get(&id).map(|held| &held.task)
    }

    /// The connection, for tests that sabotage it.
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The task holding an idempotency key of an owner: a lookup in `tasks_by_idempotency_key`.
pub(crate) const KEY_HOLDER: &str =
    "SELECT id FROM tasks WHERE owner = ?1 AND idempotency_key = ?2";

fn refused(event: &Event, refusal: longrun_core::Refusal) -> Stop {
    Stop::Call(Error::Refused {
        task: event.task,
        refusal,
    })
}

/// Files `encoded` under the task whose row has `key`.
fn insert_event(conn: &Connection, key: i64, encoded: &Encoded) -> Result<(), Stop> {
    conn.prepare_cached("INSERT INTO events (task, seq, body) VALUES (?1, ?2, ?3)")?
        .execute(params![
            key,
            codec::integer(encoded.event.seq.as_u64()),
            encoded.body
        ])?;
    Ok(())
}

fn push(conn: &Connection, row: &InboxRow) -> Result<(), Stop> {
    conn.prepare_cached("INSERT INTO inbox (session, task, at, entry) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![row.session, row.task, row.at, row.entry])?;
    Ok(())
}

fn acknowledge(conn: &Connection, session: &str, through: i64) -> Result<usize, Stop> {
    Ok(conn
        .prepare_cached("DELETE FROM inbox WHERE session = ?1 AND position <= ?2")?
        .execute(params![session, through])?)
}

#[cfg(test)]
mod tests;
