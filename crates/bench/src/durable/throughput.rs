//! End-to-end throughput of trivial durable tasks, and its raw-SQL baseline; and durable steps
//! per second, from tasks of [`STEPS_PER_TASK`] trivial steps, in the same run.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use longrun::{Context, KindSpec, Options, Runtime, StartOptions, TaskError, event::AllNotice};
use serde_json::Value;
use tokio::sync::Notify;

use super::raw;
use crate::stores::{self, Location, StoreKind};

/// Submitters running at once: enough for group commit to have something to batch, as a busy
/// server's many clients would.
const SUBMITTERS: usize = 256;

/// Steps in each task of the steps scenario.
pub(crate) const STEPS_PER_TASK: usize = 100;

/// What one store's run measured.
pub(crate) struct Rates {
    /// Trivial tasks per second.
    pub(crate) tasks_per_s: f64,
    /// The raw-SQL baseline's tasks per second.
    pub(crate) raw_tasks_per_s: f64,
    /// Durable steps per second, in tasks of [`STEPS_PER_TASK`] steps.
    pub(crate) steps_per_s: f64,
}

/// Tasks of the steps scenario: a fiftieth of the trivial tasks, at least one.
fn step_tasks(tasks: usize) -> usize {
    (tasks / 50).max(1)
}

/// SQLite: longrun's tasks per second, and the raw baseline's, each on a fresh file.
pub(crate) fn sqlite(tokio: &tokio::runtime::Runtime, tasks: usize) -> anyhow::Result<Rates> {
    let dir = std::env::temp_dir().join(format!("longrun-durable-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let location = Location {
        path: Some(dir.join("longrun.db")),
        postgres: None,
        schema: None,
    };
    let (longrun, steps_per_s) = tokio.block_on(async {
        let opened = stores::open(StoreKind::Sqlite, &location, "bench", Duration::ZERO).await?;
        let runtime = runtime(opened.store, None)?;
        let rate = drive(std::slice::from_ref(&runtime), "noop", tasks).await?;
        let with_steps = step_tasks(tasks);
        let steps = drive(std::slice::from_ref(&runtime), "steps", with_steps).await?
            * STEPS_PER_TASK as f64;
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
        anyhow::Ok((rate, steps))
    })?;
    let raw = raw::sqlite(&dir.join("raw.db"), tasks)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(Rates {
        tasks_per_s: longrun,
        raw_tasks_per_s: raw,
        steps_per_s,
    })
}

/// PostgreSQL: two nodes share the work; then the raw baseline with two clients.
pub(crate) async fn postgres(url: &str, tasks: usize) -> anyhow::Result<Rates> {
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
    let rate = drive(&nodes, "noop", tasks).await?;
    let steps_per_s = drive(&nodes, "steps", step_tasks(tasks)).await? * STEPS_PER_TASK as f64;
    for node in &nodes {
        node.shutdown().await;
    }
    stores::drop_schema(url, &schema).await?;
    let raw = raw::postgres(url, &format!("{schema}_raw"), tasks, 2).await?;
    Ok(Rates {
        tasks_per_s: rate,
        raw_tasks_per_s: raw,
        steps_per_s,
    })
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
    runtime.register(
        KindSpec::new("steps"),
        |ctx: Context, _: Value| async move {
            for n in 0..STEPS_PER_TASK {
                ctx.step(format!("s{n}"), async move { Ok::<_, TaskError>(n) })
                    .await?;
            }
            Ok::<_, TaskError>(())
        },
    )?;
    Ok(runtime)
}

/// Starts `tasks` tasks of `kind` from [`SUBMITTERS`] submitters spread over `nodes`; returns
/// completions per second, first start to last end observed, or an error if any start failed.
async fn drive(nodes: &[Runtime], kind: &'static str, tasks: usize) -> anyhow::Result<f64> {
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
                    .start(kind, Value::Null, StartOptions::background())
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
