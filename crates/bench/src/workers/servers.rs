//! The two servers `workers` measures against: the real `longrun serve` (a child process, for
//! the worker and process kinds) and an in-process [`longrun::Runtime`] behind the same HTTP
//! API (the in-process baseline).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::Arc,
    time::Instant,
};

use anyhow::Context as _;
use longrun::{Context, KindSpec, Options, Runtime, TaskError};
use longrun_http::{Api, Auth, Limits};
use longrun_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The kinds of the `longrun serve` under test.
pub(crate) const RUST_KIND: &str = "echo-rust-worker";
pub(crate) const PYTHON_KIND: &str = "echo-python-worker";
pub(crate) const PROCESS_KIND: &str = "echo-process";
pub(crate) const PYTHON_PROCESS_KIND: &str = "echo-python-process";
/// The in-process server's kind.
pub(crate) const IN_PROCESS_KIND: &str = "echo";

/// `examples/handlers/echo.sh`, the process handler.
fn echo_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/handlers/echo.sh")
}

/// The `longrun` binary: `$LONGRUN_BIN`, or `longrun` beside this benchmark's binary.
fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LONGRUN_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("the benchmark's binary has no directory")?
        .join("longrun");
    anyhow::ensure!(
        path.exists(),
        "no longrun binary at {}: build it (`cargo build --release -p longrun-cli`) or set LONGRUN_BIN",
        path.display()
    );
    Ok(path)
}

/// A `longrun serve` child on SQLite in a temporary directory, anonymous on loopback.
pub(crate) struct Serve {
    child: Child,
    pub(crate) url: String,
    _stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// `python`, the Python SDK's interpreter when there is one, also serves the same handler
    /// as a Python process handler.
    pub(crate) fn start(python: Option<&Path>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("longrun.toml");
        let echo = echo_sh();
        let mut text = format!(
            "[server]\nanonymous = true\n\n\
             [[kinds]]\nname = \"{RUST_KIND}\"\nworker = true\n\n\
             [[kinds]]\nname = \"{PYTHON_KIND}\"\nworker = true\n\n\
             [[kinds]]\nname = \"{PROCESS_KIND}\"\ncommand = [\"sh\", {echo:?}]\n"
        );
        if let Some(python) = python {
            let script = dir.path().join("echo_process.py");
            std::fs::write(&script, super::python::PROCESS_SCRIPT)?;
            text.push_str(&format!(
                "\n[[kinds]]\nname = \"{PYTHON_PROCESS_KIND}\"\ncommand = [{python:?}, {script:?}]\n"
            ));
        }
        std::fs::write(&config, text)?;
        let mut child = Command::new(binary()?)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start longrun serve")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout is piped")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .with_context(|| format!("no URL in longrun serve's first line: {line:?}"))?
            .to_owned();
        Ok(Self {
            child,
            url,
            _stdout: stdout,
            _dir: dir,
        })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The in-process baseline: a runtime on SQLite in this process, behind the same HTTP API.
pub(crate) struct InProcess {
    pub(crate) url: String,
    runtime: Runtime,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// `called` gets the moment the handler is called, for every task whose input has
    /// `"probe": true`.
    pub(crate) async fn start(called: mpsc::UnboundedSender<Instant>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path().join("longrun.db"))?;
        let runtime = Runtime::new(Options {
            store: Some(Arc::new(store)),
            ..Options::default()
        });
        runtime.register(
            KindSpec::new(IN_PROCESS_KIND).description("Echoes its input."),
            move |_ctx: Context, input: Value| {
                let called = called.clone();
                async move {
                    if input["probe"] == true {
                        let _ = called.send(Instant::now());
                    }
                    Ok::<_, TaskError>(json!({ "echo": input }))
                }
            },
        )?;
        let surface =
            longrun_http::Surface::new(runtime.clone(), Auth::Anonymous, Limits::default());
        let app = longrun_http::router(Api::new(surface));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            url,
            runtime,
            server,
            _dir: dir,
        })
    }

    pub(crate) async fn stop(self) {
        self.server.abort();
        self.runtime.shutdown().await;
    }
}
