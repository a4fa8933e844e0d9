//! Two nodes (two runtimes, each with its hub) on one PostgreSQL schema, workers connected to
//! only one of them: tasks started on the other are served, with reports, answers and cancels
//! across nodes; a task that waited for a worker moves without counting an attempt; and a
//! worker lost mid-task has its task re-run from its last step on a worker of the other node,
//! its late report refused.
//!
//! Needs `LONGRUN_TEST_POSTGRES_URL` (skipped loudly without it, failed in CI).

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{io::Write as _, sync::Arc, time::Duration};

use futures_util::{Stream, StreamExt};
use longrun::{
    KindSpec, Options, Runtime, StartOptions, TaskId,
    cluster::NodeId,
    kind::RestartPolicy,
    store::{PostgresOptions, PostgresStore},
    task::Status,
};
use longrun_worker_hub::{
    DeclaredKind, Hub, HubError, HubOptions, Registration, WorkerEvent, WorkerKind,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
/// Short leases, so the nodes' loops run often.
const LEASE: Duration = Duration::from_millis(900);

fn url() -> Option<String> {
    const VAR: &str = "LONGRUN_TEST_POSTGRES_URL";
    if let Ok(url) = std::env::var(VAR) {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL tests need {VAR}; .ci/run sets it"
    );
    let _ = std::io::stderr().write_all(
        format!("\n*** SKIPPED: the two-node worker tests need {VAR}, e.g. postgres://postgres@127.0.0.1:5432/test\n\n").as_bytes(),
    );
    None
}

/// A schema of its own, dropped afterwards.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("lrt_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// A node named `node` whose hub expires silent workers after `expiry`.
    async fn node(&self, node: &str, expiry: Duration) -> (Runtime, Hub) {
        let options = PostgresOptions::new(&self.url)
            .schema(&self.name)
            .node(NodeId::new(node))
            .lease_ttl(LEASE);
        let store = PostgresStore::connect(options).await.unwrap();
        let runtime = Runtime::new(Options {
            renew_interval: LEASE / 3,
            ..Options::clustered(store)
        });
        let hub = Hub::new(
            runtime.clone(),
            HubOptions {
                heartbeat: Duration::from_millis(100),
                expiry,
                open: false,
                hand_over_after: Duration::from_millis(300),
            },
        );
        let spec = KindSpec::new("research")
            .restart(RestartPolicy::Rerun)
            .cancel_grace(Duration::from_secs(5));
        let kind = WorkerKind {
            served_by: vec!["ops".into()],
            input_schema: None,
        };
        hub.serve_kind(spec, kind).unwrap();
        runtime.recover().await.unwrap();
        (runtime, hub)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.name);
        }
    }
}

struct TestWorker {
    hub: Hub,
    id: String,
    events: std::pin::Pin<Box<dyn Stream<Item = Arc<WorkerEvent>> + Send>>,
}

impl TestWorker {
    fn register(hub: &Hub, capacity: usize) -> Self {
        let registration = Registration {
            name: "test".into(),
            capacity,
            kinds: vec![DeclaredKind {
                name: "research".into(),
                input_schema: None,
            }],
        };
        let id = hub.register("ops", registration).unwrap().worker;
        let events = Box::pin(hub.events(&id, "ops", None).unwrap());
        Self {
            hub: hub.clone(),
            id,
            events,
        }
    }

    async fn next(&mut self) -> (String, Value) {
        let event = tokio::time::timeout(WAIT, self.events.next())
            .await
            .expect("an event in time")
            .expect("the stream is open");
        (
            event.name.to_owned(),
            serde_json::from_str(&event.data).unwrap(),
        )
    }

    /// The next `start`: its assignment and the whole message.
    async fn started(&mut self) -> (String, Value) {
        let (name, start) = self.next().await;
        assert_eq!(name, "start", "{start}");
        (start["assignment"].as_str().unwrap().to_owned(), start)
    }

    async fn report(&self, assignment: &str, report: Value) -> Result<(), HubError> {
        self.hub.report(&self.id, "ops", assignment, report).await
    }

    /// Heartbeats until the returned handle is aborted.
    fn keep_alive(&self) -> tokio::task::JoinHandle<()> {
        let (hub, id) = (self.hub.clone(), self.id.clone());
        tokio::spawn(async move {
            loop {
                let _ = hub.heartbeat(&id, "ops");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }
}

async fn start(runtime: &Runtime, input: Value) -> TaskId {
    runtime
        .start("research", input, StartOptions::background())
        .await
        .unwrap()
        .id()
}

async fn ended(runtime: &Runtime, id: TaskId) -> longrun::Task {
    tokio::time::timeout(WAIT, runtime.handle(id).wait())
        .await
        .expect("the task ends in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_one_node_serves_tasks_started_on_the_other() {
    let Some(url) = url() else { return };
    let schema = Schema::new(&url);
    let (a, _hub_a) = schema.node("node-a", Duration::from_secs(60)).await;
    let (b, hub_b) = schema.node("node-b", Duration::from_secs(60)).await;
    let mut worker = TestWorker::register(&hub_b, 2);

    // Progress, a step, a question answered on A, the outcome: all through B's worker.
    let id = start(&a, json!({"topic": "tides"})).await;
    let (assignment, message) = worker.started().await;
    assert_eq!(message["task"], id.to_string());
    assert_eq!(message["attempt"], 1, "moving to B was no attempt");
    assert_eq!(message["input"], json!({"topic": "tides"}));
    let progress = json!({"type": "progress", "percent": 30, "message": "reading"});
    worker.report(&assignment, progress).await.unwrap();
    let step = json!({"type": "step", "key": "search", "value": ["a", "b"]});
    worker.report(&assignment, step).await.unwrap();
    assert_eq!(worker.next().await.0, "step_saved");
    let ask = json!({"type": "ask", "key": "go", "request": {"message": "Go on?"}});
    worker.report(&assignment, ask).await.unwrap();
    let task = a.get(id).await.unwrap();
    assert_eq!(task.status(), Status::InputRequired, "A reads B's writes");
    assert_eq!(task.progress().unwrap().percent, Some(30.0));
    a.answer(id, "go", json!(true)).await.unwrap();
    let (name, answer) = worker.next().await;
    assert_eq!((name.as_str(), &answer["value"]), ("answer", &json!(true)));
    let complete = json!({"type": "complete", "output": {"summary": "high"}});
    worker.report(&assignment, complete).await.unwrap();
    let done = ended(&a, id).await;
    assert_eq!(done.status(), Status::Completed);
    assert_eq!(done.attempt(), 1);

    // A cancel on A reaches B's worker, whose answer ends the task.
    let id = start(&a, json!({"topic": "waves"})).await;
    let (assignment, _) = worker.started().await;
    let cancelling = tokio::spawn({
        let a = a.clone();
        async move { a.cancel(id).await }
    });
    let (name, _) = worker.next().await;
    assert_eq!(name, "cancel");
    let cancelled = json!({"type": "cancelled", "message": "stopped as asked"});
    worker.report(&assignment, cancelled).await.unwrap();
    let task = tokio::time::timeout(WAIT, cancelling)
        .await
        .expect("the cancel returns in time")
        .unwrap()
        .unwrap();
    assert_eq!(task.status(), Status::Cancelled);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_nobody_can_run_waits_submitted_then_moves_without_an_attempt() {
    let Some(url) = url() else { return };
    let schema = Schema::new(&url);
    let (a, hub_a) = schema.node("node-a", Duration::from_secs(60)).await;
    let (b, hub_b) = schema.node("node-b", Duration::from_secs(60)).await;
    let mut busy = TestWorker::register(&hub_a, 1);
    let first = start(&a, json!(1)).await;
    let (held, _) = busy.started().await;

    // A's only worker is busy and B has none: the task waits, submitted, on no node.
    let second = start(&a, json!(2)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let waiting = a.get(second).await.unwrap();
    assert_eq!(waiting.status(), Status::Submitted);
    assert_eq!(waiting.attempt(), 0);

    // A worker registering on B makes room there: B claims the task and it starts, attempt 1.
    let mut fresh = TestWorker::register(&hub_b, 1);
    let (assignment, message) = fresh.started().await;
    assert_eq!(message["task"], second.to_string());
    assert_eq!(message["attempt"], 1);
    let complete = json!({"type": "complete", "output": 2});
    fresh.report(&assignment, complete).await.unwrap();
    let done = ended(&a, second).await;
    assert_eq!((done.status(), done.attempt()), (Status::Completed, 1));

    // A cancel of a task no node can run (A busy, B's worker gone) still ends it.
    hub_b.leave(&fresh.id, "ops").unwrap();
    let third = start(&b, json!(3)).await;
    let cancelled = tokio::time::timeout(WAIT, a.cancel(third))
        .await
        .expect("a task nobody runs is cancelled in time")
        .unwrap();
    assert_eq!(
        (cancelled.status(), cancelled.attempt()),
        (Status::Cancelled, 0)
    );

    busy.report(&held, json!({"type": "complete", "output": 1}))
        .await
        .unwrap();
    assert_eq!(ended(&a, first).await.status(), Status::Completed);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_has_its_task_rerun_on_the_other_nodes_worker_from_its_last_step() {
    let Some(url) = url() else { return };
    let schema = Schema::new(&url);
    let (a, hub_a) = schema.node("node-a", Duration::from_secs(60)).await;
    // B's workers expire fast: its worker is the one that dies.
    let (b, hub_b) = schema.node("node-b", Duration::from_millis(400)).await;
    let mut doomed = TestWorker::register(&hub_b, 1);
    let alive = doomed.keep_alive();
    let id = start(&a, json!({"topic": "tides"})).await;
    let (old, _) = doomed.started().await;
    let step = json!({"type": "step", "key": "search", "value": [1, 2]});
    doomed.report(&old, step).await.unwrap();
    assert_eq!(doomed.next().await.0, "step_saved");

    // The worker on A registers, then B's worker falls silent (killed).
    let mut rescuer = TestWorker::register(&hub_a, 1);
    alive.abort();
    let (new, message) = rescuer.started().await;
    assert_eq!(message["task"], id.to_string());
    assert_eq!(message["attempt"], 2, "a lost worker's task is re-run");
    assert_eq!(message["steps"], json!({"search": [1, 2]}));

    // The dead worker's late report is refused; the rescuer completes the task.
    let late = doomed
        .report(&old, json!({"type": "complete", "output": "stale"}))
        .await;
    assert!(
        matches!(
            late,
            Err(HubError::UnknownWorker | HubError::AssignmentGone)
        ),
        "{late:?}"
    );
    let complete = json!({"type": "complete", "output": "fresh"});
    rescuer.report(&new, complete).await.unwrap();
    let done = ended(&b, id).await;
    assert_eq!(done.status(), Status::Completed);
    assert_eq!(
        done.outcome(),
        Some(&longrun::Outcome::Completed {
            output: json!("fresh")
        })
    );
    a.shutdown().await;
    b.shutdown().await;
}
