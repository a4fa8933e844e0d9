//! `longrun-process`: kinds whose handler is an external command in any language.
//!
//! The command speaks JSON lines: the runtime writes the task's input (and later answers and
//! cancellation) to its stdin; the command writes progress, artifacts, questions, messages for
//! the agent and exactly one outcome to its stdout. Its stderr goes to the logs. The protocol is
//! written down in `docs/process-protocol.md` at the root of the repository; [`PROTOCOL`] is its
//! version.
//!
//! One process runs per task attempt, in a process group of its own so that cancellation
//! (SIGTERM, then SIGKILL after [`ProcessSpec::term_grace`]) reaches whatever it started, and
//! so that dropping the handler (the runtime aborts a handler after the kind's `cancel_grace`)
//! kills the whole group: no orphans. A crash, a non-zero exit or a malformed line fails only
//! the task, with [`PROCESS_FAILED`] or [`PROTOCOL_ERROR`], the exit status and the tail of
//! stderr.
//!
//! Unix only: signals and process groups are what make cancellation reliable.

mod child;
mod failure;
mod lines;
mod session;
mod wire;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use longrun::{Context, Error, KindSpec, Runtime};
use serde_json::Value;

/// The latest version of the protocol this crate speaks. A kind speaks the version its
/// [`ProcessSpec::protocol`] names (1 by default, so a version-1 handler runs unchanged); it is
/// sent as `"protocol"` in the start line. Version 2 adds durable steps, durable sleeps and
/// retry hints on `fail`.
pub const PROTOCOL: u32 = 2;

/// The longest line accepted from a child's stdout (1 MiB, newline excluded). A longer line
/// fails the task with [`PROTOCOL_ERROR`], so a runaway child cannot exhaust the server's
/// memory. Stderr lines are cut at [`MAX_STDERR_LINE_BYTES`] instead.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The longest stderr line forwarded to the logs; the rest of a longer line is dropped.
pub const MAX_STDERR_LINE_BYTES: usize = 16 << 10;

/// How much of the end of a child's stderr a failure message carries (4 KiB).
pub const STDERR_TAIL_BYTES: usize = 4 << 10;

/// The failure code of a task whose process could not be started, crashed, exited without an
/// outcome, or exited with a non-zero status.
pub const PROCESS_FAILED: &str = "process_failed";

/// The failure code of a task whose process wrote something that is not a protocol message:
/// not JSON, an unknown `type`, a missing field, a line that is too long, a second outcome.
pub const PROTOCOL_ERROR: &str = "protocol_error";

/// How to run one kind's command.
///
/// The child inherits the runtime's environment, with [`env`](Self::env) added on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The program. A bare name (no `/`) is looked up in `PATH` as a shell would (in `env`'s
    /// `PATH` if it sets one); a relative path is taken relative to [`cwd`](Self::cwd) when
    /// that is set, and to the runtime's working directory otherwise.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for it, on top of the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Its working directory; the runtime's when `None`.
    pub cwd: Option<PathBuf>,
    /// How long the process has between SIGTERM and SIGKILL, when it is cancelled or when it
    /// does not exit after reporting its outcome.
    pub term_grace: Duration,
    /// The protocol version the handler speaks: 1 (the default) or 2.
    pub protocol: u32,
}

impl ProcessSpec {
    /// The default time between SIGTERM and SIGKILL: five seconds.
    pub const DEFAULT_TERM_GRACE: Duration = Duration::from_secs(5);

    /// A spec that runs `program` without arguments, with the default grace period.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            term_grace: Self::DEFAULT_TERM_GRACE,
            protocol: 1,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Sets the protocol version the handler speaks (1 or 2; others are clamped).
    pub fn protocol(mut self, version: u32) -> Self {
        self.protocol = version.clamp(1, PROTOCOL);
        self
    }

    /// Sets the time between SIGTERM and SIGKILL.
    pub fn term_grace(mut self, grace: Duration) -> Self {
        self.term_grace = grace;
        self
    }
}

/// Registers `kind` on `runtime` with a handler that runs `spec` once per task attempt.
///
/// `kind.input_schema` is kept as given (set it from the configuration before calling): the
/// runtime fills a schema only when the spec has none, and for a process handler, whose input is
/// any JSON value, that would be a schema that accepts everything. The runtime does not check
/// inputs against `input_schema`; an adapter that wants to refuse such inputs must do so before
/// it starts the task.
///
/// The kind's `cancel_grace` bounds how long a cancelled process may take in all: when it
/// passes, the runtime drops the handler and the process group is killed at once, even if
/// [`ProcessSpec::term_grace`] has not run out. Tokio's process support needs a runtime with
/// I/O and time enabled (`#[tokio::main]` enables both).
///
/// ```
/// use longrun::{KindSpec, Outcome, Runtime, StartOptions, Started};
/// use longrun_process::ProcessSpec;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(Default::default());
/// // A shell handler: read the start line, answer with a constant.
/// let spec = ProcessSpec::new("sh")
///     .arg("-c")
///     .arg(r#"read -r start; echo '{"type":"complete","output":42}'"#);
/// longrun_process::register(&runtime, KindSpec::new("answer"), spec)?;
///
/// let Started::Finished(task) = runtime.start("answer", json!({}), StartOptions::foreground()).await?
/// else { unreachable!("foreground starts return the finished task") };
/// assert_eq!(task.outcome(), Some(&Outcome::Completed { output: json!(42) }));
/// # Ok(()) }
/// ```
pub fn register(runtime: &Runtime, kind: KindSpec, spec: ProcessSpec) -> Result<(), Error> {
    let spec = Arc::new(spec);
    // A stream handler rather than `Runtime::register`, because only a stream can end the task
    // `cancelled` on the process's own word (`{"type":"cancelled"}` without a cancel request).
    // The stream yields one signal: the outcome of the whole session.
    runtime.register_stream(kind, move |ctx: Context, input: Value| {
        futures_util::stream::once(session::run(ctx, spec.clone(), input))
    })
}
