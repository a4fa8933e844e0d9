//! One shard of the task table: tasks, their events, and the ordered indexes that keep listing
//! and purging from scanning every task.
//!
//! # Invariants
//!
//! Every method leaves a shard in this shape (`Shard::check` asserts it in tests):
//!
//! - `by_created` holds `(created_at, id)` of every task in `tasks`, and nothing else;
//! - `by_finish` holds `(finished_at, id)` and `by_expiry` holds `(expires_at, id)` of every
//!   finished task in `tasks`, and nothing else;
//! - an entry's `events` are its task's log, in sequence order, ending with `task.last_seq()`.
//!
//! A task's `created_at` and `id` never change, and a finished task never changes again (the
//! state machine refuses every event after a terminal one), so the keys only need maintaining
//! when a task is inserted, when it ends and when it is removed.

use std::{
    collections::{BTreeSet, HashMap, hash_map},
    sync::Arc,
};

use longrun_core::{Event, Task, TaskId, Timestamp, store::Error};

/// An index key: a time, then the id to break ties, so keys are unique and totally ordered.
pub(crate) type Key = (Timestamp, TaskId);

/// Events a new task's log has room for before it reallocates: a trivial task is submitted,
/// started and ended, and one allocation of this size is cheaper than three small ones.
const EVENTS_ROOM: usize = 4;

/// A stored task and its log.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) task: Task,
    pub(crate) events: Vec<Arc<Event>>,
}

impl Entry {
    /// A new entry, copied and boxed before the caller takes a lock, so the lock is held only
    /// to file it.
    pub(crate) fn new(task: &Task, first: &Arc<Event>) -> Box<Self> {
        let mut events = Vec::with_capacity(EVENTS_ROOM);
        events.push(Arc::clone(first));
        Box::new(Self {
            task: task.clone(),
            events,
        })
    }
}

/// Entries taken out of shards, to be freed once their locks are released: freeing a task's
/// strings, JSON and events is the slow part of removing it, and no writer needs to wait for it.
#[derive(Debug, Default)]
#[expect(
    clippy::vec_box,
    reason = "the table holds its entries boxed; moving the box is cheaper than copying each out"
)]
pub(crate) struct Removed(Vec<Box<Entry>>);

impl Removed {
    fn push(&mut self, entry: Box<Entry>) {
        self.0.push(entry);
    }

    /// The removed tasks.
    pub(crate) fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.0.iter().map(|entry| &entry.task)
    }
}

/// Tasks whose ids fall in this shard, with their indexes.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Boxed, because a `Task` is several hundred bytes and a hash table keeps up to half its
    /// slots empty after it grows: inline, empty slots could cost as much as the tasks, and
    /// every growth would move them all.
    tasks: HashMap<TaskId, Box<Entry>>,
    by_created: BTreeSet<Key>,
    by_finish: BTreeSet<Key>,
    by_expiry: BTreeSet<Key>,
}

impl Shard {
    /// Stores a new task, unless its id is taken.
    pub(crate) fn insert(&mut self, entry: Box<Entry>) -> Result<(), Error> {
        let id = entry.task.id;
        let hash_map::Entry::Vacant(slot) = self.tasks.entry(id) else {
            return Err(Error::Duplicate(id));
        };
        let task = &slot.insert(entry).task;
        self.by_created.insert((task.created_at, id));
        // A task is normally created in `submitted`, but nothing stops a caller from storing
        // one that has already ended; it must then be purgeable like any other.
        if task.finished_at().is_some() {
            index_finished(&mut self.by_finish, &mut self.by_expiry, task);
        }
        Ok(())
    }

    /// The entry of task `id`.
    pub(crate) fn get(&self, id: TaskId) -> Option<&Entry> {
        self.tasks.get(&id).map(|entry| &**entry)
    }

    /// Folds one event into its task and appends it to the log: the hot path.
    ///
    /// No copy of the task is needed to stay all-or-nothing, because [`Task::apply`] leaves the
    /// task untouched when it refuses, and the event is only appended once it was applied.
    pub(crate) fn apply(&mut self, event: &Arc<Event>) -> Result<(), Error> {
        let entry = self
            .tasks
            .get_mut(&event.task)
            .ok_or(Error::NotFound(event.task))?;
        let was_finished = entry.task.finished_at().is_some();
        entry.task.apply(event).map_err(|refusal| Error::Refused {
            task: event.task,
            refusal,
        })?;
        entry.events.push(Arc::clone(event));
        if !was_finished && entry.task.finished_at().is_some() {
            index_finished(&mut self.by_finish, &mut self.by_expiry, &entry.task);
        }
        Ok(())
    }

    /// Replaces task `staged.id` with `staged`, a copy that has already folded `events`
    /// successfully, and appends `events` to its log. The second half of a multi-event append.
    pub(crate) fn commit<'a>(
        &mut self,
        staged: Task,
        events: impl IntoIterator<Item = &'a Arc<Event>>,
    ) {
        let entry = self
            .tasks
            .get_mut(&staged.id)
            .expect("a staged task was read from this shard under the same lock");
        let was_finished = entry.task.finished_at().is_some();
        entry.task = staged;
        entry.events.extend(events.into_iter().cloned());
        if !was_finished && entry.task.finished_at().is_some() {
            index_finished(&mut self.by_finish, &mut self.by_expiry, &entry.task);
        }
    }

    /// Moves task `id`, its log and its keys into `removed`; returns whether it was stored.
    pub(crate) fn remove(&mut self, id: TaskId, removed: &mut Removed) -> bool {
        let Some(entry) = self.tasks.remove(&id) else {
            return false;
        };
        let task = &entry.task;
        self.by_created.remove(&(task.created_at, id));
        if let (Some(finished), Some(expires)) = (task.finished_at(), task.expires_at()) {
            self.by_finish.remove(&(finished, id));
            self.by_expiry.remove(&(expires, id));
        }
        removed.push(entry);
        true
    }

    /// Moves every task that expired by `now` into `removed`; returns how many.
    pub(crate) fn expire(&mut self, now: Timestamp, removed: &mut Removed) -> usize {
        let mut count = 0;
        while let Some(&(expires, id)) = self.by_expiry.first()
            && expires <= now
        {
            let stored = self.remove(id, removed);
            assert!(stored, "every expiry key names a stored task");
            count += 1;
        }
        count
    }

    /// Gives memory back after many removals, so an emptied store returns to its baseline.
    ///
    /// A hash table keeps its capacity when entries leave; shrinking only once it is mostly
    /// empty keeps a store with steady churn from reallocating back and forth.
    pub(crate) fn shrink(&mut self) {
        if self.tasks.capacity() > 4 * self.tasks.len() + 64 {
            self.tasks.shrink_to(2 * self.tasks.len());
        }
    }

    /// Keys of every task, newest first, starting strictly after `cursor` in that order.
    pub(crate) fn newest_after(&self, cursor: Option<Key>) -> impl Iterator<Item = Key> + '_ {
        let range = match cursor {
            Some(cursor) => self.by_created.range(..cursor),
            None => self.by_created.range(..),
        };
        range.rev().copied()
    }

    /// The finished task that finished first.
    pub(crate) fn earliest_finished(&self) -> Option<Key> {
        self.by_finish.first().copied()
    }

    /// How many tasks have finished.
    pub(crate) fn finished(&self) -> usize {
        self.by_finish.len()
    }

    /// Every stored task, in no order.
    pub(crate) fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().map(|entry| &entry.task)
    }

    /// Asserts the invariants in the module docs.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let created: BTreeSet<Key> = self.tasks().map(|t| (t.created_at, t.id)).collect();
        let finish: BTreeSet<Key> = self
            .tasks()
            .filter_map(|t| Some((t.finished_at()?, t.id)))
            .collect();
        let expiry: BTreeSet<Key> = self
            .tasks()
            .filter_map(|t| Some((t.expires_at()?, t.id)))
            .collect();
        assert_eq!(self.by_created, created);
        assert_eq!(self.by_finish, finish);
        assert_eq!(self.by_expiry, expiry);
        for (id, entry) in &self.tasks {
            assert_eq!(*id, entry.task.id);
            let seqs: Vec<_> = entry.events.iter().map(|e| e.seq).collect();
            assert!(seqs.is_sorted(), "log of {id} out of order: {seqs:?}");
            assert_eq!(seqs.last(), Some(&entry.task.last_seq()));
        }
    }

    /// The table's capacity, to check memory is given back.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.tasks.capacity()
    }
}

fn index_finished(by_finish: &mut BTreeSet<Key>, by_expiry: &mut BTreeSet<Key>, task: &Task) {
    if let (Some(finished), Some(expires)) = (task.finished_at(), task.expires_at()) {
        by_finish.insert((finished, task.id));
        by_expiry.insert((expires, task.id));
    }
}
