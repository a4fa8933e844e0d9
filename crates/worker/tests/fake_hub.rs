//! The worker against a scripted server side (axum, in this process): what a real server does
//! rarely or not on cue. The stream breaks and is resumed with `Last-Event-ID`; the server
//! forgets the worker and it registers again, stopping the old handlers; a `409
//! assignment_gone` or a `revoke` stops a handler; reports go out one at a time, in order.
//!
//! No assertion here is about time; the waits are hang guards.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use longrun_worker::{Error, Failure, Job, Worker};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::UnboundedReceiverStream};
use tokio_util::sync::CancellationToken;

const HANG: Duration = Duration::from_secs(20);

/// What the fake server saw, and what it is told to do.
#[derive(Default)]
struct Hub {
    registrations: Mutex<u32>,
    /// The open stream of each worker.
    streams: Mutex<HashMap<String, mpsc::UnboundedSender<String>>>,
    /// The `Last-Event-ID` of each stream opened, in order.
    resumed_from: Mutex<Vec<Option<String>>>,
    /// Every report: (worker, assignment, body).
    reports: Mutex<Vec<(String, String, Value)>>,
    /// Workers whose heartbeat is answered `404 unknown_worker`.
    forgotten: Mutex<HashSet<String>>,
    /// Assignments whose reports are answered `409 assignment_gone`.
    fenced: Mutex<HashSet<String>>,
    /// Every assignment sent in a `start`.
    assigned: Mutex<Vec<String>>,
    /// Reports being handled right now, and the most there ever were at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Workers that left.
    left: Mutex<Vec<String>>,
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": code}})),
    )
        .into_response()
}

async fn register(State(hub): State<Arc<Hub>>) -> Response {
    let mut count = hub.registrations.lock().unwrap();
    *count += 1;
    let body = json!({"worker": format!("wkr_{count}"), "heartbeat_ms": 50, "expiry_ms": 2000, "protocol": 2});
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn heartbeat(State(hub): State<Arc<Hub>>, Path(worker): Path<String>) -> Response {
    if hub.forgotten.lock().unwrap().contains(&worker) {
        return error(StatusCode::NOT_FOUND, "unknown_worker");
    }
    // Lists every assignment sent: this fake revokes through the stream only.
    let assigned = hub.assigned.lock().unwrap().clone();
    Json(json!({"assignments": assigned, "draining": false})).into_response()
}

async fn events(
    State(hub): State<Arc<Hub>>,
    Path(worker): Path<String>,
    headers: HeaderMap,
) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    hub.resumed_from.lock().unwrap().push(last);
    let (sender, receiver) = mpsc::unbounded_channel::<String>();
    hub.streams.lock().unwrap().insert(worker, sender);
    let body = UnboundedReceiverStream::new(receiver).map(Ok::<_, Infallible>);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

async fn report(
    State(hub): State<Arc<Hub>>,
    Path((worker, assignment)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if hub.fenced.lock().unwrap().contains(&assignment) {
        return error(StatusCode::CONFLICT, "assignment_gone");
    }
    // A slow server: a report sent before the previous one was answered would overlap it.
    let now = hub.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    hub.most_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2)).await;
    hub.in_flight.fetch_sub(1, Ordering::SeqCst);
    let is_step = body["type"] == "step";
    let key = body["key"].clone();
    hub.reports
        .lock()
        .unwrap()
        .push((worker.clone(), assignment.clone(), body));
    if is_step {
        push(
            &hub,
            &worker,
            100,
            json!({"type": "step_saved", "assignment": assignment, "key": key}),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn drain() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn leave(State(hub): State<Arc<Hub>>, Path(worker): Path<String>) -> StatusCode {
    hub.left.lock().unwrap().push(worker);
    StatusCode::NO_CONTENT
}

/// Sends one event on the worker's open stream; `false` when it has none.
fn push(hub: &Hub, worker: &str, id: u64, data: Value) -> bool {
    let kind = data["type"].as_str().unwrap_or("message").to_owned();
    if kind == "start" {
        let assignment = data["assignment"].as_str().unwrap_or_default().to_owned();
        hub.assigned.lock().unwrap().push(assignment);
    }
    let text = format!("id: {id}\nevent: {kind}\ndata: {data}\n\n");
    hub.streams
        .lock()
        .unwrap()
        .get(worker)
        .is_some_and(|stream| stream.send(text).is_ok())
}

/// Starts the fake on a free port.
async fn serve() -> (Arc<Hub>, String) {
    let hub = Arc::new(Hub::default());
    let app = Router::new()
        .route("/v1/workers", post(register))
        .route("/v1/workers/{worker}", delete(leave))
        .route("/v1/workers/{worker}/heartbeat", post(heartbeat))
        .route("/v1/workers/{worker}/drain", post(drain))
        .route("/v1/workers/{worker}/events", get(events))
        .route(
            "/v1/workers/{worker}/assignments/{assignment}/reports",
            post(report),
        )
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hub, url)
}

/// Waits until `check` holds, polling; fails after `HANG` with `what`.
async fn until(what: &str, check: impl Fn() -> bool) {
    tokio::time::timeout(HANG, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("hung: {what}"));
}

fn start(assignment: &str, kind: &str) -> Value {
    json!({"type": "start", "assignment": assignment, "protocol": 2, "task": format!("task_{assignment}"),
           "kind": kind, "attempt": 1, "steps": {"saved": 7}, "input": {"n": 1}})
}

fn types(hub: &Hub, assignment: &str) -> Vec<String> {
    hub.reports
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, a, _)| a == assignment)
        .map(|(_, _, body)| body["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_go_out_in_order_and_saved_steps_are_skipped() {
    let (hub, url) = serve().await;
    let handler = |job: Job, _input: Value| async move {
        // Reports made from two futures at once still go out one at a time, each in order.
        let progress = |percents: [u8; 3]| {
            let job = job.clone();
            async move {
                for percent in percents {
                    job.progress(Some(percent), None).await?;
                }
                Ok::<_, Error>(())
            }
        };
        let (evens, odds) = tokio::join!(progress([0, 2, 4]), progress([1, 3, 5]));
        evens?;
        odds?;
        let saved: u32 = job.step("saved", async { 99 }).await?;
        let fresh: u32 = job.step("fresh", async { 3 }).await?;
        Ok(json!(saved + fresh))
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(
        Worker::builder(&url)
            .kind("k", handler)
            .run(shutdown.clone()),
    );
    until("the stream opens", || {
        hub.streams.lock().unwrap().contains_key("wkr_1")
    })
    .await;
    assert!(push(&hub, "wkr_1", 1, start("asg_1", "k")));
    until("the outcome", || {
        types(&hub, "asg_1").contains(&"complete".to_owned())
    })
    .await;

    let reports = hub.reports.lock().unwrap().clone();
    let percents: Vec<u64> = reports
        .iter()
        .filter_map(|(_, _, body)| body["percent"].as_u64())
        .collect();
    let evens: Vec<u64> = percents.iter().copied().filter(|p| p % 2 == 0).collect();
    let odds: Vec<u64> = percents.iter().copied().filter(|p| p % 2 == 1).collect();
    assert_eq!(
        (evens.as_slice(), odds.as_slice()),
        (&[0, 2, 4][..], &[1, 3, 5][..])
    );
    assert_eq!(
        hub.most_in_flight.load(Ordering::SeqCst),
        1,
        "reports overlapped"
    );
    assert_eq!(types(&hub, "asg_1")[6..], ["step", "complete"]);
    let outcome = &reports.last().unwrap().2;
    assert_eq!(
        outcome["output"], 10,
        "the saved step (7) was not run again: {outcome}"
    );

    shutdown.cancel();
    tokio::time::timeout(HANG, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(*hub.left.lock().unwrap(), ["wkr_1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_is_resumed_after_the_last_event_seen() {
    let (hub, url) = serve().await;
    let (asked_tx, mut asked) = mpsc::unbounded_channel::<Value>();
    let handler = move |job: Job, _input: Value| {
        let asked_tx = asked_tx.clone();
        async move {
            let answer = job.ask("q", json!({"message": "?"}), None).await?;
            let _ = asked_tx.send(answer.clone());
            Ok(answer)
        }
    };
    let shutdown = CancellationToken::new();
    let _running = tokio::spawn(
        Worker::builder(&url)
            .kind("k", handler)
            .run(shutdown.clone()),
    );
    until("the stream opens", || {
        hub.streams.lock().unwrap().contains_key("wkr_1")
    })
    .await;
    assert!(push(&hub, "wkr_1", 41, start("asg_1", "k")));
    until("the question", || types(&hub, "asg_1") == ["ask"]).await;

    // The stream breaks; the worker opens it again, resuming after event 41.
    hub.streams.lock().unwrap().remove("wkr_1");
    until("the stream is opened again", || {
        hub.resumed_from.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        *hub.resumed_from.lock().unwrap(),
        [None, Some("41".to_owned())]
    );
    until("the new stream is there", || {
        hub.streams.lock().unwrap().contains_key("wkr_1")
    })
    .await;
    assert!(push(
        &hub,
        "wkr_1",
        42,
        json!({"type": "answer", "assignment": "asg_1", "key": "q", "value": "yes"})
    ));
    let answer = tokio::time::timeout(HANG, asked.recv()).await.unwrap();
    assert_eq!(answer, Some(json!("yes")));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_worker_registers_again_and_stops_its_old_handlers() {
    let (hub, url) = serve().await;
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel::<String>();
    let handler = move |job: Job, _input: Value| {
        // Says when its future is dropped: the worker stopped it.
        struct Stopped(mpsc::UnboundedSender<String>, String);
        impl Drop for Stopped {
            fn drop(&mut self) {
                let _ = self.0.send(self.1.clone());
            }
        }
        let guard = Stopped(stopped_tx.clone(), job.assignment_id().to_owned());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<_, Failure>(Value::Null)
        }
    };
    let shutdown = CancellationToken::new();
    let _running = tokio::spawn(
        Worker::builder(&url)
            .kind("k", handler)
            .run(shutdown.clone()),
    );
    until("the stream opens", || {
        hub.streams.lock().unwrap().contains_key("wkr_1")
    })
    .await;
    assert!(push(&hub, "wkr_1", 1, start("asg_1", "k")));

    hub.forgotten.lock().unwrap().insert("wkr_1".to_owned());
    let dropped = tokio::time::timeout(HANG, stopped.recv()).await.unwrap();
    assert_eq!(dropped.as_deref(), Some("asg_1"));
    until("it registers again", || {
        hub.streams.lock().unwrap().contains_key("wkr_2")
    })
    .await;
    assert!(
        types(&hub, "asg_1").is_empty(),
        "nothing is reported for a lost assignment"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_report_or_a_revoke_stops_the_handler_and_nothing_more_is_reported() {
    let (hub, url) = serve().await;
    let (saw_tx, mut saw) = mpsc::unbounded_channel::<(String, bool)>();
    let handler = move |job: Job, _input: Value| {
        let saw_tx = saw_tx.clone();
        async move {
            let first = job.progress(Some(1), None).await;
            let _ = saw_tx.send((
                job.assignment_id().to_owned(),
                matches!(first, Err(Error::Gone)),
            ));
            first?;
            std::future::pending::<()>().await;
            Ok::<_, Failure>(Value::Null)
        }
    };
    let shutdown = CancellationToken::new();
    let _running = tokio::spawn(
        Worker::builder(&url)
            .capacity(2)
            .kind("k", handler)
            .run(shutdown.clone()),
    );
    until("the stream opens", || {
        hub.streams.lock().unwrap().contains_key("wkr_1")
    })
    .await;

    // Fenced: the report says gone, the handler is told, nothing else goes out.
    hub.fenced.lock().unwrap().insert("asg_1".to_owned());
    assert!(push(&hub, "wkr_1", 1, start("asg_1", "k")));
    assert_eq!(
        tokio::time::timeout(HANG, saw.recv()).await.unwrap(),
        Some(("asg_1".to_owned(), true))
    );

    // Revoked while it runs: stopped at once, its slot free for the next assignment.
    assert!(push(&hub, "wkr_1", 2, start("asg_2", "k")));
    assert_eq!(
        tokio::time::timeout(HANG, saw.recv()).await.unwrap(),
        Some(("asg_2".to_owned(), false))
    );
    assert!(push(
        &hub,
        "wkr_1",
        3,
        json!({"type": "revoke", "assignment": "asg_2", "reason": "lost"})
    ));
    assert!(push(&hub, "wkr_1", 4, start("asg_3", "k")));
    assert!(push(&hub, "wkr_1", 5, start("asg_4", "k")));
    for _ in 0..2 {
        let (_, gone) = tokio::time::timeout(HANG, saw.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(!gone);
    }
    assert_eq!(types(&hub, "asg_1"), Vec::<String>::new());
    assert_eq!(types(&hub, "asg_2"), ["progress"]);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_task_and_the_worker_goes_on() {
    let (hub, url) = serve().await;
    let handler = |_job: Job, input: Value| async move {
        assert!(input["n"] != 1, "the handler's own bug");
        Ok::<_, Failure>(json!("fine"))
    };
    let shutdown = CancellationToken::new();
    let _running = tokio::spawn(
        Worker::builder(&url)
            .kind("k", handler)
            .run(shutdown.clone()),
    );
    until("the stream opens", || {
        hub.streams.lock().unwrap().contains_key("wkr_1")
    })
    .await;
    assert!(push(&hub, "wkr_1", 1, start("asg_1", "k")));
    until("the failure", || types(&hub, "asg_1") == ["fail"]).await;
    let mut second = start("asg_2", "k");
    second["input"] = json!({"n": 2});
    assert!(push(&hub, "wkr_1", 2, second));
    until("the next task completes", || {
        types(&hub, "asg_2") == ["complete"]
    })
    .await;
    let reports = hub.reports.lock().unwrap().clone();
    assert_eq!(reports[0].2["code"], "panicked", "{:?}", reports[0]);
    assert_eq!(reports[0].2["retryable"], false);
    shutdown.cancel();
}
