//! What the storage-fault tests share: the server (the real `longrun` binary), its config and
//! directory, and a start through each door with the reading of its answer, 503 or
//! acknowledgement.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::Duration,
};

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_longrun");
pub(crate) const ALICE: &str = "alice-secret";
pub(crate) const MCP_VERSION: &str = "2026-07-28";
/// The longest any one request may take before the test counts it as hung.
pub(crate) const HANG: Duration = Duration::from_secs(30);

/// The config: one token, one kind that is safe to run twice.
pub(crate) const CONFIG: &str = r#"
[[tokens]]
token = "alice-secret"
principal = "alice"

[[kinds]]
name = "steps"
description = "Steps with progress."
command = ["python3", "handler.py"]
restart = "rerun"
cancel_grace_ms = 3000
term_grace_ms = 1000
"#;

/// A directory holding the config, the handler, the data directory and the shim's triggers.
pub(crate) struct Place {
    pub(crate) dir: tempfile::TempDir,
}

impl Place {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::copy(fixtures.join("handler.py"), dir.path().join("handler.py")).unwrap();
        std::fs::write(dir.path().join("longrun.toml"), CONFIG).unwrap();
        std::fs::create_dir(dir.path().join("triggers")).unwrap();
        Self { dir }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// A running `longrun serve`.
pub(crate) struct Server {
    child: Child,
    url: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// `longrun serve --config <config> --data <data> --listen 127.0.0.1:0 <extra>`, not yet
    /// started, for the caller to add to.
    pub(crate) fn command(config: &Path, data: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    }

    /// Starts `command` and waits for its "serving" line.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("the longrun binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            _stdout: stdout,
        }
    }

    pub(crate) fn post(&self, client: &Client, path: &str) -> RequestBuilder {
        client
            .post(format!("{}{path}", self.url))
            .bearer_auth(ALICE)
            .timeout(HANG)
    }

    pub(crate) fn get(&self, client: &Client, path: &str) -> RequestBuilder {
        client
            .get(format!("{}{path}", self.url))
            .bearer_auth(ALICE)
            .timeout(HANG)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` and reads its answer: the status and the body, as JSON when it is. Every
/// 503 must say when to retry, on every door.
pub(crate) async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(
            response.headers().get(reqwest::header::RETRY_AFTER),
            Some(&reqwest::header::HeaderValue::from_static("1")),
            "a 503 without Retry-After from {}",
            response.url()
        );
    }
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The doors a start comes through.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Door {
    V1,
    Mcp,
    A2a,
}

pub(crate) const DOORS: [Door; 3] = [Door::V1, Door::Mcp, Door::A2a];

/// A start of a task of `steps` steps through `door`, as that door's client sends it.
pub(crate) fn start(server: &Server, client: &Client, door: Door, steps: u64) -> RequestBuilder {
    let input = json!({"steps": steps, "step_ms": 100});
    match door {
        Door::V1 => server
            .post(client, "/v1/tasks")
            .json(&json!({"kind": "steps", "input": input})),
        Door::Mcp => {
            let params = json!({
                "name": "steps",
                "arguments": input,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
                    "io.modelcontextprotocol/clientCapabilities":
                        {"extensions": {"io.modelcontextprotocol/tasks": {}}},
                },
            });
            server
                .post(client, "/mcp")
                .header("accept", "application/json")
                .header("mcp-protocol-version", MCP_VERSION)
                .header("mcp-method", "tools/call")
                .header("mcp-name", "steps")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        }
        Door::A2a => {
            let id = format!("m-{}", uuid_like());
            server
                .post(client, "/a2a")
                .header("a2a-version", "1.0")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
                    // The skill named, for configs with more than one kind.
                    "message": {"messageId": id, "role": "ROLE_USER", "parts": [{"data": input}],
                        "metadata": {"skill": "steps"}},
                    "configuration": {"returnImmediately": true},
                }}))
        }
    }
}

/// A number that differs per call, for message ids.
fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// What a start's answer says: the id of the task it acknowledged, or that it was refused with
/// the door's 503. Anything else fails the test.
pub(crate) fn read_start(door: Door, status: StatusCode, body: &Value) -> Option<String> {
    let id = match door {
        Door::V1 => body["id"].as_str(),
        Door::Mcp => body["result"]["taskId"].as_str(),
        Door::A2a => body["result"]["task"]["id"].as_str(),
    };
    if status.is_success() && body.get("error").is_none() {
        let id = id.unwrap_or_else(|| panic!("{door:?}: a 2xx without a task id: {body}"));
        return Some(id.to_owned());
    }
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{door:?}: a start refused with another status: {body}"
    );
    match door {
        Door::V1 => assert_eq!(body["error"]["code"], "unavailable", "{body}"),
        Door::Mcp => {
            assert_eq!(body["jsonrpc"], "2.0", "{body}");
            assert_eq!(body["error"]["code"], -32030, "{body}");
        }
        Door::A2a => {
            assert_eq!(body["jsonrpc"], "2.0", "{body}");
            assert!(body["error"]["code"].is_i64(), "{body}");
        }
    }
    let message = body.to_string();
    // Redacted: the store's own words (the file's path, SQLite's message) stay in the log.
    assert!(!message.contains("sqlite"), "{message}");
    assert!(!message.contains("/data"), "{message}");
    None
}

/// Polls the task until it has ended; returns it.
pub(crate) async fn until_ended(server: &Server, client: &Client, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        let (status, task) = send(server.get(client, &format!("/v1/tasks/{id}"))).await;
        if status == StatusCode::OK
            && ["completed", "failed", "cancelled"].contains(&task["status"].as_str().unwrap_or(""))
        {
            return task;
        }
        last = task;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} never ended; last seen: {last}");
}
