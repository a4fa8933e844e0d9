//! `doors`: one task, started and awaited through each front door, beside the HTTP round trip
//! of the same server.
//!
//! A [`Runtime`] on a `SqliteStore` in a fresh temporary directory (as `longrun serve` builds
//! it, with default options) serves the HTTP API, the MCP door and the A2A door on one
//! `127.0.0.1:0` listener, with `Auth::Anonymous`, in this process. Its one kind, `noop`, returns
//! at once, so every figure is the door's cost plus the task's durable life (created, started,
//! completed: each write fsync'd by the store's group commit), not a handler's.
//!
//! Each scenario is a closed loop: `clients` clients (default 16), each sending its request
//! again as soon as the previous answer's body has arrived, for `seconds` (default 10;
//! `--quick` 2, after a warm-up of a quarter of that which is not counted). The time is cut
//! into `rounds` (default 5) that take the doors in turn, so that a machine that slows down or
//! speeds up during the run weighs on every door alike; a door's figures are over all its
//! rounds. A request's latency
//! runs from its send to the end of its answer; an answer that is not the completed task (or a
//! non-2xx status) is counted in `<door>_errors`, and a benchmark with errors fails.
//!
//! | figure | the request |
//! |---|---|
//! | `baseline_*` | `GET /healthz`: the HTTP round trip to a trivial axum handler, same client |
//! | `v1_*` | `POST /v1/tasks` with `wait_ms`: answered with the completed task |
//! | `mcp_*` | MCP 2026-07-28 `tools/call` without the tasks extension: a plain call, answered with the tool result |
//! | `a2a_*` | A2A 1.0 `SendMessage` (JSON-RPC, blocking): answered with the completed task |
//!
//! `<door>_p50_ms` / `_p99_ms` are latencies; `<door>_per_s` completed requests per second;
//! `<door>_commits_per_req` and `<door>_writes_per_req` the store's transactions and write
//! calls during the measured loop (`SqliteStore::stats`) per answered request: what a door's
//! task costs the one writer thread, and how well its writes share commits.
//! Client and server share the process and the machine's CPUs; the host's CPU count and load
//! are printed with the figures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use longrun::{Context, KindSpec, Options, Runtime, TaskError};
use longrun_http::{Api, Auth, Limits};
use longrun_store_sqlite::{SqliteStore, Stats};
use serde_json::{Map, Value, json};

use crate::{
    host::Host,
    stats::{self, ms, round2},
};

/// `doors`'s options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Concurrent clients of each closed loop.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long each scenario is measured, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A short smoke run (CI): figures are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Rounds that take the doors in turn, each for `seconds / rounds`.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Only these doors (repeatable: `baseline`, `v1`, `mcp`, `a2a`), e.g. to profile one door
    /// alone. All of them by default.
    #[arg(long = "door", value_parser = ["baseline", "v1", "mcp", "a2a"])]
    doors: Vec<String>,
}

/// The scenarios, in the order they run: the baseline first.
const DOORS: [Door; 4] = [Door::Baseline, Door::V1, Door::Mcp, Door::A2a];

#[derive(Clone, Copy)]
enum Door {
    Baseline,
    V1,
    Mcp,
    A2a,
}

impl Door {
    fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::V1 => "v1",
            Self::Mcp => "mcp",
            Self::A2a => "a2a",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Baseline => "GET /healthz",
            Self::V1 => "POST /v1/tasks, wait_ms",
            Self::Mcp => "MCP 2026-07-28 tools/call",
            Self::A2a => "A2A 1.0 SendMessage, blocking",
        }
    }

    /// The request for the `n`-th call.
    fn request(self, client: &reqwest::Client, base: &str, n: u64) -> reqwest::RequestBuilder {
        match self {
            Self::Baseline => client.get(format!("{base}/healthz")),
            Self::V1 => client.post(format!("{base}/v1/tasks")).json(&json!({
                "kind": "noop", "input": null, "wait_ms": 30_000,
            })),
            Self::Mcp => client
                .post(format!("{base}/mcp"))
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "noop")
                .json(&json!({
                    "jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": {
                        "name": "noop", "arguments": {},
                        "_meta": {
                            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities": {},
                        },
                    },
                })),
            Self::A2a => client
                .post(format!("{base}/a2a"))
                .header("a2a-version", "1.0")
                .json(&json!({
                    "jsonrpc": "2.0", "id": n, "method": "SendMessage",
                    "params": {"message": {
                        "messageId": format!("bench-{n}"), "role": "ROLE_USER",
                        "parts": [{"data": {}}], "metadata": {"skill": "noop"},
                    }},
                })),
        }
    }

    /// Whether an answer is the one this door gives for a completed `noop` task.
    fn succeeded(self, body: &str) -> bool {
        match self {
            Self::Baseline => true,
            Self::V1 => body.contains(r#""status":"completed""#),
            // A plain call's answer is the tool result (JSON, or one SSE message holding it).
            Self::Mcp => body.contains(r#""result""#) && !body.contains(r#""error""#),
            Self::A2a => body.contains("TASK_STATE_COMPLETED"),
        }
    }
}

/// One scenario's figures.
#[derive(Default)]
struct Measured {
    latencies: Vec<Duration>,
    /// How long the closed loops ran.
    elapsed: Duration,
    errors: u64,
    /// The store's commits and write calls during the loop.
    store: Stats,
}

impl Measured {
    /// Completed requests per second.
    fn per_s(&self) -> f64 {
        let answered = self.latencies.len() as u64 - self.errors.min(self.latencies.len() as u64);
        answered as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Adds another round of the same door.
    fn add(&mut self, round: Self) {
        self.latencies.extend(round.latencies);
        self.elapsed += round.elapsed;
        self.errors += round.errors;
        self.store = Stats {
            commits: self.store.commits + round.store.commits,
            writes: self.store.writes + round.store.writes,
        };
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let host = Host::now();
    let seconds = if args.quick { 2 } else { args.seconds };
    let duration = Duration::from_secs(seconds);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let doors: Vec<Door> = DOORS
        .into_iter()
        .filter(|door| args.doors.is_empty() || args.doors.iter().any(|d| d == door.name()))
        .collect();
    let measured = tokio.block_on(measure(&doors, args.clients, duration, args.rounds))?;
    report(args, seconds, &host, &doors, &measured);
    let errors: u64 = measured.iter().map(|m| m.errors).sum();
    anyhow::ensure!(
        errors == 0,
        "doors: {errors} requests were not answered with a completed task"
    );
    Ok(())
}

async fn measure(
    doors: &[Door],
    clients: usize,
    duration: Duration,
    rounds: u32,
) -> anyhow::Result<Vec<Measured>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("longrun.db"))?);
    let runtime = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    runtime.register(
        KindSpec::new("noop").description("Returns at once."),
        |_ctx: Context, _input: Value| async { Ok::<_, TaskError>(Value::Null) },
    )?;
    let surface = longrun_http::Surface::new(runtime.clone(), Auth::Anonymous, Limits::default());
    let api = Api::new(surface.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mcp = longrun_mcp::router(surface.clone(), longrun_mcp::Config::default());
    let a2a = longrun_a2a::router(
        surface.clone(),
        longrun_a2a::Config::default(),
        base.clone(),
    )
    .context("cannot set up the A2A door")?;
    let app = longrun_http::router(api.clone()).merge(mcp).merge(a2a);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let mut measured: Vec<Measured> = doors.iter().map(|_| Measured::default()).collect();
    for round in 0..rounds {
        for (&door, figures) in doors.iter().zip(&mut measured) {
            if round == 0 {
                // Warm-up, not counted: connections open, caches and the store's pages warm.
                closed_loop(door, &client, &base, clients, duration / 4).await;
            }
            let before = store.stats();
            let mut this = closed_loop(door, &client, &base, clients, duration / rounds).await;
            let after = store.stats();
            this.store = Stats {
                commits: after.commits - before.commits,
                writes: after.writes - before.writes,
            };
            figures.add(this);
        }
    }
    for figures in &mut measured {
        figures.latencies.sort_unstable();
    }

    surface.shutdown();
    server.abort();
    runtime.shutdown().await;
    Ok(measured)
}

/// `clients` clients sending `door`'s request back to back until `duration` has passed.
async fn closed_loop(
    door: Door,
    client: &reqwest::Client,
    base: &str,
    clients: usize,
    duration: Duration,
) -> Measured {
    let numbers = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut loops = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, base) = (client.clone(), base.to_owned());
        let (numbers, errors) = (numbers.clone(), errors.clone());
        loops.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = numbers.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let ok = match door.request(&client, &base, n).send().await {
                    Ok(response) if response.status().is_success() => response
                        .text()
                        .await
                        .is_ok_and(|body| door.succeeded(&body)),
                    _ => false,
                };
                latencies.push(sent.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for one in loops {
        latencies.extend(one.await.unwrap_or_default());
    }
    Measured {
        latencies,
        elapsed: start.elapsed(),
        errors: errors.load(Ordering::Relaxed),
        store: Stats::default(),
    }
}

fn report(args: &Args, seconds: u64, host: &Host, doors: &[Door], measured: &[Measured]) {
    println!(
        "doors: {} clients, closed loop, {seconds} s per door in {} rounds, SQLite store ({} CPUs, load {})",
        args.clients,
        args.rounds,
        host.cpus,
        host.load_1m
            .map_or("?".to_owned(), |load| format!("{load:.2}")),
    );
    println!(
        "  {:<10} {:>9} {:>9} {:>10} {:>7} {:>9} {:>9}  request",
        "door", "p50 ms", "p99 ms", "per s", "errors", "commits/r", "writes/r"
    );
    let mut summary = Map::new();
    for (door, figures) in doors.iter().zip(measured) {
        let p50 = round2(ms(stats::percentile(&figures.latencies, 50.0)));
        let p99 = round2(ms(stats::percentile(&figures.latencies, 99.0)));
        let per_s = figures.per_s().round();
        let requests = figures.latencies.len().max(1) as f64;
        let commits = round2(figures.store.commits as f64 / requests);
        let writes = round2(figures.store.writes as f64 / requests);
        println!(
            "  {:<10} {p50:>9.2} {p99:>9.2} {per_s:>10.0} {:>7} {commits:>9.2} {writes:>9.2}  {}",
            door.name(),
            figures.errors,
            door.what()
        );
        summary.insert(format!("{}_commits_per_req", door.name()), json!(commits));
        summary.insert(format!("{}_writes_per_req", door.name()), json!(writes));
        summary.insert(format!("{}_p50_ms", door.name()), json!(p50));
        summary.insert(format!("{}_p99_ms", door.name()), json!(p99));
        summary.insert(format!("{}_per_s", door.name()), json!(per_s));
        summary.insert(format!("{}_errors", door.name()), json!(figures.errors));
    }
    // The issue's measure: how many times fewer tasks per second a door completes than `/v1`.
    let rate = |summary: &Map<String, Value>, name: &str| {
        summary
            .get(&format!("{name}_per_s"))
            .and_then(Value::as_f64)
    };
    if let Some(v1) = rate(&summary, "v1") {
        for door in ["mcp", "a2a"] {
            if let Some(per_s) = rate(&summary, door).filter(|r| *r > 0.0) {
                let cost = round2(v1 / per_s);
                println!("  {door} costs {cost:.2}x /v1 (v1 per s / {door} per s)");
                summary.insert(format!("{door}_cost_vs_v1"), json!(cost));
            }
        }
    }
    summary.insert("clients".into(), json!(args.clients));
    summary.insert("seconds".into(), json!(seconds));
    summary.insert("rounds".into(), json!(args.rounds));
    summary.insert("quick".into(), json!(args.quick));
    summary.insert("cpus".into(), json!(host.cpus));
    summary.insert("load_1m".into(), json!(host.load_1m));
    println!("{}", Value::Object(summary));
}
