//! The hub against a real runtime (in-memory store), driven the way the `/v1` door drives it:
//! assignment and capacity, reports and pushes, the fence after a lost worker, re-assignment
//! from the last step, hand-back, drain, cancellation and revocation, and who may serve.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{sync::Arc, time::Duration};

use futures_util::{Stream, StreamExt};
use longrun::{
    KindSpec, Outcome, Runtime, StartOptions, Started, TaskId, kind::RestartPolicy, task::Status,
};
use longrun_worker_hub::{
    DeclaredKind, Hub, HubError, HubOptions, Registration, WorkerEvent, WorkerKind,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

struct Fixture {
    runtime: Runtime,
    hub: Hub,
}

/// Workers expire after this long in the tests that lose one; the others keep theirs.
const SHORT_EXPIRY: Duration = Duration::from_millis(400);
const LONG_EXPIRY: Duration = Duration::from_secs(60);

fn fixture(restart: RestartPolicy, open: bool, expiry: Duration) -> Fixture {
    let runtime = Runtime::new(Default::default());
    let options = HubOptions {
        heartbeat: Duration::from_millis(100),
        expiry,
        open,
        ..Default::default()
    };
    let hub = Hub::new(runtime.clone(), options);
    let spec = KindSpec::new("research")
        .restart(restart)
        .cancel_grace(Duration::from_millis(300));
    let kind = WorkerKind {
        served_by: vec!["ops".into()],
        input_schema: None,
    };
    hub.serve_kind(spec, kind).unwrap();
    Fixture { runtime, hub }
}

fn registration(capacity: usize) -> Registration {
    Registration {
        name: "test".into(),
        capacity,
        kinds: vec![DeclaredKind {
            name: "research".into(),
            input_schema: None,
        }],
    }
}

struct TestWorker {
    id: String,
    events: std::pin::Pin<Box<dyn Stream<Item = Arc<WorkerEvent>> + Send>>,
}

impl TestWorker {
    fn register(hub: &Hub, capacity: usize) -> Self {
        let id = hub.register("ops", registration(capacity)).unwrap().worker;
        let events = Box::pin(hub.events(&id, "ops", None).unwrap());
        Self { id, events }
    }

    async fn next(&mut self) -> (String, Value) {
        let event = tokio::time::timeout(WAIT, self.events.next())
            .await
            .expect("an event in time")
            .expect("the stream is open");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["type"], event.name);
        (event.name.to_owned(), data)
    }

    async fn nothing_for(&mut self, time: Duration) {
        if let Ok(Some(event)) = tokio::time::timeout(time, self.events.next()).await {
            panic!("unexpected event {event:?}");
        }
    }
}

async fn start(runtime: &Runtime, input: Value) -> TaskId {
    match runtime
        .start("research", input, StartOptions::default())
        .await
        .unwrap()
    {
        Started::Running(handle) => handle.id(),
        other => panic!("{other:?}"),
    }
}

async fn report(
    hub: &Hub,
    worker: &TestWorker,
    assignment: &str,
    report: Value,
) -> Result<(), HubError> {
    hub.report(&worker.id, "ops", assignment, report).await
}

async fn ended(runtime: &Runtime, id: TaskId) -> longrun::Task {
    tokio::time::timeout(WAIT, runtime.handle(id).wait())
        .await
        .expect("the task ends in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_for_a_worker_then_runs_on_it_with_reports_and_an_answer() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Fail, false, LONG_EXPIRY);
    let id = start(&runtime, json!({"topic": "tides"})).await;
    let mut worker = TestWorker::register(&hub, 1);
    let (name, start) = worker.next().await;
    assert_eq!(name, "start");
    assert_eq!(start["task"], id.to_string());
    assert_eq!(start["input"], json!({"topic": "tides"}));
    assert_eq!(start["steps"], json!({}));
    let assignment = start["assignment"].as_str().unwrap().to_owned();

    report(
        &hub,
        &worker,
        &assignment,
        json!({"type": "progress", "percent": 40, "message": "reading"}),
    )
    .await
    .unwrap();
    report(
        &hub,
        &worker,
        &assignment,
        json!({"type": "step", "key": "search", "value": [1, 2]}),
    )
    .await
    .unwrap();
    assert_eq!(
        worker.next().await.1,
        json!({"type": "step_saved", "assignment": assignment, "key": "search"})
    );
    // Resent after a lost answer: the same step, not a key used twice.
    report(
        &hub,
        &worker,
        &assignment,
        json!({"type": "step", "key": "search", "value": [1, 2]}),
    )
    .await
    .unwrap();
    assert_eq!(
        worker.next().await.1,
        json!({"type": "step_saved", "assignment": assignment, "key": "search"})
    );
    report(
        &hub,
        &worker,
        &assignment,
        json!({"type": "ask", "key": "ok", "request": {"message": "go on?"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        runtime.get(id).await.unwrap().status(),
        Status::InputRequired
    );
    runtime.answer(id, "ok", json!(true)).await.unwrap();
    assert_eq!(
        worker.next().await.1,
        json!({"type": "answer", "assignment": assignment, "key": "ok", "value": true})
    );
    report(
        &hub,
        &worker,
        &assignment,
        json!({"type": "complete", "output": {"summary": "high"}}),
    )
    .await
    .unwrap();

    let task = ended(&runtime, id).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"summary": "high"})
        })
    );
    assert_eq!(
        task.progress().and_then(|p| p.message.as_deref()),
        Some("reading")
    );
    // The assignment ended with the outcome: a late report is fenced off.
    let late = report(&hub, &worker, &assignment, json!({"type": "progress"})).await;
    assert_eq!(late, Err(HubError::AssignmentGone));
    assert_eq!(hub.counts().assignments_total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_at_capacity_gets_no_more_tasks_until_one_ends() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Fail, false, LONG_EXPIRY);
    let mut worker = TestWorker::register(&hub, 1);
    let first = start(&runtime, json!(1)).await;
    let second = start(&runtime, json!(2)).await;
    // Both wait; which reaches the hub first is the runtime's scheduling, not the start order.
    let (_, start_event) = worker.next().await;
    let held = start_event["task"].as_str().unwrap().to_owned();
    worker.nothing_for(Duration::from_millis(200)).await;
    assert_eq!(hub.counts().waiting, 1);
    let assignment = start_event["assignment"].as_str().unwrap();
    report(&hub, &worker, assignment, json!({"type": "complete"}))
        .await
        .unwrap();
    let (_, next) = worker.next().await;
    let mut both = [held, next["task"].as_str().unwrap().to_owned()];
    both.sort();
    let mut expected = [first.to_string(), second.to_string()];
    expected.sort();
    assert_eq!(both, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_is_fenced_and_its_task_reruns_on_another_from_its_last_step() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Rerun, false, SHORT_EXPIRY);
    let id = start(&runtime, json!({})).await;
    let mut lost = TestWorker::register(&hub, 1);
    let (_, first) = lost.next().await;
    let old = first["assignment"].as_str().unwrap().to_owned();
    report(
        &hub,
        &lost,
        &old,
        json!({"type": "step", "key": "one", "value": "done"}),
    )
    .await
    .unwrap();
    report(
        &hub,
        &lost,
        &old,
        json!({"type": "ask", "key": "q", "request": {}}),
    )
    .await
    .unwrap();

    // The second worker keeps its heartbeat; the first sends none and expires.
    let mut second = TestWorker::register(&hub, 1);
    let beat = {
        let (hub, id) = (hub.clone(), second.id.clone());
        tokio::spawn(async move {
            loop {
                if hub.heartbeat(&id, "ops").is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let (_, again) = second.next().await;
    assert_eq!(again["task"], id.to_string());
    assert_eq!(
        again["steps"],
        json!({"one": "done"}),
        "the saved step travels"
    );
    let new = again["assignment"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // The fence: the lost worker's late report is refused.
    assert!(matches!(
        report(&hub, &lost, &old, json!({"type": "complete"})).await,
        Err(HubError::UnknownWorker | HubError::AssignmentGone)
    ));
    // The question the first worker asked is the same question: asking it again joins it.
    report(
        &hub,
        &second,
        &new,
        json!({"type": "ask", "key": "q", "request": {}}),
    )
    .await
    .unwrap();
    runtime.answer(id, "q", json!("yes")).await.unwrap();
    loop {
        let (name, data) = second.next().await;
        if name == "answer" {
            assert_eq!(data["value"], "yes");
            break;
        }
    }
    report(
        &hub,
        &second,
        &new,
        json!({"type": "complete", "output": 7}),
    )
    .await
    .unwrap();
    let task = ended(&runtime, id).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed { output: json!(7) })
    );
    beat.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_fails_the_task_when_its_kind_does_not_rerun() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Fail, false, SHORT_EXPIRY);
    let id = start(&runtime, json!({})).await;
    let mut worker = TestWorker::register(&hub, 1);
    worker.next().await;
    let task = ended(&runtime, id).await;
    assert_eq!(task.status(), Status::Failed);
    assert!(
        matches!(task.outcome(), Some(Outcome::Failed { error }) if error.code == "interrupted")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_leaves_hands_its_task_back_and_a_draining_one_gets_none() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Fail, false, LONG_EXPIRY);
    let mut leaving = TestWorker::register(&hub, 1);
    let id = start(&runtime, json!({})).await;
    let (_, first) = leaving.next().await;
    let mut draining = TestWorker::register(&hub, 1);
    hub.drain(&draining.id, "ops").unwrap();
    hub.leave(&leaving.id, "ops").unwrap();
    assert_eq!(
        hub.heartbeat(&leaving.id, "ops"),
        Err(HubError::UnknownWorker)
    );
    draining.nothing_for(Duration::from_millis(200)).await;
    // Handed back, not failed, although the kind does not re-run after a crash.
    assert_eq!(runtime.get(id).await.unwrap().status(), Status::Working);
    let mut fresh = TestWorker::register(&hub, 1);
    let (_, again) = fresh.next().await;
    assert_eq!(again["task"], id.to_string());
    assert_ne!(again["assignment"], first["assignment"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_is_pushed_and_a_worker_that_does_not_answer_it_is_revoked() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Fail, false, LONG_EXPIRY);
    let mut worker = TestWorker::register(&hub, 2);
    let polite = start(&runtime, json!("polite")).await;
    let stubborn = start(&runtime, json!("stubborn")).await;
    let mut assignments = std::collections::HashMap::new();
    for _ in 0..2 {
        let (_, start) = worker.next().await;
        assignments.insert(
            start["input"].as_str().unwrap().to_owned(),
            start["assignment"].as_str().unwrap().to_owned(),
        );
    }
    let beat = {
        let (hub, id) = (hub.clone(), worker.id.clone());
        tokio::spawn(async move {
            while hub.heartbeat(&id, "ops").is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let cancelled = runtime.clone();
    let cancelling = tokio::spawn(async move { cancelled.cancel(polite).await });
    let (name, data) = worker.next().await;
    assert_eq!(
        (name.as_str(), &data["assignment"]),
        ("cancel", &json!(assignments["polite"]))
    );
    report(
        &hub,
        &worker,
        &assignments["polite"],
        json!({"type": "cancelled", "message": "stopped"}),
    )
    .await
    .unwrap();
    cancelling.await.unwrap().unwrap();
    assert_eq!(
        runtime.get(polite).await.unwrap().status(),
        Status::Cancelled
    );

    let cancelled = runtime.clone();
    let cancelling = tokio::spawn(async move { cancelled.cancel(stubborn).await });
    assert_eq!(worker.next().await.0, "cancel");
    // No outcome within the kind's cancel grace: the task ends, and the assignment is revoked.
    let (name, data) = worker.next().await;
    assert_eq!(
        (name.as_str(), &data["assignment"]),
        ("revoke", &json!(assignments["stubborn"]))
    );
    cancelling.await.unwrap().unwrap();
    assert_eq!(
        report(
            &hub,
            &worker,
            &assignments["stubborn"],
            json!({"type": "complete"})
        )
        .await,
        Err(HubError::AssignmentGone)
    );
    beat.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_against_the_protocol_fails_the_task() {
    let Fixture { runtime, hub } = fixture(RestartPolicy::Fail, false, LONG_EXPIRY);
    let id = start(&runtime, json!({})).await;
    let mut worker = TestWorker::register(&hub, 1);
    let (_, start_event) = worker.next().await;
    let assignment = start_event["assignment"].as_str().unwrap();
    let refused = report(
        &hub,
        &worker,
        assignment,
        json!({"type": "progress", "percent": 400}),
    )
    .await;
    assert!(matches!(refused, Err(HubError::Protocol(_))), "{refused:?}");
    let task = ended(&runtime, id).await;
    assert!(
        matches!(task.outcome(), Some(Outcome::Failed { error }) if error.code == "protocol_error")
    );
}

#[test]
fn only_the_allowed_principals_may_serve_and_only_worker_kinds() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let Fixture { hub, .. } = fixture(RestartPolicy::Fail, false, LONG_EXPIRY);
    assert_eq!(
        hub.register("mallory", registration(1)),
        Err(HubError::NotAllowed("research".into()))
    );
    let mut unknown = registration(1);
    unknown.kinds[0].name = "other".into();
    assert_eq!(
        hub.register("ops", unknown),
        Err(HubError::UnknownKind("other".into()))
    );
    assert!(matches!(
        hub.register("ops", registration(0)),
        Err(HubError::Invalid(_))
    ));
    let id = hub.register("ops", registration(1)).unwrap().worker;
    assert_eq!(hub.heartbeat(&id, "mallory"), Err(HubError::NotYours));
    // On a server without tokens, anyone may serve.
    let Fixture { hub: open, .. } = fixture(RestartPolicy::Fail, true, LONG_EXPIRY);
    assert!(open.register("anonymous", registration(1)).is_ok());
}
