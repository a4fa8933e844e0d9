//! `runtime`: the in-memory task runtime against plain tokio and agentkit-task-manager 0.10.7.
//!
//! Four scenarios, measured in one run and printed side by side:
//!
//! - **(a) throughput**: `tasks` trivial background tasks, from the first start to the last
//!   terminal event observed by a consumer. tokio (`spawn` + mpsc), agentkit
//!   (`AsyncTaskManager`, all `Background`, consumer counts `TaskEvent::Completed`) and
//!   longrun. Each figure is the **median of 3 repetitions**, each in a fresh runtime, after
//!   one uncounted warm-up run of each (the first run in a process also pays for growing the
//!   heap). The repetitions are interleaved (tokio, agentkit, longrun, tokio, …) so that
//!   drift in the machine's speed spreads over all three.
//! - **(b) memory in flight**: `inflight` tasks that each sleep 1 s, all at once. Each side
//!   runs alone in a fresh child process (`runtime-probe`), which reports peak RSS (`VmHWM`,
//!   reset just before) above the RSS just before; each side's figure is the run with the
//!   **median delta of 3**. `bytes_per_inflight_task` is longrun's delta minus tokio's,
//!   divided by `inflight`: what longrun adds per task on top of tokio. RSS moves by whole
//!   pages and malloc's free space at start varies from process to process by ~100 KB, so
//!   the per-task figure is good to about ±10 B at 10k tasks, but only ±100 B with `--quick`
//!   (1k tasks). The exact live-heap peak per task is printed beside it as a cross-check.
//! - **(c) fan-out latency**: one task emits `events` progress events to `subscribers`
//!   subscribers; emits are paced (the next after all subscribers have the previous), and
//!   latency is emit → receive. The baseline is `tokio::sync::broadcast`. Percentiles are
//!   over all `events × subscribers` samples of a run (nearest rank); each side reports the
//!   run with the **median p99 of 3**, interleaved, since one descheduled worker thread
//!   shows up directly in a single run's tail.
//! - **(d) retention**: live heap bytes (counting global allocator) after `tasks` tasks have
//!   run and everything has expired, minus the bytes at start; each side in a fresh child
//!   process, RSS printed for reference.
//!
//! Every measurement runs in a fresh multi-thread tokio runtime with 2 workers (the target
//! machine has 2 cores), driven from `block_on` like `#[tokio::main]`.

mod agentkit;
mod baseline;
mod longrun;
pub(crate) mod probe;

use std::time::Duration;

use serde_json::json;

use crate::host::Host;
use crate::stats;
use probe::{Measurement, Scenario};

/// How long each task of scenario (b) sleeps.
const INFLIGHT_SLEEP: Duration = Duration::from_secs(1);
/// Repetitions per implementation in scenario (a); the median is reported.
const THROUGHPUT_REPETITIONS: usize = 3;
/// Child processes per implementation in scenario (b); the median is reported.
const INFLIGHT_REPETITIONS: usize = 3;
/// Runs per implementation in scenario (c); the run with the median p99 is reported.
const FANOUT_REPETITIONS: usize = 3;
/// Worker threads of every runtime the benchmark builds.
const WORKER_THREADS: usize = 2;

const TARGET_RATIO_VS_TOKIO: f64 = 0.7;
const TARGET_RATIO_VS_AGENTKIT: f64 = 5.0;
const TARGET_BYTES_PER_INFLIGHT_TASK: f64 = 1024.0;
const TARGET_FANOUT_P99_US: f64 = 1000.0;
const TARGET_RETAINED_BYTES: i64 = 1024 * 1024;

/// Arguments of the `runtime` subcommand.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Scale the counts down (10k tasks, 1k in flight, 100×100 fan-out) for a smoke test.
    #[arg(long)]
    quick: bool,
}

/// The sizes of the scenarios.
#[derive(Clone, Copy, Debug)]
struct Counts {
    /// Tasks in (a) and (d).
    tasks: usize,
    /// Concurrent sleeping tasks in (b).
    inflight: usize,
    /// Events emitted in (c).
    events: usize,
    /// Subscribers in (c).
    subscribers: usize,
}

impl Counts {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                tasks: 10_000,
                inflight: 1_000,
                events: 100,
                subscribers: 100,
            }
        } else {
            Self {
                tasks: 100_000,
                inflight: 10_000,
                events: 1_000,
                subscribers: 1_000,
            }
        }
    }
}

/// Builds the runtime every measurement runs in.
pub(crate) fn fresh_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
}

/// Runs all scenarios, prints the table, then the JSON object as the last stdout line.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let counts = Counts::new(args.quick);
    let host_before = Host::now();
    let report = Report {
        counts,
        quick: args.quick,
        host_before,
        throughput: throughput(counts.tasks)?,
        inflight: inflight(counts.inflight)?,
        fanout: fanout(counts.events, counts.subscribers)?,
        retention: retention(counts.tasks)?,
        host_after: Host::now(),
    };
    report.print_table();
    println!("{}", report.json());
    Ok(())
}

/// The timed runs of scenario (a), per implementation, in the order they ran.
struct Throughput {
    tokio: Vec<Duration>,
    agentkit: Vec<Duration>,
    longrun: Vec<Duration>,
}

fn throughput(n: usize) -> anyhow::Result<Throughput> {
    let mut runs = Throughput {
        tokio: Vec::new(),
        agentkit: Vec::new(),
        longrun: Vec::new(),
    };
    eprintln!("(a) throughput, warm-up (not counted): {n} tasks each");
    fresh_runtime()?.block_on(baseline::tokio_throughput(n));
    fresh_runtime()?.block_on(agentkit::agentkit_throughput(n));
    fresh_runtime()?.block_on(longrun::longrun_throughput(n));
    for rep in 1..=THROUGHPUT_REPETITIONS {
        eprintln!("(a) throughput, repetition {rep}/{THROUGHPUT_REPETITIONS}: {n} tasks each");
        runs.tokio
            .push(fresh_runtime()?.block_on(baseline::tokio_throughput(n)));
        runs.agentkit
            .push(fresh_runtime()?.block_on(agentkit::agentkit_throughput(n)));
        runs.longrun
            .push(fresh_runtime()?.block_on(longrun::longrun_throughput(n)));
    }
    Ok(runs)
}

struct Inflight {
    tokio: Measurement,
    longrun: Measurement,
}

fn inflight(n: usize) -> anyhow::Result<Inflight> {
    let mut tokio = Vec::new();
    let mut longrun = Vec::new();
    for rep in 1..=INFLIGHT_REPETITIONS {
        eprintln!(
            "(b) memory, repetition {rep}/{INFLIGHT_REPETITIONS}: {n} tasks sleeping \
             {INFLIGHT_SLEEP:?}, each side in a child process"
        );
        tokio.push(probe::spawn(Scenario::InflightTokio, n, INFLIGHT_SLEEP)?);
        longrun.push(probe::spawn(Scenario::InflightLongrun, n, INFLIGHT_SLEEP)?);
    }
    Ok(Inflight {
        tokio: median_by_peak_delta(tokio),
        longrun: median_by_peak_delta(longrun),
    })
}

/// The run whose peak RSS delta is the median (the lower middle for an even count).
fn median_by_peak_delta(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by_key(Measurement::rss_peak_delta);
    runs.swap_remove((runs.len() - 1) / 2)
}

/// p50 and p99 of one side of scenario (c).
#[derive(Clone, Copy)]
struct Percentiles {
    samples: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Percentiles {
    fn of(mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self {
            samples: latencies.len(),
            p50: stats::percentile(&latencies, 50.0),
            p99: stats::percentile(&latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
        }
    }

    /// The run whose p99 is the median (the lower middle for an even count).
    fn median_by_p99(mut runs: Vec<Self>) -> Self {
        runs.sort_by_key(|run| run.p99);
        runs.swap_remove((runs.len() - 1) / 2)
    }
}

struct Fanout {
    broadcast: Percentiles,
    longrun: Percentiles,
}

fn fanout(events: usize, subscribers: usize) -> anyhow::Result<Fanout> {
    let mut broadcast = Vec::new();
    let mut longrun = Vec::new();
    for rep in 1..=FANOUT_REPETITIONS {
        eprintln!(
            "(c) fan-out, repetition {rep}/{FANOUT_REPETITIONS}: {events} events to \
             {subscribers} subscribers"
        );
        let run = fresh_runtime()?.block_on(baseline::broadcast_fanout(events, subscribers));
        broadcast.push(Percentiles::of(run));
        let run = fresh_runtime()?.block_on(longrun::longrun_fanout(events, subscribers));
        longrun.push(Percentiles::of(run));
    }
    Ok(Fanout {
        broadcast: Percentiles::median_by_p99(broadcast),
        longrun: Percentiles::median_by_p99(longrun),
    })
}

struct Retention {
    tokio: Measurement,
    agentkit: Measurement,
    longrun: Measurement,
}

fn retention(n: usize) -> anyhow::Result<Retention> {
    eprintln!("(d) retention: {n} tasks, each side in a child process");
    Ok(Retention {
        tokio: probe::spawn(Scenario::RetentionTokio, n, INFLIGHT_SLEEP)?,
        agentkit: probe::spawn(Scenario::RetentionAgentkit, n, INFLIGHT_SLEEP)?,
        longrun: probe::spawn(Scenario::RetentionLongrun, n, INFLIGHT_SLEEP)?,
    })
}

struct Report {
    counts: Counts,
    quick: bool,
    /// The machine just before the first scenario and just after the last.
    host_before: Host,
    host_after: Host,
    throughput: Throughput,
    inflight: Inflight,
    fanout: Fanout,
    retention: Retention,
}

impl Report {
    fn tasks_per_s(&self, runs: &[Duration]) -> f64 {
        self.counts.tasks as f64 / stats::median(runs).as_secs_f64()
    }

    fn ratio_vs_tokio(&self) -> f64 {
        self.tasks_per_s(&self.throughput.longrun) / self.tasks_per_s(&self.throughput.tokio)
    }

    fn ratio_vs_agentkit(&self) -> f64 {
        self.tasks_per_s(&self.throughput.longrun) / self.tasks_per_s(&self.throughput.agentkit)
    }

    fn bytes_per_inflight_task(&self) -> f64 {
        let extra = self.inflight.longrun.rss_peak_delta() - self.inflight.tokio.rss_peak_delta();
        extra as f64 / self.counts.inflight as f64
    }

    fn print_table(&self) {
        let Counts {
            tasks,
            inflight,
            events,
            subscribers,
        } = self.counts;
        println!(
            "longrun-bench runtime{}: {WORKER_THREADS} worker threads, a fresh runtime per measurement",
            if self.quick { " --quick" } else { "" }
        );
        let load = |host: &Host| {
            host.load_1m
                .map_or("unknown".to_owned(), |l| format!("{l:.2}"))
        };
        println!(
            "machine: {} CPUs; 1-minute load average {} before, {} after{}",
            self.host_before.cpus,
            load(&self.host_before),
            load(&self.host_after),
            if self.host_before.busy() {
                " -- the machine was busy before the run started; expect noisy tails and ratios"
            } else {
                ""
            }
        );

        println!();
        println!(
            "(a) throughput: {tasks} trivial background tasks, start -> last terminal event observed \
             (median of {THROUGHPUT_REPETITIONS})"
        );
        println!(
            "    {:<38} {:>10} {:>12}   runs (s)",
            "implementation", "median s", "tasks/s"
        );
        for (name, runs) in [
            ("tokio::spawn + mpsc", &self.throughput.tokio),
            ("agentkit-task-manager 0.10.7", &self.throughput.agentkit),
            ("longrun", &self.throughput.longrun),
        ] {
            let all: Vec<String> = runs
                .iter()
                .map(|d| format!("{:.3}", d.as_secs_f64()))
                .collect();
            println!(
                "    {name:<38} {:>10.3} {:>12}   {}",
                stats::median(runs).as_secs_f64(),
                thousands(self.tasks_per_s(runs) as i64),
                all.join(" ")
            );
        }
        let (vs_tokio, vs_agentkit) = (self.ratio_vs_tokio(), self.ratio_vs_agentkit());
        println!(
            "    {:<38} {vs_tokio:>10.3}   target >= {TARGET_RATIO_VS_TOKIO}  {}",
            "ratio_vs_tokio (longrun/tokio)",
            verdict(vs_tokio >= TARGET_RATIO_VS_TOKIO)
        );
        println!(
            "    {:<38} {vs_agentkit:>10.3}   target >= {TARGET_RATIO_VS_AGENTKIT}  {}",
            "ratio_vs_agentkit (longrun/agentkit)",
            verdict(vs_agentkit >= TARGET_RATIO_VS_AGENTKIT)
        );

        println!();
        println!(
            "(b) memory: {inflight} concurrent tasks sleeping {INFLIGHT_SLEEP:?}, each side in a fresh \
             process (median of {INFLIGHT_REPETITIONS} processes)"
        );
        println!(
            "    {:<38} {:>12} {:>12} {:>10} {:>12} {:>8}",
            "implementation", "RSS before", "peak delta", "per task", "heap peak/t", "wall s"
        );
        for (name, m) in [
            ("tokio::spawn(sleep)", &self.inflight.tokio),
            ("longrun", &self.inflight.longrun),
        ] {
            let heap_per_task = (m.heap_peak.saturating_sub(m.heap_before)) / inflight.max(1);
            println!(
                "    {name:<38} {:>12} {:>12} {:>10} {:>12} {:>8.3}{}",
                thousands(m.rss_before as i64),
                thousands(m.rss_peak_delta()),
                thousands(m.rss_peak_delta() / inflight.max(1) as i64),
                thousands(heap_per_task as i64),
                m.wall.as_secs_f64(),
                if m.peak_reset {
                    ""
                } else {
                    "  (VmHWM not reset)"
                }
            );
        }
        let per_task = self.bytes_per_inflight_task();
        println!(
            "    {:<38} {per_task:>12.1}   target <= {TARGET_BYTES_PER_INFLIGHT_TASK}  {}",
            "bytes_per_inflight_task (over tokio)",
            verdict(per_task <= TARGET_BYTES_PER_INFLIGHT_TASK)
        );

        println!();
        println!(
            "(c) fan-out: 1 task emits {events} events to {subscribers} subscribers, paced; \
             emit -> receive latency (run with the median p99 of {FANOUT_REPETITIONS})"
        );
        println!(
            "    {:<38} {:>10} {:>10} {:>10} {:>10}",
            "implementation", "samples", "p50 us", "p99 us", "max us"
        );
        for (name, p) in [
            ("tokio::sync::broadcast", &self.fanout.broadcast),
            ("longrun", &self.fanout.longrun),
        ] {
            println!(
                "    {name:<38} {:>10} {:>10.1} {:>10.1} {:>10.1}",
                p.samples,
                micros(p.p50),
                micros(p.p99),
                micros(p.max)
            );
        }
        let p99 = micros(self.fanout.longrun.p99);
        println!(
            "    {:<38} {p99:>10.1}   target <= {TARGET_FANOUT_P99_US}  {}",
            "fanout_p99_us",
            verdict(p99 <= TARGET_FANOUT_P99_US)
        );

        println!();
        println!(
            "(d) retention: live heap after {tasks} tasks ran and expired, each side in a fresh process"
        );
        println!(
            "    {:<38} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "implementation", "heap start", "heap after", "retained", "RSS before", "RSS after"
        );
        for (name, m) in [
            ("tokio::spawn + mpsc", &self.retention.tokio),
            ("agentkit (never expires)", &self.retention.agentkit),
            ("longrun", &self.retention.longrun),
        ] {
            let (start, after) = m.reported.unwrap_or((m.heap_before, m.heap_after));
            println!(
                "    {name:<38} {:>12} {:>12} {:>12} {:>12} {:>12}",
                thousands(start as i64),
                thousands(after as i64),
                thousands(m.retained()),
                thousands(m.rss_before as i64),
                thousands(m.rss_after as i64)
            );
        }
        let retained = self.retention.longrun.retained();
        println!(
            "    {:<38} {:>12}   target <= {}  {}",
            "retained_bytes_after_expiry",
            thousands(retained),
            thousands(TARGET_RETAINED_BYTES),
            verdict(retained <= TARGET_RETAINED_BYTES)
        );
        println!();
    }

    fn json(&self) -> serde_json::Value {
        let Counts {
            tasks,
            inflight,
            events,
            subscribers,
        } = self.counts;
        json!({
            "tasks_per_s": self.tasks_per_s(&self.throughput.longrun).round() as u64,
            "ratio_vs_tokio": round(self.ratio_vs_tokio(), 3),
            "ratio_vs_agentkit": round(self.ratio_vs_agentkit(), 3),
            "bytes_per_inflight_task": round(self.bytes_per_inflight_task(), 1),
            "fanout_p99_us": round(micros(self.fanout.longrun.p99), 1),
            "retained_bytes_after_expiry": self.retention.longrun.retained(),
            "tokio_tasks_per_s": self.tasks_per_s(&self.throughput.tokio).round() as u64,
            "agentkit_tasks_per_s": self.tasks_per_s(&self.throughput.agentkit).round() as u64,
            "inflight_peak_delta_bytes": self.inflight.longrun.rss_peak_delta(),
            "baseline_inflight_peak_delta_bytes": self.inflight.tokio.rss_peak_delta(),
            "fanout_p50_us": round(micros(self.fanout.longrun.p50), 1),
            "baseline_fanout_p50_us": round(micros(self.fanout.broadcast.p50), 1),
            "baseline_fanout_p99_us": round(micros(self.fanout.broadcast.p99), 1),
            "baseline_retained_bytes": self.retention.tokio.retained(),
            "agentkit_retained_bytes": self.retention.agentkit.retained(),
            "quick": self.quick,
            "cpus": self.host_before.cpus,
            "load_avg_1m_before": self.host_before.load_1m,
            "load_avg_1m_after": self.host_after.load_1m,
            "tasks": tasks,
            "inflight_tasks": inflight,
            "fanout_events": events,
            "fanout_subscribers": subscribers,
        })
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `1234567` → `"1,234,567"`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
    }
}
