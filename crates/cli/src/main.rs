//! `longrun`: the server (`longrun serve`) and its command-line client (`longrun tasks …`,
//! `longrun kinds`).
//!
//! Exit codes, for scripts: 0 completed (or a command that does not wait succeeded), 1 usage
//! or connection error (including any error the server answered with), 2 failed, 3 cancelled,
//! 4 rejected, 5 still running when the command stopped waiting.

#![allow(
    clippy::disallowed_macros,
    reason = "the command-line binary: printing is its output"
)]

mod client;
mod config;
mod mcp;
mod serve;
mod sse;
mod steps;
mod tasks;
mod view;
mod watch;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// The task completed, or a command that does not wait for one succeeded.
    Completed = 0,
    /// Bad usage, an unreachable server, or an error the server answered with.
    Error = 1,
    /// The task failed.
    Failed = 2,
    /// The task was cancelled.
    Cancelled = 3,
    /// The task was rejected (a limit).
    Rejected = 4,
    /// The task had not ended when the command stopped waiting.
    Running = 5,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

#[derive(Parser)]
#[command(
    name = "longrun",
    version,
    about = "Long-running work for AI agents: the server and its client",
    after_help = "Exit codes: 0 completed (or success), 1 usage or connection error, 2 failed, \
                  3 cancelled, 4 rejected, 5 still running when the command stopped waiting."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP + SSE API over the kinds of a config file.
    Serve(serve::Args),
    /// Serve the kinds of a config file as MCP tools over stdin and stdout.
    Mcp(mcp::Args),
    /// Start, read, list, watch, cancel and answer tasks on a server.
    Tasks {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: tasks::Command,
    },
    /// List the kinds a server offers.
    Kinds {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Where the server is and how to talk to it.
#[derive(Args, Clone)]
pub(crate) struct ClientArgs {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "LONGRUN_SERVER",
        default_value = "http://127.0.0.1:7700"
    )]
    pub(crate) server: String,
    /// The bearer token (not needed by a server that allows anonymous access).
    #[arg(long, global = true, env = "LONGRUN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Print the server's JSON instead of text: one document, or one event per line.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap exits 2 on usage errors, which here means "failed": use 1, as documented.
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Error.into()
            } else {
                Exit::Completed.into() // --help, --version
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::Error.into();
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await.map(|()| Exit::Completed),
            Command::Mcp(args) => mcp::run(args).await.map(|()| Exit::Completed),
            Command::Tasks { client, command } => tasks::run(&client, command).await,
            Command::Kinds { client } => tasks::kinds(&client).await,
        }
    });
    // Tasks still running are dropped with the runtime (see `serve`): their child processes
    // are killed, and their stored state is left to the restart policy. Bounded, because a
    // blocking read somewhere must not hold the exit back.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            Exit::Error.into()
        }
    }
}
