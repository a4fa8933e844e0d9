//! Questions asked mid-way: input_required, answers early and late, keys, timeouts.

mod common;

use std::time::Duration;

use common::*;
use longrun_runtime::{
    AskError, Context, Error, KindSpec, Runtime, StartOptions, Status, TaskError,
};
use serde_json::{Value, json};

/// `approve` asks `approval` with the given timeout (ms) and returns the answer, or
/// `"timed out"`; then asks `approval` again if the input says so.
fn with_approval(rt: &Runtime) {
    rt.register(
        KindSpec::new("approve"),
        |ctx: Context, input: Value| async move {
            let timeout = Duration::from_millis(input["timeout_ms"].as_u64().unwrap_or(u64::MAX));
            let answer = match ctx
                .ask("approval", json!({"question": "ok?"}), timeout)
                .await
            {
                Ok(answer) => answer,
                Err(AskError::TimedOut(_)) => json!("timed out"),
                Err(other) => return Err(TaskError::from(other)),
            };
            if input["ask_twice"] == json!(true) {
                match ctx.ask("approval", json!({}), timeout).await {
                    Err(AskError::KeyReused(key)) => return Ok(json!({"reused": key})),
                    other => panic!("expected KeyReused, got {other:?}"),
                }
            }
            Ok(answer)
        },
    )
    .unwrap();
}

async fn wait_for_status(rt: &Runtime, id: longrun_runtime::TaskId, status: Status) {
    for _ in 0..1000 {
        if rt.get(id).await.unwrap().status() == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task never reached {status}");
}

/// Starts `approve` and returns once it waits for its answer.
async fn waiting_for_approval(rt: &Runtime) -> longrun_runtime::TaskHandle {
    let handle = rt
        .start("approve", json!({}), StartOptions::new())
        .await
        .unwrap()
        .handle()
        .unwrap();
    wait_for_status(rt, handle.id(), Status::InputRequired).await;
    handle
}

#[tokio::test(start_paused = true)]
async fn a_question_waits_in_input_required_until_answered() {
    let rt = runtime();
    with_approval(&rt);
    let handle = waiting_for_approval(&rt).await;
    let task = handle.task().await.unwrap();
    let pending = task.state().pending_input().unwrap();
    assert_eq!(pending["approval"], json!({"question": "ok?"}));

    handle.answer("approval", json!("yes")).await.unwrap();
    let done = handle.wait().await.unwrap();
    assert_eq!(
        done.outcome().unwrap(),
        &longrun_runtime::Outcome::Completed {
            output: json!("yes")
        }
    );
    let again = rt
        .answer(handle.id(), "approval", json!("no"))
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Ended { .. }), "{again}");
    assert_eq!(
        history(&rt, handle.id()).await,
        vec![
            "submitted",
            "started",
            "input_requested",
            "input_answered",
            "ended"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_before_the_question_is_kept() {
    let rt = runtime();
    rt.register(
        KindSpec::new("late_ask"),
        |ctx: Context, _: Value| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ctx.ask("go", json!({}), Duration::ZERO)
                .await
                .map_err(TaskError::from)
        },
    )
    .unwrap();
    let handle = rt
        .start("late_ask", (), StartOptions::new())
        .await
        .unwrap()
        .handle()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    handle.answer("go", json!(42)).await.unwrap();
    let twice = handle.answer("go", json!(43)).await.unwrap_err();
    assert!(matches!(twice, Error::AlreadyAnswered { .. }), "{twice}");
    // Even with a zero timeout, the kept answer is handed over.
    let done = handle.wait().await.unwrap();
    assert_eq!(
        done.outcome().unwrap(),
        &longrun_runtime::Outcome::Completed { output: json!(42) }
    );
}

#[tokio::test(start_paused = true)]
async fn asking_the_same_key_twice_is_an_error_not_a_clobber() {
    let rt = runtime();
    with_approval(&rt);
    let handle = rt
        .start("approve", json!({"ask_twice": true}), StartOptions::new())
        .await
        .unwrap()
        .handle()
        .unwrap();
    wait_for_status(&rt, handle.id(), Status::InputRequired).await;
    handle.answer("approval", json!(true)).await.unwrap();
    let done = handle.wait().await.unwrap();
    assert_eq!(
        done.outcome().unwrap(),
        &longrun_runtime::Outcome::Completed {
            output: json!({"reused": "approval"})
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_is_not_forever() {
    let rt = runtime();
    with_approval(&rt);
    let done = rt
        .start(
            "approve",
            json!({"timeout_ms": 0}),
            StartOptions::foreground(),
        )
        .await
        .unwrap()
        .finished()
        .unwrap();
    assert_eq!(
        done.outcome().unwrap(),
        &longrun_runtime::Outcome::Completed {
            output: json!("timed out")
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_question_returns_to_working_and_refuses_late_answers() {
    let rt = runtime();
    rt.register(
        KindSpec::new("patient"),
        |ctx: Context, _: Value| async move {
            let timed_out = ctx.ask("q", json!({}), Duration::from_secs(30)).await;
            assert!(matches!(timed_out, Err(AskError::TimedOut(_))));
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, TaskError>(())
        },
    )
    .unwrap();
    let handle = rt
        .start("patient", (), StartOptions::new())
        .await
        .unwrap()
        .handle()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(handle.task().await.unwrap().status(), Status::Working);
    let late = handle.answer("q", json!(1)).await.unwrap_err();
    assert!(matches!(late, Error::QuestionClosed { .. }), "{late}");
    assert_eq!(handle.wait().await.unwrap().status(), Status::Completed);
}

#[tokio::test(start_paused = true)]
async fn cancellation_wakes_a_waiting_question() {
    let rt = runtime();
    with_approval(&rt);
    let handle = waiting_for_approval(&rt).await;
    let task = handle.cancel().await.unwrap();
    assert_eq!(task.status(), Status::Cancelled);
}

/// `settled` returns once the question is durable (what a blocking door answers with), and
/// again once the task ends after its answer; a task that never asks settles at its end.
#[tokio::test(start_paused = true)]
async fn settled_returns_at_a_question_and_at_the_end() {
    let rt = runtime();
    with_approval(&rt);
    let handle = rt
        .start("approve", json!({}), StartOptions::new())
        .await
        .unwrap()
        .handle()
        .unwrap();
    let asked = handle.settled().await.unwrap();
    assert_eq!(asked.status(), Status::InputRequired);
    assert!(
        asked
            .state()
            .pending_input()
            .unwrap()
            .contains_key("approval")
    );
    // Still waiting: settling again answers at once with the same question.
    assert_eq!(
        handle.settled().await.unwrap().status(),
        Status::InputRequired
    );

    rt.answer(handle.id(), "approval", json!("yes"))
        .await
        .unwrap();
    let ended = loop {
        let task = handle.settled().await.unwrap();
        if task.status().is_terminal() {
            break task;
        }
        // The answer is recorded before the handler resumes: it may still show the question.
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!(ended.status(), Status::Completed);

    rt.register(
        KindSpec::new("quiet"),
        |_ctx: Context, _input: Value| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, TaskError>(json!("done"))
        },
    )
    .unwrap();
    let quiet = rt
        .start("quiet", json!({}), StartOptions::new())
        .await
        .unwrap()
        .handle()
        .unwrap();
    let started = tokio::time::Instant::now();
    let ended = quiet.settled().await.unwrap();
    assert_eq!(ended.status(), Status::Completed);
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "it settled before its end"
    );
}
