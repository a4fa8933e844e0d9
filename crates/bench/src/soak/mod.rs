//! `soak`: hours of mixed load on one server, or on two PostgreSQL nodes, printed as a time
//! series of what must stay flat, and drawn as an SVG.
//!
//! Each server is a child process of this binary ([`server`], the hidden `soak-server`
//! subcommand): the HTTP API over a runtime, with in-process kinds and one process handler. By
//! default one server on a SQLite file; with `--store postgres --nodes 2`, two nodes of one
//! cluster on a fresh PostgreSQL schema. Against them, for `--minutes`:
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
//! With several nodes, streams, beacons and operations are spread over them in turn, and an
//! operation's answer, cancel or stream goes to the node after the one that started it.
//!
//! Every `--sample-secs` one row is printed: elapsed time, each server's RSS and open file
//! descriptors (`/proc/<pid>`), the rows in `tasks`, `events` and `inbox`, the store's size on
//! disk (SQLite: file and WAL; PostgreSQL: the schema's tables with indexes) and on PostgreSQL
//! its dead tuples, the p50/p99 of creating a task (request sent to response read) and of event
//! delivery (the beacon's stamp to the chunk's arrival here; all processes read the same clock)
//! over that window, operations done and failed. After warm-up every column but the operation
//! counts should stay flat. The last line on stdout is the whole series as JSON; `--svg` draws
//! it. A run in which any operation failed exits with an error after printing everything.

mod load;
mod plot;
mod probe;
pub(crate) mod server;

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use parking_lot::Mutex;
use reqwest::Client;
use serde_json::{Value, json};

use crate::{
    stats::{ms, percentile, round2},
    stores::{self, Location, StoreKind},
};
use load::Nodes;
use plot::{Line, Panel};
use probe::Probe;

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
    /// The store: one SQLite file, or PostgreSQL (a fresh schema, dropped at the end).
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    /// Servers: several only on PostgreSQL, as nodes of one cluster.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// The PostgreSQL database (default: `LONGRUN_TEST_POSTGRES_URL`, else the local `test`).
    #[arg(long)]
    postgres: Option<String>,
    /// Also draw the series as an SVG at this path.
    #[arg(long)]
    svg: Option<PathBuf>,
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
    if args.nodes == 0 || (args.nodes > 1 && args.store != StoreKind::Postgres) {
        bail!("--nodes above 1 needs --store postgres (a SQLite file has one server)");
    }
    crate::http::raise_open_files()?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(soak(args))
}

async fn soak(args: &Args) -> anyhow::Result<()> {
    let place = Place::fresh(args)?;
    let result = soak_at(args, &place).await;
    place.remove().await;
    result
}

async fn soak_at(args: &Args, place: &Place) -> anyhow::Result<()> {
    // The first node makes the schema; the others start once it has.
    let mut servers = Vec::new();
    for n in 0..args.nodes {
        servers.push(Server::start(args.store, &place.location, &node_name(n))?);
    }
    let probe = match &place.location.postgres {
        Some(url) => Probe::postgres(url, place.location.schema.as_deref().unwrap_or("")).await?,
        None => Probe::Sqlite(place.location.path.clone().context("no SQLite file")?),
    };
    let client = Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .context("cannot build the HTTP client")?;
    let shared = Arc::new(Shared::default());
    let nodes = Nodes(servers.iter().map(|server| server.base.clone()).collect());

    let mut slots = Vec::new();
    for n in 0..args.beacons.max(1) {
        let base = nodes.pick(n as u64).to_owned();
        let first = load::create(&client, &base, "beacon", &shared).await?;
        let slot = Arc::new(Mutex::new(first));
        tokio::spawn(load::renew_beacon(
            client.clone(),
            base,
            slot.clone(),
            shared.clone(),
        ));
        slots.push(slot);
    }
    for n in 0..args.streams {
        let slot = slots[n % slots.len()].clone();
        tokio::spawn(load::subscribe(
            client.clone(),
            nodes.pick(n as u64).to_owned(),
            slot,
            shared.clone(),
        ));
    }
    eprintln!(
        "soak: {} node(s) on {}, {} streams on {} beacon slots, {} operations/s, {} min",
        servers.len(),
        args.store.name(),
        args.streams,
        slots.len(),
        args.rate,
        args.minutes
    );
    let load = tokio::spawn(load::mixed_load(
        client.clone(),
        nodes.clone(),
        args.rate,
        shared.clone(),
    ));
    let agent = tokio::spawn(load::agent(client.clone(), nodes, shared.clone()));

    let columns = Columns::new(servers.len(), args.store == StoreKind::Postgres);
    columns.print_header();
    let started = Instant::now();
    let end = started + Duration::from_secs(args.minutes * 60);
    let every = Duration::from_secs(args.sample_secs.max(1));
    let mut series = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(every.min(end.saturating_duration_since(Instant::now()))).await;
        let row = sample(&servers, &probe, &shared, started.elapsed()).await?;
        probe.maintain().await?;
        columns.print_row(&row);
        series.push(row);
    }
    // Stopped before the servers go, so nothing in flight is counted as failed.
    shared.stopping.store(true, Ordering::Relaxed);
    load.abort();
    agent.abort();
    let title = format!(
        "longrun-bench soak: {} node(s) on {}, {} streams, {} operations/s",
        servers.len(),
        args.store.name(),
        args.streams,
        args.rate
    );
    if let Some(path) = &args.svg {
        std::fs::write(path, plot::svg(&title, &panels(&series, servers.len())))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let summary = json!({
        "bench": "soak",
        "store": args.store.name(),
        "nodes": servers.len(),
        "minutes": args.minutes,
        "streams": args.streams,
        "rate": args.rate,
        "reconnects": shared.reconnects.load(Ordering::Relaxed),
        "series": series,
    });
    println!("{summary}");
    let failed: u64 = series.iter().filter_map(|row| row["failed"].as_u64()).sum();
    if failed > 0 {
        bail!("{failed} operations failed during the soak (their errors are above)");
    }
    Ok(())
}

/// The `n`th node's letter: its name is `soak-<letter>`, and its columns and lines say it.
fn node_letter(n: usize) -> char {
    char::from(b'a' + (n % 26) as u8)
}

/// The `n`th node's name.
fn node_name(n: usize) -> String {
    format!("soak-{}", node_letter(n))
}

/// One row of the series.
async fn sample(
    servers: &[Server],
    probe: &Probe,
    shared: &Shared,
    elapsed: Duration,
) -> anyhow::Result<Value> {
    let window = std::mem::take(&mut *shared.window.lock());
    let (mut create, mut delivery) = (window.create, window.delivery);
    create.sort_unstable();
    delivery.sort_unstable();
    let mb = |bytes: u64| round2(bytes as f64 / (1024.0 * 1024.0));
    let mut rss = Vec::new();
    let mut fds = Vec::new();
    for server in servers {
        rss.push(mb(crate::rss::read_pid(server.child.id())?.current));
        fds.push(std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))?.count());
    }
    let store = probe.read().await?;
    Ok(json!({
        "minutes": round2(elapsed.as_secs_f64() / 60.0),
        "rss_mb": rss,
        "fds": fds,
        "tasks": store.tasks,
        "events": store.events,
        "inbox": store.inbox,
        "db_mb": mb(store.bytes),
        "dead_tuples": store.dead_tuples,
        "create_p50_ms": round2(ms(percentile(&create, 50.0))),
        "create_p99_ms": round2(ms(percentile(&create, 99.0))),
        "delivery_p50_ms": round2(ms(percentile(&delivery, 50.0))),
        "delivery_p99_ms": round2(ms(percentile(&delivery, 99.0))),
        "ops": shared.ops.swap(0, Ordering::Relaxed),
        "failed": shared.failed.swap(0, Ordering::Relaxed),
    }))
}

/// The printed table's columns: per node RSS and descriptors, then the store and latencies.
struct Columns {
    nodes: usize,
    postgres: bool,
}

impl Columns {
    fn new(nodes: usize, postgres: bool) -> Self {
        Self { nodes, postgres }
    }

    fn print_header(&self) {
        let mut line = format!("{:>7}", "min");
        for n in 0..self.nodes {
            line += &format!(" {:>8}", format!("rss_mb{}", self.suffix(n)));
        }
        for n in 0..self.nodes {
            line += &format!(" {:>5}", format!("fds{}", self.suffix(n)));
        }
        line += &format!(
            " {:>7} {:>8} {:>6} {:>8}",
            "tasks", "events", "inbox", "db_mb"
        );
        if self.postgres {
            line += &format!(" {:>7}", "dead");
        }
        line += &format!(
            " {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
            "create50", "create99", "deliv50", "deliv99", "ops", "failed"
        );
        println!("{line}");
    }

    fn print_row(&self, row: &Value) {
        let f = |key: &str| row[key].as_f64().unwrap_or_default();
        let nth = |key: &str, n: usize| row[key][n].as_f64().unwrap_or_default();
        let mut line = format!("{:>7.2}", f("minutes"));
        for n in 0..self.nodes {
            line += &format!(" {:>8.1}", nth("rss_mb", n));
        }
        for n in 0..self.nodes {
            line += &format!(" {:>5}", nth("fds", n));
        }
        line += &format!(
            " {:>7} {:>8} {:>6} {:>8.1}",
            row["tasks"],
            row["events"],
            row["inbox"],
            f("db_mb")
        );
        if self.postgres {
            line += &format!(" {:>7}", row["dead_tuples"]);
        }
        line += &format!(
            " {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>6}",
            f("create_p50_ms"),
            f("create_p99_ms"),
            f("delivery_p50_ms"),
            f("delivery_p99_ms"),
            row["ops"],
            row["failed"]
        );
        println!("{line}");
    }

    /// `_a`, `_b`… with several nodes; nothing with one.
    fn suffix(&self, n: usize) -> String {
        if self.nodes == 1 {
            String::new()
        } else {
            format!("_{}", node_letter(n))
        }
    }
}

/// The series as the SVG's panels.
fn panels(series: &[Value], nodes: usize) -> Vec<Panel> {
    let line = |label: &str, value: &dyn Fn(&Value) -> f64| Line {
        label: label.to_owned(),
        points: series
            .iter()
            .map(|row| (row["minutes"].as_f64().unwrap_or_default(), value(row)))
            .collect(),
    };
    let per_node = |key: &'static str| -> Vec<Line> {
        (0..nodes)
            .map(|n| {
                let label = format!("node {}", node_letter(n));
                line(&label, &move |row: &Value| {
                    row[key][n].as_f64().unwrap_or_default()
                })
            })
            .collect()
    };
    let field = |key: &'static str| move |row: &Value| row[key].as_f64().unwrap_or_default();
    let mut panels = vec![
        Panel {
            title: "server RSS (MB)".to_owned(),
            lines: per_node("rss_mb"),
        },
        Panel {
            title: "open file descriptors".to_owned(),
            lines: per_node("fds"),
        },
        Panel {
            title: "rows in the store".to_owned(),
            lines: vec![
                line("tasks", &field("tasks")),
                line("events", &field("events")),
                line("inbox", &field("inbox")),
            ],
        },
        Panel {
            title: "store on disk (MB)".to_owned(),
            lines: vec![line("size", &field("db_mb"))],
        },
    ];
    if series.iter().any(|row| row["dead_tuples"].is_number()) {
        panels.push(Panel {
            title: "PostgreSQL dead tuples".to_owned(),
            lines: vec![line("n_dead_tup", &field("dead_tuples"))],
        });
    }
    panels.push(Panel {
        title: "latency p99 (ms)".to_owned(),
        lines: vec![
            line("create", &field("create_p99_ms")),
            line("delivery", &field("delivery_p99_ms")),
        ],
    });
    panels
}

/// Where the run's store lives, made fresh and removed at the end.
struct Place {
    location: Location,
    /// The SQLite file's directory.
    dir: Option<PathBuf>,
}

impl Place {
    fn fresh(args: &Args) -> anyhow::Result<Self> {
        let stamp = std::process::id();
        match args.store {
            StoreKind::Sqlite => {
                let dir = std::env::temp_dir().join(format!("longrun-soak-{stamp}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                Ok(Self {
                    location: Location {
                        path: Some(dir.join("longrun.db")),
                        postgres: None,
                        schema: None,
                    },
                    dir: Some(dir),
                })
            }
            StoreKind::Postgres => Ok(Self {
                location: Location {
                    path: None,
                    postgres: Some(
                        args.postgres
                            .clone()
                            .unwrap_or_else(stores::default_postgres_url),
                    ),
                    schema: Some(format!("soak_{stamp}")),
                },
                dir: None,
            }),
        }
    }

    async fn remove(&self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let (Some(url), Some(schema)) = (&self.location.postgres, &self.location.schema)
            && let Err(error) = stores::drop_schema(url, schema).await
        {
            eprintln!("soak: could not drop the schema {schema}: {error:#}");
        }
    }
}

/// A server child, killed on drop.
struct Server {
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: ChildStdin,
    base: String,
}

impl Server {
    /// Starts node `node` on `location` and waits until it serves.
    fn start(store: StoreKind, location: &Location, node: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("soak-server")
            .args(["--store", store.name(), "--node", node])
            .args(location.to_args())
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
            base,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
