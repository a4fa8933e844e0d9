//! The worker against a real `longrun serve`: a task's whole life through a worker (progress,
//! an artifact, a question answered via `/v1`, steps, a sleep, a cancel), a lost worker's task
//! re-run elsewhere from its last step, the fence on a stale worker, capacity, and the drain
//! (the running task finished, or handed back when the drain runs out).

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{FAST_EXPIRY, HANG, Server, within};
use longrun_worker::{Artifact, Failure, Job, Worker};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Runs `worker` in the background; cancel the token to drain it, or abort the handle to
/// drop it as a crash would.
fn spawn(
    worker: longrun_worker::Builder,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), longrun_worker::Error>>,
) {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    (shutdown, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reports_progress_an_artifact_a_question_steps_and_a_sleep() {
    let server = Server::start("[[kinds]]\nname = \"research\"\nworker = true\n");
    let research = |job: Job, input: Value| async move {
        job.progress(Some(10), Some("searching")).await?;
        let topic = input["topic"].as_str().unwrap_or_default().to_owned();
        let sources: Vec<String> = job
            .step("search", async {
                vec![format!("{topic}-a"), format!("{topic}-b")]
            })
            .await?;
        job.sleep("pause", Duration::from_millis(50)).await?;
        let go_on = job
            .ask("ok", json!({"message": "Go on?", "type": "boolean"}), None)
            .await?;
        job.artifact(
            Artifact::new("report", vec![json!(sources.join(", "))])
                .name("report.md")
                .last_chunk(true),
        )
        .await?;
        job.notify_agent("the report is ready", false).await?;
        Ok(
            json!({"sources": sources, "go_on": go_on, "attempt": job.attempt(), "task": job.task_id()}),
        )
    };
    let (shutdown, running) = spawn(
        Worker::builder(&server.url)
            .name("w1")
            .kind("research", research),
    );

    let id = server
        .start_task("research", json!({"topic": "tides"}))
        .await;
    let asking = server
        .until(&id, "input_required", |task| {
            task["status"] == "input_required" && task["questions"].get("ok").is_some()
        })
        .await;
    assert_eq!(
        asking["progress"]["percent"].as_f64(),
        Some(10.0),
        "{asking}"
    );
    let (status, answered) = server
        .call("POST", &format!("/v1/tasks/{id}/answers/ok"), json!(true))
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");

    let task = server.ended(&id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(
        task["output"],
        json!({"sources": ["tides-a", "tides-b"], "go_on": true, "attempt": 1, "task": id})
    );
    let artifacts = task["artifacts"].as_array().expect("artifacts");
    assert_eq!(artifacts.len(), 1, "{task}");
    assert_eq!(artifacts[0]["id"], "report", "{task}");

    shutdown.cancel();
    within("the worker drains and leaves", running)
        .await
        .expect("the worker task does not panic")
        .expect("the worker ends cleanly");
    let (_, workers) = server.call("GET", "/v1/workers", Value::Null).await;
    assert_eq!(workers["workers"], json!([]), "the worker left: {workers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_the_handler_which_reports_cancelled() {
    let server = Server::start("[[kinds]]\nname = \"wait\"\nworker = true\n");
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (noticed_tx, mut noticed) = mpsc::unbounded_channel::<Instant>();
    let wait = move |job: Job, _input: Value| {
        let (started_tx, noticed_tx) = (started_tx.clone(), noticed_tx.clone());
        async move {
            let _ = started_tx.send(());
            job.cancelled().cancelled().await;
            let _ = noticed_tx.send(Instant::now());
            Err::<Value, _>(Failure::cancelled_with("stopped as asked"))
        }
    };
    let (shutdown, _running) = spawn(Worker::builder(&server.url).kind("wait", wait));

    let id = server.start_task("wait", json!({})).await;
    within("the handler is called", started.recv()).await;
    let asked = Instant::now();
    let cancel = {
        let (http, url) = (
            server.http.clone(),
            format!("{}/v1/tasks/{id}/cancel", server.url),
        );
        tokio::spawn(async move { http.post(url).timeout(HANG).send().await })
    };
    let noticed = within("the cancel reaches the handler", noticed.recv())
        .await
        .expect("the handler says when it noticed");
    println!(
        "cancel → handler: {:.2} ms",
        noticed.duration_since(asked).as_secs_f64() * 1000.0
    );
    let answer = cancel
        .await
        .expect("the cancel call")
        .expect("the server answers");
    assert!(answer.status().is_success(), "{}", answer.status());
    let task = server.ended(&id).await;
    assert_eq!(task["status"], "cancelled", "{task}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_workers_task_is_rerun_on_another_worker_from_its_last_step() {
    let server = Server::start(&format!(
        "{FAST_EXPIRY}\n[[kinds]]\nname = \"two-steps\"\nworker = true\nrestart = \"rerun\"\n"
    ));
    // The first worker saves step `one`, then hangs until it is dropped.
    let (saved_tx, mut saved) = mpsc::unbounded_channel::<()>();
    let first = move |job: Job, _input: Value| {
        let saved_tx = saved_tx.clone();
        async move {
            let one: u32 = job.step("one", async { 1 }).await?;
            let _ = saved_tx.send(());
            std::future::pending::<()>().await;
            Ok(json!(one))
        }
    };
    let (_, crashing) = spawn(
        Worker::builder(&server.url)
            .name("first")
            .kind("two-steps", first),
    );
    let id = server.start_task("two-steps", json!({})).await;
    within("the first worker saves step one", saved.recv()).await;
    crashing.abort(); // no more heartbeats, reports or handlers: as a crash
    let _ = crashing.await;

    // The second worker finds step `one` saved and does not run it again.
    let redone = Arc::new(AtomicBool::new(false));
    let second = {
        let redone = redone.clone();
        move |job: Job, _input: Value| {
            let redone = redone.clone();
            async move {
                let one: u32 = job
                    .step("one", async {
                        redone.store(true, Ordering::SeqCst);
                        100
                    })
                    .await?;
                let two: u32 = job.step("two", async { 2 }).await?;
                Ok(json!({"sum": one + two, "attempt": job.attempt()}))
            }
        }
    };
    let (shutdown, _running) = spawn(
        Worker::builder(&server.url)
            .name("second")
            .kind("two-steps", second),
    );
    let task = server.ended(&id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["output"], json!({"sum": 3, "attempt": 1}), "{task}");
    assert!(!redone.load(Ordering::SeqCst), "step one ran again");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_workers_report_is_refused() {
    let server = Server::start(&format!(
        "{FAST_EXPIRY}\n[[kinds]]\nname = \"stale\"\nworker = true\nrestart = \"fail\"\n"
    ));
    // Spoken by hand: this worker registers, takes its assignment, and never sends a heartbeat.
    let (status, registered) = server
        .call(
            "POST",
            "/v1/workers",
            json!({"name": "silent", "capacity": 1, "kinds": [{"name": "stale"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let worker = registered["worker"]
        .as_str()
        .expect("a worker id")
        .to_owned();
    let id = server.start_task("stale", json!({})).await;
    let start = within("the assignment", first_start(&server, &worker)).await;
    let assignment = start["assignment"]
        .as_str()
        .expect("an assignment id")
        .to_owned();
    assert_eq!(start["task"], id.as_str(), "{start}");

    // Silent past its expiry, the worker is lost and the task follows `restart = "fail"`.
    let task = server.ended(&id).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "interrupted", "{task}");
    let (status, refused) = server
        .call(
            "POST",
            &format!("/v1/workers/{worker}/assignments/{assignment}/reports"),
            json!({"type": "complete", "output": "too late"}),
        )
        .await;
    assert!(
        (status == StatusCode::CONFLICT && refused["error"]["code"] == "assignment_gone")
            || (status == StatusCode::NOT_FOUND && refused["error"]["code"] == "unknown_worker"),
        "a late report: {status} {refused}"
    );
    assert_eq!(server.task(&id).await["status"], "failed");
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/workers/{worker}/heartbeat"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "unknown_worker", "{body}");
}

/// Opens the worker's event stream and returns the data of its first `start` event.
async fn first_start(server: &Server, worker: &str) -> Value {
    let mut response = server
        .http
        .get(format!("{}/v1/workers/{worker}/events", server.url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), StatusCode::OK);
    let mut text = String::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .expect("the stream reads")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        for block in text.split("\n\n") {
            if block.lines().any(|line| line == "event: start") {
                let data = block
                    .lines()
                    .find_map(|line| line.strip_prefix("data:"))
                    .expect("a start has data");
                return serde_json::from_str(data.trim()).expect("the data is JSON");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_no_more_tasks_than_its_capacity() {
    let server = Server::start("[[kinds]]\nname = \"hold\"\nworker = true\n");
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (called_tx, mut called) = mpsc::unbounded_channel::<()>();
    let hold = {
        let (running, most, release) = (running.clone(), most.clone(), release.clone());
        move |_job: Job, _input: Value| {
            let (running, most, release, called_tx) = (
                running.clone(),
                most.clone(),
                release.clone(),
                called_tx.clone(),
            );
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = called_tx.send(());
                let permit = release
                    .acquire()
                    .await
                    .map_err(|_| Failure::new("closed", ""))?;
                permit.forget();
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(json!(now))
            }
        }
    };
    let (shutdown, _worker) = spawn(Worker::builder(&server.url).capacity(2).kind("hold", hold));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(server.start_task("hold", json!({})).await);
    }
    for n in 0..5 {
        within("a handler is called", called.recv()).await;
        if n == 1 {
            // Two run; the server holds the other three back rather than assigning them here.
            let (_, workers) = server.call("GET", "/v1/workers", Value::Null).await;
            let held = workers["workers"][0]["tasks"].as_array().map(Vec::len);
            assert_eq!(held, Some(2), "{workers}");
        }
        // Each further one is called only after one ends.
        if n >= 1 {
            release.add_permits(1);
        }
    }
    release.add_permits(1);
    for id in &ids {
        let task = server.ended(id).await;
        assert_eq!(task["status"], "completed", "{task}");
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "the most handlers running at once"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_worker_finishes_its_task_takes_no_new_one_and_leaves() {
    let server = Server::start("[[kinds]]\nname = \"slow\"\nworker = true\n");
    let (called_tx, mut called) = mpsc::unbounded_channel::<String>();
    let finish = Arc::new(Semaphore::new(0));
    let slow = {
        let finish = finish.clone();
        move |job: Job, _input: Value| {
            let (called_tx, finish) = (called_tx.clone(), finish.clone());
            async move {
                let _ = called_tx.send(job.task_id().to_owned());
                let permit = finish
                    .acquire()
                    .await
                    .map_err(|_| Failure::new("closed", ""))?;
                permit.forget();
                Ok(json!("finished"))
            }
        }
    };
    let (shutdown, draining) = spawn(
        Worker::builder(&server.url)
            .name("drainer")
            .capacity(4)
            .kind("slow", slow.clone()),
    );
    let first = server.start_task("slow", json!({})).await;
    assert_eq!(
        within("the first task starts", called.recv()).await,
        Some(first.clone())
    );

    shutdown.cancel();
    // Draining: the server knows once the worker says so; a task started then waits.
    server
        .until(&first, "still working", |task| task["status"] == "working")
        .await;
    wait_for_drain(&server).await;
    let second = server.start_task("slow", json!({})).await;
    finish.add_permits(1);
    within("the worker drains and leaves", draining)
        .await
        .expect("no panic")
        .expect("a clean end");
    let task = server.ended(&first).await;
    assert_eq!(task["output"], "finished", "{task}");
    // Never assigned: it waits for a worker unstarted.
    assert_eq!(server.task(&second).await["status"], "submitted");

    // Another worker takes the waiting task.
    let (shutdown, _next) = spawn(Worker::builder(&server.url).name("next").kind("slow", slow));
    assert_eq!(
        within("the second task starts", called.recv()).await,
        Some(second.clone())
    );
    finish.add_permits(1);
    let task = server.ended(&second).await;
    assert_eq!(task["output"], "finished", "{task}");
    shutdown.cancel();
}

/// Waits until `GET /v1/workers` shows the only worker draining.
async fn wait_for_drain(server: &Server) {
    let started = Instant::now();
    loop {
        let (_, workers) = server.call("GET", "/v1/workers", Value::Null).await;
        if workers["workers"][0]["draining"] == true {
            return;
        }
        assert!(
            started.elapsed() < HANG,
            "the worker never drained: {workers}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_still_running_when_the_drain_runs_out_is_handed_back() {
    let server = Server::start("[[kinds]]\nname = \"stuck\"\nworker = true\n");
    let (called_tx, mut called) = mpsc::unbounded_channel::<&'static str>();
    let stuck = {
        let called_tx = called_tx.clone();
        move |_job: Job, _input: Value| {
            let called_tx = called_tx.clone();
            async move {
                let _ = called_tx.send("stuck");
                std::future::pending::<()>().await;
                Ok::<_, Failure>(Value::Null)
            }
        }
    };
    let (shutdown, leaving) = spawn(
        Worker::builder(&server.url)
            .name("stuck")
            .drain_timeout(Duration::from_millis(200))
            .kind("stuck", stuck),
    );
    let id = server.start_task("stuck", json!({})).await;
    assert_eq!(
        within("the handler is called", called.recv()).await,
        Some("stuck")
    );
    shutdown.cancel();
    within("the worker gives up waiting and leaves", leaving)
        .await
        .expect("no panic")
        .expect("a clean end");
    assert_eq!(server.task(&id).await["status"], "working");

    let done = move |_job: Job, _input: Value| {
        let called_tx = called_tx.clone();
        async move {
            let _ = called_tx.send("done");
            Ok::<_, Failure>(json!("done elsewhere"))
        }
    };
    let (shutdown, _next) = spawn(
        Worker::builder(&server.url)
            .name("next")
            .kind("stuck", done),
    );
    let task = server.ended(&id).await;
    assert_eq!(task["output"], "done elsewhere", "{task}");
    assert_eq!(called.recv().await, Some("done"));
    shutdown.cancel();
}
