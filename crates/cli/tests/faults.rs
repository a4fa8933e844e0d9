//! Storage faults (issue 15, item 3) on the real `longrun serve` with its SQLite store: a full
//! disk, a failing fsync and a read-only file system, each produced by the `LD_PRELOAD` shim in
//! `tests/faults/shim.c` while a trigger file exists.
//!
//! For each fault, under a small load of starts over `/v1`, MCP and A2A: during the fault every
//! door answers a start with 503 in its own shape, and nothing is acknowledged that was not
//! written; once the trigger is gone the same server takes starts again by itself, and every
//! task acknowledged before, during or after the fault ends; a restart of the server on the same
//! file finds them all.
//!
//! Needs a C compiler (`cc`) and Linux (`/proc/self/fd`, `LD_PRELOAD`). No assertion here is
//! about time; the waits are hang guards.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_longrun");
const ALICE: &str = "alice-secret";
const MCP_VERSION: &str = "2026-07-28";
/// The longest any one request may take before the test counts it as hung.
const HANG: Duration = Duration::from_secs(30);

/// The config: one token, one kind that is safe to run twice.
const CONFIG: &str = r#"
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

/// The shim, compiled once per test binary.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("liblongrun-faults.so");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("a C compiler (`cc`) builds the fault shim");
        assert!(status.success(), "cc failed to build {}", source.display());
        out
    })
}

/// The faults the shim produces: the name of the trigger file.
#[derive(Clone, Copy, Debug)]
enum Fault {
    FullDisk,
    FailingFsync,
    ReadOnly,
}

impl Fault {
    fn trigger(self) -> &'static str {
        match self {
            Self::FullDisk => "enospc",
            Self::FailingFsync => "eio",
            Self::ReadOnly => "erofs",
        }
    }
}

/// A directory holding the config, the handler, the data directory and the triggers.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::copy(fixtures.join("handler.py"), dir.path().join("handler.py")).unwrap();
        std::fs::write(dir.path().join("longrun.toml"), CONFIG).unwrap();
        std::fs::create_dir(dir.path().join("triggers")).unwrap();
        Self { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn trigger(&self, fault: Fault) -> PathBuf {
        self.dir.path().join("triggers").join(fault.trigger())
    }
}

/// A running `longrun serve`.
struct Server {
    child: Child,
    url: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts the server in `place`; with `faulty`, under the shim.
    fn start(place: &Place, faulty: bool) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--config")
            .arg(place.dir.path().join("longrun.toml"))
            .arg("--data")
            .arg(place.data())
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if faulty {
            command
                .env("LD_PRELOAD", shim())
                .env("LONGRUN_FAULTS", place.dir.path().join("triggers"))
                .env("LONGRUN_FAULT_FILES", place.data());
        }
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

    fn post(&self, client: &Client, path: &str) -> RequestBuilder {
        client
            .post(format!("{}{path}", self.url))
            .bearer_auth(ALICE)
            .timeout(HANG)
    }

    fn get(&self, client: &Client, path: &str) -> RequestBuilder {
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

/// Sends `request` and reads its answer: the status and the body, as JSON when it is.
async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The doors a start comes through.
#[derive(Clone, Copy, Debug)]
enum Door {
    V1,
    Mcp,
    A2a,
}

const DOORS: [Door; 3] = [Door::V1, Door::Mcp, Door::A2a];

/// A start of a task of `steps` steps through `door`, as that door's client sends it.
fn start(server: &Server, client: &Client, door: Door, steps: u64) -> RequestBuilder {
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
                    "message": {"messageId": id, "role": "ROLE_USER", "parts": [{"data": input}]},
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
fn read_start(door: Door, status: StatusCode, body: &Value) -> Option<String> {
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
async fn until_ended(server: &Server, client: &Client, id: &str) -> Value {
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

/// The whole scenario for one fault, as the module docs describe.
async fn survives(fault: Fault) {
    let place = Place::new();
    let server = Server::start(&place, true);
    let client = Client::new();
    let mut acknowledged = Vec::new();

    // Before: a task per door, long enough (2 s) to be running when the fault starts.
    for door in DOORS {
        let (status, body) = send(start(&server, &client, door, 20)).await;
        let id = read_start(door, status, &body)
            .unwrap_or_else(|| panic!("{door:?}: refused before any fault: {body}"));
        acknowledged.push(id);
    }

    // During: every start through every door is refused with its 503. No write can reach the
    // disk under the shim, so an acknowledgement here would be one of nothing written.
    std::fs::write(place.trigger(fault), "").unwrap();
    for _ in 0..3 {
        for door in DOORS {
            let (status, body) = send(start(&server, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                panic!("{fault:?}: {door:?} acknowledged {id} during the fault");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reads need no write: a task is still there to be seen.
    let (status, _) = send(server.get(&client, &format!("/v1/tasks/{}", acknowledged[0]))).await;
    assert_eq!(status, StatusCode::OK, "{fault:?}: a read during the fault");

    // After: the same server takes starts again by itself.
    std::fs::remove_file(place.trigger(fault)).unwrap();
    for door in DOORS {
        let mut tries = 0;
        let id = loop {
            let (status, body) = send(start(&server, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                break id;
            }
            tries += 1;
            assert!(tries < 600, "{fault:?}: {door:?} never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        acknowledged.push(id);
    }

    // Nothing acknowledged is lost: every task ends, those cut off by the fault re-run.
    for id in &acknowledged {
        let task = until_ended(&server, &client, id).await;
        assert_eq!(task["status"], "completed", "{fault:?}: {task}");
    }

    // And a restart on the same file, without the shim, finds them all as they ended.
    drop(server);
    let server = Server::start(&place, false);
    for id in &acknowledged {
        let (status, task) = send(server.get(&client, &format!("/v1/tasks/{id}"))).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{fault:?}: {id} after a restart: {task}"
        );
        assert_eq!(task["status"], "completed", "{fault:?}: {task}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_a_503_on_every_door_and_loses_nothing() {
    survives(Fault::FullDisk).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_fsync_is_a_503_on_every_door_and_loses_nothing() {
    survives(Fault::FailingFsync).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_file_system_is_a_503_on_every_door_and_loses_nothing() {
    survives(Fault::ReadOnly).await;
}

/// A TCP proxy between the server and PostgreSQL that the test cuts: every open connection is
/// shut down and every new one closed at once, as a restarted or unreachable database refuses
/// them, until it is restored.
struct Proxy {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    cut: bool,
    /// Both ends of every connection made, for the cut to shut down.
    open: Vec<std::net::TcpStream>,
}

impl Proxy {
    fn start(target: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut state = shared.lock().unwrap();
                if state.cut {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                state.open.push(client);
                state.open.push(server);
            }
        });
        Self { addr, state }
    }

    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.cut = true;
        for stream in state.open.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.state.lock().unwrap().cut = false;
    }
}

/// A config file in `place` for a node named `node` on `schema`.
fn pg_config(place: &Place, schema: &str, node: &str) -> PathBuf {
    let config = place.dir.path().join(format!("{node}.toml"));
    std::fs::write(
        &config,
        format!("[server]\npostgres_schema = \"{schema}\"\nnode = \"{node}\"\n{CONFIG}"),
    )
    .unwrap();
    config
}

impl Server {
    /// Starts a server with `config` on PostgreSQL at `url`, its own files in `data`.
    fn start_pg(config: &Path, data: &Path, url: &str) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--postgres", url])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the longrun binary starts");
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
}

/// The test database's URL, as the other PostgreSQL tests take it: required in CI, skipped
/// loudly elsewhere.
fn postgres_url() -> Option<String> {
    const VAR: &str = "LONGRUN_TEST_POSTGRES_URL";
    if let Ok(url) = std::env::var(VAR) {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL tests need {VAR}; .ci/run sets it"
    );
    eprintln!("\n*** SKIPPED: the PostgreSQL storage fault. Set {VAR} to run it. ***\n");
    None
}

/// `url` with its `host:port` replaced by `addr`, and the address it named.
fn through(url: &str, addr: std::net::SocketAddr) -> (String, std::net::SocketAddr) {
    use std::net::ToSocketAddrs as _;
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").unwrap() + 3, |at| at + 1);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let target = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let target = target.to_socket_addrs().unwrap().next().unwrap();
    (format!("{}{addr}{}", &url[..start], &url[end..]), target)
}

/// Drops the test's schema, and everything in it, at the end.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // On a thread of its own: the test's runtime may be the one dropping this.
        let dropping = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            });
        });
        let _ = dropping.join();
    }
}

/// PostgreSQL cut off for a few seconds (shorter than a lease) under starts through every
/// door: 503 on every door while it lasts, the same server recovers by itself, and every task
/// acknowledged ends and is found again after a restart. `LONGRUN_FAULT_SECONDS` sets the
/// length of the cut (30 for the issue's form; a lease is 6 s by default, so a cut that long
/// also exercises fail-stop and the claim).
#[tokio::test(flavor = "multi_thread")]
async fn postgres_cut_off_is_a_503_on_every_door_and_loses_nothing() {
    let Some(url) = postgres_url() else { return };
    let seconds: u64 = std::env::var("LONGRUN_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let schema = format!("faults_{}", std::process::id());
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let (_, target) = through(&url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(target);
    let (proxied, _) = through(&url, proxy.addr);

    let place = Place::new();
    let config = pg_config(&place, &schema, "faults");
    let start_server = |url: &str| Server::start_pg(&config, &place.data(), url);
    let server = start_server(&proxied);
    let client = Client::new();
    let mut acknowledged = Vec::new();
    for door in DOORS {
        let (status, body) = send(start(&server, &client, door, 20)).await;
        let id = read_start(door, status, &body)
            .unwrap_or_else(|| panic!("{door:?}: refused before any fault: {body}"));
        acknowledged.push(id);
    }

    proxy.cut();
    let cut_at = std::time::Instant::now();
    let mut rounds = 0;
    while rounds < 3 || cut_at.elapsed() < Duration::from_secs(seconds) {
        for door in DOORS {
            let (status, body) = send(start(&server, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                panic!("{door:?} acknowledged {id} while PostgreSQL was cut off");
            }
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    proxy.restore();
    for door in DOORS {
        let mut tries = 0;
        let id = loop {
            let (status, body) = send(start(&server, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                break id;
            }
            tries += 1;
            assert!(tries < 600, "{door:?} never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        acknowledged.push(id);
    }
    for id in &acknowledged {
        let task = until_ended(&server, &client, id).await;
        assert_eq!(task["status"], "completed", "{task}");
    }

    drop(server);
    let server = start_server(&url);
    for id in &acknowledged {
        let (status, task) = send(server.get(&client, &format!("/v1/tasks/{id}"))).await;
        assert_eq!(status, StatusCode::OK, "{id} after a restart: {task}");
        assert_eq!(task["status"], "completed", "{task}");
    }
}

/// Two nodes on one schema; one is cut off from PostgreSQL for longer than a lease (6 s) while
/// the other carries on: the cut-off node answers 503 on every door and stops its handlers
/// (fail-stop), the other takes starts all along and claims the cut-off node's tasks once their
/// leases expire, and the cut-off node takes starts again once the cut ends.
#[tokio::test(flavor = "multi_thread")]
async fn one_node_of_two_cut_off_answers_503_while_the_other_carries_on() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("faults_two_{}", std::process::id());
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let (_, target) = through(&url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(target);
    let (proxied, _) = through(&url, proxy.addr);
    let place = Place::new();
    let cut_off = Server::start_pg(
        &pg_config(&place, &schema, "faults-a"),
        &place.dir.path().join("data-a"),
        &proxied,
    );
    let other = Server::start_pg(
        &pg_config(&place, &schema, "faults-b"),
        &place.dir.path().join("data-b"),
        &url,
    );
    let client = Client::new();

    // Tasks of 2 s on the node about to be cut off: running when the cut starts.
    let mut acknowledged = Vec::new();
    for door in DOORS {
        let (status, body) = send(start(&cut_off, &client, door, 20)).await;
        let id = read_start(door, status, &body)
            .unwrap_or_else(|| panic!("{door:?}: refused before any fault: {body}"));
        acknowledged.push(id);
    }

    proxy.cut();
    // Until every task of the cut-off node has ended on the other one, the cut-off node
    // refuses every start and the other takes them.
    let cut_at = std::time::Instant::now();
    loop {
        for door in DOORS {
            let (status, body) = send(start(&cut_off, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                panic!("{door:?}: the cut-off node acknowledged {id}");
            }
            let (status, body) = send(start(&other, &client, door, 2)).await;
            let id = read_start(door, status, &body)
                .unwrap_or_else(|| panic!("{door:?}: the other node refused a start: {body}"));
            acknowledged.push(id);
        }
        let mut ended = 0;
        for id in &acknowledged[..3] {
            let (_, task) = send(other.get(&client, &format!("/v1/tasks/{id}"))).await;
            if task["status"] == "completed" {
                ended += 1;
            }
        }
        if ended == 3 {
            break;
        }
        assert!(
            cut_at.elapsed() < Duration::from_secs(60),
            "the other node never finished the cut-off node's tasks"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    proxy.restore();
    for door in DOORS {
        let mut tries = 0;
        let id = loop {
            let (status, body) = send(start(&cut_off, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                break id;
            }
            tries += 1;
            assert!(tries < 600, "{door:?}: the cut-off node never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        acknowledged.push(id);
    }
    for id in &acknowledged {
        let task = until_ended(&other, &client, id).await;
        assert_eq!(task["status"], "completed", "{task}");
    }
}
