//! Terminal callbacks: exactly once, on every path, after the end is written.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use longrun_runtime::{
    Context, KindSpec, Limits, Options, OverLimit, Runtime, StartOptions, Status, TaskError,
};
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<(Status, Status)>>>;

/// Options whose callback records (status passed in, status read back from the runtime).
fn recording(rt: &Runtime, seen: &Seen, options: StartOptions) -> StartOptions {
    let (rt, seen) = (rt.clone(), seen.clone());
    options.on_terminal(move |task| async move {
        let read = rt.get(task.id).await.unwrap().status();
        seen.lock().unwrap().push((task.status(), read));
    })
}

#[tokio::test(start_paused = true)]
async fn callbacks_run_once_on_every_path() {
    let rt = Runtime::new(Options {
        limits: Limits::default(),
        ..Options::default()
    });
    with_kinds(&rt);
    rt.register(
        KindSpec::new("single")
            .concurrency(1)
            .over_limit(OverLimit::Reject),
        |_c: Context, _: Value| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, TaskError>(())
        },
    )
    .unwrap();
    let seen: Seen = Arc::default();

    rt.start("echo", 1, recording(&rt, &seen, StartOptions::foreground()))
        .await
        .unwrap();
    rt.start("fail", 1, recording(&rt, &seen, StartOptions::foreground()))
        .await
        .unwrap();
    rt.start(
        "panic",
        1,
        recording(&rt, &seen, StartOptions::foreground()),
    )
    .await
    .unwrap();
    let running = rt
        .start(
            "sleep",
            10_000,
            recording(&rt, &seen, StartOptions::background()),
        )
        .await
        .unwrap();
    rt.cancel(running.id()).await.unwrap();
    rt.start(
        "stubborn",
        json!(null),
        recording(
            &rt,
            &seen,
            StartOptions::foreground().deadline(Duration::from_secs(1)),
        ),
    )
    .await
    .unwrap();
    let first = rt
        .start(
            "single",
            (),
            recording(&rt, &seen, StartOptions::background()),
        )
        .await
        .unwrap();
    rt.start(
        "single",
        (),
        recording(&rt, &seen, StartOptions::background()),
    )
    .await
    .unwrap();
    first.handle().unwrap().wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let mut expected = vec![
        (Status::Completed, Status::Completed),
        (Status::Failed, Status::Failed),
        (Status::Failed, Status::Failed),
        (Status::Cancelled, Status::Cancelled),
        (Status::Cancelled, Status::Cancelled),
        (Status::Completed, Status::Completed),
        (Status::Rejected, Status::Rejected),
    ];
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_harms_nothing() {
    let rt = runtime();
    with_kinds(&rt);
    let task = rt
        .start(
            "echo",
            1,
            StartOptions::foreground().on_terminal(|_| async { panic!("callback exploded") }),
        )
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(
        rt.start("echo", 2, StartOptions::foreground())
            .await
            .unwrap()
            .finished()
            .unwrap()
            .status(),
        Status::Completed
    );
}
