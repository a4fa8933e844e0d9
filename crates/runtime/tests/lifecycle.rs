//! Starting tasks: routing, outcomes, handler styles, and bad input.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::time::Duration;

use async_stream::stream;
use common::*;
use longrun_runtime::{
    ArtifactChunk, Context, Error, KindSpec, Outcome, Signal, StartOptions, Started, Status,
    TaskError,
};
use serde_json::{Value, json};

#[tokio::test(start_paused = true)]
async fn foreground_awaits_the_outcome() {
    let rt = runtime();
    with_kinds(&rt);
    let task = rt
        .start("echo", json!({"x": 1}), StartOptions::foreground())
        .await
        .unwrap()
        .finished()
        .expect("foreground finishes");
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(task.attempt(), 1);
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"x": 1})
        })
    );
    assert_eq!(
        history(&rt, task.id).await,
        vec![json!("submitted"), json!("started"), json!("ended")]
    );
}

#[tokio::test(start_paused = true)]
async fn background_returns_at_once_while_working() {
    let rt = runtime();
    with_kinds(&rt);
    let started = rt
        .start("sleep", 1000, StartOptions::background())
        .await
        .unwrap();
    let Started::Running(handle) = started else {
        panic!("expected a running task, got {started:?}");
    };
    assert!(!handle.task().await.unwrap().status().is_terminal());
    let done = handle.wait().await.unwrap();
    assert_eq!(done.status(), Status::Completed);
    assert_eq!(done.progress().unwrap().percent, Some(100.0));
}

#[tokio::test(start_paused = true)]
async fn detach_after_a_timeout_keeps_the_task_running() {
    let rt = runtime();
    with_kinds(&rt);
    let started = rt
        .start(
            "sleep",
            5000,
            StartOptions::detach_after(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let Started::Detached(handle) = started else {
        panic!("expected a detached task, got {started:?}");
    };
    let task = handle.task().await.unwrap();
    assert!(task.is_detached());
    assert_eq!(task.status(), Status::Working);
    assert_eq!(handle.wait().await.unwrap().status(), Status::Completed);

    // A fast task finishes before its detach timeout and is returned whole.
    let fast = rt
        .start(
            "echo",
            1,
            StartOptions::detach_after(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(matches!(fast, Started::Finished(_)));
}

#[tokio::test(start_paused = true)]
async fn detach_on_demand_releases_the_foreground_caller() {
    let rt = runtime();
    with_kinds(&rt);
    let starter = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.start("sleep", 10_000, StartOptions::foreground()).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = rt.list(Default::default(), None, 10).await.unwrap();
    let id = page.tasks[0].id;
    assert!(rt.detach(id).await.unwrap());
    assert!(
        !rt.detach(id).await.unwrap(),
        "a second detach has nothing to do"
    );
    let started = starter.await.unwrap().unwrap();
    assert!(matches!(started, Started::Detached(_)));
    assert_eq!(rt.get(id).await.unwrap().status(), Status::Working);
}

#[tokio::test(start_paused = true)]
async fn errors_and_panics_fail_only_their_task() {
    let rt = runtime();
    with_kinds(&rt);
    let bystander = rt
        .start("sleep", 1000, StartOptions::background())
        .await
        .unwrap();

    let failed = rt
        .start("fail", json!(null), StartOptions::foreground())
        .await
        .unwrap();
    let failed = failed.finished().unwrap();
    let Some(Outcome::Failed { error }) = failed.outcome() else {
        panic!()
    };
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        ("bad_thing", "it went wrong")
    );

    let panicked = rt
        .start("panic", json!(null), StartOptions::foreground())
        .await
        .unwrap();
    let panicked = panicked.finished().unwrap();
    let Some(Outcome::Failed { error }) = panicked.outcome() else {
        panic!()
    };
    assert_eq!(error.code, TaskError::PANICKED);
    assert!(
        error.message.contains("handler exploded"),
        "{}",
        error.message
    );

    let bystander = bystander.handle().unwrap().wait().await.unwrap();
    assert_eq!(bystander.status(), Status::Completed);
    assert_eq!(rt.running(), 0, "no zombie is left running");
}

#[tokio::test(start_paused = true)]
async fn stream_handlers_report_and_end_by_signal() {
    let rt = runtime();
    rt.register_stream(KindSpec::new("gen"), |_ctx: Context, mode: String| {
        stream! {
            yield Signal::progress("thinking", 10.0);
            yield Signal::Artifact(ArtifactChunk {
                id: "draft".into(), name: None, parts: vec![json!("hello")], append: false, last_chunk: true,
            });
            match mode.as_str() {
                "ok" => yield Signal::success(json!({"url": "x"})),
                "fail" => yield Signal::fail("no luck"),
                "cancel" => yield Signal::cancel("user changed their mind"),
                _ => {}
            }
            yield Signal::progress("never seen", 99.0);
        }
    })
    .unwrap();

    let end = |mode: &'static str| {
        let rt = rt.clone();
        async move {
            rt.start("gen", mode, StartOptions::foreground())
                .await
                .unwrap()
                .finished()
                .unwrap()
        }
    };
    let ok = end("ok").await;
    assert_eq!(
        ok.outcome(),
        Some(&Outcome::Completed {
            output: json!({"url": "x"})
        })
    );
    assert_eq!(ok.progress().unwrap().message.as_deref(), Some("thinking"));
    assert_eq!(ok.artifacts()[0].parts, vec![json!("hello")]);
    assert_eq!(end("fail").await.status(), Status::Failed);
    let cancelled = end("cancel").await;
    assert_eq!(cancelled.status(), Status::Cancelled);
    assert!(
        cancelled
            .status_message()
            .unwrap()
            .contains("user changed their mind")
    );
    let silent = end("silent").await;
    let Some(Outcome::Failed { error }) = silent.outcome() else {
        panic!()
    };
    assert_eq!(error.code, "no_outcome");
}

#[tokio::test(start_paused = true)]
async fn bad_starts_are_refused_before_a_task_exists() {
    let rt = runtime();
    with_kinds(&rt);
    let unknown = rt.start("nope", 1, StartOptions::new()).await.unwrap_err();
    assert!(
        matches!(unknown, Error::UnknownKind(ref k) if k == "nope"),
        "{unknown}"
    );
    let invalid = rt
        .start("sleep", "not a number", StartOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(invalid, Error::InvalidInput { .. }), "{invalid}");
    let huge = "x".repeat(2 << 20);
    let too_large = rt
        .start("echo", huge, StartOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(too_large, Error::TooLarge { .. }), "{too_large}");
    let duplicate = rt
        .register(KindSpec::new("echo"), |_c: Context, v: Value| async move {
            Ok::<_, TaskError>(v)
        })
        .unwrap_err();
    assert!(matches!(duplicate, Error::DuplicateKind(_)));
    let page = rt.list(Default::default(), None, 10).await.unwrap();
    assert!(page.tasks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn kinds_publish_their_input_schema() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Countdown {
        seconds: u32,
        confirm: bool,
    }
    let rt = runtime();
    rt.register(
        KindSpec::new("countdown"),
        |_c: Context, _i: Countdown| async move { Ok::<_, TaskError>(()) },
    )
    .unwrap();
    let spec = &rt.kinds()[0];
    assert_eq!(
        spec.input_schema["properties"]["seconds"]["type"],
        "integer"
    );
    assert_eq!(
        spec.input_schema["properties"]["confirm"]["type"],
        "boolean"
    );
}

#[tokio::test(start_paused = true)]
async fn progress_is_validated() {
    let rt = runtime();
    rt.register(KindSpec::new("p"), |ctx: Context, pct: f64| async move {
        ctx.progress(pct, "x").await.map_err(TaskError::from)
    })
    .unwrap();
    let bad = rt
        .start("p", 101.0, StartOptions::foreground())
        .await
        .unwrap();
    assert_eq!(bad.finished().unwrap().status(), Status::Failed);
    let good = rt
        .start("p", 100.0, StartOptions::foreground())
        .await
        .unwrap();
    assert_eq!(good.finished().unwrap().status(), Status::Completed);
}
