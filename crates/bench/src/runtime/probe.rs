//! Memory scenarios, each run alone in a fresh child process of this binary.
//!
//! `VmHWM` is a peak over the process's whole life, and a process that has already run other
//! scenarios keeps their allocator arenas and thread stacks. So `runtime` re-executes itself
//! as `longrun-bench runtime-probe <scenario> --tasks N`; the child builds its runtime, resets
//! the peaks, runs the one scenario and prints one JSON [`Measurement`] on its last stdout
//! line, which the parent reads back with [`spawn`].

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ValueEnum as _;
use serde::{Deserialize, Serialize};

use super::{agentkit, baseline, fresh_runtime, longrun};
use crate::{alloc, rss};

/// Arguments of the hidden `runtime-probe` subcommand.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The scenario to run.
    scenario: Scenario,
    /// Number of tasks.
    #[arg(long)]
    tasks: usize,
    /// How long each in-flight task sleeps, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    sleep_ms: u64,
}

/// One memory scenario.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// `tokio::spawn(sleep)` × n, all in flight at once.
    InflightTokio,
    /// `longrun_inflight(n, sleep)`.
    InflightLongrun,
    /// n trivial tokio tasks run to completion; live heap before and after.
    RetentionTokio,
    /// n trivial agentkit background calls run to completion, manager kept.
    RetentionAgentkit,
    /// `longrun_retention(n)`.
    RetentionLongrun,
}

/// What one probe saw. Byte counts; `before` is read after the runtime is built and warm.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Measurement {
    /// `VmRSS` just before the scenario.
    pub(crate) rss_before: u64,
    /// `VmHWM` just after the scenario (reset to `VmRSS` just before it, see `peak_reset`).
    pub(crate) rss_peak: u64,
    /// `VmRSS` just after the scenario.
    pub(crate) rss_after: u64,
    /// Whether `VmHWM` could be reset before the scenario. If not, `rss_peak` is the peak
    /// since the process started, which can only overstate the scenario's peak.
    pub(crate) peak_reset: bool,
    /// Live heap bytes just before the scenario.
    pub(crate) heap_before: usize,
    /// Highest live heap bytes during the scenario.
    pub(crate) heap_peak: usize,
    /// Live heap bytes just after the scenario.
    pub(crate) heap_after: usize,
    /// Wall time of the scenario.
    pub(crate) wall: Duration,
    /// `(start_bytes, after_bytes)` as a retention scenario reported them.
    pub(crate) reported: Option<(usize, usize)>,
}

impl Measurement {
    /// Peak RSS above the RSS before the scenario.
    pub(crate) fn rss_peak_delta(&self) -> i64 {
        signed(self.rss_peak) - signed(self.rss_before)
    }

    /// Retained live heap bytes as the scenario reported them.
    pub(crate) fn retained(&self) -> i64 {
        let (start, after) = self.reported.unwrap_or((self.heap_before, self.heap_after));
        signed(after) - signed(start)
    }
}

/// Runs the scenario in this process and prints its [`Measurement`] as one JSON line.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = fresh_runtime()?;
    // Start the workers and touch the scheduler before the baseline is read: a few tasks
    // per worker, so that each worker thread has done its first allocations (which attach it
    // to a malloc arena) before, not during, the scenario.
    runtime.block_on(async {
        let warm: Vec<_> = (0..64)
            .map(|i| tokio::spawn(async move { std::hint::black_box(vec![i; 16]).len() }))
            .collect();
        for task in warm {
            task.await?;
        }
        anyhow::Ok(())
    })?;
    let peak_reset = match rss::reset_peak() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("runtime-probe: cannot reset VmHWM ({e}); peak is since process start");
            false
        }
    };
    alloc::reset_peak();
    let rss_before = rss::read()?;
    let heap_before = alloc::live_heap_bytes();

    let (n, sleep) = (args.tasks, Duration::from_millis(args.sleep_ms));
    let start = Instant::now();
    let reported = runtime.block_on(async move {
        match args.scenario {
            Scenario::InflightTokio => {
                baseline::tokio_inflight(n, sleep).await;
                None
            }
            Scenario::InflightLongrun => {
                longrun::longrun_inflight(n, sleep).await;
                None
            }
            Scenario::RetentionTokio => Some(baseline::tokio_retention(n).await),
            Scenario::RetentionAgentkit => Some(agentkit::agentkit_retention(n).await),
            Scenario::RetentionLongrun => Some(longrun::longrun_retention(n).await),
        }
    });
    let wall = start.elapsed();

    let heap_after = alloc::live_heap_bytes();
    let heap_peak = alloc::peak_heap_bytes();
    let rss_after = rss::read()?;
    let measurement = Measurement {
        rss_before: rss_before.current,
        rss_peak: rss_after.peak,
        rss_after: rss_after.current,
        peak_reset,
        heap_before,
        heap_peak,
        heap_after,
        wall,
        reported,
    };
    println!("{}", serde_json::to_string(&measurement)?);
    Ok(())
}

/// Runs `scenario` in a fresh child process of this binary and returns what it measured.
pub(crate) fn spawn(
    scenario: Scenario,
    tasks: usize,
    sleep: Duration,
) -> anyhow::Result<Measurement> {
    let name = scenario
        .to_possible_value()
        .expect("no scenario is skipped")
        .get_name()
        .to_owned();
    let exe = std::env::current_exe().context("cannot locate this binary to re-execute it")?;
    let output = Command::new(exe)
        .args(["runtime-probe", &name, "--tasks", &tasks.to_string()])
        .args(["--sleep-ms", &sleep.as_millis().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `runtime-probe {name}`"))?;
    if !output.status.success() {
        bail!(
            "`runtime-probe {name}` failed ({}); its stderr is above",
            output.status
        );
    }
    let stdout = String::from_utf8(output.stdout)
        .with_context(|| format!("`runtime-probe {name}` printed non-UTF-8"))?;
    let last = stdout
        .lines()
        .last()
        .with_context(|| format!("`runtime-probe {name}` printed nothing"))?;
    serde_json::from_str(last)
        .with_context(|| format!("`runtime-probe {name}` printed an unreadable last line: {last}"))
}

fn signed(bytes: impl TryInto<i64>) -> i64 {
    bytes.try_into().unwrap_or(i64::MAX)
}
