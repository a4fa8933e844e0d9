//! `durable`: longrun on a durable store, each figure beside a baseline from the same run.
//!
//! - **throughput** (`tasks_per_s`): trivial tasks, submit → start → complete, every step
//!   durable before anyone is told of it, from many concurrent submitters; the clock stops at
//!   the last completion observed. On PostgreSQL two nodes (two runtimes with their own
//!   connections and node names, one process) share the work. Baseline: raw batched SQL doing
//!   the same inserts and updates with the same durability ([`raw`]); `ratio_vs_raw_sql`.
//! - **steps** (`steps_per_s`): tasks of 100 trivial durable steps (`ctx.step`), in the same
//!   run. Baseline: the event writes per second of the trivial tasks above (three per task:
//!   submitted, started, ended), since a step costs one event write.
//! - **PostgreSQL, across nodes**: `notify_p99_ms` (a handler returns on node A → a
//!   subscriber on node B receives the end, so writing the end is included), `cancel_p99_ms` (a cancel called on node B → the handler's
//!   `cancelled()` fires on node A), `renewal_commits_per_s` (write transactions per second of
//!   a node holding 10,000 running tasks and otherwise idle, counted as transaction ids handed
//!   out by the server). Baselines: a raw `pg_notify` → `LISTEN` round trip, and one heartbeat
//!   commit per task per renewal interval (computed).
//! - **SQLite recovery** (`recovery_ms`): a file with 1,000,000 stored tasks; a node runs under
//!   load, is killed with SIGKILL, and is started again: spawn → first task dispatched (the
//!   node's `ready`). Baseline: opening the file and counting its rows with raw SQLite.

mod cluster;
pub(crate) mod raw;
mod recovery;
mod throughput;

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::{
    host::Host,
    stats::round2,
    stores::{self, StoreKind},
};

/// The benchmark's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The store to measure.
    #[arg(long, value_enum)]
    store: StoreKind,
    /// Trivial tasks in the throughput scenario.
    #[arg(long, default_value_t = 50_000)]
    tasks: usize,
    /// Tasks stored before the recovery scenario (SQLite).
    #[arg(long, default_value_t = 1_000_000)]
    stored: usize,
    /// Small sizes for a smoke run (CI): figures are not meaningful.
    #[arg(long)]
    quick: bool,
    /// PostgreSQL URL (default: `LONGRUN_TEST_POSTGRES_URL`, else the local test database).
    #[arg(long)]
    postgres: Option<String>,
}

const TARGET_SQLITE_TASKS_PER_S: f64 = 15_000.0;
const TARGET_POSTGRES_TASKS_PER_S: f64 = 8_000.0;
const TARGET_SQLITE_STEPS_PER_S: f64 = 20_000.0;
const TARGET_POSTGRES_STEPS_PER_S: f64 = 10_000.0;
const TARGET_NOTIFY_P99_MS: f64 = 20.0;
const TARGET_CANCEL_P99_MS: f64 = 50.0;
const TARGET_RENEWAL_COMMITS_PER_S: f64 = 1.0;
const TARGET_RECOVERY_MS: f64 = 500.0;

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let host = Host::now();
    let tasks = if args.quick { 2_000 } else { args.tasks };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = args
        .postgres
        .clone()
        .unwrap_or_else(stores::default_postgres_url);
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut summary = Map::new();
    summary.insert("store".into(), json!(args.store.name()));

    let rates = match args.store {
        StoreKind::Sqlite => throughput::sqlite(&tokio, tasks)?,
        StoreKind::Postgres => tokio.block_on(throughput::postgres(&url, tasks))?,
    };
    let (longrun, raw) = (rates.tasks_per_s, rates.raw_tasks_per_s);
    let target = match args.store {
        StoreKind::Sqlite => TARGET_SQLITE_TASKS_PER_S,
        StoreKind::Postgres => TARGET_POSTGRES_TASKS_PER_S,
    };
    rows.push(row(
        "tasks_per_s",
        longrun,
        raw,
        "raw batched SQL",
        target,
        true,
    ));
    summary.insert("tasks_per_s".into(), json!(longrun.round()));
    summary.insert("raw_sql_tasks_per_s".into(), json!(raw.round()));
    summary.insert("ratio_vs_raw_sql".into(), json!(round2(longrun / raw)));
    let event_writes_per_s = 3.0 * longrun;
    rows.push(row(
        "steps_per_s",
        rates.steps_per_s,
        event_writes_per_s,
        "event writes/s of the tasks",
        match args.store {
            StoreKind::Sqlite => TARGET_SQLITE_STEPS_PER_S,
            StoreKind::Postgres => TARGET_POSTGRES_STEPS_PER_S,
        },
        true,
    ));
    summary.insert("steps_per_s".into(), json!(rates.steps_per_s.round()));
    summary.insert(
        "task_event_writes_per_s".into(),
        json!(event_writes_per_s.round()),
    );

    match args.store {
        StoreKind::Postgres => {
            let samples = if args.quick { 50 } else { 500 };
            let held = if args.quick { 1_000 } else { 10_000 };
            let window = Duration::from_secs(if args.quick { 4 } else { 20 });
            let figures = tokio.block_on(cluster::measure(&url, samples, held, window))?;
            rows.push(row(
                "notify_p99_ms",
                figures.notify_p99_ms,
                figures.raw_notify_p99_ms,
                "raw pg_notify → LISTEN",
                TARGET_NOTIFY_P99_MS,
                false,
            ));
            rows.push(row(
                "cancel_p99_ms",
                figures.cancel_p99_ms,
                figures.raw_notify_p99_ms,
                "raw pg_notify → LISTEN",
                TARGET_CANCEL_P99_MS,
                false,
            ));
            rows.push(row(
                "renewal_commits_per_s",
                figures.renewal_commits_per_s,
                figures.per_task_heartbeat_commits_per_s,
                "a heartbeat commit per task",
                TARGET_RENEWAL_COMMITS_PER_S,
                false,
            ));
            summary.insert("notify_p99_ms".into(), json!(round2(figures.notify_p99_ms)));
            summary.insert("notify_p50_ms".into(), json!(round2(figures.notify_p50_ms)));
            summary.insert("cancel_p99_ms".into(), json!(round2(figures.cancel_p99_ms)));
            summary.insert("cancel_p50_ms".into(), json!(round2(figures.cancel_p50_ms)));
            summary.insert(
                "raw_notify_p99_ms".into(),
                json!(round2(figures.raw_notify_p99_ms)),
            );
            summary.insert(
                "renewal_commits_per_s".into(),
                json!(round2(figures.renewal_commits_per_s)),
            );
            summary.insert("held_tasks".into(), json!(held));
        }
        StoreKind::Sqlite => {
            let stored = if args.quick { 20_000 } else { args.stored };
            let figures = recovery::measure(&tokio, stored)?;
            rows.push(row(
                "recovery_ms",
                figures.recovery_ms,
                figures.raw_open_ms,
                "raw open + count(*)",
                TARGET_RECOVERY_MS,
                false,
            ));
            summary.insert("recovery_ms".into(), json!(round2(figures.recovery_ms)));
            summary.insert("raw_open_ms".into(), json!(round2(figures.raw_open_ms)));
            summary.insert("stored_tasks".into(), json!(stored));
        }
    }

    println!(
        "durable store benchmark, store {} ({} tasks; host: {} CPUs, load {})",
        args.store.name(),
        tasks,
        host.cpus,
        host.load_1m
            .map_or("?".to_owned(), |load| format!("{load:.2}"))
    );
    println!(
        "  {:<24} {:>12} {:>12}  {:<28} target",
        "figure", "longrun", "baseline", "baseline is"
    );
    for (name, longrun, baseline, target) in &rows {
        let (what, target) = target.split_once('|').unwrap_or(("", target));
        println!("  {name:<24} {longrun:>12} {baseline:>12}  {what:<28} {target}");
    }
    if args.quick {
        println!("  (--quick: small sizes, figures are a smoke test only)");
    }
    summary.insert("quick".into(), json!(args.quick));
    summary.insert("load_1m".into(), json!(host.load_1m));
    println!("{}", Value::Object(summary));
    Ok(())
}

/// One table row: the figure, its baseline, what the baseline is, and the target's verdict.
fn row(
    name: &str,
    longrun: f64,
    baseline: f64,
    what: &str,
    target: f64,
    at_least: bool,
) -> (String, String, String, String) {
    let met = if at_least {
        longrun >= target
    } else {
        longrun <= target
    };
    let sign = if at_least { "≥" } else { "≤" };
    let verdict = if met { "met" } else { "MISSED" };
    (
        name.to_owned(),
        format!("{longrun:.2}"),
        format!("{baseline:.2}"),
        format!("{what}|{sign} {target} {verdict}"),
    )
}
