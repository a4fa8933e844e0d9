//! What the worker's integration tests share: a real `longrun serve` (a child process on a
//! temporary data directory, anonymous on loopback) and `/v1` calls as a client makes them.
//!
//! The binary is `$LONGRUN_BIN`, or `longrun` in the target directory these tests were built
//! in (built by `cargo build -p longrun-cli`, or by any workspace-wide `cargo test`).
//!
//! No assertion here is about time. The waits are hang guards: a test that would hang fails
//! after `HANG` instead, with what it saw.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part of this module

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The longest any one wait of a test may take before it is considered hung.
pub const HANG: Duration = Duration::from_secs(30);

/// The `longrun` binary to test against.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LONGRUN_BIN") {
        return PathBuf::from(path);
    }
    // This test runs from `<target>/<profile>/deps/`; the binary is in `<target>/<profile>/`.
    let exe = std::env::current_exe().expect("the test knows where it runs from");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in <target>/<profile>/deps");
    let path = profile.join("longrun");
    assert!(
        path.exists(),
        "no longrun binary at {}: run `cargo build -p longrun-cli` first, or set LONGRUN_BIN",
        path.display()
    );
    path
}

/// A `longrun serve` on a free loopback port.
pub struct Server {
    child: Child,
    pub url: String,
    _stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
    pub http: Client,
}

/// `[workers]` timings short enough for a test to see a worker lost.
pub const FAST_EXPIRY: &str = "[workers]\nheartbeat_ms = 100\nexpiry_ms = 1000\n";

impl Server {
    /// Starts a server, anonymous on loopback, with `config` added to its config file.
    pub fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("longrun.toml");
        std::fs::write(&path, format!("[server]\nanonymous = true\n\n{config}"))
            .expect("the config is written");
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the longrun binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the server writes a line");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the server's first line: {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            _stdout: stdout,
            _dir: dir,
            http: Client::new(),
        }
    }

    /// Sends `method path` with `body` (when not `null`); the status and the body, as JSON
    /// when it is.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .timeout(HANG);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Starts a task of `kind`; returns its id.
    pub async fn start_task(&self, kind: &str, input: Value) -> String {
        let (status, task) = self
            .call("POST", "/v1/tasks", json!({"kind": kind, "input": input}))
            .await;
        assert!(status.is_success(), "start {kind}: {status} {task}");
        task["id"].as_str().expect("a task has an id").to_owned()
    }

    /// The task as it stands.
    pub async fn task(&self, id: &str) -> Value {
        let (status, task) = self
            .call("GET", &format!("/v1/tasks/{id}"), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "get {id}: {task}");
        task
    }

    /// Reads the task until `done` holds of it, and returns it.
    pub async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = std::time::Instant::now();
        loop {
            let task = self.task(id).await;
            if done(&task) {
                return task;
            }
            assert!(
                started.elapsed() < HANG,
                "task {id} never became {what}: {task}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the task to end, and returns it.
    pub async fn ended(&self, id: &str) -> Value {
        self.until(id, "ended", |task| {
            matches!(
                task["status"].as_str(),
                Some("completed" | "failed" | "cancelled" | "rejected")
            )
        })
        .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `future`, failing the test after `HANG` with `what`.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, future)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}
