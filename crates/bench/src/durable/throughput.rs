//! End-to-end throughput of trivial durable tasks, and its raw-SQL baseline.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use longrun::{AllNotice, Context, KindSpec, Options, Runtime, StartOptions, TaskError};
use serde_json::Value;
use tokio::sync::Notify;

use super::raw;
use crate::stores::{self, Location, StoreKind};

/// Submitters running at once: enough for group commit to have something to batch, as a busy
/// server's many clients would.
const SUBMITTERS: usize = 256;

/// SQLite: longrun's tasks per second, and the raw baseline's, each on a fresh file.
pub(crate) fn sqlite(tokio: &tokio::runtime::Runtime, tasks: usize) -> anyhow::Result<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("longrun-durable-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let location = Location {
        path: Some(dir.join("longrun.db")),
        postgres: None,
        schema: None,
    };
    let longrun = tokio.block_on(async {
        let opened = stores::open(StoreKind::Sqlite, &location, "bench", Duration::ZERO).await?;
        let runtime = runtime(opened.store, None)?;
        let rate = drive(std::slice::from_ref(&runtime), tasks).await?;
        if let Some(store) = &opened.sqlite {
            let stats = store.stats();
            eprintln!(
                "durable: sqlite group commit: {} writes in {} commits ({:.1} per commit)",
                stats.writes,
                stats.commits,
                stats.writes as f64 / stats.commits.max(1) as f64
            );
        }
        runtime.shutdown().await;
        anyhow::Ok(rate)
    })?;
    let raw = raw::sqlite(&dir.join("raw.db"), tasks)?;
    std::fs::remove_dir_all(&dir)?;
    Ok((longrun, raw))
}

/// PostgreSQL: two nodes share the work; then the raw baseline with two clients.
pub(crate) async fn postgres(url: &str, tasks: usize) -> anyhow::Result<(f64, f64)> {
    let schema = format!("durable_{}", std::process::id());
    let location = Location {
        path: None,
        postgres: Some(url.to_owned()),
        schema: Some(schema.clone()),
    };
    let lease = Duration::from_secs(6);
    let a = stores::open(StoreKind::Postgres, &location, "bench-a", lease).await?;
    let b = stores::open(StoreKind::Postgres, &location, "bench-b", lease).await?;
    let nodes = [runtime(a.store, a.cluster)?, runtime(b.store, b.cluster)?];
    let rate = drive(&nodes, tasks).await?;
    for node in &nodes {
        node.shutdown().await;
    }
    stores::drop_schema(url, &schema).await?;
    let raw = raw::postgres(url, &format!("{schema}_raw"), tasks, 2).await?;
    Ok((rate, raw))
}

fn runtime(
    store: Arc<dyn longrun::store::Store>,
    cluster: Option<Arc<dyn longrun::cluster::Cluster>>,
) -> anyhow::Result<Runtime> {
    let runtime = Runtime::new(Options {
        store: Some(store),
        cluster,
        all_subscriber_buffer: 1 << 20,
        ..Options::default()
    });
    runtime.register(
        KindSpec::new("noop"),
        |_ctx: Context, _: Value| async move { Ok::<_, TaskError>(()) },
    )?;
    Ok(runtime)
}

/// Starts `tasks` trivial tasks from [`SUBMITTERS`] submitters spread over `nodes`; returns
/// completions per second, first start to last end observed, or an error if any start failed.
async fn drive(nodes: &[Runtime], tasks: usize) -> anyhow::Result<f64> {
    let ended = Arc::new(AtomicUsize::new(0));
    let all_ended = Arc::new(Notify::new());
    for node in nodes {
        let mut all = node.subscribe_all();
        let ended = ended.clone();
        let all_ended = all_ended.clone();
        tokio::spawn(async move {
            while let Some(notice) = all.next().await {
                if let AllNotice::Event(published) = notice
                    && published.event.is_terminal()
                    && ended.fetch_add(1, Ordering::Relaxed) + 1 == tasks
                {
                    all_ended.notify_one();
                }
            }
        });
    }
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    for submitter in 0..SUBMITTERS {
        let node = nodes[submitter % nodes.len()].clone();
        let next = next.clone();
        let failed = failed.clone();
        let all_ended = all_ended.clone();
        tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < tasks {
                if let Err(error) = node
                    .start("noop", Value::Null, StartOptions::background())
                    .await
                {
                    // Counted as ended, so that one failure reports instead of hanging.
                    eprintln!("durable: a start failed: {error}");
                    if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        all_ended.notify_one();
                    }
                }
            }
        });
    }
    all_ended.notified().await;
    let failed = failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} starts failed");
    Ok(tasks as f64 / began.elapsed().as_secs_f64())
}
