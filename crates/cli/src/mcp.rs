//! `longrun mcp`: the kinds of a config file served as MCP tools over stdin and stdout (the
//! stdio transport), for MCP clients that start their servers as child processes.
//!
//! The runtime is built exactly as `longrun serve` builds it (same store, same kinds, the same
//! unfinished tasks taken up), so a task started over stdio is the same durable task the HTTP
//! door and the dashboard of a server on the same store show. Stdout carries the protocol and
//! nothing else; logs go to stderr. When stdin ends (the client closed it) or a signal arrives,
//! running tasks are left to their kinds' restart policy, as a server's graceful stop does.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser as _;
use longrun_surface::Principal;

use crate::{config::Config, serve, telemetry::Exporter};

/// `longrun mcp`'s options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The TOML config file: its kinds become the tools.
    #[arg(long)]
    config: PathBuf,
    /// The data directory: the SQLite file lives there. Overrides the config. Default `.longrun`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use PostgreSQL at this URL instead of SQLite. Overrides the config.
    #[arg(long)]
    postgres: Option<String>,
    /// The principal that owns the tasks started over stdio (stdio has no tokens: its user is
    /// whoever started the process).
    #[arg(long, default_value = Principal::ANONYMOUS)]
    principal: String,
}

/// `longrun serve`'s own options, built from ours, so the runtime is made by the same code.
#[derive(clap::Parser)]
struct ServeOptions {
    #[command(flatten)]
    args: serve::Args,
}

/// Serves MCP over stdio until stdin ends or a signal arrives.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    // `[telemetry]` holds here as in `longrun serve`. Logs go to stderr only: stdout is the
    // protocol.
    let exporter = Exporter::start(&config.telemetry)?;
    serve::init_logs(serve::LogFormat::Pretty, exporter.as_ref());
    let served = serve_stdio(args, config).await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    served
}

/// Serves MCP over stdio with `config` until stdin ends or a signal arrives.
async fn serve_stdio(args: Args, config: Config) -> anyhow::Result<()> {
    let mut serve_args = vec![
        "serve".into(),
        "--config".into(),
        args.config.clone().into_os_string(),
    ];
    if let Some(data) = &args.data {
        serve_args.extend(["--data".into(), data.clone().into_os_string()]);
    }
    if let Some(postgres) = &args.postgres {
        serve_args.extend(["--postgres".into(), postgres.into()]);
    }
    let serve_options = ServeOptions::try_parse_from(serve_args).context("bad store options")?;
    // Worker kinds wait here for nothing: this door has no HTTP for workers to connect to.
    let (runtime, _hub) = serve::runtime(
        &serve_options.args,
        &config,
        &crate::config::Auth::Anonymous,
    )
    .await?;
    let recovery = runtime
        .recover()
        .await
        .context("cannot take up the unfinished tasks")?;
    tracing::info!(config = %args.config.display(), kinds = config.kinds.len(), ?recovery, "serving MCP on stdio");

    let served = longrun_mcp::serve_stdio(
        runtime.clone(),
        Principal::from(args.principal.as_str()),
        config.mcp.clone(),
        tokio::io::stdin(),
        tokio::io::stdout(),
    );
    let result = tokio::select! {
        served = served => served.context("the stdio transport failed"),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let left = runtime.leave().await;
    tracing::info!(left_running = left, "stopped");
    result
}
