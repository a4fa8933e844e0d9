//! The server under soak (`soak-server`, a hidden subcommand run as a child process by `soak`).
//!
//! A [`Runtime`] on a SQLite file, or as one node of a PostgreSQL cluster (`--store postgres`,
//! built as `longrun serve` builds it: `Options::clustered`, default lease), serving
//! [`longrun_http::router`] with `Auth::Anonymous` on `127.0.0.1:0`, with the kinds the mixed
//! load uses:
//!
//! - `quick` returns at once;
//! - `ask` asks `confirm` and returns the answer;
//! - `slow` runs until it is cancelled;
//! - `beacon` emits `--beacon-events` progress events, one every `--beacon-ms`, each message
//!   `emit:<unix nanos>` stamped just before `Context::progress`, then completes (so its log
//!   stops growing and retention can take it);
//! - `proc` is a process handler (`sh`: reads its start line, reports progress, completes),
//!   so every one of them is a child process and its stdio protocol.
//!
//! It prints `port <n>` and serves until stdin closes.

use std::{
    io::{BufRead as _, Write as _},
    time::Duration,
};

use longrun::{Context, KindSpec, Options, Runtime, TaskError};
use longrun_http::{Api, Auth, Limits};
use longrun_process::ProcessSpec;
use longrun_store_postgres::PostgresOptions;
use serde_json::{Value, json};

use crate::{
    http::server::unix_nanos,
    stores::{self, Location, StoreKind},
};

/// The child's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The store: a SQLite file (`--path`) or a PostgreSQL schema (`--postgres`, `--schema`).
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    #[command(flatten)]
    location: Location,
    /// This node's name (PostgreSQL).
    #[arg(long, default_value = "soak-a")]
    node: String,
    /// How often a `beacon` task emits an event.
    #[arg(long, default_value_t = 1_000)]
    beacon_ms: u64,
    /// How many events a `beacon` task emits before it completes.
    #[arg(long, default_value_t = 60)]
    beacon_events: u32,
}

/// Serves until stdin closes.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    crate::http::raise_open_files()?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(serve(args))
}

/// The process handler `proc` runs: the protocol's shortest complete conversation.
const PROC_SCRIPT: &str = r#"read start
printf '{"type":"progress","percent":50,"message":"half"}\n'
printf '{"type":"complete","output":{"ok":true}}\n'"#;

async fn serve(args: &Args) -> anyhow::Result<()> {
    // As `longrun serve` builds it: default options apart from the store, and on PostgreSQL
    // the store as the cluster too, with its default lease.
    let opened = stores::open(
        args.store,
        &args.location,
        &args.node,
        PostgresOptions::DEFAULT_LEASE_TTL,
    )
    .await?;
    let runtime = Runtime::new(Options {
        store: Some(opened.store),
        cluster: opened.cluster,
        ..Options::default()
    });
    runtime.register(
        KindSpec::new("quick"),
        |_ctx: Context, _input: Value| async { Ok::<_, TaskError>(Value::Null) },
    )?;
    runtime.register(
        KindSpec::new("ask"),
        |ctx: Context, _input: Value| async move {
            let question = json!({"message": "go on?", "requestedSchema": {"type": "object"}});
            let answer = ctx
                .ask("confirm", question, Duration::from_secs(60))
                .await
                .map_err(|error| TaskError::new("ask", error.to_string()))?;
            Ok::<_, TaskError>(answer)
        },
    )?;
    runtime.register(
        KindSpec::new("slow"),
        |ctx: Context, _input: Value| async move {
            ctx.cancelled().await;
            Ok::<_, TaskError>(Value::Null)
        },
    )?;
    let every = Duration::from_millis(args.beacon_ms.max(1));
    let events = args.beacon_events;
    runtime.register(
        KindSpec::new("beacon"),
        move |ctx: Context, _input: Value| async move {
            for _ in 0..events {
                tokio::select! {
                    () = ctx.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
                ctx.progress(None, format!("emit:{}", unix_nanos()))
                    .await
                    .map_err(|error| TaskError::new("progress", error.to_string()))?;
            }
            Ok::<_, TaskError>(Value::Null)
        },
    )?;
    let spec = ProcessSpec::new("sh").arg("-c").arg(PROC_SCRIPT);
    longrun_process::register(&runtime, KindSpec::new("proc"), spec)?;

    // As `longrun serve` does once its kinds are registered; in a cluster this also starts the
    // node's claiming, without which another node's tasks would never move here.
    runtime.recover().await?;

    // Every client is the one anonymous principal: room for all of its streams.
    let limits = Limits {
        streams_per_principal: 1_000_000,
        ..Limits::default()
    };
    let api = Api::new(longrun_http::Surface::new(runtime, Auth::Anonymous, limits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "port {}", listener.local_addr()?.port())?;
    stdout.flush()?;
    // The parent holds stdin open for the whole soak; when it closes, the soak is over.
    std::thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    axum::serve(listener, longrun_http::router(api)).await?;
    Ok(())
}
