//! `longrun-fuzz`: fuzzing of longrun's doors and parsers on the stable toolchain.
//!
//! cargo-fuzz needs nightly; this crate is its own engine instead: a seeded, structure-aware
//! mutator ([`mutate`]) over real protocol messages (each target's seeds), whose inputs run
//! through the very code a server runs (`Router::oneshot` on a real runtime, real child
//! processes, the config parser), each under a time bound, with its panics caught. An answer
//! must be a result or an error in the protocol's own shape ([`shape`]).
//!
//! Targets: `v1` (the HTTP API), `mcp` (both generations, single and batch, in initialized
//! sessions), `a2a` (JSON-RPC 1.0, HTTP+JSON 1.0, JSON-RPC 0.3), `process` (the lines a
//! child writes) and `config` (`longrun serve`'s TOML file). `docs/reliability.md` says how to
//! run it long.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "a harness: it prints its figures, bounds each input by real elapsed time and runs each door on a task it aborts"
)]

mod case;
// The config parser of `longrun serve`, compiled from its own file: the binary crate exposes no
// library, and giving it one only for the fuzzer would widen it for everyone. Much of it is
// used only by the server, hence `dead_code`.
#[allow(dead_code, unreachable_pub)]
#[path = "../../cli/src/config.rs"]
mod cli_config;
mod engine;
mod exchange;
mod mutate;
mod request;
mod shape;
mod targets;

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use futures_util::{FutureExt, future::BoxFuture};

use crate::{case::Input, engine::Door};

/// What is fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `/v1`: bodies, paths and query strings.
    V1,
    /// The MCP door: 2025-11-25 sessions and 2026-07-28 requests, single and batch.
    Mcp,
    /// The A2A door: JSON-RPC 1.0, HTTP+JSON 1.0 and JSON-RPC 0.3.
    A2a,
    /// The process protocol: what a child writes on its stdout.
    Process,
    /// The config file.
    Config,
}

impl Target {
    /// Every target, in the order `all` runs them.
    pub const ALL: [Self; 5] = [Self::V1, Self::Mcp, Self::A2a, Self::Process, Self::Config];

    /// The target's name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Mcp => "mcp",
            Self::A2a => "a2a",
            Self::Process => "process",
            Self::Config => "config",
        }
    }

    /// Whether a kept input of this target is a request (a JSON file) or raw bytes.
    fn is_http(self) -> bool {
        matches!(self, Self::V1 | Self::Mcp | Self::A2a)
    }

    /// How long one input may take before it counts as a hang. A process input starts a
    /// child and waits for its task to end; a request is answered in well under a second.
    fn time_limit(self) -> Duration {
        match self {
            Self::Process => Duration::from_secs(30),
            _ => Duration::from_secs(10),
        }
    }

    fn open(self) -> BoxFuture<'static, Arc<dyn Door>> {
        match self {
            Self::V1 => targets::v1::open().boxed(),
            Self::Mcp => targets::mcp::open().boxed(),
            Self::A2a => targets::a2a::open().boxed(),
            Self::Process => targets::process::open().boxed(),
            Self::Config => targets::config::open().boxed(),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|target| target.name() == name)
            .ok_or_else(|| format!("no target `{name}`: v1, mcp, a2a, process, config or all"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The door or parser panicked.
    Panic,
    /// No answer within the time bound.
    Hang,
    /// An answer outside the protocol's shape.
    Shape,
    /// The process's memory grew past its limit.
    Memory,
}

/// One finding: what happened and the input that made it happen.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The target.
    pub target: Target,
    /// What kind of failure.
    pub kind: FindingKind,
    /// What happened, in words.
    pub message: String,
    /// The input as kept in a file (empty when no one input is to blame).
    pub input: Vec<u8>,
}

impl Finding {
    /// Writes the input (`<kind>-<n>.json` or `.bin`) and what happened (`.txt`) under
    /// `dir/<target>/`; returns the input's path.
    pub fn write(&self, dir: &Path, n: usize) -> std::io::Result<PathBuf> {
        let dir = dir.join(self.target.name());
        std::fs::create_dir_all(&dir)?;
        let kind = format!("{:?}", self.kind).to_ascii_lowercase();
        let extension = if self.target.is_http() { "json" } else { "bin" };
        let path = dir.join(format!("{kind}-{n}.{extension}"));
        std::fs::write(&path, &self.input)?;
        std::fs::write(path.with_extension("txt"), &self.message)?;
        Ok(path)
    }
}

/// A run's figures and findings.
#[derive(Debug)]
pub struct Report {
    /// The target.
    pub target: Target,
    /// Inputs run.
    pub inputs: u64,
    /// How long they took.
    pub elapsed: Duration,
    /// The highest resident memory seen, in bytes.
    pub peak_rss: u64,
    /// What went wrong, one finding per distinct problem.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target.
    pub target: Target,
    /// How many inputs.
    pub inputs: u64,
    /// The seed of every random choice: the same seed makes the same inputs.
    pub seed: u64,
    /// Inputs in flight at once.
    pub concurrency: usize,
    /// Resident memory above which the run stops with a finding, in bytes.
    pub memory_limit: u64,
}

impl Options {
    /// `inputs` inputs of `target` with `seed`, 64 at a time, under 2 GiB.
    pub fn new(target: Target, inputs: u64, seed: u64) -> Self {
        Self {
            target,
            inputs,
            seed,
            concurrency: 64,
            memory_limit: 2 << 30,
        }
    }
}

/// Runs `options.inputs` inputs of the target. Call inside a multi-threaded tokio runtime.
pub async fn run(options: &Options) -> Report {
    let plan = engine::Plan {
        target: options.target,
        inputs: options.inputs,
        seed: options.seed,
        concurrency: options.concurrency.max(1),
        time_limit: options.target.time_limit(),
        memory_limit: options.memory_limit,
    };
    let target = options.target;
    engine::run(&plan, move || target.open()).await
}

/// Replays one kept input (a file of `crates/fuzz/regressions/<target>/`) in a fresh world:
/// `Err` says what went wrong, as a run would report it. Call inside a multi-threaded tokio
/// runtime.
pub async fn replay(target: Target, file: &[u8]) -> Result<(), String> {
    let input = if target.is_http() {
        Input::decode_http(file)?
    } else {
        Input::Bytes(file.to_vec())
    };
    engine::install_panic_hook();
    let door = target.open().await;
    let task = tokio::spawn(door.clone().run(input));
    let result = match tokio::time::timeout(target.time_limit(), task).await {
        Err(_) => Err(format!("hang: no answer within {:?}", target.time_limit())),
        Ok(Err(error)) => Err(format!("panic: {error}")),
        Ok(Ok(result)) => result,
    };
    door.close().await;
    result
}
