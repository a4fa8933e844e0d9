//! End to end: the real `longrun` binary as a server (a child process on a temp data
//! directory, the config in `tests/fixtures/longrun.toml`, handlers in Python) and as the
//! client, driven the way a person or a script would.
//!
//! No assertion here is about time. The waits below are hang guards: a test that would hang
//! fails after a minute instead, with what it saw.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_longrun");
const ALICE: &str = "alice-secret";
const BOB: &str = "bob-secret";
/// The longest any one step of a test may take before it is considered hung.
const HANG: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A running `longrun serve`.
struct Server {
    child: Child,
    url: String,
    /// Kept open so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts the server on `data` with the fixture config, on a free port, and waits for its
    /// "serving" line.
    fn start(data: &Path, extra: &[&str]) -> (Self, String) {
        Self::start_with(&fixtures().join("longrun.toml"), data, extra)
    }

    /// The same with another config file.
    fn start_with(config: &Path, data: &Path, extra: &[&str]) -> (Self, String) {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
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
        // "longrun serving on http://127.0.0.1:PORT (N kinds, M tasks recovered)"
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the server's first line: {line:?}"))
            .to_owned();
        (
            Self {
                child,
                url,
                _stdout: stdout,
            },
            line,
        )
    }

    /// Runs `longrun <args>` against this server as the principal with `token`.
    fn run(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut command = self.command(token, args);
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the longrun binary starts");
        wait_output(child)
    }

    fn command(&self, token: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("LONGRUN_SERVER", &self.url)
            .env_remove("LONGRUN_TOKEN");
        if let Some(token) = token {
            command.env("LONGRUN_TOKEN", token);
        }
        command
    }

    /// `longrun --json <args>`, expecting exit code `code`, parsed.
    fn json(&self, token: &str, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(Some(token), &all);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            describe(&output)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{args:?}: not JSON ({error}): {}", describe(&output)))
    }

    /// Starts a task of `kind` as alice; returns its id.
    fn start_task(&self, kind: &str, input: Value) -> String {
        let task = self.json(
            ALICE,
            &["tasks", "start", kind, "--input", &input.to_string()],
            0,
        );
        task["id"].as_str().expect("a task has an id").to_owned()
    }

    /// Polls `tasks get` until `done` says the task is where the test wants it.
    fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let output = self.run(Some(ALICE), &["tasks", "get", id, "--json"]);
            let task: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            if done(&task) {
                return task;
            }
            assert!(
                started.elapsed() < HANG,
                "task {id} never became {what}: {task}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to write anything more.
    fn kill(mut self) {
        self.child.kill().expect("the server can be killed");
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        wait_status(&mut self.child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `longrun tasks watch` whose lines are read as they come.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(server: &Server, token: &str, id: &str) -> Self {
        let mut child = server
            .command(Some(token), &["tasks", "watch", id])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the longrun binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one contains `text`.
    fn until(&mut self, text: &str) {
        let started = Instant::now();
        while !self.seen.iter().any(|line| line.contains(text)) {
            let left = HANG.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("watch never printed {text:?}; it printed {:#?}", self.seen),
            }
        }
    }

    /// Waits for the exit; returns its code and every line printed.
    fn exit(mut self) -> (Option<i32>, Vec<String>) {
        let status = wait_status(&mut self.child);
        self.seen.extend(self.lines.iter());
        (status.code(), self.seen)
    }
}

fn wait_status(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("a longrun process did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_output(mut child: Child) -> Output {
    // Small outputs: read after the exit without risk of filling the pipes.
    let status = wait_status(&mut child);
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut out = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read));
    let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read));
    Output {
        status,
        stdout,
        stderr,
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_question_is_answered_and_the_task_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, line) = Server::start(dir.path(), &[]);
    assert!(line.contains("(2 kinds, 0 tasks recovered)"), "{line}");

    let kinds = server.json(ALICE, &["kinds"], 0);
    let names: Vec<_> = kinds_of(&kinds)
        .iter()
        .map(|kind| kind["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"steps".to_owned()), "{kinds}");

    let id = server.start_task("steps", json!({"steps": 6, "step_ms": 20, "ask": true}));
    let mut watch = Watch::start(&server, ALICE, &id);
    watch.until("input_required");

    let answered = server.run(Some(ALICE), &["tasks", "answer", &id, "go", "true"]);
    assert_eq!(answered.status.code(), Some(0), "{}", describe(&answered));

    let (code, lines) = watch.exit();
    assert_eq!(code, Some(0), "watch exits 0 on completion: {lines:#?}");
    assert!(
        lines.iter().any(|line| line.contains("completed")),
        "{lines:#?}"
    );

    let task = server.json(ALICE, &["tasks", "get", &id], 0);
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["output"], json!({"attempt": 1, "steps": 6}), "{task}");

    let page = server.json(ALICE, &["tasks", "list", "--kind", "steps"], 0);
    assert!(ids_of(&page).contains(&id), "{page}");

    // Waiting for the outcome: the exit code tells it.
    let waited = server.run(
        Some(ALICE),
        &[
            "tasks",
            "start",
            "steps",
            "--input",
            r#"{"steps": 1}"#,
            "--wait-ms",
            "30000",
        ],
    );
    assert_eq!(waited.status.code(), Some(0), "{}", describe(&waited));
    let waited = server.run(
        Some(ALICE),
        &[
            "tasks",
            "start",
            "steps",
            "--input",
            r#"{"steps": 1000, "step_ms": 20}"#,
            "--wait-ms",
            "1",
        ],
    );
    assert_eq!(
        waited.status.code(),
        Some(5),
        "still running when the wait ended: {}",
        describe(&waited)
    );

    // An input the kind's schema refuses never becomes a task: exit 1 with the server's reason.
    let refused = server.run(
        Some(ALICE),
        &["tasks", "start", "steps", "--input", r#"{"steps": -1}"#],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
}

#[test]
fn a_cancelled_task_ends_the_watch_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(dir.path(), &[]);
    let id = server.start_task("steps", json!({"steps": 10000, "step_ms": 20}));
    let mut watch = Watch::start(&server, ALICE, &id);
    watch.until("progress");

    let cancelled = server.run(Some(ALICE), &["tasks", "cancel", &id]);
    assert_eq!(cancelled.status.code(), Some(0), "{}", describe(&cancelled));

    let (code, lines) = watch.exit();
    assert_eq!(code, Some(3), "watch exits 3 on cancellation: {lines:#?}");
    let task = server.json(ALICE, &["tasks", "get", &id], 3);
    assert_eq!(task["status"], "cancelled", "{task}");
}

#[test]
fn after_a_kill_9_every_task_is_there_and_ends_by_its_restart_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(dir.path(), &[]);
    let done = server.start_task("steps", json!({"steps": 0}));
    server.until(&done, "completed", |task| task["status"] == "completed");
    // Parked on a question, so that it is surely still running when the server dies.
    let rerun = server.start_task("steps", json!({"steps": 4, "step_ms": 20, "ask": true}));
    let fragile = server.start_task("fragile", json!({"steps": 100000, "step_ms": 20}));
    server.until(&rerun, "input_required", |task| {
        task["status"] == "input_required"
    });
    server.until(&fragile, "working with progress", |task| {
        task["status"] == "working" && !task["progress"].is_null()
    });
    server.kill();

    let (server, line) = Server::start(dir.path(), &[]);
    assert!(line.contains("2 tasks recovered"), "{line}");

    // Run again from the start, it asks again (it was never answered); answered, it completes.
    let mut watch = Watch::start(&server, ALICE, &rerun);
    watch.until("started, attempt 2");
    answer_when_asked(&server, &rerun);
    let (code, lines) = watch.exit();
    assert_eq!(code, Some(0), "the rerun task completes: {lines:#?}");
    let task = server.json(ALICE, &["tasks", "get", &rerun], 0);
    assert_eq!(task["attempt"], 2, "{task}");
    assert_eq!(task["output"]["attempt"], 2, "{task}");

    let task = server.json(ALICE, &["tasks", "get", &fragile], 2);
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "interrupted", "{task}");

    let task = server.json(ALICE, &["tasks", "get", &done], 0);
    assert_eq!(task["status"], "completed", "{task}");

    let page = server.json(ALICE, &["tasks", "list"], 0);
    let listed = ids_of(&page);
    for id in [&done, &rerun, &fragile] {
        assert!(listed.contains(id), "{id} missing from {page}");
    }
}

#[test]
fn sigterm_stops_the_server_without_cancelling_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(dir.path(), &["--shutdown-grace", "100ms"]);
    let id = server.start_task("steps", json!({"steps": 100000, "step_ms": 20}));
    server.until(&id, "working with progress", |task| {
        task["status"] == "working" && !task["progress"].is_null()
    });
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "a signalled server exits cleanly");

    // Not cancelled: the restart policy (re-run) took it up again.
    let (server, line) = Server::start(dir.path(), &[]);
    assert!(line.contains("1 tasks recovered"), "{line}");
    let task = server.until(&id, "running again", |task| task["attempt"] == 2);
    assert_eq!(task["status"], "working", "{task}");
}

/// The same crash and restart on PostgreSQL: the restarted server, under the same node name,
/// takes its tasks back at once.
#[test]
fn on_postgres_a_killed_servers_tasks_are_taken_up_at_its_restart() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("cli_e2e_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("longrun.toml");
    let fixture = std::fs::read_to_string(fixtures().join("longrun.toml")).unwrap();
    let handler = fixtures().join("handler.py");
    let text = fixture
        .replace(
            "[server]\n",
            &format!("[server]\npostgres_schema = \"{schema}\"\nnode = \"cli-e2e\"\n"),
        )
        .replace(
            "\"handler.py\"",
            &format!("{:?}", handler.display().to_string()),
        );
    std::fs::write(&config, text).unwrap();
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };

    let postgres = ["--postgres", url.as_str()];
    let (server, _) = Server::start_with(&config, dir.path(), &postgres);
    // Parked on a question, so that it is surely still running when the server dies.
    let rerun = server.start_task("steps", json!({"steps": 4, "step_ms": 20, "ask": true}));
    let fragile = server.start_task("fragile", json!({"steps": 100000, "step_ms": 20}));
    server.until(&rerun, "input_required", |task| {
        task["status"] == "input_required"
    });
    server.until(&fragile, "working with progress", |task| {
        task["status"] == "working" && !task["progress"].is_null()
    });
    server.kill();

    let (server, line) = Server::start_with(&config, dir.path(), &postgres);
    assert!(line.contains("2 tasks recovered"), "{line}");
    answer_when_asked(&server, &rerun);
    let (code, _) = Watch::start(&server, ALICE, &rerun).exit();
    assert_eq!(code, Some(0), "the rerun task completes");
    let task = server.json(ALICE, &["tasks", "get", &rerun], 0);
    assert_eq!(task["attempt"], 2, "{task}");
    let task = server.json(ALICE, &["tasks", "get", &fragile], 2);
    assert_eq!(task["error"]["code"], "interrupted", "{task}");
}

/// Waits until the re-run of `id` asks `go` again, and answers yes.
/// The example Python agent loop (`examples/handlers/agent.py`, protocol 2), its server
/// SIGKILLed between two model calls and restarted on the same SQLite database: the re-run
/// replays the saved calls and makes only the rest. The agent writes a line to a log for each
/// call it really makes, so the count is taken outside longrun.
#[test]
fn a_killed_servers_agent_resumes_without_repeating_a_saved_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixtures().join("agent.toml");
    let log = dir.path().join("calls.log");
    let calls = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (server, _) = Server::start_with(&config, dir.path(), &[]);
    // Four calls with a durable pause after the second: long enough that the kill surely lands
    // in it, between call 2 (saved) and call 3 (not begun).
    let input = json!({"calls": 4, "pause_ms": 5000, "log": log.display().to_string()});
    let id = server.start_task("agent", input);
    let task = server.until(&id, "two calls saved and pausing", |task| {
        task["steps"]
            .as_object()
            .is_some_and(|steps| steps.len() == 2)
            && task["status_message"]
                .as_str()
                .is_some_and(|message| message.contains("timer `pause`"))
    });
    assert_eq!(calls(), ["call-1", "call-2"], "{task}");
    server.kill();
    // The agent cannot begin call 3 without the server: the kill came between calls.
    assert_eq!(calls(), ["call-1", "call-2"], "the kill came mid-call");

    let (server, line) = Server::start_with(&config, dir.path(), &[]);
    assert!(line.contains("1 tasks recovered"), "{line}");
    let task = server.until(&id, "completed", |task| task["status"] == "completed");
    assert_eq!(task["attempt"], 2, "{task}");
    assert_eq!(
        task["output"]["replies"],
        json!(["answer 1", "answer 2", "answer 3", "answer 4"]),
        "{task}"
    );
    assert_eq!(
        calls(),
        ["call-1", "call-2", "call-3", "call-4"],
        "each call made once: the saved ones were replayed, not made again"
    );

    // `tasks get` shows the saved steps: by key and value with --json, in a line without.
    let task = server.json(ALICE, &["tasks", "get", &id], 0);
    let steps = task["steps"].as_object().expect("steps beside the task");
    let keys: Vec<&str> = steps.keys().map(String::as_str).collect();
    assert_eq!(keys, ["call-1", "call-2", "call-3", "call-4"], "{task}");
    assert_eq!(steps["call-3"]["reply"], "answer 3", "{task}");
    let shown = server.run(Some(ALICE), &["tasks", "get", &id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("4 steps saved (call-1, call-2, call-3, call-4)"),
        "{}",
        describe(&shown)
    );
}

fn answer_when_asked(server: &Server, id: &str) {
    server.until(id, "asking again in its second attempt", |task| {
        task["attempt"] == 2 && task["status"] == "input_required"
    });
    let answered = server.run(Some(ALICE), &["tasks", "answer", id, "go", "true"]);
    assert_eq!(answered.status.code(), Some(0), "{}", describe(&answered));
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
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(
        format!("\n*** SKIPPED: the CLI's PostgreSQL test. Set {VAR} to run it. ***\n\n")
            .as_bytes(),
    );
    None
}

/// Drops the test's schema, and everything in it, at the end.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok((client, connection)) =
                tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(connection);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await;
        });
    }
}

#[test]
fn two_principals_cannot_see_each_others_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(dir.path(), &[]);
    let id = server.start_task("steps", json!({"steps": 100000, "step_ms": 20}));

    for args in [
        vec!["tasks", "get", id.as_str()],
        vec!["tasks", "cancel", id.as_str()],
        vec!["tasks", "answer", id.as_str(), "go", "true"],
        vec!["tasks", "watch", id.as_str()],
    ] {
        let output = server.run(Some(BOB), &args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("404"), "{args:?}: {stderr}");
    }
    let page = server.json(BOB, &["tasks", "list"], 0);
    assert!(ids_of(&page).is_empty(), "bob sees no task: {page}");

    let output = server.run(None, &["tasks", "list"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
    let output = server.run(Some("wrong"), &["tasks", "get", &id]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));

    // Alice still has it, untouched.
    let task = server.json(ALICE, &["tasks", "get", &id], 5);
    assert_eq!(task["status"], "working", "{task}");
}

#[test]
fn a_keyed_delayed_start_runs_later_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(dir.path(), &[]);
    let args = [
        "tasks",
        "start",
        "steps",
        "--input",
        r#"{"steps": 1, "step_ms": 1}"#,
        "--delay-ms",
        "3600000",
        "--idempotency-key",
        "nightly-1",
    ];
    let first = server.json(ALICE, &args, 0);
    assert_eq!(first["status"], "submitted", "{first}");
    assert_eq!(first["idempotency_key"], "nightly-1", "{first}");
    let created = first["created_at_ms"].as_u64().unwrap();
    assert_eq!(first["start_at_ms"].as_u64(), Some(created + 3_600_000));

    let again = server.json(ALICE, &args, 0);
    assert_eq!(again["id"], first["id"], "the same key gives the same task");
    let page = server.json(ALICE, &["tasks", "list"], 0);
    assert_eq!(ids_of(&page).len(), 1, "{page}");

    let id = first["id"].as_str().unwrap();
    let cancelled = server.json(ALICE, &["tasks", "cancel", id], 0);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
}

#[test]
fn the_agent_card_publishes_the_configured_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(fixtures().join("longrun.toml")).unwrap();
    let config = dir.path().join("longrun.toml");
    std::fs::write(
        &config,
        fixture.replacen(
            "[server]\n",
            "[server]\npublic_url = \"https://tasks.example.com\"\n",
            1,
        ),
    )
    .unwrap();
    // Commands run in the config's directory: the fixture's handler must be found there.
    std::fs::copy(fixtures().join("handler.py"), dir.path().join("handler.py")).unwrap();
    let (server, _) = Server::start_with(&config, &dir.path().join("data"), &[]);

    let card = http_get(&server.url, "/.well-known/agent-card.json");
    assert!(card.starts_with("HTTP/1.1 200"), "{card}");
    let body: Value = serde_json::from_str(card.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let urls: Vec<&str> = body["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|interface| interface["url"].as_str().unwrap())
        .collect();
    assert!(!urls.is_empty(), "{body}");
    for url in urls {
        assert_eq!(url, "https://tasks.example.com/a2a", "{body}");
    }
}

/// A plain HTTP/1.1 GET of `path` on `base` (`http://host:port`); the whole response as text.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn usage_errors_exit_1() {
    let output = Command::new(BIN)
        .args(["tasks", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let output = Command::new(BIN)
        .args(["tasks", "get", "task_x", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "an unreachable server is exit 1"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach"));
}

#[test]
fn anonymous_access_off_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("longrun.toml");
    std::fs::write(
        &config,
        "[server]\nanonymous = true\n\n[[kinds]]\nname = \"x\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.path())
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to serve anonymously"), "{stderr}");
}

fn kinds_of(kinds: &Value) -> Vec<Value> {
    kinds
        .get("kinds")
        .unwrap_or(kinds)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ids_of(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|task| task["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `watch` on a terminal: bars, and a prompt that answers the question. `script(1)` gives the
/// command a pseudo-terminal; what is typed into script's stdin reaches the prompt.
#[test]
fn on_a_terminal_watch_prompts_and_the_answer_completes_the_task() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "script(1) (util-linux) is needed for the terminal test"
        );
        eprintln!("SKIPPED: script(1) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(dir.path(), &[]);
    let id = server.start_task("steps", json!({"steps": 6, "step_ms": 20, "ask": true}));
    server.until(&id, "the question", |task| {
        task["status"] == "input_required"
    });

    let watch = format!("{BIN} tasks watch {id}");
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &watch, "/dev/null"])
        .env("LONGRUN_SERVER", &server.url)
        .env("LONGRUN_TOKEN", ALICE)
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script starts");
    // Typed once the prompt had time to appear; a line typed earlier waits in the terminal.
    thread::sleep(Duration::from_millis(1500));
    {
        use std::io::Write as _;
        let stdin = child.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(b"y\n").expect("typed");
    }
    let output = wait_output(child);
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        screen.contains("go"),
        "the prompt names the question: {screen}"
    );
    let task = server.json(ALICE, &["tasks", "get", &id], 0);
    assert_eq!(task["status"], "completed", "{task}");
}

#[test]
fn logs_to_a_file_or_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(fixtures().join("longrun.toml"))
        .arg("--data")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the longrun binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("serving") {
            break;
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("serving"),
        "no serving line in the logs: {seen}"
    );
    assert!(
        !seen.contains('\u{1b}'),
        "escape codes in piped logs: {seen:?}"
    );
}
