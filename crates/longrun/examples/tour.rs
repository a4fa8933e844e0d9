//! A tour of longrun in one run: a long task that reports progress and asks a human a question
//! half-way, a second task cancelled mid-way, and the agent inbox that collects how background
//! tasks ended.
//!
//! It touches each seed in miniature: nekro-agent's progress reports and wait for a human
//! (seed 001), agentkit's background routing and "drain the results at the next turn"
//! (seed 002), and Naylence's live event subscription (seed 003). The other examples take one
//! seed each, in depth.
//!
//! Run it with `cargo run -p longrun --example tour`. It takes about three seconds and ends
//! with assertions, so CI runs it as a test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use longrun::{
    Context, KindSpec, Options, Outcome, Runtime, StartOptions, Started, TaskError, TaskId,
    event::{Change, Notice, Seq},
    inbox::InboxEntry,
    task::{CancelReason, Status},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One tick of the countdown. A real task would take seconds per step; the tour is quicker.
const TICK: Duration = Duration::from_millis(200);

/// The input of the `countdown` kind. Its JSON schema is derived, and the runtime publishes it
/// with the kind (this is what an agent would see as the tool's input schema).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Countdown {
    /// How many ticks to count down from.
    seconds: u32,
    /// Whether to ask a human "keep going?" half-way.
    #[serde(default)]
    confirm: bool,
}

/// The handler: one progress report per tick, an optional question half-way, and a prompt
/// stop when cancelled. `saw_cancel` lets the tour prove that the handler noticed.
async fn countdown(
    ctx: Context,
    input: Countdown,
    saw_cancel: Arc<AtomicBool>,
) -> Result<Value, TaskError> {
    let n = input.seconds.max(1);
    for tick in 1..=n {
        tokio::select! {
            () = ctx.cancelled() => {
                saw_cancel.store(true, Ordering::SeqCst);
                let left = n - tick + 1;
                return Err(TaskError::new("stopped", format!("stopped at T-minus {left}")));
            }
            () = tokio::time::sleep(TICK) => {}
        }
        let percent = f64::from(tick) * 100.0 / f64::from(n);
        ctx.progress(percent, format!("T-minus {}", n - tick))
            .await?;
        if input.confirm && tick == n / 2 {
            let request = json!({
                "message": "Half-way there. Keep counting down?",
                "schema": { "type": "boolean" },
            });
            let go_on = ctx.ask("confirm", request, Duration::from_secs(5)).await?;
            if go_on != json!(true) {
                return Err(TaskError::new("declined", "the human said stop"));
            }
        }
    }
    Ok(json!({ "lift_off": true, "counted": n }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Options::default());
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let spec = KindSpec::new("countdown")
        .description("Counts down, reporting every tick; can ask a human to confirm half-way.")
        .cancel_grace(Duration::from_secs(1));
    rt.register(spec, {
        let saw_cancel = saw_cancel.clone();
        move |ctx: Context, input: Countdown| countdown(ctx, input, saw_cancel.clone())
    })?;
    let schema = &rt.kinds()[0].input_schema;
    println!(
        "registered kind `countdown`; input schema properties: {}",
        schema["properties"]
    );

    // The session is the conversation: background outcomes wait in its inbox.
    let session = "tour-chat";

    println!("\n== 1. two countdowns in the background, in one session ==");
    let started = rt
        .start(
            "countdown",
            Countdown {
                seconds: 10,
                confirm: true,
            },
            StartOptions::background().session(session),
        )
        .await?;
    let Started::Running(launch) = started else {
        panic!("a background start returns a running task, got {started:?}");
    };
    println!(
        "started {} (countdown from 10, confirm half-way); start returned at once, status {}",
        launch.id(),
        launch.task().await?.status()
    );

    // The human lives in another tokio task and answers questions the stream shows.
    let (questions, mut to_answer) = mpsc::unbounded_channel::<(TaskId, String, Value)>();
    let human = tokio::spawn({
        let rt = rt.clone();
        async move {
            let mut answered = 0;
            while let Some((id, key, request)) = to_answer.recv().await {
                println!("        human reads: {}", request["message"]);
                tokio::time::sleep(Duration::from_millis(300)).await;
                println!("        human answers `{key}`: yes");
                rt.answer(id, &key, json!(true)).await?;
                answered += 1;
            }
            Ok::<_, longrun::Error>(answered)
        }
    });

    let doomed = rt
        .start(
            "countdown",
            Countdown {
                seconds: 20,
                confirm: false,
            },
            StartOptions::background().session(session),
        )
        .await?
        .handle()
        .expect("a background task has a handle");
    println!(
        "started {} (countdown from 20); it will be cancelled after ~1 s",
        doomed.id()
    );
    let canceller = tokio::spawn({
        let rt = rt.clone();
        let id = doomed.id();
        async move {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let before = rt.get(id).await?;
            let percent = before.progress().and_then(|p| p.percent).unwrap_or(0.0);
            println!("        >> cancelling {id} at {percent:.0}%");
            let ended = rt.cancel_by(id, "the tour").await?;
            println!(
                "        >> {id} is now {}: {}",
                ended.status(),
                ended.status_message().unwrap_or("")
            );
            Ok::<_, longrun::Error>(ended)
        }
    });

    println!("\n== 2. the first one's events as they arrive; the second is cancelled mid-way ==");
    let mut subscription = launch.subscribe(Seq::ZERO).await?;
    let mut seen = Vec::new();
    while let Some(notice) = subscription.next().await? {
        match notice {
            Notice::Event(event) => {
                println!(
                    "  #{:<2} {:<14} {}",
                    event.seq,
                    event.status.as_str(),
                    describe(&event.change)
                );
                if let Change::InputRequested { key, request } = &event.change {
                    questions
                        .send((event.task, key.clone(), request.clone()))
                        .expect("the human is listening");
                }
                seen.push(event);
            }
            Notice::Lagged { missed } => {
                println!(
                    "  (fell {missed} events behind; the subscription catches up from the log)"
                )
            }
        }
    }
    drop(questions);
    let answered = human.await??;
    let first = launch.wait().await?;
    let cancelled = canceller.await??;
    println!(
        "\n{} ended {}: {}",
        first.id,
        first.status(),
        first.status_message().unwrap_or("")
    );
    println!(
        "{} ended {}: {}",
        cancelled.id,
        cancelled.status(),
        cancelled.status_message().unwrap_or("")
    );
    println!(
        "the second handler saw ctx.cancelled(): {}",
        saw_cancel.load(Ordering::SeqCst)
    );

    println!("\n== 3. the agent's next turn: drain the session inbox ==");
    let inbox = rt.inbox(session);
    inbox.ready().await?;
    let drained = inbox.drain(10).await?;
    let mut outcomes = Vec::new();
    for item in drained.items() {
        match &item.entry {
            InboxEntry::Outcome { kind, outcome } => {
                println!(
                    "  inbox #{} {kind} {}: {}",
                    item.position,
                    item.task,
                    outcome.describe()
                );
                outcomes.push((item.task, outcome.status()));
            }
            InboxEntry::Message { message, .. } => {
                println!(
                    "  inbox #{} message from {}: {message}",
                    item.position, item.task
                )
            }
        }
    }
    let acked = drained.ack().await?;
    println!(
        "acknowledged {acked} item(s); the inbox is now empty: {}",
        inbox.drain(10).await?.is_empty()
    );
    rt.shutdown().await;

    // What the tour demonstrated, checked.
    assert_eq!(
        first.outcome(),
        Some(&Outcome::Completed {
            output: json!({ "lift_off": true, "counted": 10 })
        })
    );
    let progress: Vec<_> = seen
        .iter()
        .filter_map(|e| match &e.change {
            Change::Progress(p) => p.percent,
            _ => None,
        })
        .collect();
    assert_eq!(progress.len(), 10, "one progress report per tick");
    assert_eq!(progress.last(), Some(&100.0));
    let asked = seen.iter().position(|e| {
        matches!(&e.change, Change::InputRequested { key, .. } if key == "confirm")
            && e.status == Status::InputRequired
    });
    let answer = seen.iter().position(|e| {
        matches!(
            &e.change,
            Change::InputAnswered { key, value } if key == "confirm" && *value == json!(true)
        )
    });
    assert!(asked.is_some(), "the question was asked");
    assert!(answer > asked, "and answered after it was asked");
    assert_eq!(answered, 1, "the human answered once");
    assert!(
        seen.last().is_some_and(|e| e.is_terminal()),
        "the stream ends with the end"
    );

    assert_eq!(cancelled.id, doomed.id());
    assert_eq!(
        cancelled.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Requested {
                by: Some("the tour".into())
            }
        })
    );
    assert!(
        saw_cancel.load(Ordering::SeqCst),
        "the handler saw ctx.cancelled()"
    );

    let mut expected = vec![
        (first.id, Status::Completed),
        (cancelled.id, Status::Cancelled),
    ];
    expected.sort_by_key(|(id, _)| id.to_string());
    outcomes.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(
        outcomes, expected,
        "the inbox held both background outcomes"
    );
    assert_eq!(acked, 2);
    assert_eq!(rt.running(), 0);
    println!("\ntour: all assertions hold");
    Ok(())
}

/// One line per change, with a text progress bar for progress reports.
fn describe(change: &Change) -> String {
    match change {
        Change::Submitted => "submitted".into(),
        Change::Started { attempt } => format!("started (attempt {attempt})"),
        Change::Progress(progress) => format!(
            "{} {}",
            bar(progress.percent.unwrap_or(0.0)),
            progress.message.as_deref().unwrap_or("")
        ),
        Change::Artifact(chunk) => {
            format!(
                "artifact `{}`: {}",
                chunk.id,
                Value::from(chunk.parts.clone())
            )
        }
        Change::InputRequested { key, request } => format!("asks `{key}`: {request}"),
        Change::InputAnswered { key, value } => format!("answer to `{key}`: {value}"),
        Change::InputTimedOut { key } => format!("nobody answered `{key}` in time"),
        Change::AgentMessage { message, .. } => format!("tells the agent: {message}"),
        Change::Detached => "detached from its caller".into(),
        Change::CancelRequested { reason } => format!("cancel requested ({reason})"),
        Change::StepSaved { key, value } => format!("step `{key}` done: {value}"),
        Change::TimerStarted { key, until } => {
            format!("sleeps on timer `{key}` until {}", until.as_millis())
        }
        Change::RetryScheduled { attempt, error, .. } => {
            format!("attempt {attempt} failed ({error}); retrying")
        }
        Change::Ended(outcome) => match outcome {
            Outcome::Completed { output } => format!("ended: completed with {output}"),
            other => format!("ended: {}", other.describe()),
        },
    }
}

/// `[##########..........]  50%`
fn bar(percent: f64) -> String {
    let filled = ((percent / 5.0).round() as usize).min(20);
    format!(
        "[{}{}] {percent:>3.0}%",
        "#".repeat(filled),
        ".".repeat(20 - filled)
    )
}
