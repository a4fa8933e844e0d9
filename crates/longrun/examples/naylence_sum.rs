//! Naylence's `SumAgent` on longrun (seed 003): a background task agent in the A2A style.
//!
//! Naylence's `BackgroundTaskAgent` offers the following. Each item is followed by the longrun
//! API that does the same job here:
//!
//! - `start_task` returns at once with the task working: a background start returns
//!   `Started::Running`.
//! - `subscribe_to_task_updates` yields status and artifact updates, also after completion:
//!   `runtime.subscribe(id, Seq::ZERO)` replays the whole log, then follows it live, and ends
//!   after the terminal event.
//! - `update_task_artifact` streams partial results: the handler emits the running sum as
//!   chunks of one artifact with `append: true`, then a last chunk with `last_chunk: true`.
//! - A completed cache with a size and a ttl: `StartOptions::ttl` keeps a finished task
//!   readable for so long, `Options::max_finished` caps how many are kept, and
//!   `Options::sweep_interval` says how often the cap and the ttl are enforced. After that
//!   `runtime.get(id)` says unknown or expired (`Error::Unknown`), as `get_task_status` raises.
//! - `max_task_lifetime_ms` auto-cancels overlong tasks: `StartOptions::deadline` cancels
//!   with `CancelReason::DeadlineExceeded`.
//! - Terminal states are final: a second cancel, or a cancel of a completed task, is refused
//!   with `Error::Ended` and changes nothing.
//! - A bounded event queue per task: `Options::subscriber_buffer`. A subscriber that falls
//!   behind is told it lagged and catches up from the log; it never blocks the task.
//!
//! Run it with `cargo run -p longrun --example naylence_sum`. It takes about three seconds and
//! ends with assertions, so CI runs it as a test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

use std::time::Duration;

use longrun::{
    Context, Error, KindSpec, Options, Outcome, Runtime, StartOptions, Started, TaskError, TaskId,
    event::{ArtifactChunk, Change, Event, Notice, Seq},
    task::{CancelReason, Status},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the agent is asked to sum, and how slowly (to make the streaming visible).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct SumRequest {
    /// The numbers to add.
    numbers: Vec<i64>,
    /// How long adding one number takes, in milliseconds.
    millis_per_number: u64,
}

/// Naylence's `run_background_task`: adds the numbers one by one and streams the running sum.
async fn sum(ctx: Context, request: SumRequest) -> Result<Value, TaskError> {
    let mut total = 0;
    let count = request.numbers.len();
    for (i, n) in request.numbers.iter().enumerate() {
        tokio::select! {
            () = ctx.cancelled() => {
                let message = format!("stopped after {i} of {count} numbers");
                return Err(TaskError::new("stopped", message));
            }
            () = tokio::time::sleep(Duration::from_millis(request.millis_per_number)) => {}
        }
        total += n;
        ctx.progress((i + 1) as f64 * 100.0 / count as f64, format!("added {n}"))
            .await?;
        ctx.artifact(ArtifactChunk {
            id: "sum".into(),
            name: Some("running sum".into()),
            parts: vec![json!(total)],
            append: i > 0,
            last_chunk: i + 1 == count,
        })
        .await?;
    }
    Ok(json!(total))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Options {
        // Naylence's completed_cache_size, kept small to show the cap at work.
        max_finished: 3,
        sweep_interval: Duration::from_millis(100),
        // Naylence's max_queue_size.
        subscriber_buffer: 64,
        ..Options::default()
    });
    let spec = KindSpec::new("sum")
        .description("Adds numbers, streaming the running sum.")
        .cancel_grace(Duration::from_millis(200));
    rt.register(spec, sum)?;

    println!("== start_task: returns at once, the task runs in the background ==");
    let request = SumRequest {
        numbers: (1..=8).collect(),
        millis_per_number: 120,
    };
    let started = rt.start("sum", request, StartOptions::background()).await?;
    let Started::Running(handle) = started else {
        panic!("background: {started:?}")
    };
    let at_start = handle.task().await?.status();
    println!(
        "started {} -> returned at once, status {at_start}",
        handle.id()
    );

    println!("\n== subscribe_to_task_updates ==");
    let mut subscription = handle.subscribe(Seq::ZERO).await?;
    let mut live = Vec::new();
    while let Some(notice) = subscription.next().await? {
        match notice {
            Notice::Event(event) => {
                println!("  {}", update(&event));
                live.push(event);
            }
            Notice::Lagged { missed } => println!("  (lagged {missed}; catching up from the log)"),
        }
    }
    let summed = handle.wait().await?;
    let partials: Vec<Value> = live
        .iter()
        .filter_map(|e| match &e.change {
            Change::Artifact(chunk) => chunk.parts.first().cloned(),
            _ => None,
        })
        .collect();
    println!("partial sums streamed: {}", Value::from(partials.clone()));

    println!("\n== a late subscriber to the finished task ==");
    let mut late = rt.subscribe(summed.id, Seq::ZERO).await?;
    let mut replayed = Vec::new();
    while let Some(notice) = late.next().await? {
        if let Notice::Event(event) = notice {
            replayed.push(event);
        }
    }
    let last = replayed.last().expect("a history");
    println!(
        "got {} events, the whole history; the last: {}",
        replayed.len(),
        update(last)
    );

    println!("\n== get_task_status, and cancelling what has ended ==");
    let status = rt.get(summed.id).await?;
    let artifact = &status.artifacts()[0];
    println!(
        "{} is {}; artifact `{}` complete: {}, parts: {}",
        status.id,
        status.status(),
        artifact.id,
        artifact.complete,
        Value::from(artifact.parts.clone())
    );
    let refused = rt.cancel(summed.id).await.unwrap_err();
    println!("cancel -> {refused}");

    println!("\n== max task lifetime: a sum that would take 5 s, with a 400 ms deadline ==");
    let request = SumRequest {
        numbers: vec![1; 50],
        millis_per_number: 100,
    };
    let options = StartOptions::background().deadline(Duration::from_millis(400));
    let overlong = rt
        .start("sum", request, options)
        .await?
        .handle()
        .expect("background");
    let overlong = overlong.wait().await?;
    println!(
        "{} ended {}: {}",
        overlong.id,
        overlong.status(),
        overlong.status_message().unwrap_or("")
    );
    let partial = &overlong.artifacts()[0];
    let parts = Value::from(partial.parts.clone());
    println!(
        "its partial artifact: complete {}, parts {parts}",
        partial.complete
    );
    let second_cancel = rt.cancel(overlong.id).await.unwrap_err();
    println!("cancel -> {second_cancel}");

    println!("\n== completed cache, ttl: a task kept for 300 ms after it ends ==");
    let request = SumRequest {
        numbers: vec![20, 22],
        millis_per_number: 10,
    };
    let options = StartOptions::foreground().ttl(Duration::from_millis(300));
    let brief = rt
        .start("sum", request, options)
        .await?
        .finished()
        .expect("foreground");
    let readable = rt.get(brief.id).await.map(|t| t.status());
    println!("right after it ended: get -> {readable:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = rt.get(brief.id).await.unwrap_err();
    println!("400 ms later: get -> {expired}");

    println!("\n== completed cache, size: at most 3 finished tasks are kept ==");
    let mut recent = Vec::new();
    for n in 1..=3 {
        let request = SumRequest {
            numbers: vec![n],
            millis_per_number: 10,
        };
        let task = rt.start("sum", request, StartOptions::foreground()).await?;
        recent.push(task.id());
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut kept = Vec::new();
    for (name, id) in [
        ("the first sum", summed.id),
        ("the overlong sum", overlong.id),
    ]
    .into_iter()
    .chain(recent.iter().map(|id| ("a recent sum", *id)))
    {
        let found = rt.get(id).await;
        let says = match &found {
            Ok(task) => format!("kept, {}", task.status()),
            Err(Error::Unknown(_)) => "Error::Unknown (evicted from the cache)".to_owned(),
            Err(other) => other.to_string(),
        };
        println!("get {name:<16} {id} -> {says}");
        kept.push((id, found.is_ok()));
    }
    rt.shutdown().await;

    // start returns at once with the task not yet ended (Naylence says WORKING; longrun may
    // still say submitted for an instant, until its supervisor has started the handler).
    assert!(
        matches!(at_start, Status::Submitted | Status::Working),
        "{at_start}"
    );
    assert_eq!(
        summed.outcome(),
        Some(&Outcome::Completed { output: json!(36) })
    );

    // The subscriber saw status and artifact updates, in order, ending with the end.
    let seqs: Vec<u64> = live.iter().map(|e| e.seq.as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "every event, in order"
    );
    assert!(live.iter().any(|e| e.status == Status::Working));
    assert!(live.last().is_some_and(|e| e.is_terminal()));
    let prefix_sums: Vec<Value> = (1..=8).map(|k| json!(k * (k + 1) / 2)).collect();
    assert_eq!(partials, prefix_sums, "the running sum, chunk by chunk");
    let chunks: Vec<(bool, bool)> = live
        .iter()
        .filter_map(|e| match &e.change {
            Change::Artifact(chunk) => Some((chunk.append, chunk.last_chunk)),
            _ => None,
        })
        .collect();
    assert_eq!(
        chunks.first(),
        Some(&(false, false)),
        "the first chunk starts the artifact"
    );
    assert!(
        chunks[1..7].iter().all(|&c| c == (true, false)),
        "the middle ones append"
    );
    assert_eq!(chunks.last(), Some(&(true, true)), "the last one says so");
    assert_eq!(
        artifact.parts, prefix_sums,
        "the stored artifact folds every chunk"
    );
    assert!(artifact.complete);

    // A late subscriber gets the same history and the end.
    assert_eq!(replayed, live);

    // Terminal states are final.
    assert!(
        matches!(
            refused,
            Error::Ended {
                status: Status::Completed,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        matches!(
            second_cancel,
            Error::Ended {
                status: Status::Cancelled,
                ..
            }
        ),
        "{second_cancel}"
    );

    // The deadline cancelled the overlong sum, part-way.
    assert_eq!(
        overlong.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::DeadlineExceeded
        })
    );
    assert!(!partial.complete && !partial.parts.is_empty() && partial.parts.len() < 50);

    // The ttl expired the brief sum, and the cap kept only the newest three.
    assert_eq!(readable?, Status::Completed);
    assert!(
        matches!(expired, Error::Unknown(id) if id == brief.id),
        "{expired}"
    );
    let expected: Vec<(TaskId, bool)> = [(summed.id, false), (overlong.id, false)]
        .into_iter()
        .chain(recent.iter().map(|id| (*id, true)))
        .collect();
    assert_eq!(kept, expected);
    println!("\nnaylence_sum: all assertions hold");
    Ok(())
}

/// An event as Naylence would send it: a status update or an artifact update.
fn update(event: &Event) -> String {
    match &event.change {
        Change::Artifact(chunk) => format!(
            "#{:<2} artifact update  id={} append={} last_chunk={} parts={}",
            event.seq,
            chunk.id,
            chunk.append,
            chunk.last_chunk,
            Value::from(chunk.parts.clone())
        ),
        change => {
            let message = match change {
                Change::Progress(p) => p.message.clone().unwrap_or_default(),
                Change::Ended(Outcome::Completed { output }) => format!("result {output}"),
                Change::Ended(outcome) => outcome.describe(),
                Change::CancelRequested { reason } => reason.to_string(),
                Change::Started { .. } => "started".into(),
                Change::Submitted => "submitted".into(),
                other => format!("{other:?}"),
            };
            format!(
                "#{:<2} status update    state={:<9} {message}",
                event.seq,
                event.status.as_str()
            )
        }
    }
}
