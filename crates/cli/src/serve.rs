//! `longrun serve`: the config file becomes a runtime (store, limits, process kinds), the
//! unfinished tasks of an earlier run are taken up, and the HTTP + SSE API is served until
//! SIGINT or SIGTERM.
//!
//! Shutdown is graceful without being destructive: the listener stops accepting, running tasks
//! get `--shutdown-grace` to finish on their own, and then the process exits *without*
//! cancelling what still runs (`Runtime::shutdown` would end those tasks `cancelled`). Their
//! child processes die with the server; the tasks stay `working` in the store, and the next
//! start applies each kind's restart policy: re-run (`restart = "rerun"`) or end `failed` with
//! `interrupted`. Nothing acknowledged is lost, because every acknowledgement waited for the
//! store's durable write.

use std::{
    collections::HashMap,
    future::IntoFuture as _,
    io::IsTerminal as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use longrun::{
    Options, Runtime,
    cluster::NodeId,
    limits::Bounds,
    store::{PostgresOptions, PostgresStore, SqliteStore},
};
use longrun_process::ProcessSpec;
use longrun_worker_hub::Hub;
use tokio::{net::TcpListener, sync::watch};
use tracing_subscriber::{
    EnvFilter, Layer as _, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

use crate::{
    config::{self, Config},
    telemetry::Exporter,
};

/// How long open connections get to close once the API has shut down.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(1);

/// The data directory when neither the config nor `--data` gives one.
const DEFAULT_DATA: &str = ".longrun";

/// `longrun serve`'s options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The TOML config file. Default: the demo, `examples/demo/longrun.toml`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The address to listen on (`host:port`); overrides the config. Port 0 picks a free one.
    #[arg(long)]
    listen: Option<String>,
    /// The data directory: the SQLite file lives there. Overrides the config. Default `.longrun`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use PostgreSQL at this URL instead of SQLite. Overrides the config.
    #[arg(long)]
    postgres: Option<String>,
    /// How long running tasks may take to finish on their own after SIGINT/SIGTERM; what still
    /// runs then is left to its kind's restart policy. `10s`, `500ms`, `2m` or seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// The log format on stderr; filter with `RUST_LOG` (default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
}

/// How logs are written.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// For people: one line per event.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Serves until a signal, as the module docs describe.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    // The config comes first: it says whether spans are exported, which the logging set-up
    // needs. Its errors reach the user through `main`, not the logs.
    let path = match &args.config {
        Some(path) => path.clone(),
        None => demo_config().context(
            "no --config given and the demo config examples/demo/longrun.toml was not found \
             (run from the repository, or pass --config PATH)",
        )?,
    };
    let config = Config::load(&path)?;
    let exporter = Exporter::start(&config.telemetry)?;
    init_logs(args.log_format, exporter.as_ref());
    let served = serve(args, path, config).await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    served
}

/// Serves with `config` (read from `path`) until a signal.
async fn serve(args: Args, path: PathBuf, config: Config) -> anyhow::Result<()> {
    tracing::info!(config = %path.display(), "loaded config");
    let listen = args
        .listen
        .clone()
        .or_else(|| config.server.listen.clone())
        .unwrap_or_else(|| config::DEFAULT_LISTEN.to_owned());
    let auth = config.auth(&listen)?;

    let (runtime, hub) = runtime(&args, &config, &auth).await?;

    // Bind before recovering: a busy port should fail the start before any task is touched.
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let recovery = runtime
        .recover()
        .await
        .context("cannot take up the unfinished tasks")?;

    // Every door shares one surface: one gate, one set of limits, one count of open streams,
    // and one stopping.
    let public_url = match &config.server.public_url {
        Some(url) => url.clone(),
        None => {
            if addr.ip().is_unspecified() {
                tracing::warn!(
                    %addr,
                    "listening on every address: the A2A agent card will publish an address \
                     clients cannot reach; set [server] public_url"
                );
            }
            format!("http://{addr}")
        }
    };
    let auth = match config.oauth_config() {
        Some(oauth) => longrun_surface::Auth::OAuth {
            tokens: static_tokens(auth),
            oauth: longrun_surface::OAuth::new(oauth).context("cannot set up [oauth]")?,
            public_url: public_url.clone(),
        },
        None => surface_auth(auth),
    };
    let surface = longrun_surface::Surface::new(runtime.clone(), auth, limits(&config));
    let mut webhook_config = config.webhooks.clone();
    if webhook_config.store.is_none() {
        let data = data_dir(&args, &config);
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create the data directory {}", data.display()))?;
        webhook_config.store = Some(data.join("webhooks.sqlite"));
    }
    let webhook_defaults = config
        .kinds
        .iter()
        .filter_map(|kind| {
            let webhook = kind.webhook.clone()?;
            Some((kind.name.get_ref().clone(), webhook))
        })
        .collect();
    let webhooks = longrun_http::Webhooks::new(&surface, &webhook_config, webhook_defaults)
        .context("cannot set up webhooks")?;
    let api = longrun_http::Api::new(surface.clone())
        .with_workers(hub)
        .with_webhooks(webhooks);
    let mcp = longrun_mcp::router(surface.clone(), config.mcp.clone());
    let mut a2a_config = config.a2a.clone();
    if a2a_config.push_store.is_none() {
        let data = data_dir(&args, &config);
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create the data directory {}", data.display()))?;
        a2a_config.push_store = Some(data.join("a2a-push.sqlite"));
    }
    let a2a = longrun_a2a::router(surface.clone(), a2a_config, public_url)
        .context("cannot set up the A2A door")?;
    // The dashboard's and the doors' routes have no fallback; the API keeps its own.
    let router = longrun_http::router(api)
        .merge(longrun_dashboard::router(surface.clone()))
        .merge(mcp)
        .merge(a2a);

    let (stop, stopped) = watch::channel(0_u32);
    #[expect(
        clippy::disallowed_methods,
        reason = "the binary's top level: `serve` itself owns the signal listener and ends with the process"
    )]
    tokio::spawn(signals(stop));
    #[expect(
        clippy::disallowed_methods,
        reason = "the binary's top level: `serve` awaits the server it spawns"
    )]
    // `into_make_service` finishes the router once, here. Served as a plain `Router`, axum
    // finishes a copy of it (`with_state`: every route's table rebuilt) for each connection,
    // and that copy lives as long as the connection: about 14 KB per open connection, most of
    // an event stream's memory (heaptrack, `longrun-bench http`).
    let mut server = tokio::spawn(
        axum::serve(listener, router.into_make_service())
            .with_graceful_shutdown(wait_for(stopped.clone(), 1))
            .into_future(),
    );
    println!(
        "longrun serving on http://{addr} ({} kinds, {} tasks recovered)",
        config.kinds.len(),
        recovery.taken_up()
    );
    tracing::info!(%addr, ?recovery, "serving");

    let mut server_done = false;
    tokio::select! {
        result = &mut server => {
            // With no connection open, the server stops as soon as the signal arrives, and may
            // win this race; without a signal, its stopping is an error.
            result.context("the server task failed")?.context("the server failed")?;
            if *stopped.borrow() == 0 {
                bail!("the server stopped unexpectedly");
            }
            server_done = true;
        }
        () = wait_for(stopped.clone(), 1) => {}
    }

    let grace = args.shutdown_grace;
    let running = runtime.running();
    tracing::info!(
        running,
        grace_ms = grace.as_millis() as u64,
        "stopping: no new connections; running tasks have the grace period to finish"
    );
    let deadline = tokio::time::Instant::now() + grace;
    tokio::select! {
        () = until_idle(&runtime) => tracing::info!("every task finished"),
        () = tokio::time::sleep_until(deadline) => {
            tracing::warn!(
                running = runtime.running(),
                "grace period over: leaving the running tasks to their kinds' restart policy"
            );
        }
        () = wait_for(stopped.clone(), 2) => {
            tracing::warn!(
                running = runtime.running(),
                "second signal: stopping now; running tasks are left to their restart policy"
            );
        }
    }
    // Event streams stayed open through the grace period, so watchers saw tasks finish; now
    // end them (and answer any late request with 503), so the connections can close.
    surface.shutdown();
    if !server_done
        && tokio::time::timeout(CONNECTIONS_GRACE, &mut server)
            .await
            .is_err()
    {
        server.abort();
    }
    // Write nothing more for what still runs: its handlers stop here, its tasks stay as stored
    // for the restart policy, and on PostgreSQL their leases are released so that another node
    // takes them at once.
    let left = runtime.leave().await;
    tracing::info!(left_running = left, "stopped");
    Ok(())
}

/// The runtime a config describes, with every kind registered: its process kinds and the
/// tools of its upstream MCP servers (the gateway). Unfinished tasks are not taken up yet: the
/// caller recovers once it is ready to serve them.
pub(crate) async fn runtime(
    args: &Args,
    config: &Config,
    auth: &config::Auth,
) -> anyhow::Result<(Runtime, Hub)> {
    let runtime = Runtime::new(runtime_options(args, config).await?);
    // Anyone may serve a kind on a server without tokens; otherwise `served_by` says who.
    let open = matches!(auth, config::Auth::Anonymous) && config.oauth.is_none();
    let hub = Hub::new(runtime.clone(), config.workers.options(open));
    for kind in &config.kinds {
        let registered = if kind.is_worker() {
            hub.serve_kind(kind.spec(), kind.worker_kind())
        } else {
            longrun_process::register(&runtime, kind.spec(), process_spec(kind, &config.dir))
        };
        registered.with_context(|| format!("cannot register kind `{}`", kind.name.get_ref()))?;
    }
    if !config.upstreams.is_empty() {
        // An upstream that cannot be reached stops the start: its kinds would be missing, and
        // its tasks taken up by `recover` could not run.
        let kinds = longrun_mcp::client::gateway::register_upstreams(&runtime, &config.upstreams)
            .await
            .context("cannot register the tools of the upstream MCP servers")?;
        tracing::info!(
            kinds = kinds.len(),
            "registered the upstream MCP servers' tools"
        );
    }
    Ok((runtime, hub))
}

/// The data directory: `--data`, else the config's, else [`DEFAULT_DATA`].
fn data_dir(args: &Args, config: &Config) -> PathBuf {
    args.data
        .clone()
        .or_else(|| config.data_dir())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA))
}

/// The store and limits from the config and the command line.
async fn runtime_options(args: &Args, config: &Config) -> anyhow::Result<Options> {
    let postgres = args
        .postgres
        .clone()
        .or_else(|| config.server.postgres.clone());
    let mut options = match postgres {
        Some(url) => {
            let mut postgres = PostgresOptions::new(url);
            if let Some(schema) = &config.server.postgres_schema {
                postgres = postgres.schema(schema.clone());
            }
            if let Some(node) = &config.server.node {
                postgres = postgres.node(NodeId::new(node.clone()));
            }
            let store = PostgresStore::connect(postgres)
                .await
                .context("cannot connect to PostgreSQL")?;
            tracing::info!(schema = store.schema(), "store: PostgreSQL");
            Options::clustered(store)
        }
        None => {
            let data = data_dir(args, config);
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create the data directory {}", data.display()))?;
            let file = data.join("longrun.db");
            let store = SqliteStore::open(&file)
                .with_context(|| format!("cannot open the SQLite store {}", file.display()))?;
            tracing::info!(file = %file.display(), "store: SQLite");
            Options {
                store: Some(Arc::new(store)),
                ..Options::default()
            }
        }
    };
    let limits = &config.limits;
    options.limits.global = limits.global_concurrency;
    options.limits.per_owner = limits.principal_concurrency;
    let defaults = Bounds::default();
    options.bounds = Bounds {
        input_bytes: limits.input_bytes.unwrap_or(defaults.input_bytes),
        artifact_bytes: limits.artifact_bytes.unwrap_or(defaults.artifact_bytes),
        event_bytes: limits.event_bytes.unwrap_or(defaults.event_bytes),
    };
    if let Some(max) = limits.max_finished {
        options.max_finished = max;
    }
    Ok(options)
}

/// How the process crate runs one kind's command: in the config file's directory.
fn process_spec(kind: &config::Kind, dir: &Path) -> ProcessSpec {
    let (program, args) = kind
        .command
        .as_deref()
        .and_then(<[String]>::split_first)
        .expect("only called for kinds with a command, which Config::parse refuses empty");
    let mut spec = ProcessSpec::new(program.clone()).cwd(dir);
    spec.args = args.to_vec();
    spec.env = kind.env.clone();
    if let Some(ms) = kind.term_grace_ms {
        spec.term_grace = Duration::from_millis(ms);
    }
    if let Some(version) = kind.protocol {
        spec = spec.protocol(version);
    }
    spec
}

fn surface_auth(auth: config::Auth) -> longrun_surface::Auth {
    match auth {
        config::Auth::Anonymous => longrun_surface::Auth::Anonymous,
        tokens @ config::Auth::Tokens(_) => longrun_surface::Auth::Tokens(static_tokens(tokens)),
    }
}

/// The `[[tokens]]` of the config, by token.
fn static_tokens(auth: config::Auth) -> HashMap<String, longrun_surface::Principal> {
    match auth {
        config::Auth::Anonymous => HashMap::new(),
        config::Auth::Tokens(tokens) => tokens
            .into_iter()
            .map(|(token, principal)| (token, longrun_surface::Principal::from(principal.as_str())))
            .collect(),
    }
}

fn limits(config: &Config) -> longrun_surface::Limits {
    let mut limits = longrun_surface::Limits::default();
    if let Some(bytes) = config.limits.body_bytes {
        limits.body_bytes = bytes;
    }
    if let Some(streams) = config.limits.streams_per_principal {
        limits.streams_per_principal = streams;
    }
    if let Some(ms) = config.limits.max_wait_ms {
        limits.max_wait = Duration::from_millis(ms);
    }
    limits
}

/// The demo config: relative to the current directory, then to this crate's source tree (so
/// `cargo run -p longrun-cli -- serve` works from anywhere in the repository).
fn demo_config() -> Option<PathBuf> {
    let relative = Path::new("examples/demo/longrun.toml");
    let beside_source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/longrun.toml");
    [relative.to_path_buf(), beside_source]
        .into_iter()
        .find(|path| path.is_file())
}

/// Counts SIGINT and SIGTERM into `count`: the first starts the graceful stop, the second ends
/// the grace period early.
async fn signals(count: watch::Sender<u32>) {
    #[cfg(unix)]
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => Some(term),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
            None
        }
    };
    loop {
        #[cfg(unix)]
        let terminate = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                // No Ctrl-C handler could be installed: wait for SIGTERM alone.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
        count.send_modify(|count| *count += 1);
    }
}

/// Resolves once `n` stop signals arrived.
async fn wait_for(mut count: watch::Receiver<u32>, n: u32) {
    if count.wait_for(|count| *count >= n).await.is_err() {
        // The signal task is gone: no signal will come.
        std::future::pending::<()>().await;
    }
}

/// Resolves once no task runs on this runtime.
async fn until_idle(runtime: &Runtime) {
    // The runtime has no "idle" notification; a short poll is cheap and only runs while
    // stopping.
    while runtime.running() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn init_logs(format: LogFormat, exporter: Option<&Exporter>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: `longrun serve 2> file` (or a log collector)
    // gets plain text, not escape codes.
    let logs = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // `RUST_LOG` filters the logs only: exported spans have their own filter (the exporter's).
    let logs = match format {
        LogFormat::Pretty => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
    };
    let mut layers = vec![logs];
    layers.extend(exporter.map(Exporter::layer));
    // `try_init`: a subscriber already installed (never, in the binary) is not an error.
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |at| text.split_at(at));
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" | "" => number,
        "m" => number * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s or m"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn commands_run_in_the_config_directory() {
        let config = Config::parse(
            "[server]\nanonymous = true\n[[kinds]]\nname = \"k\"\ncommand = [\"python3\", \
             \"h.py\", \"-v\"]\nenv = { A = \"1\" }\nterm_grace_ms = 250\n",
            "test.toml",
            PathBuf::from("/srv/longrun"),
        )
        .unwrap();
        let spec = process_spec(&config.kinds[0], &config.dir);
        assert_eq!(spec.program, "python3");
        assert_eq!(spec.args, ["h.py", "-v"]);
        assert_eq!(spec.cwd.as_deref(), Some(Path::new("/srv/longrun")));
        assert_eq!(spec.env["A"], "1");
        assert_eq!(spec.term_grace, Duration::from_millis(250));
    }
}
