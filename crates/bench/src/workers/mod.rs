//! `workers`: trivial tasks through each way of running a kind, in one run, beside the
//! in-process baseline; and how long a task waits between its start and its handler's call.
//!
//! # The ways
//!
//! | way | the kind's handler |
//! |---|---|
//! | `in_process` (baseline) | a Rust closure registered on a [`longrun::Runtime`] in this process, on SQLite, behind the same HTTP API |
//! | `rust_worker` | a `longrun-worker` in this process, serving a `worker = true` kind of a real `longrun serve` (a child process, on SQLite) over the worker protocol |
//! | `python_worker` | `longrun.Worker` of the Python SDK in a child process, on the same server (skipped, with the reason, when the SDK's venv is not there) |
//! | `python_process` | the same Python handler run by `longrun.process.run`, one interpreter per task (skipped likewise) |
//! | `process` | `examples/handlers/echo.sh` on the same server: one `sh` spawned per task |
//!
//! Every handler returns `{"echo": input}` at once. Each way is a closed loop: `clients`
//! clients (default 16), each sending `POST /v1/tasks` with `wait_ms` (answered with the
//! completed task) as soon as its previous answer arrived, for `seconds` (default 10;
//! `--quick` 2) after a warm-up of a quarter of that which is not counted. A worker's capacity
//! is `clients`. `<way>_per_s` is completed tasks per second; `<way>_p50_ms` / `_p99_ms` the
//! request's latency. An answer that is not a completed task counts in `<way>_errors`, and a
//! benchmark with errors fails.
//!
//! # Start → handler called
//!
//! `samples` tasks (default 500; `--quick` 50), one at a time: the latency runs from just
//! before `POST /v1/tasks` is sent to the moment the handler is called (both clocks are this
//! process's: the in-process handler and the Rust worker's handler run here). For the worker,
//! that is the server's durable creation of the task, its assignment, the `start` event over
//! SSE, and the worker's dispatch. The in-process figure is the baseline.
//!
//! # Cancel → handler told
//!
//! The same number of tasks, one at a time, on the Rust worker: each handler reports that it
//! runs and waits for its cancellation; the latency runs from just before
//! `POST /v1/tasks/{id}/cancel` is sent to the moment the worker's `cancelled()` token fires in
//! the handler (the server's durable cancel request, the `cancel` event over SSE, and the
//! worker's dispatch). Issue 14's target is a p99 of 50 ms on one machine.
//!
//! Clients, the in-process server, the Rust worker and `longrun serve` share the machine's CPUs;
//! its CPU count and load are printed with the figures.

mod python;
mod servers;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use longrun_worker::{Failure, Job, Worker};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    host::Host,
    stats::{self, ms, round2},
};

use self::{
    python::PythonWorker,
    servers::{
        IN_PROCESS_KIND, InProcess, PROCESS_KIND, PYTHON_KIND, PYTHON_PROCESS_KIND, RUST_KIND,
        Serve,
    },
};

/// `workers`'s options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Concurrent clients of each closed loop (and each worker's capacity).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long each way is measured, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Tasks started one at a time for the start → handler-called latency.
    #[arg(long, default_value_t = 500)]
    samples: usize,
    /// A short smoke run (CI): figures are not meaningful.
    #[arg(long)]
    quick: bool,
}

/// One way's throughput figures, or why it was skipped.
struct Way {
    name: &'static str,
    what: &'static str,
    measured: Result<Measured, String>,
}

struct Measured {
    latencies: Vec<Duration>,
    per_s: f64,
    errors: u64,
}

/// The start → handler-called samples, and the Rust worker's cancel → handler-told samples,
/// sorted.
struct CallLatency {
    in_process: Vec<Duration>,
    rust_worker: Vec<Duration>,
    rust_worker_cancel: Vec<Duration>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let host = Host::now();
    let seconds = if args.quick { 2 } else { args.seconds };
    let samples = if args.quick { 50 } else { args.samples };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (ways, calls) =
        tokio.block_on(measure(args.clients, Duration::from_secs(seconds), samples))?;
    report(args, seconds, samples, &host, &ways, &calls);
    let errors: u64 = ways
        .iter()
        .filter_map(|way| way.measured.as_ref().ok())
        .map(|measured| measured.errors)
        .sum();
    anyhow::ensure!(
        errors == 0,
        "workers: {errors} requests were not answered with a completed task"
    );
    Ok(())
}

async fn measure(
    clients: usize,
    duration: Duration,
    samples: usize,
) -> anyhow::Result<(Vec<Way>, CallLatency)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let mut ways = Vec::new();

    let (called_tx, mut called) = mpsc::unbounded_channel();
    let in_process = InProcess::start(called_tx.clone()).await?;
    ways.push(Way {
        name: "in_process",
        what: "a Rust closure in the server's process (baseline)",
        measured: Ok(loop_twice(&http, &in_process.url, IN_PROCESS_KIND, clients, duration).await),
    });
    let in_process_calls = call_latency(
        &http,
        &in_process.url,
        IN_PROCESS_KIND,
        samples,
        &mut called,
    )
    .await?;
    in_process.stop().await;

    let interpreter = python::interpreter();
    let serve = Serve::start(interpreter.as_deref().ok())?;
    let shutdown = CancellationToken::new();
    let worker = Worker::builder(&serve.url)
        .name("bench-rust")
        .capacity(clients)
        .kind(RUST_KIND, move |job: Job, input: Value| {
            let called = called_tx.clone();
            async move {
                if input["probe"] == true || input["hold"] == true {
                    let _ = called.send(Instant::now());
                }
                if input["hold"] == true {
                    // Runs until cancelled; the moment the worker tells it is the sample.
                    job.cancelled().cancelled().await;
                    let _ = called.send(Instant::now());
                    return Err(Failure::cancelled());
                }
                Ok(json!({ "echo": input }))
            }
        })
        .build()?;
    let running = tokio::spawn(worker.run(shutdown.clone()));
    ways.push(Way {
        name: "rust_worker",
        what: "longrun-worker over the worker protocol",
        measured: Ok(loop_twice(&http, &serve.url, RUST_KIND, clients, duration).await),
    });
    let worker_calls = call_latency(&http, &serve.url, RUST_KIND, samples, &mut called).await?;
    let worker_cancels = cancel_latency(&http, &serve.url, RUST_KIND, samples, &mut called).await?;
    shutdown.cancel();
    running.await??;

    let python = match PythonWorker::start(&http, &serve.url, clients).await {
        Ok(worker) => {
            let measured = loop_twice(&http, &serve.url, PYTHON_KIND, clients, duration).await;
            drop(worker);
            Ok(measured)
        }
        Err(why) => Err(why),
    };
    ways.push(Way {
        name: "python_worker",
        what: "longrun.Worker (Python SDK), a child process",
        measured: python,
    });
    ways.push(Way {
        name: "process",
        what: "examples/handlers/echo.sh, one spawn per task",
        measured: Ok(loop_twice(&http, &serve.url, PROCESS_KIND, clients, duration).await),
    });
    let python_process = match &interpreter {
        Ok(_) => Ok(loop_twice(&http, &serve.url, PYTHON_PROCESS_KIND, clients, duration).await),
        Err(why) => Err(why.clone()),
    };
    ways.push(Way {
        name: "python_process",
        what: "the Python handler by longrun.process.run, one interpreter per task",
        measured: python_process,
    });
    Ok((
        ways,
        CallLatency {
            in_process: in_process_calls,
            rust_worker: worker_calls,
            rust_worker_cancel: worker_cancels,
        },
    ))
}

/// A warm-up of a quarter of `duration`, not counted, then the measured closed loop.
async fn loop_twice(
    http: &reqwest::Client,
    base: &str,
    kind: &'static str,
    clients: usize,
    duration: Duration,
) -> Measured {
    closed_loop(http, base, kind, clients, duration / 4).await;
    closed_loop(http, base, kind, clients, duration).await
}

/// `clients` clients starting `kind` tasks back to back, each waiting for its task to end.
async fn closed_loop(
    http: &reqwest::Client,
    base: &str,
    kind: &'static str,
    clients: usize,
    duration: Duration,
) -> Measured {
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut loops = Vec::with_capacity(clients);
    for client in 0..clients {
        let (http, url, errors) = (http.clone(), format!("{base}/v1/tasks"), errors.clone());
        loops.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0_u64;
            while Instant::now() < deadline {
                n += 1;
                let body =
                    json!({"kind": kind, "input": {"client": client, "n": n}, "wait_ms": 30_000});
                let sent = Instant::now();
                let ok = match http.post(&url).json(&body).send().await {
                    Ok(response) if response.status().is_success() => response
                        .text()
                        .await
                        .is_ok_and(|text| text.contains(r#""status":"completed""#)),
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
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let errors = errors.load(Ordering::Relaxed);
    Measured {
        per_s: (latencies.len() as u64).saturating_sub(errors) as f64 / elapsed,
        latencies,
        errors,
    }
}

/// `samples` tasks of `kind`, one at a time: from the send of `POST /v1/tasks` to the handler's
/// call (which `called` reports). Sorted.
async fn call_latency(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    samples: usize,
    called: &mut mpsc::UnboundedReceiver<Instant>,
) -> anyhow::Result<Vec<Duration>> {
    let url = format!("{base}/v1/tasks");
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        let body = json!({"kind": kind, "input": {"probe": true, "n": n}, "wait_ms": 30_000});
        let sent = Instant::now();
        let request = http.post(&url).json(&body).send();
        let (answer, call) = tokio::join!(request, async {
            tokio::time::timeout(Duration::from_secs(30), called.recv()).await
        });
        let answer = answer?.error_for_status()?;
        anyhow::ensure!(
            answer.text().await?.contains(r#""status":"completed""#),
            "a {kind} probe task did not complete"
        );
        let call = call
            .map_err(|_| anyhow::anyhow!("the {kind} handler was not called within 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("the {kind} handler's channel closed"))?;
        latencies.push(call.saturating_duration_since(sent));
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// `samples` tasks of `kind`, one at a time, each cancelled once its handler runs: from the
/// send of `POST /v1/tasks/{id}/cancel` to the handler's `cancelled()` firing (which `told`
/// reports, after the handler's start). Sorted.
async fn cancel_latency(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    samples: usize,
    told: &mut mpsc::UnboundedReceiver<Instant>,
) -> anyhow::Result<Vec<Duration>> {
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), told.recv())
            .await
            .map_err(|_| anyhow::anyhow!("the {kind} handler did not report within 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("the {kind} handler's channel closed"))
    };
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        let body = json!({"kind": kind, "input": {"hold": true, "n": n}});
        let started: Value = http
            .post(format!("{base}/v1/tasks"))
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = started["id"].as_str().context("a start without an id")?;
        next().await?;
        let sent = Instant::now();
        let cancel = http.post(format!("{base}/v1/tasks/{id}/cancel")).send();
        let (answer, fired) = tokio::join!(cancel, next());
        let fired = fired?;
        let answer = answer?.error_for_status()?.text().await?;
        anyhow::ensure!(
            answer.contains(r#""status":"cancelled""#),
            "a cancelled {kind} task did not end cancelled: {answer}"
        );
        latencies.push(fired.saturating_duration_since(sent));
    }
    latencies.sort_unstable();
    Ok(latencies)
}

fn report(
    args: &Args,
    seconds: u64,
    samples: usize,
    host: &Host,
    ways: &[Way],
    calls: &CallLatency,
) {
    println!(
        "workers: trivial tasks, {} clients, closed loop, {seconds} s per way, SQLite ({} CPUs, load {})",
        args.clients,
        host.cpus,
        host.load_1m
            .map_or("?".to_owned(), |load| format!("{load:.2}")),
    );
    println!(
        "  {:<14} {:>9} {:>9} {:>9} {:>7}  handler",
        "way", "p50 ms", "p99 ms", "per s", "errors"
    );
    let mut summary = Map::new();
    for way in ways {
        match &way.measured {
            Ok(figures) => {
                let p50 = round2(ms(stats::percentile(&figures.latencies, 50.0)));
                let p99 = round2(ms(stats::percentile(&figures.latencies, 99.0)));
                let per_s = figures.per_s.round();
                println!(
                    "  {:<14} {p50:>9.2} {p99:>9.2} {per_s:>9.0} {:>7}  {}",
                    way.name, figures.errors, way.what
                );
                summary.insert(format!("{}_p50_ms", way.name), json!(p50));
                summary.insert(format!("{}_p99_ms", way.name), json!(p99));
                summary.insert(format!("{}_per_s", way.name), json!(per_s));
                summary.insert(format!("{}_errors", way.name), json!(figures.errors));
            }
            Err(why) => {
                println!("  {:<14} skipped: {why}", way.name);
                summary.insert(format!("{}_skipped", way.name), json!(why));
            }
        }
    }
    let per_s = |name: &str| {
        ways.iter()
            .find(|way| way.name == name)
            .and_then(|way| way.measured.as_ref().ok())
            .map(|measured| measured.per_s)
    };
    if let Some(process) = per_s("process").filter(|rate| *rate > 0.0) {
        for name in ["rust_worker", "python_worker"] {
            if let Some(rate) = per_s(name) {
                let ratio = round2(rate / process);
                println!("  {name} / process: {ratio:.1}×");
                summary.insert(format!("{name}_vs_process"), json!(ratio));
            }
        }
    }
    // The issue's comparison: the same Python handler as a worker and as a process handler.
    if let (Some(worker), Some(process)) = (
        per_s("python_worker"),
        per_s("python_process").filter(|rate| *rate > 0.0),
    ) {
        let ratio = round2(worker / process);
        println!("  python_worker / python_process: {ratio:.1}×");
        summary.insert("python_worker_vs_python_process".into(), json!(ratio));
    }
    println!("start → handler called, {samples} tasks one at a time:");
    for (name, sorted) in [
        ("in_process", &calls.in_process),
        ("rust_worker", &calls.rust_worker),
    ] {
        let p50 = round2(ms(stats::percentile(sorted, 50.0)));
        let p99 = round2(ms(stats::percentile(sorted, 99.0)));
        println!("  {name:<14} p50 {p50:.2} ms, p99 {p99:.2} ms");
        summary.insert(format!("{name}_called_p50_ms"), json!(p50));
        summary.insert(format!("{name}_called_p99_ms"), json!(p99));
    }
    println!("cancel → handler told, {samples} tasks one at a time:");
    let sorted = &calls.rust_worker_cancel;
    let p50 = round2(ms(stats::percentile(sorted, 50.0)));
    let p99 = round2(ms(stats::percentile(sorted, 99.0)));
    println!("  rust_worker    p50 {p50:.2} ms, p99 {p99:.2} ms");
    summary.insert("rust_worker_cancel_p50_ms".into(), json!(p50));
    summary.insert("rust_worker_cancel_p99_ms".into(), json!(p99));
    summary.insert("clients".into(), json!(args.clients));
    summary.insert("seconds".into(), json!(seconds));
    summary.insert("samples".into(), json!(samples));
    summary.insert("quick".into(), json!(args.quick));
    summary.insert("cpus".into(), json!(host.cpus));
    summary.insert("load_1m".into(), json!(host.load_1m));
    println!("{}", Value::Object(summary));
}
