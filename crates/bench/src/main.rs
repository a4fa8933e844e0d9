//! `longrun-bench`: measures longrun beside baselines taken in the same run.
//!
//! Each subcommand is one module (`runtime`, `durable`, `crash`, `http`, `doors`, `workers`) with an `Args` struct and a
//! `run` function. Subcommands print a human-readable table and then, as the
//! last line on stdout, one JSON object for scripts. Progress notes go to stderr.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "a harness binary: it prints its figures, measures real elapsed time and spawns the load it awaits"
)]

mod alloc;
mod crash;
mod doors;
mod durable;
mod host;
mod http;
mod rss;
mod runtime;
mod soak;
mod stats;
mod stores;
mod workers;

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
    /// Durable stores: throughput beside raw SQL, cross-node latencies, recovery time.
    Durable(durable::Args),
    /// Kill -9 a node under load again and again; check nothing acknowledged was lost or
    /// done twice.
    Crash(crash::Args),
    /// One node of the crash harness (started and killed by `crash`).
    #[command(hide = true)]
    CrashNode(crash::node::Args),
    /// The HTTP + SSE server on SQLite: creation latency and throughput at a fixed offered
    /// load, SSE fan-out to 10,000 subscribers (delivery latency, server RSS).
    Http(http::Args),
    /// One task through each front door (HTTP API, MCP, A2A) beside the HTTP round trip.
    Doors(doors::Args),
    /// Trivial tasks per second through a Rust worker, a Python worker, a process handler and
    /// in-process, in one run; start → handler-called latency on SQLite.
    Workers(workers::Args),
    /// The server measured by `http`, run as its child process.
    #[command(hide = true)]
    HttpServer(http::server::Args),
    /// Mixed load for `--minutes` (starts, answers, cancels, process handlers, 1,000 open SSE
    /// streams): RSS, descriptors, table sizes and p99s printed as a time series.
    Soak(soak::Args),
    /// The server under `soak`, run as its child process.
    #[command(hide = true)]
    SoakServer(soak::server::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Runtime(args) => runtime::run(&args),
        Command::RuntimeProbe(args) => runtime::probe::run(&args),
        Command::Durable(args) => durable::run(&args),
        Command::Crash(args) => crash::run(&args),
        Command::CrashNode(args) => crash::node::run(&args),
        Command::Http(args) => http::run(&args),
        Command::Doors(args) => doors::run(&args),
        Command::Workers(args) => workers::run(&args),
        Command::HttpServer(args) => http::server::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::SoakServer(args) => soak::server::run(&args),
    }
}
