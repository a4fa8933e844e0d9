//! Checks of many writers at once: what a runtime with many worker threads does to a store.

use std::sync::Arc;

use longrun_core::store::{Filter, Query, Store};
use serde_json::json;

use crate::support::{ALL, Local, assert_stored, at, completed, new_task, progress, started};

/// Writers running in parallel on several tokio tasks, each creating tasks and appending to
/// them in rounds so that their writes interleave, lose nothing: every task and every event is
/// stored, in each task's order.
pub async fn concurrent_appends_lose_nothing(store: Arc<dyn Store>) {
    const WRITERS: u64 = 8;
    const TASKS: u64 = 25;
    const PROGRESS: u64 = 8;

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(&store);
            #[expect(
                clippy::disallowed_methods,
                reason = "the check races calls from separate tasks on purpose and awaits every one"
            )]
            tokio::spawn(async move {
                let store = &*store;
                let mut locals = Vec::new();
                for n in 0..TASKS {
                    locals.push(Local::create(store, new_task(writer * TASKS + n)).await);
                }
                for local in &mut locals {
                    local.step(store, 10_000, started()).await;
                }
                for round in 0..PROGRESS {
                    for local in &mut locals {
                        let percent = (round * 10) as f64;
                        local
                            .step(store, 10_001 + round, progress(percent, "busy"))
                            .await;
                    }
                    tokio::task::yield_now().await;
                }
                for local in &mut locals {
                    local.step(store, 20_000, completed(json!(writer))).await;
                }
                locals
            })
        })
        .collect();

    let mut locals = Vec::new();
    for writer in writers {
        locals.extend(writer.await.expect("a writer panicked"));
    }
    let store = &*store;
    for local in &locals {
        assert_stored(store, local).await;
        assert_eq!(local.events.len() as u64, 1 + 1 + PROGRESS + 1);
    }
    assert!(store.unfinished().await.expect("unfinished").is_empty());
    let listed = store
        .list(&Query {
            filter: Filter::default(),
            after: None,
            limit: ALL,
            now: at(20_000),
        })
        .await
        .expect("list");
    assert_eq!(listed.tasks.len() as u64, WRITERS * TASKS);
}
