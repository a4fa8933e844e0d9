//! `http`: the real HTTP + SSE server on SQLite, each figure beside a baseline from the same run.
//!
//! # The server
//!
//! Every scenario runs against a fresh child process of this binary ([`server`], the hidden
//! `http-server` subcommand): a [`longrun::Runtime`] on a `SqliteStore` in a new temporary
//! directory, built as `longrun serve` builds it (default options apart from the store), serving
//! [`longrun_http::router`] with `Auth::Anonymous` on `127.0.0.1:0`. Being its own process, the
//! server has its own resident set size, which is what `sse_rss_mb` reports (`/proc/<pid>/status`).
//! Its kinds are in-process Rust handlers, `noop` (returns at once) and `ticker` (emits one
//! progress event each time the benchmark says so), not process handlers under the real
//! `longrun serve`: a process kind would add a child process per task and its stdio protocol to
//! every figure, and those are the process adapter's cost, not the server's. The one difference
//! from `longrun serve` besides the kinds: the per-principal stream limit is raised, since every
//! subscriber here is the one anonymous principal. No tracing subscriber is installed (as with
//! `RUST_LOG=off`).
//!
//! The benchmark and the server share the machine: on a 2-CPU host the client's own work (10,000
//! sockets read, each message parsed) competes with the server, which inflates every figure
//! and its baseline alike. The host's CPU count and load are printed with the figures.
//!
//! # Creation and completion
//!
//! - **`create_p99_ms`, `create_p50_ms`**: an open-loop generator sends `POST /v1/tasks`
//!   (`{"kind":"noop","input":null}`) at a fixed offered rate (default 1,000/s for 10 s;
//!   `--quick` 200/s for 2 s), each request on schedule whether or not earlier ones were
//!   answered, over a `reqwest` connection pool with keep-alive. A request's latency runs from
//!   the moment it was *due* to the end of its response body, so a stall lands in the tail
//!   rather than slowing the generator. The answer comes once the task is durably created (and
//!   usually started). A second of warm-up at the same rate comes first and is not counted.
//!   **Baseline** (`baseline_p99_ms`, `baseline_p50_ms`): `GET /healthz` of the same server,
//!   same client, same rate and duration: the HTTP round trip to a trivial axum handler.
//! - **`tasks_per_s`**: tasks that reached `completed`, per second, from the first request of
//!   the open-loop run until the server's `/metrics` (`longrun_tasks_ended_total`, polled every
//!   2 ms) counted the last of them. Its baseline is the offered rate: a server that keeps up
//!   completes as fast as it is asked.
//! - **`max_tasks_per_s`**: a closed loop of 64 clients, each creating `noop` tasks back to
//!   back for 5 s (`--quick` 2 s); completions per second, counted as above. **Baseline**
//!   (`baseline_max_per_s`): the same closed loop on `GET /healthz`.
//!
//! # SSE fan-out
//!
//! - **`sse_delivery_p99_ms`, `sse_delivery_p50_ms`**: `sse_subscribers` clients (default
//!   10,000; `--quick` 500), each its own TCP connection, open `GET /v1/tasks/{id}/events` on
//!   one running `ticker` task. Then the task emits 20 progress events, each after the previous
//!   one reached every subscriber (or 10 s passed) and a 20 ms pause. The handler stamps each
//!   event's message with the wall clock just before `Context::progress`, so the event's durable
//!   write is inside the figure; a subscriber stamps the moment the chunk holding the message
//!   arrives. Both processes read the same clock. The percentiles are over every (subscriber,
//!   event) sample; `sse_missed` counts samples that never arrived.
//! - **`sse_rss_mb`**: the server's peak resident set size (`VmHWM`) over its life, read after
//!   the last event: the server is fresh, so that peak is the fan-out's (subscribers connecting
//!   included). `sse_idle_rss_mb` is its resident size before the first subscriber connected,
//!   `sse_connected_rss_mb` with every subscriber connected, before the first event. Beside
//!   them the table prints the server's Rust heap (the counting allocator's live bytes, idle,
//!   connected and peak; SQLite's own allocations are not in it) and its most threads seen,
//!   so that RSS the heap does not explain (allocator arenas, thread stacks) shows.
//! - **Baseline** (`baseline_sse_p99_ms`, `baseline_sse_rss_mb`): the same fan-out, same client,
//!   same pacing, on a bare axum SSE endpoint fed by a `tokio::sync::broadcast` channel
//!   (`GET /bench/raw-events`, served by another fresh server process alongside the router),
//!   whose messages carry the same stamp. That is the floor of SSE delivery in axum on this
//!   machine: no subscription to a task, no store write, no per-subscriber JSON.
//!
//! `--sse-only` runs the fan-out and its baseline alone, without the creation load: issue 15's
//! "separate run" of 10,000 subscribers (`longrun-bench http --sse-only`).
//!
//! Open files: every subscriber is a socket in this process and another in the server, so both
//! raise their soft open-file limit to the hard limit (`setrlimit`, through `nix`) before
//! starting; 10,000 subscribers need more than the usual soft limit of 1,024.

mod fanout;
mod load;
pub(crate) mod server;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use reqwest::Client;
use serde_json::{Map, Value, json};

use crate::{
    host::Host,
    stats::{self, ms, round2},
};

use self::{
    fanout::Fanout,
    load::{OpenLoop, Request},
    server::Server,
};

/// The benchmark's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Offered rate of task creations per second (open loop).
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// How long the open-loop run lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent SSE subscribers on one task.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Events the task emits to its subscribers.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Small sizes for a smoke run (CI): figures are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Only the SSE fan-out and its baseline (issue 15's separate run of 10,000 subscribers):
    /// no creation load first.
    #[arg(long)]
    sse_only: bool,
}

const TARGET_CREATE_P99_MS: f64 = 5.0;
const TARGET_SSE_RSS_MB: f64 = 300.0;
const TARGET_SSE_DELIVERY_P99_MS: f64 = 50.0;
/// Clients of the closed-loop run.
const CLOSED_CLIENTS: usize = 64;
/// How long the counted completions may lag the last request.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let host = Host::now();
    let open_files = raise_open_files()?;
    let (rate, duration, subscribers, closed, warm_up) = if args.quick {
        (
            200,
            Duration::from_secs(2),
            500,
            Duration::from_secs(2),
            Duration::from_millis(500),
        )
    } else {
        (
            args.rate,
            Duration::from_secs(args.seconds),
            args.subscribers,
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
    };
    if subscribers as u64 + 512 > open_files {
        eprintln!(
            "http: warning: the open-file limit ({open_files}) is too low for {subscribers} \
             subscribers; some will fail to connect"
        );
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = tokio.block_on(measure(args, rate, duration, subscribers, closed, warm_up))?;
    report(args, &host, rate, duration, &figures);
    Ok(())
}

/// Everything the scenarios measured.
struct Figures {
    /// Creation and completion; `None` with `--sse-only`.
    load: Option<Load>,
    fanout: Fanout,
    raw: Fanout,
}

/// What the creation and completion scenarios measured.
struct Load {
    baseline: OpenLoop,
    create: OpenLoop,
    created: u64,
    tasks_per_s: f64,
    max_tasks_per_s: f64,
    baseline_max_per_s: f64,
    metrics_missed: u64,
}

async fn measure(
    args: &Args,
    rate: u32,
    duration: Duration,
    subscribers: usize,
    closed: Duration,
    warm_up: Duration,
) -> anyhow::Result<Figures> {
    let client = Client::builder().build()?;
    let load = if args.sse_only {
        None
    } else {
        Some(measure_load(&client, rate, duration, closed, warm_up).await?)
    };
    let (fanout, raw) = measure_fanout(&client, subscribers, args.events).await?;
    Ok(Figures { load, fanout, raw })
}

/// Creation and completion, on one server.
async fn measure_load(
    client: &Client,
    rate: u32,
    duration: Duration,
    closed: Duration,
    warm_up: Duration,
) -> anyhow::Result<Load> {
    let server = Server::start("load")?;
    let base = server.base.clone();
    let client = client.clone();
    eprintln!("http: warming up at {rate}/s");
    load::open_loop(&client, &base, Request::Health, rate, warm_up).await?;
    load::open_loop(&client, &base, Request::Create, rate, warm_up).await?;
    eprintln!("http: GET /healthz at {rate}/s for {duration:?} (baseline)");
    let baseline = load::open_loop(&client, &base, Request::Health, rate, duration).await?;
    let before = load::completed(&client, &base).await?;
    eprintln!("http: POST /v1/tasks at {rate}/s for {duration:?}");
    let create = load::open_loop(&client, &base, Request::Create, rate, duration).await?;
    let created = create.latencies.len() as u64;
    let (after, done) =
        load::wait_completed(&client, &base, before + created, COMPLETION_TIMEOUT).await?;
    let tasks_per_s = (after - before) as f64 / (done - create.started).as_secs_f64();

    eprintln!("http: closed loop, {CLOSED_CLIENTS} clients, GET /healthz for {closed:?}");
    let started = Instant::now();
    let (health_ok, _) =
        load::closed_loop(&client, &base, Request::Health, CLOSED_CLIENTS, closed).await?;
    let baseline_max_per_s = health_ok as f64 / started.elapsed().as_secs_f64();
    eprintln!("http: closed loop, {CLOSED_CLIENTS} clients, POST /v1/tasks for {closed:?}");
    let before = load::completed(&client, &base).await?;
    let started = Instant::now();
    let (ok, errors) =
        load::closed_loop(&client, &base, Request::Create, CLOSED_CLIENTS, closed).await?;
    if errors > 0 {
        eprintln!("http: {errors} creations failed in the closed loop");
    }
    let (after, done) =
        load::wait_completed(&client, &base, before + ok, COMPLETION_TIMEOUT).await?;
    let max_tasks_per_s = (after - before) as f64 / (done - started).as_secs_f64();
    let metrics_missed = load::metrics_missed(&client, &base).await?;
    drop(server);
    Ok(Load {
        baseline,
        create,
        created,
        tasks_per_s,
        max_tasks_per_s,
        baseline_max_per_s,
        metrics_missed,
    })
}

/// The fan-out baseline, then longrun's fan-out, each on a fresh server.
async fn measure_fanout(
    client: &Client,
    subscribers: usize,
    events: usize,
) -> anyhow::Result<(Fanout, Fanout)> {
    let mut server = Server::start("raw")?;
    let raw = fanout::measure(&mut server, "/bench/raw-events", "raw", subscribers, events).await?;
    drop(server);

    let mut server = Server::start("sse")?;
    let body = client
        .post(format!("{}/v1/tasks", server.base))
        .header("content-type", "application/json")
        .body(r#"{"kind":"ticker","input":null}"#)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let task: Value = serde_json::from_slice(&body)?;
    let id = task["id"]
        .as_str()
        .context("the created task has no id")?
        .to_owned();
    let fanout = fanout::measure(
        &mut server,
        &format!("/v1/tasks/{id}/events"),
        "tick",
        subscribers,
        events,
    )
    .await?;
    server.command("end")?;
    drop(server);
    Ok((fanout, raw))
}

/// The table, then the JSON line.
fn report(args: &Args, host: &Host, rate: u32, duration: Duration, figures: &Figures) {
    let sse_p99 = ms(stats::percentile(&figures.fanout.latencies, 99.0));
    let sse_p50 = ms(stats::percentile(&figures.fanout.latencies, 50.0));
    let raw_p99 = ms(stats::percentile(&figures.raw.latencies, 99.0));
    let raw_p50 = ms(stats::percentile(&figures.raw.latencies, 50.0));
    let sse_rss = mb(figures.fanout.peak_rss);
    let raw_rss = mb(figures.raw.peak_rss);

    let mut rows = Vec::new();
    let mut summary = Map::new();
    summary.insert("store".into(), json!("sqlite"));
    if let Some(load) = &figures.load {
        let create_p99 = ms(stats::percentile(&load.create.latencies, 99.0));
        let create_p50 = ms(stats::percentile(&load.create.latencies, 50.0));
        let baseline_p99 = ms(stats::percentile(&load.baseline.latencies, 99.0));
        let baseline_p50 = ms(stats::percentile(&load.baseline.latencies, 50.0));
        rows.extend([
            row(
                "create_p99_ms",
                create_p99,
                baseline_p99,
                "GET /healthz, same load",
                Some((TARGET_CREATE_P99_MS, false)),
            ),
            row(
                "create_p50_ms",
                create_p50,
                baseline_p50,
                "GET /healthz, same load",
                None,
            ),
            row(
                "tasks_per_s",
                load.tasks_per_s,
                f64::from(rate),
                "the offered rate",
                None,
            ),
            row(
                "max_tasks_per_s",
                load.max_tasks_per_s,
                load.baseline_max_per_s,
                "GET /healthz, 64 clients",
                None,
            ),
        ]);
        summary.insert("offered_per_s".into(), json!(rate));
        summary.insert("created".into(), json!(load.created));
        summary.insert("create_errors".into(), json!(load.create.errors));
        summary.insert("create_p99_ms".into(), json!(round2(create_p99)));
        summary.insert("create_p50_ms".into(), json!(round2(create_p50)));
        summary.insert("baseline_p99_ms".into(), json!(round2(baseline_p99)));
        summary.insert("baseline_p50_ms".into(), json!(round2(baseline_p50)));
        summary.insert("tasks_per_s".into(), json!(load.tasks_per_s.round()));
        summary.insert(
            "max_tasks_per_s".into(),
            json!(load.max_tasks_per_s.round()),
        );
        summary.insert(
            "baseline_max_per_s".into(),
            json!(load.baseline_max_per_s.round()),
        );
    }
    rows.extend([
        row(
            "sse_delivery_p99_ms",
            sse_p99,
            raw_p99,
            "raw axum SSE + broadcast",
            Some((TARGET_SSE_DELIVERY_P99_MS, false)),
        ),
        row(
            "sse_delivery_p50_ms",
            sse_p50,
            raw_p50,
            "raw axum SSE + broadcast",
            None,
        ),
        row(
            "sse_rss_mb",
            sse_rss,
            raw_rss,
            "raw axum SSE + broadcast",
            Some((TARGET_SSE_RSS_MB, false)),
        ),
    ]);
    let load_note = if figures.load.is_some() {
        format!(
            "{rate} creations/s offered for {} s; ",
            duration.as_secs_f64()
        )
    } else {
        String::new()
    };
    println!(
        "http benchmark, SQLite ({load_note}{} SSE subscribers × {} events; host: {} CPUs, load {})",
        figures.fanout.connected,
        args.events,
        host.cpus,
        host.load_1m
            .map_or("?".to_owned(), |load| format!("{load:.2}"))
    );
    println!(
        "  {:<22} {:>10} {:>10}  {:<26} target",
        "figure", "longrun", "baseline", "baseline is"
    );
    for (name, longrun, baseline, what, target) in &rows {
        println!("  {name:<22} {longrun:>10} {baseline:>10}  {what:<26} {target}");
    }
    println!(
        "  SSE server RSS: {:.1} MB idle, {:.1} MB with every subscriber connected, {:.1} MB peak \
         ({:.1} KB per subscriber over idle; the bare endpoint: {:.1} KB)",
        mb(figures.fanout.idle_rss),
        mb(figures.fanout.connected_rss),
        sse_rss,
        per_subscriber_kb(&figures.fanout),
        per_subscriber_kb(&figures.raw),
    );
    for (name, fanout) in [("longrun", &figures.fanout), ("bare", &figures.raw)] {
        println!(
            "  SSE server heap ({name}, Rust allocations only): {:.1} MB idle, {:.1} MB \
             connected, {:.1} MB peak; {} threads at most",
            mb(fanout.idle_heap),
            mb(fanout.connected_heap),
            mb(fanout.peak_heap),
            fanout.threads,
        );
    }
    if let Some(load) = &figures.load {
        if load.create.errors > 0 || load.baseline.errors > 0 {
            println!(
                "  errors: {} creations, {} health checks failed",
                load.create.errors, load.baseline.errors,
            );
        }
        if load.metrics_missed > 0 {
            println!(
                "  (the server's metrics skipped {} events: completion counts may be low)",
                load.metrics_missed
            );
        }
    }
    if figures.fanout.missed > 0 || figures.raw.missed > 0 {
        println!(
            "  SSE samples missed: {} longrun, {} raw",
            figures.fanout.missed, figures.raw.missed
        );
    }
    if host.busy() {
        println!("  (the host was busy: tails and ratios are less trustworthy)");
    }
    if args.quick {
        println!("  (--quick: small sizes, figures are a smoke test only)");
    }

    summary.insert("sse_subscribers".into(), json!(figures.fanout.connected));
    summary.insert("sse_events".into(), json!(args.events));
    summary.insert("sse_rss_mb".into(), json!(round2(sse_rss)));
    summary.insert(
        "sse_idle_rss_mb".into(),
        json!(round2(mb(figures.fanout.idle_rss))),
    );
    summary.insert(
        "sse_connected_rss_mb".into(),
        json!(round2(mb(figures.fanout.connected_rss))),
    );
    summary.insert(
        "sse_peak_heap_mb".into(),
        json!(round2(mb(figures.fanout.peak_heap))),
    );
    summary.insert("sse_delivery_p99_ms".into(), json!(round2(sse_p99)));
    summary.insert("sse_delivery_p50_ms".into(), json!(round2(sse_p50)));
    summary.insert("sse_missed".into(), json!(figures.fanout.missed));
    summary.insert("baseline_sse_p99_ms".into(), json!(round2(raw_p99)));
    summary.insert("baseline_sse_p50_ms".into(), json!(round2(raw_p50)));
    summary.insert("baseline_sse_rss_mb".into(), json!(round2(raw_rss)));
    summary.insert(
        "baseline_sse_subscribers".into(),
        json!(figures.raw.connected),
    );
    summary.insert("quick".into(), json!(args.quick));
    summary.insert("cpus".into(), json!(host.cpus));
    summary.insert("load_1m".into(), json!(host.load_1m));
    println!("{}", Value::Object(summary));
}

/// One table row: the figure, its baseline, what the baseline is, and the target's verdict
/// (`(target, at_least)`), if the issue sets one.
fn row(
    name: &str,
    longrun: f64,
    baseline: f64,
    what: &str,
    target: Option<(f64, bool)>,
) -> (String, String, String, String, String) {
    let verdict = match target {
        Some((target, at_least)) => {
            let met = if at_least {
                longrun >= target
            } else {
                longrun <= target
            };
            let sign = if at_least { "≥" } else { "≤" };
            format!("{sign} {target} {}", if met { "met" } else { "MISSED" })
        }
        None => "—".to_owned(),
    };
    (
        name.to_owned(),
        format!("{longrun:.2}"),
        format!("{baseline:.2}"),
        what.to_owned(),
        verdict,
    )
}

/// Raises this process's soft open-file limit to its hard limit (children inherit it);
/// returns the new soft limit. Each SSE subscriber is one socket here and one in the server.
pub(crate) fn raise_open_files() -> anyhow::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("cannot read RLIMIT_NOFILE")?;
    // An unlimited hard limit still stops at the kernel's `nr_open` (2^20 by default).
    let wanted = hard.min(1 << 20);
    if wanted <= soft {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
        Ok(()) => Ok(wanted),
        Err(error) => {
            eprintln!("http: cannot raise the open-file limit from {soft}: {error}");
            Ok(soft)
        }
    }
}

/// Server memory per subscriber: connected RSS over idle RSS, divided by the subscribers.
fn per_subscriber_kb(fanout: &Fanout) -> f64 {
    fanout.connected_rss.saturating_sub(fanout.idle_rss) as f64
        / 1024.0
        / fanout.connected.max(1) as f64
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
