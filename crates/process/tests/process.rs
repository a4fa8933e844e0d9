//! Process handlers with real child processes: the fixtures in `tests/fixtures/` and the
//! example handlers in `examples/handlers/`, run through a `Runtime` on the in-memory store.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use longrun::{
    KindSpec, Outcome, Runtime, StartOptions, Task, TaskError, TaskHandle,
    event::{Change, Event, Notice, Subscription},
    task::{CancelReason, Status},
};
use longrun_process::{PROCESS_FAILED, PROTOCOL_ERROR, ProcessSpec};
use serde_json::{Value, json};
use tracing_subscriber::util::SubscriberInitExt;

fn fixture(name: &str) -> ProcessSpec {
    ProcessSpec::new(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn example(name: &str) -> ProcessSpec {
    ProcessSpec::new(format!(
        "{}/../../examples/handlers/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// A shell one-liner as a handler.
fn shell(script: &str) -> ProcessSpec {
    ProcessSpec::new("sh").arg("-c").arg(script)
}

/// A runtime on the in-memory store with one process kind, `kind`.
fn runtime(kind: KindSpec, spec: ProcessSpec) -> Runtime {
    let runtime = Runtime::new(Default::default());
    longrun_process::register(&runtime, kind, spec).unwrap();
    runtime
}

async fn start(runtime: &Runtime, kind: &str, input: Value) -> TaskHandle {
    runtime
        .start(kind, input, StartOptions::background().session("chat"))
        .await
        .unwrap()
        .handle()
        .expect("background starts return a handle")
}

/// Runs one task of a kind named `k` to its end.
async fn run_to_end(spec: ProcessSpec, input: Value) -> Task {
    let runtime = runtime(KindSpec::new("k"), spec);
    start(&runtime, "k", input).await.wait().await.unwrap()
}

fn failure(task: &Task) -> &TaskError {
    match task.outcome() {
        Some(Outcome::Failed { error }) => error,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The next event that matches, skipping the others.
async fn next_matching(events: &mut Subscription, matches: impl Fn(&Event) -> bool) -> Arc<Event> {
    while let Some(notice) = events.next().await.unwrap() {
        if let Notice::Event(event) = notice
            && matches(&event)
        {
            return event;
        }
    }
    panic!("the task ended without the expected event");
}

/// Every event of a task, to its end.
async fn all_events(handle: &TaskHandle) -> Vec<Arc<Event>> {
    let mut events = handle.subscribe(longrun::event::Seq::ZERO).await.unwrap();
    let mut all = Vec::new();
    while let Some(notice) = events.next().await.unwrap() {
        if let Notice::Event(event) = notice {
            all.push(event);
        }
    }
    all
}

/// Whether the process runs (a zombie counts as gone: it is dead, only not yet reaped by
/// whichever process adopted it).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// Waits until the process is gone; false if it still runs after ten seconds.
async fn gone(pid: i32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The two pids `ignore_term.sh` reports in its progress message.
async fn reported_pids(handle: &TaskHandle) -> (i32, i32) {
    let mut events = handle.subscribe(longrun::event::Seq::ZERO).await.unwrap();
    let event = next_matching(&mut events, |e| matches!(e.change, Change::Progress(_))).await;
    let Change::Progress(progress) = &event.change else {
        unreachable!()
    };
    let message = progress.message.as_deref().unwrap();
    let (shell, sleep) = message.split_once(' ').unwrap();
    let pids = (shell.parse().unwrap(), sleep.parse().unwrap());
    assert!(
        alive(pids.0) && alive(pids.1),
        "both should run before the cancel"
    );
    pids
}

/// Log lines captured while the guard lives (current-thread runtime: the handler runs on this
/// thread, so a thread-local subscriber sees it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self, level: tracing::Level) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .with_max_level(level)
            .finish()
            .set_default()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn completes_with_progress_artifact_and_agent_message() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing::Level::INFO);
    let runtime = runtime(KindSpec::new("work"), fixture("work.sh"));
    let handle = start(&runtime, "work", json!({})).await;
    let task = handle.wait().await.unwrap();

    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"ok": true})
        })
    );
    let progress = task.progress().unwrap();
    assert_eq!(progress.percent, Some(50.0));
    assert_eq!(progress.message.as_deref(), Some("half way"));
    let [artifact] = task.artifacts() else {
        panic!("one artifact expected: {:?}", task.artifacts())
    };
    assert_eq!(artifact.id, "report");
    assert_eq!(artifact.name.as_deref(), Some("report.txt"));
    assert_eq!(artifact.parts, vec![json!("first "), json!("second")]);
    assert!(artifact.complete);

    let events = all_events(&handle).await;
    assert!(events.iter().any(|e| matches!(
        &e.change,
        Change::AgentMessage { message, trigger: true } if message == "the report is ready"
    )));
    let inbox = runtime.inbox("chat").drain(10).await.unwrap();
    assert!(!inbox.items().is_empty(), "the message reaches the inbox");

    // Stderr went to the logs, under the process target, with the task's id.
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|line| line.contains("work.sh: done"))
        .unwrap_or_else(|| panic!("stderr not logged:\n{logs}"));
    assert!(line.contains("longrun::process"), "{line}");
    assert!(line.contains(&task.id.to_string()), "{line}");
}

#[tokio::test]
async fn the_shell_examples_echo_and_fail() {
    let input = json!({"text": "a } and a \"quote\"", "n": [1, 2]});
    let task = run_to_end(example("echo.sh"), input.clone()).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"echo": input})
        })
    );

    let task = run_to_end(example("fail.sh"), json!(null)).await;
    let error = failure(&task);
    assert_eq!(error.code, "demo_failure");
    assert_eq!(task.progress().unwrap().percent, Some(10.0));
}

#[tokio::test]
async fn a_question_is_asked_and_its_answer_relayed() {
    let runtime = runtime(KindSpec::new("ask"), fixture("ask.py"));
    let handle = start(&runtime, "ask", json!({})).await;
    let mut events = handle.subscribe(longrun::event::Seq::ZERO).await.unwrap();
    let asked = next_matching(&mut events, |e| e.status == Status::InputRequired).await;
    assert!(matches!(
        &asked.change,
        Change::InputRequested { key, request } if key == "name" && request["message"] == "Who is there?"
    ));
    handle.answer("name", json!("world")).await.unwrap();

    let task = handle.wait().await.unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!("hello world")
        })
    );
    // The question is recorded before the progress line the child wrote after it.
    let events = all_events(&handle).await;
    let position = |f: &dyn Fn(&Change) -> bool| events.iter().position(|e| f(&e.change));
    let question = position(&|c| matches!(c, Change::InputRequested { .. })).unwrap();
    let progress = position(&|c| matches!(c, Change::Progress(_))).unwrap();
    assert!(question < progress, "{events:#?}");
}

#[tokio::test]
async fn an_unanswered_question_times_out_on_the_child_side() {
    let task = run_to_end(fixture("ask.py"), json!({"timeout_ms": 50})).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!("nobody answered")
        })
    );
}

#[tokio::test]
async fn a_crash_fails_with_the_exit_status_and_the_stderr_tail() {
    let task = run_to_end(fixture("crash.sh"), json!({})).await;
    let error = failure(&task);
    assert_eq!(error.code, PROCESS_FAILED);
    assert!(error.message.contains("status 3"), "{}", error.message);
    assert!(error.message.contains("without reporting an outcome"));
    assert!(
        error
            .message
            .ends_with("crash.sh: something broke\ncrash.sh: giving up"),
        "{}",
        error.message
    );
    let details = error.details.as_ref().unwrap();
    assert_eq!(details["exit_code"], 3);
    assert_eq!(
        details["stderr"],
        "crash.sh: something broke\ncrash.sh: giving up"
    );
    // What it reported before crashing stays on the task.
    assert_eq!(task.progress().unwrap().percent, Some(10.0));
}

#[tokio::test]
async fn malformed_lines_fail_with_protocol_error() {
    let cases = [
        ("this is not json", "is not a protocol message"),
        (r#"{"type":"dance"}"#, "unknown variant `dance`"),
        (r#"{"type":"progress","percent":150}"#, "from 0 to 100"),
        (r#"{"type":"fail"}"#, "missing field `code`"),
    ];
    for (line, expected) in cases {
        let task = run_to_end(fixture("garbage.sh").arg(line), json!({})).await;
        let error = failure(&task);
        assert_eq!(error.code, PROTOCOL_ERROR, "{line}: {error:?}");
        assert!(
            error.message.contains(expected),
            "{line}: {}",
            error.message
        );
        assert!(error.message.contains("stdout line 1"), "{}", error.message);
        // The child was stopped (it would sleep for 1000 s), and its stderr is in the message.
        assert!(
            error.message.contains("signal 15 (SIGTERM)"),
            "{}",
            error.message
        );
        assert!(error.message.ends_with("garbage.sh: about to misbehave"));
    }
}

#[tokio::test]
async fn a_line_above_the_limit_is_a_protocol_error() {
    let script = r#"read -r start; head -c 1100000 /dev/zero | tr '\0' a; echo; sleep 1000"#;
    let task = run_to_end(shell(script), json!({})).await;
    let error = failure(&task);
    assert_eq!(error.code, PROTOCOL_ERROR);
    assert!(
        error
            .message
            .contains("longer than the limit of 1048576 bytes")
    );
}

#[tokio::test]
async fn the_outcome_must_be_the_last_line_and_the_exit_clean() {
    let after = r#"read -r start; echo '{"type":"complete"}'; echo '{"type":"progress"}'"#;
    let error = failure(&run_to_end(shell(after), json!({})).await).clone();
    assert_eq!(error.code, PROTOCOL_ERROR);
    assert!(
        error.message.contains("follows the outcome"),
        "{}",
        error.message
    );

    let unclean = r#"read -r start; echo '{"type":"complete","output":1}'; exit 4"#;
    let error = failure(&run_to_end(shell(unclean), json!({})).await).clone();
    assert_eq!(error.code, PROCESS_FAILED);
    assert!(
        error
            .message
            .contains("reported its outcome but then exited with status 4")
    );

    // Blank lines are not messages; the stdin pipe may be ignored entirely.
    let quiet = r#"echo; echo '   '; echo '{"type":"complete","output":2}'"#;
    let task = run_to_end(shell(quiet), json!({})).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed { output: json!(2) })
    );
}

#[tokio::test]
async fn a_child_that_lingers_after_its_outcome_is_stopped_and_the_outcome_stands() {
    let script = r#"read -r start; echo '{"type":"complete","output":"done"}'; sleep 1000"#;
    let spec = shell(script).term_grace(Duration::from_millis(100));
    let task = run_to_end(spec, json!({})).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!("done")
        })
    );
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_term_grace() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing::Level::WARN);
    let term_grace = Duration::from_millis(300);
    // A long cancel_grace: the kill must come from term_grace, not from the runtime's abort.
    let kind = KindSpec::new("stubborn").cancel_grace(Duration::from_secs(60));
    let runtime = runtime(kind, fixture("ignore_term.sh").term_grace(term_grace));
    let handle = start(&runtime, "stubborn", json!({})).await;
    let (shell, sleep) = reported_pids(&handle).await;

    let cancelling = Instant::now();
    let task = handle.cancel().await.unwrap();
    assert!(
        cancelling.elapsed() >= term_grace,
        "SIGKILL came before term_grace"
    );
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Requested { by: None }
        })
    );
    assert!(gone(shell).await, "the handler process {shell} survived");
    assert!(gone(sleep).await, "its child {sleep} survived");
    // Killed by the process handler's stop sequence, not aborted by the runtime.
    let logs = logs.text();
    assert!(logs.contains("ignored SIGTERM; killed"), "{logs}");
    assert!(!logs.contains("aborted after its grace period"), "{logs}");
}

#[tokio::test]
async fn dropping_the_handler_after_cancel_grace_kills_the_group() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing::Level::WARN);
    // The runtime gives up on the handler long before term_grace runs out.
    let kind = KindSpec::new("stubborn").cancel_grace(Duration::from_millis(200));
    let spec = fixture("ignore_term.sh").term_grace(Duration::from_secs(600));
    let runtime = runtime(kind, spec);
    let handle = start(&runtime, "stubborn", json!({})).await;
    let (shell, sleep) = reported_pids(&handle).await;

    let task = handle.cancel().await.unwrap();
    assert_eq!(task.status(), Status::Cancelled);
    assert!(gone(shell).await, "the handler process {shell} survived");
    assert!(gone(sleep).await, "its child {sleep} survived");
    // The drop did it: the runtime aborted the handler, whose stop sequence never got to SIGKILL.
    let logs = logs.text();
    assert!(logs.contains("aborted after its grace period"), "{logs}");
    assert!(!logs.contains("ignored SIGTERM; killed"), "{logs}");
}

#[tokio::test]
async fn a_child_that_honours_cancel_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("cancelled");
    let spec = fixture("honour_cancel.py").env("MARKER", marker.to_str().unwrap());
    let runtime = runtime(KindSpec::new("polite"), spec);
    let handle = start(&runtime, "polite", json!({})).await;
    let mut events = handle.subscribe(longrun::event::Seq::ZERO).await.unwrap();
    next_matching(&mut events, |e| matches!(e.change, Change::Progress(_))).await;

    let task = handle.cancel_by("test").await.unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Requested {
                by: Some("test".into())
            }
        })
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "cleaned up");
}

#[tokio::test]
async fn a_child_may_cancel_itself() {
    let script = r#"read -r start; echo '{"type":"cancelled","message":"nothing to do"}'"#;
    let task = run_to_end(shell(script), json!({})).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Handler {
                message: "nothing to do".into()
            }
        })
    );
}

#[tokio::test]
async fn a_program_that_cannot_start_fails_its_task() {
    let task = run_to_end(ProcessSpec::new("/nonexistent/handler"), json!({})).await;
    let error = failure(&task);
    assert_eq!(error.code, PROCESS_FAILED);
    assert!(
        error
            .message
            .starts_with("could not start `/nonexistent/handler`"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn relative_programs_resolve_against_cwd_and_env_is_passed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let spec = ProcessSpec::new("./fixtures/garbage.sh")
        .cwd(dir)
        .arg(r#"{"type":"complete","output":"ran"}"#)
        .term_grace(Duration::from_millis(100));
    let task = run_to_end(spec, json!({})).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!("ran")
        })
    );

    let spec = shell(r#"read -r start; printf '{"type":"complete","output":"%s"}\n' "$GREETING""#)
        .env("GREETING", "hi");
    let task = run_to_end(spec, json!({})).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!("hi")
        })
    );
}

#[tokio::test]
async fn the_start_line_carries_task_kind_attempt_and_input() {
    let script = r#"read -r start; printf '{"type":"complete","output":%s}\n' "$start""#;
    let runtime = runtime(KindSpec::new("mirror"), shell(script));
    let handle = start(&runtime, "mirror", json!({"x": 1})).await;
    let task = handle.wait().await.unwrap();
    let Some(Outcome::Completed { output }) = task.outcome() else {
        panic!("{:?}", task.outcome())
    };
    assert_eq!(
        output,
        &json!({
            "type": "start",
            "protocol": 1,
            "task": task.id.to_string(),
            "kind": "mirror",
            "attempt": 1,
            "input": {"x": 1},
        })
    );
}

/// Runs `countdown.py` for two seconds with `confirm`, answering `answer` half-way.
async fn countdown(answer: Value) -> (Task, Vec<Arc<Event>>) {
    let runtime = runtime(KindSpec::new("countdown"), example("countdown.py"));
    let handle = start(
        &runtime,
        "countdown",
        json!({"seconds": 2, "confirm": true}),
    )
    .await;
    let mut events = handle.subscribe(longrun::event::Seq::ZERO).await.unwrap();
    let asked = next_matching(&mut events, |e| e.status == Status::InputRequired).await;
    let Change::InputRequested { key, request } = &asked.change else {
        panic!("{asked:?}")
    };
    assert_eq!(key, "confirm");
    assert_eq!(request["type"], "boolean");
    assert!(request["message"].as_str().unwrap().contains("Continue?"));
    handle.answer("confirm", answer).await.unwrap();
    let task = handle.wait().await.unwrap();
    (task, all_events(&handle).await)
}

#[tokio::test]
async fn countdown_completes_when_confirmed() {
    let (task, events) = countdown(json!(true)).await;
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({"seconds": 2, "confirmed": true, "summary": "counted down 2 s"})
        })
    );
    let percents: Vec<Option<f64>> = events
        .iter()
        .filter_map(|e| match &e.change {
            Change::Progress(progress) => Some(progress.percent),
            _ => None,
        })
        .collect();
    assert_eq!(percents, vec![Some(0.0), Some(50.0), Some(100.0)]);
}

#[tokio::test]
async fn countdown_fails_when_declined() {
    let (task, _) = countdown(json!(false)).await;
    assert_eq!(failure(&task).code, "declined");
}

#[tokio::test]
async fn countdown_honours_cancel() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing::Level::DEBUG);
    let runtime = runtime(KindSpec::new("countdown"), example("countdown.py"));
    let handle = start(&runtime, "countdown", json!({"seconds": 60})).await;
    let mut events = handle.subscribe(longrun::event::Seq::ZERO).await.unwrap();
    next_matching(&mut events, |e| matches!(e.change, Change::Progress(_))).await;
    let task = handle.cancel().await.unwrap();
    assert_eq!(task.status(), Status::Cancelled);
    // It caught the cancel and exited by itself: status 0, not "signal 15".
    let logs = logs.text();
    let exit = logs
        .lines()
        .find(|line| line.contains("handler process exited") && line.contains(&task.id.to_string()))
        .unwrap_or_else(|| panic!("no exit logged:\n{logs}"));
    assert!(exit.contains("exit=status 0"), "{exit}");
}

/// Protocol 2: `agent.py` fails its first attempt before its third call; the retry gets the
/// saved calls in its start line and makes only the calls it had not made.
#[tokio::test]
async fn a_protocol_2_handler_resumes_after_its_last_saved_step_on_retry() {
    let dir = std::env::temp_dir().join(format!("longrun-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls.log");
    let _ = std::fs::remove_file(&log);
    let kind = KindSpec::new("agent").retry(longrun::kind::RetryPolicy::attempts(2));
    let runtime = runtime(kind, example("agent.py").protocol(2));
    let input = json!({"calls": 4, "fail_at": 3, "log": log, "pause_ms": 5});
    let handle = start(&runtime, "agent", input).await;
    let task = handle.wait().await.unwrap();
    assert_eq!(
        task.outcome(),
        Some(&Outcome::Completed {
            output: json!({
                "replies": ["answer 1", "answer 2", "answer 3", "answer 4"],
                "attempt": 2,
            })
        }),
        "{task:?}"
    );
    let made = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        made, "call-1\ncall-2\ncall-3\ncall-4\n",
        "no call was made twice"
    );
    let events = all_events(&handle).await;
    let saved = events
        .iter()
        .filter(|e| matches!(e.change, Change::StepSaved { .. }))
        .count();
    let retried = events
        .iter()
        .any(|e| matches!(&e.change, Change::RetryScheduled { error, .. } if error.code == "rate_limited"));
    assert_eq!(saved, 4);
    assert!(retried, "{events:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A protocol-1 handler is started as before: no `steps` in its start line.
#[tokio::test]
async fn a_protocol_1_start_line_has_no_steps() {
    let task = run_to_end(
        shell(r#"read -r start; printf '{"type":"complete","output":%s}\n' "$start""#),
        json!(7),
    )
    .await;
    let Some(Outcome::Completed { output }) = task.outcome() else {
        panic!("{task:?}")
    };
    assert_eq!(output["protocol"], json!(1));
    assert!(output.get("steps").is_none(), "{output}");
    assert_eq!(output["input"], json!(7));
}
