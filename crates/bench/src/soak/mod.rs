//! `soak`: hours of mixed load on one server, printed as a time series of what must stay flat.
//!
//! The server is a child process of this binary ([`server`], the hidden `soak-server`
//! subcommand): the HTTP API over a runtime on SQLite, with in-process kinds and one process
//! handler. Against it, for `--minutes`:
//!
//! - **streams**: `--streams` SSE subscribers (default 1,000), each its own connection on
//!   `GET /v1/tasks/{id}/events` of the `beacon` task of one of `--beacons` slots. A beacon
//!   emits a stamped progress event every second for a minute and completes; its slot starts
//!   the next one, and each subscriber whose stream ended follows its slot's new beacon (so
//!   streams are reopened all the time, and no log grows for ever). Only events emitted after
//!   a subscriber connected are delivery samples, not the log replayed to it;
//! - **mixed operations** at `--rate` per second (default 20), each on its own task so a slow
//!   one never delays the schedule, in turn: start `quick`; start `ask` and answer its
//!   question; start `slow` and cancel it; start `proc` (a process handler); start `quick` and
//!   follow its event stream to the end. Every task is created with a 30 s ttl in session
//!   `soak`, so retention keeps the tables bounded;
//! - **the agent**: once a second, drains the session's inbox and acknowledges what the last
//!   drain returned, as an agent does at each turn.
//!
//! Every `--sample-secs` one row is printed: elapsed time, the server's RSS and open file
//! descriptors (`/proc/<pid>`), the rows in `tasks`, `events` and `inbox` and the database's
//! size on disk (file and WAL), the p50/p99 of creating a task (request sent to response read)
//! and of event delivery (the beacon's stamp to the chunk's arrival here; both processes read
//! the same clock) over that window, operations done and failed. After warm-up every column but
//! the operation counts should stay flat. The last line on stdout is the whole series as JSON.

pub(crate) mod server;

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use reqwest::Client;
use serde_json::{Value, json};

use crate::{
    http::server::unix_nanos,
    stats::{ms, percentile, round2},
};

/// The soak's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Open SSE streams held for the whole run.
    #[arg(long, default_value_t = 1_000)]
    streams: usize,
    /// Long-running tasks the streams follow.
    #[arg(long, default_value_t = 20)]
    beacons: usize,
    /// Mixed operations per second.
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// Seconds between two rows of the time series.
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
}

/// What was measured since the last row.
#[derive(Default)]
struct Window {
    create: Vec<Duration>,
    delivery: Vec<Duration>,
}

/// Shared between the load and the sampler.
#[derive(Default)]
struct Shared {
    window: Mutex<Window>,
    ops: AtomicU64,
    failed: AtomicU64,
    reconnects: AtomicU64,
    stopping: std::sync::atomic::AtomicBool,
}

/// Runs the soak and prints its time series.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    crate::http::raise_open_files()?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(soak(args))
}

async fn soak(args: &Args) -> anyhow::Result<()> {
    let server = Server::start()?;
    let client = Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .context("cannot build the HTTP client")?;
    let shared = Arc::new(Shared::default());
    let base = server.base.clone();

    let mut slots = Vec::new();
    for _ in 0..args.beacons.max(1) {
        let first = create(&client, &base, "beacon", &shared).await?;
        let slot = Arc::new(Mutex::new(first));
        tokio::spawn(renew_beacon(
            client.clone(),
            base.clone(),
            slot.clone(),
            shared.clone(),
        ));
        slots.push(slot);
    }
    for n in 0..args.streams {
        let slot = slots[n % slots.len()].clone();
        tokio::spawn(subscribe(
            client.clone(),
            base.clone(),
            slot,
            shared.clone(),
        ));
    }
    eprintln!(
        "soak: {} streams on {} beacon slots, {} operations/s, {} min",
        args.streams,
        slots.len(),
        args.rate,
        args.minutes
    );
    let load = tokio::spawn(mixed_load(
        client.clone(),
        base.clone(),
        args.rate,
        shared.clone(),
    ));
    let agent = tokio::spawn(agent(client.clone(), base.clone(), shared.clone()));

    println!(
        "{:>7} {:>8} {:>5} {:>7} {:>8} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
        "min",
        "rss_mb",
        "fds",
        "tasks",
        "events",
        "inbox",
        "db_mb",
        "create50",
        "create99",
        "deliv50",
        "deliv99",
        "ops",
        "failed"
    );
    let started = Instant::now();
    let end = started + Duration::from_secs(args.minutes * 60);
    let every = Duration::from_secs(args.sample_secs.max(1));
    let mut series = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(every.min(end.saturating_duration_since(Instant::now()))).await;
        let row = sample(&server, &shared, started.elapsed())?;
        print_row(&row);
        series.push(row);
    }
    // Stopped before the server goes, so nothing in flight is counted as failed.
    shared.stopping.store(true, Ordering::Relaxed);
    load.abort();
    agent.abort();
    let summary = json!({
        "bench": "soak",
        "minutes": args.minutes,
        "streams": args.streams,
        "rate": args.rate,
        "reconnects": shared.reconnects.load(Ordering::Relaxed),
        "series": series,
    });
    println!("{summary}");
    Ok(())
}

/// One row of the series.
fn sample(server: &Server, shared: &Shared, elapsed: Duration) -> anyhow::Result<Value> {
    let window = std::mem::take(&mut *shared.window.lock());
    let (mut create, mut delivery) = (window.create, window.delivery);
    create.sort_unstable();
    delivery.sort_unstable();
    let rss = crate::rss::read_pid(server.child.id())?;
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))?.count();
    let (tasks, events, inbox) = table_rows(&server.dir.join(server::DB_FILE))?;
    let db_bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let path = server.dir.join(format!("{}{suffix}", server::DB_FILE));
            std::fs::metadata(path).ok().map(|m| m.len())
        })
        .sum();
    let mb = |bytes: u64| round2(bytes as f64 / (1024.0 * 1024.0));
    Ok(json!({
        "minutes": round2(elapsed.as_secs_f64() / 60.0),
        "rss_mb": mb(rss.current),
        "fds": fds,
        "tasks": tasks,
        "events": events,
        "inbox": inbox,
        "db_mb": mb(db_bytes),
        "create_p50_ms": round2(ms(percentile(&create, 50.0))),
        "create_p99_ms": round2(ms(percentile(&create, 99.0))),
        "delivery_p50_ms": round2(ms(percentile(&delivery, 50.0))),
        "delivery_p99_ms": round2(ms(percentile(&delivery, 99.0))),
        "ops": shared.ops.swap(0, Ordering::Relaxed),
        "failed": shared.failed.swap(0, Ordering::Relaxed),
    }))
}

fn print_row(row: &Value) {
    let f = |key: &str| row[key].as_f64().unwrap_or_default();
    println!(
        "{:>7.2} {:>8.1} {:>5} {:>7} {:>8} {:>6} {:>8.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>6}",
        f("minutes"),
        f("rss_mb"),
        row["fds"],
        row["tasks"],
        row["events"],
        row["inbox"],
        f("db_mb"),
        f("create_p50_ms"),
        f("create_p99_ms"),
        f("delivery_p50_ms"),
        f("delivery_p99_ms"),
        row["ops"],
        row["failed"],
    );
}

/// Rows in the store's three growing tables, read on a connection of our own.
fn table_rows(path: &Path) -> anyhow::Result<(i64, i64, i64)> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let count = |table: &str| -> rusqlite::Result<i64> {
        connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
    };
    Ok((count("tasks")?, count("events")?, count("inbox")?))
}

/// Creates a task of `kind` (30 s ttl) and returns its id; the request's time is a sample.
async fn create(
    client: &Client,
    base: &str,
    kind: &str,
    shared: &Shared,
) -> anyhow::Result<String> {
    let began = Instant::now();
    let response = client
        .post(format!("{base}/v1/tasks"))
        .json(&json!({"kind": kind, "input": null, "ttl_ms": 30_000, "session": "soak"}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    shared.window.lock().create.push(began.elapsed());
    if !status.is_success() {
        bail!("creating a {kind} task: {status} {body}");
    }
    body["id"]
        .as_str()
        .map(str::to_owned)
        .context("the created task has no id")
}

/// Starts one operation every `1 / rate` seconds, each on its own task.
async fn mixed_load(client: Client, base: String, rate: u64, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        let (client, base, shared) = (client.clone(), base.clone(), shared.clone());
        tokio::spawn(async move {
            let result = operation(n % 5, &client, &base, &shared).await;
            if shared.stopping.load(Ordering::Relaxed) {
                return;
            }
            let counter = if result.is_ok() {
                &shared.ops
            } else {
                &shared.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = result {
                eprintln!("soak: operation {} failed: {error:#}", n % 5);
            }
        });
    }
}

/// One mixed operation: quick, ask + answer, slow + cancel, process handler, quick + follow.
async fn operation(which: u64, client: &Client, base: &str, shared: &Shared) -> anyhow::Result<()> {
    match which {
        0 => create(client, base, "quick", shared).await.map(drop),
        1 => {
            let id = create(client, base, "ask", shared).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let url = format!("{base}/v1/tasks/{id}/answers/confirm");
            let response = client.post(url).json(&json!({"go": true})).send().await?;
            check(response, "answering").await
        }
        2 => {
            let id = create(client, base, "slow", shared).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let response = client
                .post(format!("{base}/v1/tasks/{id}/cancel"))
                .send()
                .await?;
            check(response, "cancelling").await
        }
        3 => create(client, base, "proc", shared).await.map(drop),
        _ => {
            let id = create(client, base, "quick", shared).await?;
            let response = client
                .get(format!("{base}/v1/tasks/{id}/events"))
                .send()
                .await?;
            let response = response.error_for_status()?;
            // The stream ends when the task has ended; reading it to the end is the check.
            let mut body = response.bytes_stream();
            let mut ended = false;
            while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), body.next())
                .await
                .context("a task's stream stalled for 30 s")?
            {
                ended |= String::from_utf8_lossy(&chunk?).contains("\"completed\"");
            }
            if !ended {
                bail!("task {id}'s stream ended without its completion");
            }
            Ok(())
        }
    }
}

/// The agent's turns: drain the session's inbox once a second, acknowledging the last drain.
async fn agent(client: Client, base: String, shared: Arc<Shared>) {
    let url = format!("{base}/v1/sessions/soak/inbox:drain");
    let mut through = Value::Null;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let drained = async {
            let response = client
                .post(&url)
                .json(&json!({"ack": through, "max": 1000}))
                .send()
                .await?
                .error_for_status()?;
            anyhow::Ok(response.json::<Value>().await?)
        }
        .await;
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        match drained {
            Ok(body) => through = body["through"].clone(),
            Err(error) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: draining the inbox failed: {error:#}");
            }
        }
    }
}

async fn check(response: reqwest::Response, what: &str) -> anyhow::Result<()> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    bail!(
        "{what}: {status} {}",
        response.text().await.unwrap_or_default()
    )
}

/// Keeps a slot's beacon going: once its beacon has completed, starts the next one.
async fn renew_beacon(client: Client, base: String, slot: Arc<Mutex<String>>, shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let id = slot.lock().clone();
        let ended = async {
            let task: Value = client
                .get(format!("{base}/v1/tasks/{id}"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(task["status"] == "completed")
        }
        .await;
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        match ended {
            Ok(false) => {}
            Ok(true) => match create(&client, &base, "beacon", &shared).await {
                Ok(next) => *slot.lock() = next,
                Err(error) => {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("soak: starting a beacon failed: {error:#}");
                }
            },
            Err(error) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: reading a beacon failed: {error:#}");
            }
        }
    }
}

/// One subscriber: follows its slot's beacon, samples the delivery time of every event emitted
/// while it was connected, and follows the next beacon when the stream ends.
async fn subscribe(client: Client, base: String, slot: Arc<Mutex<String>>, shared: Arc<Shared>) {
    let mut followed = String::new();
    loop {
        let id = slot.lock().clone();
        if id == followed {
            // The slot has not moved on yet.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let url = format!("{base}/v1/tasks/{id}/events");
        followed = id;
        if let Ok(response) = client.get(&url).send().await {
            let connected = unix_nanos();
            let mut body = response.bytes_stream();
            let mut pending = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let arrived = unix_nanos();
                pending.push_str(&String::from_utf8_lossy(&chunk));
                let Some(last_newline) = pending.rfind('\n') else {
                    continue;
                };
                let complete: String = pending.drain(..=last_newline).collect();
                let mut window = shared.window.lock();
                for stamp in complete.split("emit:").skip(1) {
                    let digits: String = stamp.chars().take_while(char::is_ascii_digit).collect();
                    match digits.parse::<u64>() {
                        // Emitted before this subscriber was there: the log replayed, not a
                        // delivery.
                        Ok(emitted) if emitted < connected => {}
                        Ok(emitted) => window
                            .delivery
                            .push(Duration::from_nanos(arrived.saturating_sub(emitted))),
                        Err(_) => {}
                    }
                }
            }
        }
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server child, killed on drop.
struct Server {
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: ChildStdin,
    dir: PathBuf,
    base: String,
}

impl Server {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("longrun-soak-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = Command::new(std::env::current_exe()?)
            .arg("soak-server")
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the server child")?;
        let stdin = child.stdin.take().context("no stdin on the child")?;
        let stdout = child.stdout.take().context("no stdout on the child")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(port) = line.trim().strip_prefix("port ") else {
            let _ = child.kill();
            bail!("the server child did not print its port (got {line:?})");
        };
        let base = format!("http://127.0.0.1:{port}");
        Ok(Self {
            child,
            _stdin: stdin,
            dir,
            base,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
