//! The stored format, pinned: golden fixtures written by one version, read by every later one.
//!
//! `fixtures/<version>/` (in this crate) holds what version `<version>` of the stores wrote:
//! `store.sqlite` (a SQLite store's file), `postgres.sql` (a plain `pg_dump` of a PostgreSQL
//! store's schema, named [`PG_SCHEMA`]) and `expected.json`, the data as that version wrote it,
//! rendered by [`render`]. Each store's `tests/golden.rs` opens a copy of every fixture with
//! today's code (which runs today's migrations on it) and checks that [`render`] gives
//! `expected.json` again: a field renamed in `longrun_core::stored`, a migration that loses a
//! column or a codec that changed its mind fails there, where a round trip through today's code alone
//! cannot fail.
//!
//! A fixture is never rewritten. When the stored format changes, [`CURRENT`] moves on and the
//! stores' ignored `write_fixture` tests write a new directory beside the old ones; every older
//! directory keeps being read, so each migration is tested from every version before it.
//! The rendering is the stored document (`longrun_core::stored`, with its `v` left out) of each
//! task, event and inbox entry read back, so it speaks the stored format, not the domain types:
//! a field renamed in a domain type changes nothing here, one renamed in a stored type fails
//! (the old documents no longer read as written). If the format gains a field, the rendering of
//! an old fixture may be extended (the new field with its default) but what it already says
//! must not change.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use longrun_core::{
    ArtifactChunk, CancelReason, Change, Event, InboxEntry, InboxItem, Labels, NewTask, Outcome,
    Owner, Progress, Seq, Session, Status, Task, TaskError, TaskId, Timestamp,
    store::{Filter, NewInboxItem, Query, Store},
    stored::{StoredEvent, StoredInboxEntry, StoredTask},
};
use serde_json::{Value, json};

use crate::support::{ALL, Local, at};

/// The version today's stores write. Its fixture is `fixtures/<CURRENT>/`.
pub const CURRENT: &str = "v1";

/// The PostgreSQL schema a fixture's dump creates; a test loads it under a fresh name.
pub const PG_SCHEMA: &str = "longrun_fixture";

/// The SQLite file in a fixture directory.
pub const SQLITE_FILE: &str = "store.sqlite";

/// The PostgreSQL dump in a fixture directory.
pub const POSTGRES_FILE: &str = "postgres.sql";

/// The expected rendering in a fixture directory.
pub const EXPECTED_FILE: &str = "expected.json";

/// The sessions whose inboxes the fixture fills.
const SESSIONS: [&str; 2] = ["chat-1", "chat-2"];

/// Where the fixtures live.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture directory, oldest first (`v1`, `v2`, …, `v10`, ordered by number).
///
/// # Panics
///
/// When the fixtures directory cannot be read, or holds nothing: a test that reads no fixture
/// must not pass.
pub fn versions() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root())
        .unwrap_or_else(|error| panic!("reading {}: {error}", root().display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let number = path
                .file_name()?
                .to_str()?
                .strip_prefix('v')?
                .parse()
                .ok()?;
            Some((number, path))
        })
        .collect();
    versions.sort();
    assert!(!versions.is_empty(), "no fixtures in {}", root().display());
    versions.into_iter().map(|(_, path)| path).collect()
}

/// The committed rendering of the fixture in `dir`.
///
/// # Panics
///
/// When the file is missing or not JSON.
pub fn expected(dir: &Path) -> Value {
    let path = dir.join(EXPECTED_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Asserts that `actual`, read from the fixture in `dir` by today's code, is what it held.
///
/// # Panics
///
/// When they differ; the message names the first differing task, log or inbox.
pub fn assert_reads_as_written(dir: &Path, actual: &Value) {
    let expected = expected(dir);
    if &expected == actual {
        return;
    }
    let first = first_difference(&expected, actual, String::new());
    panic!(
        "the fixture {} no longer reads as it was written; first difference at {first}\n\
         expected: {}\nactual:   {}",
        dir.display(),
        pointer(&expected, &first),
        pointer(actual, &first),
    );
}

/// The path of the first place where two JSON values differ.
fn first_difference(expected: &Value, actual: &Value, at: String) -> String {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys()) {
                if e.get(key) != a.get(key) {
                    let (e, a) = (&e.get(key), &a.get(key));
                    return match (e, a) {
                        (Some(e), Some(a)) => first_difference(e, a, format!("{at}/{key}")),
                        _ => format!("{at}/{key}"),
                    };
                }
            }
            at
        }
        (Value::Array(e), Value::Array(a)) => {
            for (index, (e, a)) in e.iter().zip(a).enumerate() {
                if e != a {
                    return first_difference(e, a, format!("{at}/{index}"));
                }
            }
            at
        }
        _ => at,
    }
}

fn pointer(value: &Value, at: &str) -> String {
    value
        .pointer(at)
        .map_or_else(|| "(missing)".to_owned(), Value::to_string)
}

/// Everything the store holds, as JSON: each task (newest first, as listed) with its whole log,
/// the ids of the unfinished tasks (oldest first), and the inbox of each of `sessions`.
///
/// # Panics
///
/// When the store fails to read.
pub async fn render(store: &dyn Store, sessions: &[String]) -> Value {
    let mut tasks = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&Query {
                filter: Filter::default(),
                after,
                limit: 100,
                now: Timestamp::EPOCH,
            })
            .await
            .expect("list the fixture's tasks");
        for task in page.tasks {
            let events = store
                .read(task.id, Seq::ZERO, ALL)
                .await
                .expect("read a fixture task's log");
            let events: Vec<Value> = events.iter().map(|event| event_json(event)).collect();
            tasks.push(json!({"task": task_json(&task), "events": events}));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let unfinished: Vec<String> = store
        .unfinished()
        .await
        .expect("read the unfinished tasks")
        .iter()
        .map(|task| task.id.to_string())
        .collect();
    let mut inbox = BTreeMap::new();
    for session in sessions {
        let items = store
            .peek(&Session::new(session.as_str()), 0, ALL)
            .await
            .expect("peek an inbox");
        let items: Vec<Value> = items.iter().map(item_json).collect();
        inbox.insert(session.clone(), Value::from(items));
    }
    json!({"tasks": tasks, "unfinished": unfinished, "inbox": inbox})
}

/// The sessions whose inboxes a rendering shows.
pub fn sessions(rendering: &Value) -> Vec<String> {
    rendering["inbox"]
        .as_object()
        .map(|inbox| inbox.keys().cloned().collect())
        .unwrap_or_default()
}

/// A task as a rendering shows it: its stored document.
fn task_json(task: &Task) -> Value {
    document(&StoredTask::from(task))
}

/// An event as a rendering shows it: its stored document, task and sequence number included.
fn event_json(event: &Event) -> Value {
    document(&StoredEvent::from(event))
}

/// An inbox item as a rendering shows it: the store's columns and the entry's stored document.
fn item_json(item: &InboxItem) -> Value {
    json!({
        "session": item.session.as_str(),
        "position": item.position,
        "task": item.task.to_string(),
        "at": item.at.as_millis(),
        "entry": document(&StoredInboxEntry::from(&item.entry)),
    })
}

/// A stored document as JSON, without its `v`: a rendering is the data, and every fixture
/// directory says its version by its name.
fn document(stored: &impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(stored).expect("stored documents serialize to JSON");
    if let Some(fields) = value.as_object_mut() {
        fields.remove("v");
    }
    value
}

/// Writes the fixture's data into an empty `store` through the store traits, and returns how it
/// should render: tasks in every status (one in a retry's backoff, one with every optional
/// field), every kind of change (steps, timers, retries, questions asked, answered and timed out,
/// each cancel reason), and inbox items of both kinds in two sessions.
///
/// # Panics
///
/// When the store refuses a write.
pub async fn write(store: &dyn Store) -> Value {
    let mut tasks = Vec::new();

    // Submitted, with every optional field set.
    let mut new = task(1, 0);
    new.session = Some(Session::new(SESSIONS[0]));
    new.owner = Owner::new("alice");
    new.labels = Labels::from([("door".to_owned(), "mcp".to_owned())]);
    new.deadline = Some(at(3_600_000));
    new.idempotency_key = Some("once".to_owned());
    new.start_at = Some(at(60_000));
    tasks.push(Local::create(store, new).await);

    // Working: progress, artifacts in two chunks, a message, a saved step and a timer, detached.
    let mut working = Local::create(store, task(2, 10)).await;
    for (offset, change) in [
        Change::Started { attempt: 1 },
        Change::Progress(Progress {
            percent: Some(12.5),
            message: Some("reading".to_owned()),
        }),
        chunk("report", "part one", false, false),
        chunk("report", "part two", true, true),
        Change::AgentMessage {
            message: "half-way".to_owned(),
            trigger: true,
        },
        Change::StepSaved {
            key: "fetch".to_owned(),
            value: json!({"rows": 3}),
        },
        Change::TimerStarted {
            key: "pause".to_owned(),
            until: at(120_000),
        },
        Change::Detached,
    ]
    .into_iter()
    .zip(11..)
    .map(|(change, offset)| (offset, change))
    {
        working.step(store, offset, change).await;
    }
    tasks.push(working);

    // Input required: two open questions.
    let mut asking = Local::create(store, task(3, 20)).await;
    asking.step(store, 21, Change::Started { attempt: 1 }).await;
    asking.step(store, 22, ask("confirm")).await;
    asking.step(store, 23, ask("budget")).await;
    tasks.push(asking);

    // Completed: one question answered, one timed out.
    let mut completed = Local::create(store, task(4, 30)).await;
    for (offset, change) in [
        Change::Started { attempt: 1 },
        ask("confirm"),
        Change::InputAnswered {
            key: "confirm".to_owned(),
            value: json!({"action": "accept", "content": {"go": true}}),
        },
        ask("budget"),
        Change::InputTimedOut {
            key: "budget".to_owned(),
        },
        Change::Ended(Outcome::Completed {
            output: json!({"answer": 42}),
        }),
    ]
    .into_iter()
    .zip(31..)
    .map(|(change, offset)| (offset, change))
    {
        completed.step(store, offset, change).await;
    }
    tasks.push(completed);

    // Failed after a retry: a retryable error with details and a retry-after, then a fatal one.
    let mut failed = Local::create(store, task(5, 40)).await;
    let retryable = TaskError::new(TaskError::HANDLER_ERROR, "the upstream timed out")
        .with_details(json!({"status": 504}))
        .retry_after(Duration::from_millis(1_500));
    for (offset, change) in [
        Change::Started { attempt: 1 },
        Change::StepSaved {
            key: "plan".to_owned(),
            value: json!("A"),
        },
        Change::RetryScheduled {
            attempt: 1,
            error: retryable,
            at: at(1_541),
        },
        Change::Started { attempt: 2 },
        Change::Ended(Outcome::Failed {
            error: TaskError::fatal("the input is wrong"),
        }),
    ]
    .into_iter()
    .zip(41..)
    .map(|(change, offset)| (offset, change))
    {
        failed.step(store, offset, change).await;
    }
    tasks.push(failed);

    // Waiting in a retry's backoff: submitted again, with a retry time.
    let mut backoff = Local::create(store, task(6, 50)).await;
    backoff
        .step(store, 51, Change::Started { attempt: 1 })
        .await;
    let error = TaskError::new("rate_limited", "slow down");
    let retry = Change::RetryScheduled {
        attempt: 1,
        error,
        at: at(10_052),
    };
    backoff.step(store, 52, retry).await;
    tasks.push(backoff);

    // Cancelled on request, after a cancel request.
    let mut cancelled = Local::create(store, task(7, 60)).await;
    let by = CancelReason::Requested {
        by: Some("bob".to_owned()),
    };
    cancelled
        .step(store, 61, Change::Started { attempt: 1 })
        .await;
    let request = Change::CancelRequested { reason: by.clone() };
    cancelled.step(store, 62, request).await;
    let end = Change::Ended(Outcome::Cancelled { reason: by });
    cancelled.step(store, 63, end).await;
    tasks.push(cancelled);

    // Cancelled before it started: the deadline passed.
    let mut late = Local::create(store, task(8, 70)).await;
    let end = Change::Ended(Outcome::Cancelled {
        reason: CancelReason::DeadlineExceeded,
    });
    late.step(store, 71, end).await;
    tasks.push(late);

    // Stopped with the runtime; the handler said so itself.
    let mut stopped = Local::create(store, task(9, 80)).await;
    stopped
        .step(store, 81, Change::Started { attempt: 1 })
        .await;
    let request = Change::CancelRequested {
        reason: CancelReason::Stopped,
    };
    stopped.step(store, 82, request).await;
    let end = Change::Ended(Outcome::Cancelled {
        reason: CancelReason::Handler {
            message: "stopped cleanly".to_owned(),
        },
    });
    stopped.step(store, 83, end).await;
    tasks.push(stopped);

    // Rejected at a limit.
    let mut rejected = Local::create(store, task(10, 90)).await;
    let end = Change::Ended(Outcome::Rejected {
        error: TaskError::new(TaskError::LIMIT_REACHED, "too many tasks"),
    });
    rejected.step(store, 91, end).await;
    tasks.push(rejected);

    let inbox = [
        (SESSIONS[0], tasks[1].id(), 15, message("half-way", true)),
        (SESSIONS[0], tasks[3].id(), 36, ended(&tasks[3])),
        (SESSIONS[1], tasks[4].id(), 45, message("note", false)),
        (SESSIONS[1], tasks[6].id(), 63, ended(&tasks[6])),
    ];
    for (session, task, offset, entry) in inbox {
        let item = NewInboxItem {
            session: Session::new(session),
            task,
            at: at(offset),
            entry,
        };
        store.push(item).await.expect("push an inbox item");
    }

    expected_rendering(&tasks, store).await
}

/// How the fixture should render: the tasks as folded here, newest first as a listing orders
/// them, and the inboxes as the store numbered them (positions are the store's to assign).
async fn expected_rendering(tasks: &[Local], store: &dyn Store) -> Value {
    let mut listed: Vec<&Local> = tasks.iter().collect();
    listed.sort_by_key(|local| std::cmp::Reverse((local.task.created_at, local.id())));
    let tasks_json: Vec<Value> = listed
        .iter()
        .map(|local| {
            let events: Vec<Value> = local.events.iter().map(|event| event_json(event)).collect();
            json!({"task": task_json(&local.task), "events": events})
        })
        .collect();
    let mut unfinished: Vec<&Local> = tasks
        .iter()
        .filter(|local| !local.task.status().is_terminal())
        .collect();
    unfinished.sort_by_key(|local| (local.task.created_at, local.id()));
    let unfinished: Vec<String> = unfinished.iter().map(|l| l.id().to_string()).collect();
    let sessions: Vec<String> = SESSIONS.iter().map(|s| (*s).to_owned()).collect();
    let read = render(store, &sessions).await;
    json!({"tasks": tasks_json, "unfinished": unfinished, "inbox": read["inbox"]})
}

/// A plain task with a readable fixed id (`task_000…0n`), created at `T0 + created`.
fn task(n: u128, created: u64) -> NewTask {
    let mut new = crate::support::new_task(created);
    new.id = TaskId::from_u128(n);
    new
}

fn chunk(id: &str, text: &str, append: bool, last_chunk: bool) -> Change {
    Change::Artifact(ArtifactChunk {
        id: id.to_owned(),
        name: Some(format!("{id}.md")),
        parts: vec![json!(text), json!({"page": 1})],
        append,
        last_chunk,
    })
}

fn ask(key: &str) -> Change {
    Change::InputRequested {
        key: key.to_owned(),
        request: json!({"message": format!("{key}?"), "requestedSchema": {"type": "object"}}),
    }
}

fn message(text: &str, trigger: bool) -> InboxEntry {
    InboxEntry::Message {
        message: text.to_owned(),
        trigger,
    }
}

fn ended(local: &Local) -> InboxEntry {
    InboxEntry::Outcome {
        kind: local.task.kind.clone(),
        outcome: local.task.outcome().cloned().expect("an ended task"),
    }
}

/// Every status the fixture's tasks are in, so a test can check none is missing.
pub fn statuses(rendering: &Value) -> Vec<Status> {
    let mut statuses: Vec<Status> = rendering["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["task"]["state"]["status"].as_str()?.parse().ok())
        .collect();
    statuses.sort();
    statuses.dedup();
    statuses
}
