//! The server under test (`http-server`, a hidden subcommand run as a child process by `http`),
//! and the parent's handle on it.
//!
//! The child builds a [`Runtime`] on a [`SqliteStore`] in a fresh directory, registers two
//! in-process kinds, and serves [`longrun_http::router`] with [`Auth::Anonymous`] on
//! `127.0.0.1:0`, plus one bench-only route, `GET /bench/raw-events`: a bare axum SSE endpoint
//! fed by a `tokio::sync::broadcast` channel, the baseline of the fan-out. It prints
//! `port <n>` on stdout and then takes commands from stdin, one a line:
//!
//! - `tick`: the running `ticker` task emits one progress event whose message is
//!   `emit:<unix nanos>`, stamped just before `Context::progress` is called (so the durable
//!   write of the event is inside the measured delivery time);
//! - `end`: the `ticker` task returns, which ends its event streams;
//! - `raw`: the raw endpoint sends `emit:<unix nanos>` to every subscriber;
//! - `heap`: prints `heap <live> <peak>`, the bytes the child's Rust code holds on the heap
//!   now and at most since it started (the counting allocator, [`crate::alloc`]). SQLite's C
//!   allocations are not in it, so RSS minus this is SQLite, stacks, code and what the
//!   allocator holds but nobody uses.
//!
//! When stdin closes (the parent went away), the child exits.
//!
//! Kinds: `noop` returns `null` at once; `ticker` waits for `tick` and `end` commands, so the
//! benchmark alone decides when each event is emitted.

use std::{
    convert::Infallible,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use axum::{
    Router,
    extract::State,
    response::sse::{self, Sse},
    routing::get,
};
use futures_util::Stream;
use longrun::{Context, KindSpec, Options, Runtime, TaskError};
use longrun_http::{Api, Auth, Limits};
use longrun_store_sqlite::SqliteStore;
use serde_json::Value;
use tokio::sync::{Mutex, broadcast, mpsc};

/// The child's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The directory the SQLite file goes in (created; removed by the parent).
    #[arg(long)]
    dir: PathBuf,
}

/// What the `ticker` task is told to do.
enum Tick {
    /// Emit one progress event.
    Emit,
    /// Return.
    End,
}

/// Serves until stdin closes.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    super::raise_open_files()?;
    fs::create_dir_all(&args.dir)?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(serve(args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let store = SqliteStore::open(args.dir.join("longrun.db"))?;
    // As `longrun serve` builds it for SQLite: default options apart from the store.
    let runtime = Runtime::new(Options {
        store: Some(Arc::new(store)),
        ..Options::default()
    });
    runtime.register(
        KindSpec::new("noop"),
        |_ctx: Context, _input: Value| async { Ok::<_, TaskError>(Value::Null) },
    )?;
    let (ticks, ticks_rx) = mpsc::unbounded_channel();
    let ticks_rx = Arc::new(Mutex::new(ticks_rx));
    runtime.register(
        KindSpec::new("ticker"),
        move |ctx: Context, _input: Value| {
            let ticks = ticks_rx.clone();
            async move {
                // One ticker at a time: a second one waits here until the first returns.
                let mut ticks = ticks.lock().await;
                while let Some(Tick::Emit) = ticks.recv().await {
                    let message = format!("emit:{}", unix_nanos());
                    ctx.progress(None, message)
                        .await
                        .map_err(|error| TaskError::new("progress", error.to_string()))?;
                }
                Ok::<_, TaskError>(Value::Null)
            }
        },
    )?;

    // Every subscriber is the one anonymous principal, so the per-principal stream limit
    // (64 by default) must make room for the whole fan-out.
    let limits = Limits {
        streams_per_principal: 1_000_000,
        ..Limits::default()
    };
    let api = Api::new(longrun_http::Surface::new(runtime, Auth::Anonymous, limits));
    let (raw, _) = broadcast::channel::<u64>(1024);
    let app = longrun_http::router(api).merge(
        Router::new()
            .route("/bench/raw-events", get(raw_events))
            .with_state(raw.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "port {port}")?;
    stdout.flush()?;

    // Stdin is read on a plain thread: the commands are few, and a blocking read there keeps
    // the server's workers free.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "tick" => drop(ticks.send(Tick::Emit)),
                "end" => drop(ticks.send(Tick::End)),
                "raw" => drop(raw.send(unix_nanos())),
                "heap" => {
                    let mut stdout = std::io::stdout().lock();
                    let live = crate::alloc::live_heap_bytes();
                    let peak = crate::alloc::peak_heap_bytes();
                    // The parent is gone if this fails; the loop ends at the next read.
                    let _ = writeln!(stdout, "heap {live} {peak}").and_then(|()| stdout.flush());
                }
                _ => {}
            }
        }
        // The parent is gone or done: nothing more to serve.
        std::process::exit(0);
    });
    // As `longrun serve` serves it: the router finished once, not once per connection.
    axum::serve(listener, app.into_make_service()).await?;
    Ok(())
}

/// The fan-out baseline: a bare SSE stream of a broadcast channel, one message per value.
async fn raw_events(
    State(raw): State<broadcast::Sender<u64>>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let stream = futures_util::stream::unfold(raw.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(nanos) => {
                    let event = sse::Event::default().data(format!("emit:{nanos}"));
                    return Some((Ok(event), rx));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
}

/// Wall-clock time in nanoseconds since the Unix epoch: the emit stamp. Server and benchmark
/// run on one machine and read the same clock, so receive minus emit is a delivery time.
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// The parent's handle on a running server child; killing it on drop.
pub(crate) struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

impl Server {
    /// Starts a fresh server (its own SQLite file) and waits for its port.
    pub(crate) fn start(name: &str) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("longrun-bench-http-{}-{name}", std::process::id()));
        // A leftover of an earlier run with the same pid would hold old tasks.
        let _ = fs::remove_dir_all(&dir);
        let mut child = Command::new(std::env::current_exe()?)
            .arg("http-server")
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the server child")?;
        let stdin = child.stdin.take().context("no stdin on the child")?;
        let stdout = child.stdout.take().context("no stdout on the child")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(port) = line.trim().strip_prefix("port ") else {
            let _ = child.kill();
            bail!("the server child did not print its port (got {line:?})");
        };
        let base = format!("http://127.0.0.1:{port}");
        Ok(Self {
            child,
            stdin,
            stdout,
            dir,
            base,
        })
    }

    /// Sends one command line (`tick`, `end`, `raw`).
    pub(crate) fn command(&mut self, command: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The child's thread count now.
    pub(crate) fn threads(&self) -> anyhow::Result<u64> {
        crate::rss::threads_pid(self.child.id())
            .context("cannot read the server's /proc status (Linux only)")
    }

    /// The child's Rust heap now and its peak since it started, in bytes (`heap`).
    pub(crate) fn heap(&mut self) -> anyhow::Result<(u64, u64)> {
        self.command("heap")?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let mut fields = line.split_whitespace();
        let (Some("heap"), Some(live), Some(peak)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!("the server child answered {line:?} to `heap`");
        };
        Ok((live.parse()?, peak.parse()?))
    }

    /// The child's resident set size now and its peak, in bytes (`VmRSS`, `VmHWM`).
    pub(crate) fn rss(&self) -> anyhow::Result<(u64, u64)> {
        let rss = crate::rss::read_pid(self.child.id())
            .context("cannot read the server's /proc status (Linux only)")?;
        Ok((rss.current, rss.peak))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
