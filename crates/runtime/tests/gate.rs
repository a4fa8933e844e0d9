//! Gated kinds on one node: a task waits at its kind's gate `submitted`, with no attempt begun;
//! once let in it starts (attempt 1) and its handler takes what the gate reserved; a cancel at
//! the gate ends it with no attempt; outside a cluster a gate is never asked to hand over.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use futures_util::stream;
use longrun_runtime::{
    Context, Entry, Gate, KindSpec, Options, Runtime, Signal, StartOptions, Status, Waiting,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// Lets one task in per permit, with the task's id as its ticket.
#[derive(Clone)]
struct Turnstile(Arc<Inner>);

struct Inner {
    permits: Semaphore,
    asked_to_hand_over: AtomicBool,
}

impl Gate for Turnstile {
    fn room(&self, _kind: &str) -> usize {
        self.0.permits.available_permits()
    }

    fn enter(&self, waiting: Waiting) -> Pin<Box<dyn Future<Output = Entry> + Send>> {
        if waiting.may_hand_over {
            self.0.asked_to_hand_over.store(true, Ordering::SeqCst);
        }
        let gate = self.0.clone();
        Box::pin(async move {
            gate.permits.acquire().await.expect("never closed").forget();
            Entry::Enter(Box::new(waiting.task.to_string()))
        })
    }
}

fn gated() -> (Runtime, Turnstile) {
    let runtime = Runtime::new(Options::default());
    let gate = Turnstile(Arc::new(Inner {
        permits: Semaphore::new(0),
        asked_to_hand_over: AtomicBool::new(false),
    }));
    runtime
        .register_stream_gated(
            KindSpec::new("gated"),
            Arc::new(gate.clone()),
            |ctx: Context, _: Value| {
                let ticket = ctx
                    .take_ticket()
                    .and_then(|ticket| ticket.downcast::<String>().ok());
                let again = ctx.take_ticket().is_some();
                stream::once(async move {
                    Signal::success(json!({
                        "ticket_is_the_task": ticket.as_deref() == Some(&ctx.id().to_string()),
                        "taken_twice": again,
                        "attempt": ctx.attempt(),
                    }))
                })
            },
        )
        .unwrap();
    (runtime, gate)
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_waits_at_its_gate_submitted_then_runs_with_its_ticket() {
    let (runtime, gate) = gated();
    let id = runtime
        .start("gated", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let waiting = runtime.get(id).await.unwrap();
    assert_eq!(
        (waiting.status(), waiting.attempt()),
        (Status::Submitted, 0)
    );

    gate.0.permits.add_permits(1);
    let done = runtime.handle(id).wait().await.unwrap();
    assert_eq!(done.status(), Status::Completed);
    assert_eq!(
        done.outcome().unwrap(),
        &longrun_runtime::Outcome::Completed {
            output: json!({"ticket_is_the_task": true, "taken_twice": false, "attempt": 1})
        }
    );
    assert!(
        !gate.0.asked_to_hand_over.load(Ordering::SeqCst),
        "outside a cluster there is nowhere to hand a task over to"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancel_at_the_gate_ends_the_task_with_no_attempt() {
    let (runtime, _gate) = gated();
    let id = runtime
        .start("gated", json!(null), StartOptions::background())
        .await
        .unwrap()
        .id();
    let cancelled = runtime.cancel(id).await.unwrap();
    assert_eq!(
        (cancelled.status(), cancelled.attempt()),
        (Status::Cancelled, 0)
    );
}
