//! `longrun-bench`: measures longrun beside baselines taken in the same run.
//!
//! Each subcommand is one module (`runtime` now; `durable` and `crash` later) with an `Args`
//! struct and a `run` function. Subcommands print a human-readable table and then, as the
//! last line on stdout, one JSON object for scripts. Progress notes go to stderr.

mod alloc;
mod host;
mod rss;
mod runtime;
mod stats;

use clap::{Parser, Subcommand};

/// Counts live heap bytes so scenarios can report what a runtime retains; see [`alloc`].
#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Benchmarks for longrun, each printed beside a baseline measured in the same run.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// In-memory runtime: throughput, memory per in-flight task, fan-out latency, retention.
    Runtime(runtime::Args),
    /// Runs one memory scenario in this fresh process and prints its figures as JSON
    /// (used by `runtime`, so that peak RSS belongs to that scenario alone).
    #[command(hide = true)]
    RuntimeProbe(runtime::probe::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Runtime(args) => runtime::run(&args),
        Command::RuntimeProbe(args) => runtime::probe::run(&args),
    }
}
