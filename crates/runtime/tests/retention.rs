//! Retention, listing and reads of expired tasks.

mod common;

use std::time::Duration;

use common::*;
use longrun_core::store::Filter;
use longrun_runtime::{Options, Runtime, StartOptions, Status};

#[tokio::test(start_paused = true)]
async fn a_finished_task_is_readable_for_its_ttl_then_unknown() {
    let rt = runtime();
    with_kinds(&rt);
    let task = rt
        .start(
            "echo",
            1,
            StartOptions::foreground().ttl(Duration::from_secs(10)),
        )
        .await
        .unwrap()
        .finished()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(rt.get(task.id).await.unwrap().status(), Status::Completed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let error = rt.get(task.id).await.unwrap_err();
    assert!(is_unknown(&error), "{error}");
    assert_eq!(
        error.to_string(),
        format!("task {} is unknown or has expired", task.id)
    );
    assert!(
        rt.list(Filter::default(), None, 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    assert!(
        rt.subscribe(task.id, longrun_runtime::Seq::ZERO)
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn running_tasks_never_expire() {
    let rt = runtime();
    with_kinds(&rt);
    let id = rt
        .start(
            "sleep",
            5000,
            StartOptions::background().ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap()
        .id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rt.get(id).await.unwrap().status(), Status::Working);
}

#[tokio::test(start_paused = true)]
async fn a_count_cap_keeps_the_newest_finished_tasks() {
    let rt = Runtime::new(Options {
        max_finished: 3,
        ..Options::default()
    });
    with_kinds(&rt);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            rt.start("echo", i, StartOptions::foreground())
                .await
                .unwrap()
                .id(),
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(rt.get(*id).await.is_ok(), i >= 2, "task {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn listing_filters_and_pages() {
    let rt = runtime();
    with_kinds(&rt);
    for i in 0..7 {
        let options = StartOptions::foreground()
            .session(if i % 2 == 0 { "even" } else { "odd" })
            .label("batch", "b1");
        rt.start("echo", i, options).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    rt.start("fail", 0, StartOptions::foreground().session("even"))
        .await
        .unwrap();

    let even = Filter {
        session: Some("even".into()),
        labels: [("batch".to_owned(), "b1".to_owned())].into(),
        status: vec![Status::Completed],
        ..Filter::default()
    };
    let mut inputs = Vec::new();
    let mut after = None;
    loop {
        let page = rt.list(even.clone(), after, 2).await.unwrap();
        inputs.extend(page.tasks.iter().map(|t| t.input.as_u64().unwrap()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(inputs, vec![6, 4, 2, 0], "newest first, each once");
    let failed = rt
        .list(
            Filter {
                status: vec![Status::Failed],
                ..Filter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.tasks.len(), 1);
}
