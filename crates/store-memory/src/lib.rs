//! `longrun-store-memory`: a longrun store that keeps everything in memory.
//!
//! It is the library's default store and the reference backend of the conformance suite in
//! `longrun-store-tests`. Nothing survives the process, so a runtime on it cannot resume tasks
//! after a restart; choose SQLite or PostgreSQL for that.
//!
//! # Shape
//!
//! Tasks are spread over a fixed number of shards by id, each a [`parking_lot::Mutex`] around a
//! hash table and three ordered indexes (by creation, by finish and by expiry; see `shard.rs`).
//! Creating a task or appending to it locks one shard for a few hundred nanoseconds, so many
//! runtime threads rarely wait on each other. Listing and the purge's cap walk the shards' ordered
//! indexes together (a k-way merge over a small heap), so a page or a removal costs a few steps
//! instead of a sort of every task. The inboxes sit behind a mutex of their own.
//!
//! # Locks
//!
//! - Whenever more than one shard is locked, they are locked in ascending shard order, so two
//!   calls can never wait on each other in a cycle.
//! - The inbox lock is never held together with a shard lock.
//! - The idempotency-key lock is taken before a shard lock (a create holds it while it files
//!   the task, so two creates with one key cannot both pass the check), never after one: a
//!   purge frees the keys of what it removed once it has released every shard.
//! - No lock is held across an `.await`: every method does its work synchronously and returns a
//!   future that is already complete. That also makes the ordering contract of
//!   [`longrun_core::store`] hold trivially: a write is applied, and durable as far as this store
//!   goes, when the method returns.

mod inbox;
mod shard;

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, hash_map},
    fmt, future,
    sync::Arc,
};

use longrun_core::{
    Event, InboxItem, Owner, Seq, Session, Task, TaskId,
    store::{
        Ack, BoxFuture, Cursor, Error, EventLog, InboxStore, NewInboxItem, Page, Purge, Query,
        Retention, TaskStore,
    },
};
use parking_lot::{Mutex, MutexGuard};

use crate::{
    inbox::Inboxes,
    shard::{Entry, Key, Removed, Shard},
};

/// A store that keeps tasks, events and inboxes in memory.
///
/// Cheap to share: wrap it in an `Arc` (usually as `Arc<dyn Store>`). Events are kept as the
/// `Arc<Event>` they were appended as, never copied; a finished task is kept until a
/// [`Retention::purge`] removes it, after which the store gives its memory back.
///
/// ```
/// use std::{sync::Arc, time::Duration};
///
/// use longrun_core::{
///     Labels, NewTask, Owner, Status, Task, TaskId, Timestamp,
///     store::{Error, TaskStore},
/// };
/// use longrun_store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let store = MemoryStore::new();
/// let (task, first) = Task::create(NewTask {
///     id: TaskId::random(),
///     kind: "summarize".into(),
///     owner: Owner::default(),
///     session: None,
///     input: serde_json::json!({"url": "https://example.com"}),
///     labels: Labels::new(),
///     ttl: Duration::from_secs(3600),
///     deadline: None,
///     created_at: Timestamp::from_millis(1_000),
///     idempotency_key: None,
///     start_at: None,
///     trace: None,
/// });
/// store.create(&task, &Arc::new(first)).await?;
///
/// let stored = store.get(task.id).await?.expect("just created");
/// assert_eq!(stored, task);
/// assert_eq!(stored.status(), Status::Submitted);
/// # Ok(())
/// # }
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    inboxes: Mutex<Inboxes>,
    /// The idempotency key of every stored task that has one, per owner.
    keys: Mutex<HashMap<(Owner, String), TaskId>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        // A few shards per thread that may call in at once keeps collisions rare; more would
        // only make listing and purging (which visit every shard) slower.
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let count = (threads * 4).next_power_of_two().clamp(8, 64);
        Self {
            shards: (0..count).map(|_| Mutex::default()).collect(),
            inboxes: Mutex::default(),
            keys: Mutex::default(),
        }
    }

    /// The shard that holds task `id`. Ids are random, so their low bits spread tasks evenly.
    fn shard_of(&self, id: TaskId) -> usize {
        // Truncating is the point: only the low bits choose the shard.
        (id.as_u128() as usize) & (self.shards.len() - 1)
    }

    fn shard(&self, id: TaskId) -> MutexGuard<'_, Shard> {
        self.shards[self.shard_of(id)].lock()
    }

    /// Every shard, locked in ascending order (see the lock order in the crate docs).
    fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(Mutex::lock).collect()
    }

    /// Appends several events all-or-nothing: every event is folded into a copy of its task
    /// first, and the stored tasks change only once all of them were accepted.
    fn append_all(&self, events: &[Arc<Event>]) -> Result<(), Error> {
        let mut wanted: Vec<usize> = events.iter().map(|e| self.shard_of(e.task)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut guards: Vec<Option<MutexGuard<'_, Shard>>> =
            self.shards.iter().map(|_| None).collect();
        for &index in &wanted {
            guards[index] = Some(self.shards[index].lock());
        }

        // Each touched task's copy and its events, folded in the caller's order. A map, not a
        // list, so a large batch over many tasks stays linear.
        let mut staged: HashMap<TaskId, (Task, Vec<&Arc<Event>>)> = HashMap::new();
        for event in events {
            let (task, applied) = match staged.entry(event.task) {
                hash_map::Entry::Occupied(slot) => slot.into_mut(),
                hash_map::Entry::Vacant(slot) => {
                    let entry = locked(&mut guards, self.shard_of(event.task))
                        .get(event.task)
                        .ok_or(Error::NotFound(event.task))?;
                    slot.insert((entry.task.clone(), Vec::new()))
                }
            };
            task.apply(event).map_err(|refusal| Error::Refused {
                task: event.task,
                refusal,
            })?;
            applied.push(event);
        }
        for (id, (task, applied)) in staged {
            locked(&mut guards, self.shard_of(id)).commit(task, applied);
        }
        Ok(())
    }

    /// A page of `query`, walking every shard's creation index newest first from the cursor.
    fn page(&self, query: &Query) -> Page {
        let guards = self.lock_all();
        let cursor = query.after.map(|c| (c.created_at, c.id));
        let mut newest = Newest::new(guards.iter().map(|shard| shard.newest_after(cursor)));
        let mut tasks = Vec::new();
        // There are no secondary indexes, so a filter that matches few tasks walks many keys;
        // listing is rare next to writes, and a store big enough for that to matter is not an
        // in-memory one.
        while tasks.len() < query.limit {
            let Some((index, (_, id))) = newest.next() else {
                break;
            };
            let entry = guards[index]
                .get(id)
                .expect("every index key names a stored task");
            let task = &entry.task;
            let expired = task.expires_at().is_some_and(|at| at <= query.now);
            if !expired && query.filter.matches(task) {
                tasks.push(task.clone());
            }
        }
        // When no key at all is left, no later page can hold anything: say so rather than
        // send the caller for an empty page.
        let next = match tasks.last() {
            Some(last) if tasks.len() == query.limit && newest.has_more() => {
                Some(Cursor::after(last))
            }
            _ => None,
        };
        Page { tasks, next }
    }

    /// Frees the idempotency keys of purged tasks, once no shard is locked (see the lock
    /// order). A key taken again meanwhile names another task and is kept.
    fn free_keys(&self, removed: &Removed) {
        let mut keyed = removed
            .tasks()
            .filter_map(|task| Some((task, task.idempotency_key.as_ref()?)))
            .peekable();
        if keyed.peek().is_none() {
            return;
        }
        let mut keys = self.keys.lock();
        for (task, key) in keyed {
            let slot = (task.owner.clone(), key.clone());
            if keys.get(&slot) == Some(&task.id) {
                keys.remove(&slot);
            }
        }
    }

    /// Removes finished tasks beyond `max`, earliest-finished first, across all shards.
    fn cap_finished(&self, max: usize, removed: &mut Removed) -> usize {
        let mut guards = self.lock_all();
        let finished: usize = guards.iter().map(|shard| shard.finished()).sum();
        let excess = finished.saturating_sub(max);
        // Each shard's earliest-finished task, earliest first: the next to go is always on top.
        let mut earliest: BinaryHeap<Reverse<(Key, usize)>> = (0..guards.len())
            .filter_map(|index| Some(Reverse((guards[index].earliest_finished()?, index))))
            .collect();
        for _ in 0..excess {
            let Reverse(((_, id), index)) = earliest
                .pop()
                .expect("more finished tasks remain than the cap allows");
            guards[index].remove(id, removed);
            if let Some(key) = guards[index].earliest_finished() {
                earliest.push(Reverse((key, index)));
            }
        }
        for shard in &mut guards {
            shard.shrink();
        }
        excess
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// The shard `index` among `guards`, which the caller locked.
fn locked<'g>(guards: &'g mut [Option<MutexGuard<'_, Shard>>], index: usize) -> &'g mut Shard {
    guards[index]
        .as_deref_mut()
        .expect("every shard an event needs was locked first")
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(future::ready(value))
}

impl TaskStore for MemoryStore {
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack {
        // Copy the task outside the lock: the lock is held only to file it.
        let entry = Entry::new(task, first);
        let Some(key) = &task.idempotency_key else {
            return Ack::ready(self.shard(task.id).insert(entry));
        };
        let mut keys = self.keys.lock();
        let slot = (task.owner.clone(), key.clone());
        // A key whose task is gone was freed by a purge that has not reached the key map yet.
        if let Some(&existing) = keys.get(&slot)
            && self.shard(existing).get(existing).is_some()
        {
            return Ack::ready(Err(Error::KeyTaken {
                owner: task.owner.clone(),
                key: key.clone(),
                existing,
            }));
        }
        let result = self.shard(task.id).insert(entry);
        if result.is_ok() {
            keys.insert(slot, task.id);
        }
        Ack::ready(result)
    }

    fn append(&self, events: &[Arc<Event>]) -> Ack {
        Ack::ready(match events {
            [] => Ok(()),
            [event] => self.shard(event.task).apply(event),
            _ => self.append_all(events),
        })
    }

    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack {
        // Nothing here can fail after the events are applied, and nothing is lost in a crash
        // (there is nothing to lose): placing the item right after a successful append is all
        // or nothing.
        let mut appended = self.append(events);
        match appended.try_now() {
            Some(Ok(())) => self.push(item),
            Some(Err(error)) => Ack::ready(Err(error)),
            None => appended,
        }
    }

    fn get(&self, id: TaskId) -> BoxFuture<'_, Result<Option<Task>, Error>> {
        let task = self.shard(id).get(id).map(|entry| entry.task.clone());
        ready(Ok(task))
    }

    fn list(&self, query: &Query) -> BoxFuture<'_, Result<Page, Error>> {
        ready(Ok(self.page(query)))
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        let mut tasks = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            tasks.extend(
                shard
                    .tasks()
                    .filter(|task| !task.status().is_terminal())
                    .cloned(),
            );
        }
        tasks.sort_unstable_by_key(|task| (task.created_at, task.id));
        ready(Ok(tasks))
    }
}

impl EventLog for MemoryStore {
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>> {
        // A task that is not (or no longer) stored has no events to read, as in a SQL backend.
        let events = self.shard(task).get(task).map_or_else(Vec::new, |entry| {
            let start = entry.events.partition_point(|event| event.seq <= after);
            entry.events[start..].iter().take(limit).cloned().collect()
        });
        ready(Ok(events))
    }
}

impl InboxStore for MemoryStore {
    fn push(&self, item: NewInboxItem) -> Ack {
        self.inboxes.lock().push(item);
        Ack::ready(Ok(()))
    }

    fn peek(
        &self,
        session: &Session,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<InboxItem>, Error>> {
        ready(Ok(self.inboxes.lock().peek(session, after, limit)))
    }

    fn acknowledge(&self, session: &Session, through: u64) -> BoxFuture<'_, Result<usize, Error>> {
        ready(Ok(self.inboxes.lock().acknowledge(session, through)))
    }
}

impl Retention for MemoryStore {
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>> {
        // Removed entries are dropped at the end, after every lock is released.
        let mut removed = Removed::default();
        let mut count = 0;
        let mut finished = 0;
        // Expiry is decided per task, so one shard at a time is enough and writers to the
        // other shards go on meanwhile.
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            count += shard.expire(purge.now, &mut removed);
            shard.shrink();
            finished += shard.finished();
        }
        // The cap is store-wide: only when it may be exceeded are all shards locked at once, and
        // the count is taken again under those locks.
        if finished > purge.max_finished {
            count += self.cap_finished(purge.max_finished, &mut removed);
        }
        self.free_keys(&removed);
        drop(removed);
        ready(Ok(count))
    }
}

/// The keys of several shards, merged newest first, each with the index of its shard.
///
/// Each shard's keys are already in order, so the next key overall is the largest of the
/// shards' next keys: a k-way merge over a heap of one key per shard.
struct Newest<I> {
    shards: Vec<I>,
    heads: BinaryHeap<(Key, usize)>,
}

impl<I: Iterator<Item = Key>> Newest<I> {
    fn new(shards: impl Iterator<Item = I>) -> Self {
        let mut shards: Vec<I> = shards.collect();
        let heads = (0..shards.len())
            .filter_map(|index| Some((shards[index].next()?, index)))
            .collect();
        Self { shards, heads }
    }

    /// Whether any key is left.
    fn has_more(&self) -> bool {
        !self.heads.is_empty()
    }
}

impl<I: Iterator<Item = Key>> Iterator for Newest<I> {
    type Item = (usize, Key);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, index) = self.heads.pop()?;
        if let Some(next) = self.shards[index].next() {
            self.heads.push((next, index));
        }
        Some((index, key))
    }
}

#[cfg(test)]
mod tests;
