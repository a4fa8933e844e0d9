//! Planning a batch: every call of one group commit validated in memory, in call order, against
//! the rows the writer has locked, giving each call its result and the batch its writes.
//!
//! Nothing here does I/O, so the rules are tested without a database:
//!
//! - A call either applies whole or changes nothing: an `append` folds its events into copies of
//!   the tasks with [`Task::apply`] and keeps them only if every event was accepted. A refused
//!   call fails alone; the others of the batch still commit.
//! - A task's writer must hold it as the database says: the row's lease token must be the one
//!   this node holds for it (none for a task nobody holds), or the call is `Fenced`. The rows
//!   are locked (`FOR UPDATE`) before planning, so what was checked stays true until commit.
//! - Later calls see what earlier ones staged: an append after a `create` of the same batch
//!   folds into the new task, which is then inserted as it ends the batch.
//! - An idempotency key is taken once per owner: a create is refused (`KeyTaken`) when a
//!   stored task holds its key, or an earlier create of the batch took it.

use std::{
    collections::{HashMap, HashSet, hash_map},
    sync::Arc,
};

use longrun_core::{
    Claim, Event, Signal, Task, TaskId,
    store::{Error, NewInboxItem},
};

use crate::notice::Notices;

/// One call, as the writer receives it.
#[derive(Debug)]
pub(crate) enum Request {
    /// `TaskStore::create` (`held: false`) or `Cluster::create_held` (`held: true`).
    Create {
        /// Boxed: a task is several hundred bytes, the other calls a few words.
        task: Box<Task>,
        first: Arc<Event>,
        held: bool,
    },
    Append(Vec<Arc<Event>>),
    /// `TaskStore::append_with_inbox`: the events, then the item, planned as one call.
    AppendPush(Vec<Arc<Event>>, NewInboxItem),
    Push(NewInboxItem),
    Release(Vec<TaskId>),
    Signal {
        task: TaskId,
        signal: Signal,
    },
    Claim(Claim),
    Renew,
    TakeSignals,
}

impl Request {
    /// The tasks whose rows must be locked and read before this call can be planned.
    pub(crate) fn touches(&self) -> Vec<TaskId> {
        match self {
            Self::Create { task, .. } => vec![task.id],
            Self::Append(events) | Self::AppendPush(events, _) => {
                events.iter().map(|event| event.task).collect()
            }
            Self::Signal { task, .. } => vec![*task],
            Self::Push(_) | Self::Release(_) | Self::Claim(_) | Self::Renew | Self::TakeSignals => {
                Vec::new()
            }
        }
    }

    /// Whether this call changes what the database holds when it succeeds (what the `writes`
    /// statistic counts).
    pub(crate) fn is_write(&self) -> bool {
        !matches!(self, Self::Claim { .. } | Self::Renew | Self::TakeSignals)
    }
}

/// A locked row as the writer read it.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The lease token it carries (none: nobody holds the task).
    pub(crate) token: Option<i64>,
    /// The task.
    pub(crate) task: Task,
}

/// What a batch does, decided before any of it is written.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Each call's result, in call order (`Ok` for claims, renewals and takes, which the
    /// statements answer).
    pub(crate) results: Vec<Result<(), Error>>,
    /// New tasks as they end the batch, each with whether this node holds it.
    pub(crate) inserts: Vec<(Task, bool)>,
    /// Stored tasks that changed, as they end the batch.
    pub(crate) updates: Vec<Task>,
    /// Every event to insert, new tasks' first events included.
    pub(crate) events: Vec<Arc<Event>>,
    pub(crate) inbox: Vec<NewInboxItem>,
    pub(crate) signals: Vec<(TaskId, Signal)>,
    /// Leases to give up: (task, the token this node holds).
    pub(crate) releases: Vec<(TaskId, i64)>,
    /// What to tell the other nodes once this commits.
    pub(crate) notices: Notices,
    /// The one claim of the batch (the writer lets no more in).
    pub(crate) claim: Option<Claim>,
    pub(crate) renew: bool,
    pub(crate) take_signals: bool,
    /// Every task the batch locked or created, as it stands after the batch: the writer's cache
    /// once the batch commits.
    pub(crate) tasks: Vec<Task>,
    /// Rows locked by this batch: a claim in the same transaction leaves them alone.
    pub(crate) locked: Vec<TaskId>,
}

/// A task as the batch stages it.
#[derive(Debug)]
struct Slot {
    task: Task,
    /// The token on the row (after this batch's releases).
    row_token: Option<i64>,
    /// The token this node holds for it (after this batch's releases).
    mine: Option<i64>,
    /// Created by this batch, held by this node or not.
    created: Option<bool>,
    /// Events to insert.
    events: Vec<Arc<Event>>,
    changed: bool,
}

impl Slot {
    /// A write is fenced off unless this node holds the task exactly as the row says, or is
    /// creating it.
    fn fenced(&self) -> bool {
        self.created.is_none() && self.row_token != self.mine
    }
}

struct Planner<'a> {
    tokens: &'a HashMap<TaskId, i64>,
    /// Stored key holders, and the creates of this batch that took a key.
    holders: Holders,
    slots: HashMap<TaskId, Slot>,
    released: HashSet<TaskId>,
    plan: Plan,
}

/// Who holds an idempotency key: (owner, key) → the task.
pub(crate) type Holders = HashMap<(String, String), TaskId>;

/// Plans `requests` against the `loaded` rows and the stored `holders` of the keys the creates
/// ask for, with `tokens` the leases this node holds.
pub(crate) fn plan(
    requests: &[&Request],
    loaded: HashMap<TaskId, Loaded>,
    holders: Holders,
    tokens: &HashMap<TaskId, i64>,
) -> Plan {
    let mut planner = Planner {
        tokens,
        holders,
        plan: Plan {
            locked: loaded.keys().copied().collect(),
            ..Plan::default()
        },
        slots: loaded
            .into_iter()
            .map(|(id, row)| {
                let slot = Slot {
                    row_token: row.token,
                    mine: tokens.get(&id).copied(),
                    task: row.task,
                    created: None,
                    events: Vec::new(),
                    changed: false,
                };
                (id, slot)
            })
            .collect(),
        released: HashSet::new(),
    };
    for request in requests {
        let result = planner.apply(request);
        planner.plan.results.push(result);
    }
    planner.finish()
}

impl Planner<'_> {
    fn apply(&mut self, request: &Request) -> Result<(), Error> {
        match request {
            Request::Create { task, first, held } => self.create(task, first, *held),
            Request::Append(events) => self.append(events),
            // A refused append plans nothing, so the item is placed only with the events.
            Request::AppendPush(events, item) => {
                self.append(events)?;
                self.plan.inbox.push(item.clone());
                Ok(())
            }
            Request::Push(item) => {
                self.plan.inbox.push(item.clone());
                Ok(())
            }
            Request::Release(tasks) => {
                self.release(tasks);
                Ok(())
            }
            Request::Signal { task, signal } => self.signal(*task, signal),
            Request::Claim(claim) => {
                self.plan.claim = Some(claim.clone());
                Ok(())
            }
            Request::Renew => {
                self.plan.renew = true;
                Ok(())
            }
            Request::TakeSignals => {
                self.plan.take_signals = true;
                Ok(())
            }
        }
    }

    fn create(&mut self, task: &Task, first: &Arc<Event>, held: bool) -> Result<(), Error> {
        let hash_map::Entry::Vacant(slot) = self.slots.entry(task.id) else {
            return Err(Error::Duplicate(task.id));
        };
        if let Some(key) = &task.idempotency_key {
            match self
                .holders
                .entry((task.owner.as_str().to_owned(), key.clone()))
            {
                hash_map::Entry::Occupied(holder) => {
                    return Err(Error::KeyTaken {
                        owner: task.owner.clone(),
                        key: key.clone(),
                        existing: *holder.get(),
                    });
                }
                hash_map::Entry::Vacant(holder) => {
                    holder.insert(task.id);
                }
            }
        }
        slot.insert(Slot {
            task: task.clone(),
            row_token: None,
            mine: None,
            created: Some(held),
            events: vec![Arc::clone(first)],
            changed: true,
        });
        Ok(())
    }

    fn append(&mut self, events: &[Arc<Event>]) -> Result<(), Error> {
        if let [event] = events {
            // One event needs no copy: `Task::apply` leaves the task as it was when it refuses.
            let slot = self.writable(event.task)?;
            slot.task.apply(event).map_err(|refusal| Error::Refused {
                task: event.task,
                refusal,
            })?;
            slot.changed = true;
            slot.events.push(Arc::clone(event));
            self.plan.notices.appended(event.task, event.seq);
            return Ok(());
        }
        let mut copies: HashMap<TaskId, Task> = HashMap::new();
        for event in events {
            let task = match copies.entry(event.task) {
                hash_map::Entry::Occupied(copy) => copy.into_mut(),
                hash_map::Entry::Vacant(copy) => {
                    let slot = self.writable(event.task)?;
                    copy.insert(slot.task.clone())
                }
            };
            task.apply(event).map_err(|refusal| Error::Refused {
                task: event.task,
                refusal,
            })?;
        }
        for (id, task) in copies {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.task = task;
                slot.changed = true;
            }
        }
        for event in events {
            if let Some(slot) = self.slots.get_mut(&event.task) {
                slot.events.push(Arc::clone(event));
            }
            self.plan.notices.appended(event.task, event.seq);
        }
        Ok(())
    }

    /// The slot of a task this node may write.
    fn writable(&mut self, id: TaskId) -> Result<&mut Slot, Error> {
        let slot = self.slots.get_mut(&id).ok_or(Error::NotFound(id))?;
        if slot.fenced() {
            return Err(Error::Fenced(id));
        }
        Ok(slot)
    }

    fn release(&mut self, tasks: &[TaskId]) {
        for &id in tasks {
            if !self.released.insert(id) {
                continue;
            }
            let token = match self.slots.get_mut(&id) {
                Some(slot) if slot.created == Some(true) => {
                    // Created held in this very batch: store it unheld instead.
                    slot.created = Some(false);
                    self.plan.notices.claimable |= slot.task.finished_at().is_none();
                    None
                }
                Some(slot) => {
                    let token = slot.mine.take();
                    if token.is_some() && slot.row_token == token {
                        slot.row_token = None;
                    }
                    token
                }
                None => self.tokens.get(&id).copied(),
            };
            if let Some(token) = token {
                self.plan.releases.push((id, token));
                self.plan.notices.claimable = true;
            }
        }
    }

    fn signal(&mut self, task: TaskId, signal: &Signal) -> Result<(), Error> {
        let slot = self.slots.get(&task).ok_or(Error::NotFound(task))?;
        // Nobody will ever take a signal for a task that has ended: there is nothing to do.
        if slot.task.finished_at().is_none() {
            self.plan.signals.push((task, signal.clone()));
            self.plan.notices.signalled.insert(task);
        }
        Ok(())
    }

    fn finish(mut self) -> Plan {
        let mut plan = self.plan;
        for (_, slot) in self.slots.drain() {
            let unfinished = slot.task.finished_at().is_none();
            match slot.created {
                Some(held) => {
                    plan.notices.claimable |= !held && unfinished;
                    plan.inserts.push((slot.task.clone(), held && unfinished));
                }
                None if slot.changed => plan.updates.push(slot.task.clone()),
                None => {}
            }
            plan.events.extend(slot.events);
            plan.tasks.push(slot.task);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use longrun_core::{
        Change, Labels, NewTask, Outcome, Owner, Seq, Timestamp, state::RefusalReason,
    };
    use serde_json::json;

    use super::*;

    fn new_task() -> (Task, Arc<Event>) {
        let (task, first) = Task::create(NewTask {
            id: TaskId::random(),
            kind: "k".into(),
            owner: Owner::default(),
            session: None,
            input: json!(null),
            labels: Labels::new(),
            ttl: Duration::from_secs(60),
            deadline: None,
            created_at: Timestamp::from_millis(1),
            idempotency_key: None,
            start_at: None,
            trace: None,
        });
        (task, Arc::new(first))
    }

    fn next(task: &mut Task, change: Change) -> Arc<Event> {
        let status = task.state().after(&change).expect("legal").status();
        let event = Arc::new(Event {
            task: task.id,
            seq: task.last_seq().next(),
            at: Timestamp::from_millis(2),
            status,
            change,
        });
        task.apply(&event).expect("legal");
        event
    }

    fn loaded(task: &Task, token: Option<i64>) -> (TaskId, Loaded) {
        (
            task.id,
            Loaded {
                token,
                task: task.clone(),
            },
        )
    }

    #[test]
    fn a_key_is_taken_once_per_owner_in_the_store_and_in_the_batch() {
        let keyed = |owner: &str, key: &str| {
            let (mut task, first) = new_task();
            task.owner = Owner::new(owner);
            task.idempotency_key = Some(key.to_owned());
            Request::Create {
                task: Box::new(task),
                first,
                held: true,
            }
        };
        let stored = TaskId::random();
        let holders = Holders::from([(("alice".to_owned(), "old".to_owned()), stored)]);
        let requests = [
            keyed("alice", "old"),
            keyed("alice", "new"),
            keyed("alice", "new"),
            keyed("bob", "new"),
        ];
        let Request::Create { task: winner, .. } = &requests[1] else {
            unreachable!()
        };
        let winner = winner.id;
        let plan = plan(
            &requests.iter().collect::<Vec<_>>(),
            HashMap::new(),
            holders,
            &HashMap::new(),
        );
        assert!(
            matches!(plan.results[0], Err(Error::KeyTaken { existing, .. }) if existing == stored),
            "{:?}",
            plan.results[0]
        );
        assert!(plan.results[1].is_ok());
        assert!(
            matches!(plan.results[2], Err(Error::KeyTaken { existing, .. }) if existing == winner),
            "{:?}",
            plan.results[2]
        );
        assert!(plan.results[3].is_ok(), "another owner's key is its own");
        assert_eq!(plan.inserts.len(), 2);
    }

    #[test]
    fn a_refused_call_fails_alone() {
        let (mut a, _) = new_task();
        let (mut b, _) = new_task();
        let rows = HashMap::from([loaded(&a, None), loaded(&b, None)]);
        let stored_b = b.clone();
        let good = Request::Append(vec![next(&mut a, Change::Started { attempt: 1 })]);
        let bad = Request::Append(vec![
            next(&mut b, Change::Started { attempt: 1 }),
            // Out of sequence: skips a number.
            Arc::new(Event {
                seq: Seq::from_u64(9),
                ..(*next(&mut b.clone(), Change::Detached)).clone()
            }),
        ]);
        let plan = plan(&[&good, &bad], rows, Holders::new(), &HashMap::new());
        assert!(plan.results[0].is_ok());
        assert!(matches!(
            &plan.results[1],
            Err(Error::Refused { task, refusal }) if *task == b.id
                && refusal.reason == RefusalReason::OutOfSequence
        ));
        assert_eq!(plan.updates, [a.clone()]);
        assert_eq!(plan.events.len(), 1);
        assert!(plan.tasks.contains(&stored_b), "b is untouched");
    }

    #[test]
    fn writes_need_the_lease_the_row_carries() {
        let (mut mine, _) = new_task();
        let (mut theirs, _) = new_task();
        let (mut free, _) = new_task();
        let rows = HashMap::from([
            loaded(&mine, Some(7)),
            loaded(&theirs, Some(8)),
            loaded(&free, None),
        ]);
        let tokens = HashMap::from([(mine.id, 7), (theirs.id, 5)]);
        let requests = [
            Request::Append(vec![next(&mut mine, Change::Started { attempt: 1 })]),
            Request::Append(vec![next(&mut theirs, Change::Started { attempt: 1 })]),
            Request::Append(vec![next(&mut free, Change::Started { attempt: 1 })]),
        ];
        let plan = plan(
            &requests.iter().collect::<Vec<_>>(),
            rows,
            Holders::new(),
            &tokens,
        );
        assert!(plan.results[0].is_ok());
        assert!(matches!(plan.results[1], Err(Error::Fenced(id)) if id == theirs.id));
        assert!(
            plan.results[2].is_ok(),
            "nobody holds it, and neither do we"
        );
    }

    #[test]
    fn creates_fold_later_appends_and_refuse_duplicates() {
        let (mut task, first) = new_task();
        let (stored, _) = new_task();
        let create = Request::Create {
            task: Box::new(task.clone()),
            first,
            held: true,
        };
        let start = Request::Append(vec![next(&mut task, Change::Started { attempt: 1 })]);
        let end = Request::Append(vec![next(
            &mut task,
            Change::Ended(Outcome::Completed { output: json!(1) }),
        )]);
        let again = Request::Create {
            task: Box::new(stored.clone()),
            first: Arc::new(
                Task::create(NewTask {
                    id: stored.id,
                    kind: "k".into(),
                    owner: Owner::default(),
                    session: None,
                    input: json!(null),
                    labels: Labels::new(),
                    ttl: Duration::ZERO,
                    deadline: None,
                    created_at: Timestamp::EPOCH,
                    idempotency_key: None,
                    start_at: None,
                    trace: None,
                })
                .1,
            ),
            held: false,
        };
        let rows = HashMap::from([loaded(&stored, None)]);
        let plan = plan(
            &[&create, &start, &end, &again],
            rows,
            Holders::new(),
            &HashMap::new(),
        );
        assert!(plan.results[..3].iter().all(Result::is_ok));
        assert!(matches!(plan.results[3], Err(Error::Duplicate(id)) if id == stored.id));
        // Ended within the batch: inserted as ended, and not held.
        assert_eq!(plan.inserts, [(task, false)]);
        assert_eq!(plan.events.len(), 3);
        assert!(plan.updates.is_empty());
        assert!(
            !plan.notices.claimable,
            "a task created held is nobody else's"
        );
    }

    #[test]
    fn releases_give_up_held_leases_and_announce_them() {
        let (mut task, _) = new_task();
        let (other, _) = new_task();
        let rows = HashMap::from([loaded(&task, Some(3))]);
        let tokens = HashMap::from([(task.id, 3), (other.id, 4)]);
        let requests = [
            Request::Release(vec![task.id, other.id, TaskId::random(), task.id]),
            // Released, so nobody holds it: an append is no longer fenced.
            Request::Append(vec![next(&mut task, Change::Started { attempt: 1 })]),
        ];
        let plan = plan(
            &requests.iter().collect::<Vec<_>>(),
            rows,
            Holders::new(),
            &tokens,
        );
        assert!(plan.results.iter().all(Result::is_ok));
        assert_eq!(plan.releases, [(task.id, 3), (other.id, 4)]);
        assert!(plan.notices.claimable);
    }

    #[test]
    fn signals_need_a_task_and_skip_ended_ones() {
        let (mut done, _) = new_task();
        next(
            &mut done,
            Change::Ended(Outcome::Rejected { error: "no".into() }),
        );
        let (running, _) = new_task();
        let rows = HashMap::from([loaded(&done, None), loaded(&running, Some(1))]);
        let answer = Signal::Answer {
            key: "q".into(),
            value: json!(1),
        };
        let ghost = TaskId::random();
        let requests = [
            Request::Signal {
                task: ghost,
                signal: answer.clone(),
            },
            Request::Signal {
                task: done.id,
                signal: answer.clone(),
            },
            Request::Signal {
                task: running.id,
                signal: answer.clone(),
            },
        ];
        let plan = plan(
            &requests.iter().collect::<Vec<_>>(),
            rows,
            Holders::new(),
            &HashMap::new(),
        );
        assert!(matches!(plan.results[0], Err(Error::NotFound(id)) if id == ghost));
        assert!(plan.results[1].is_ok() && plan.results[2].is_ok());
        assert_eq!(plan.signals, [(running.id, answer)]);
        assert!(plan.notices.signalled.contains(&running.id));
    }
}
