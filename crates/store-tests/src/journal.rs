//! Checks of a task's journal: steps, timers and retries are events like any other, and a
//! re-run reads them back to skip what it already did.

use std::{sync::Arc, time::Duration};

use longrun_core::{Change, RefusalReason, Status, TaskError, store::Store};
use serde_json::json;

use crate::support::{Local, assert_refused, assert_stored, at, event, log, new_task, started};

/// Saved steps, started timers and a scheduled retry are stored, read back equal, and folded:
/// the retry takes the task back to `submitted` with its next attempt's time, keeping its
/// journal, and the next start clears it.
pub async fn journal_survives_a_retry(store: Arc<dyn Store>) {
    let store = &*store;
    let mut local = Local::create(store, new_task(0)).await;
    local.step(store, 1, started()).await;
    let value = json!({"reply": "hello", "tokens": [1, 2, 3], "nested": {"ok": true}});
    let saved = Change::StepSaved {
        key: "model-call-1".into(),
        value: value.clone(),
    };
    local.step(store, 2, saved).await;
    let timer = Change::TimerStarted {
        key: "cool-down".into(),
        until: at(60_000),
    };
    local.step(store, 3, timer).await;
    let error = TaskError::new("rate_limited", "429 from the model API")
        .retry_after(Duration::from_millis(1_500));
    let retry = Change::RetryScheduled {
        attempt: 1,
        error: error.clone(),
        at: at(5_000),
    };
    local.step(store, 4, retry).await;
    assert_stored(store, &local).await;
    let stored = crate::support::stored(store, local.id()).await;
    assert_eq!(stored.status(), Status::Submitted);
    assert_eq!(stored.retry_at(), Some(at(5_000)));

    let journal = log(store, local.id()).await;
    let steps: Vec<_> = journal
        .iter()
        .filter_map(|e| match &e.change {
            Change::StepSaved { key, value } => Some((key.as_str(), value.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [("model-call-1", value)]);
    assert!(journal.iter().any(|e| matches!(
        &e.change,
        Change::RetryScheduled { error: kept, .. } if *kept == error
    )));

    local.step(store, 6, Change::Started { attempt: 2 }).await;
    let second = Change::StepSaved {
        key: "model-call-2".into(),
        value: json!(null),
    };
    local.step(store, 7, second).await;
    assert_stored(store, &local).await;
    assert_eq!(
        crate::support::stored(store, local.id()).await.retry_at(),
        None
    );
}

/// A step cannot be saved for a task that is not running (queued, or waiting for its next
/// attempt), and such a refusal writes nothing.
pub async fn step_outside_an_attempt_is_refused(store: Arc<dyn Store>) {
    let store = &*store;
    let local = Local::create(store, new_task(0)).await;
    let early = event(
        &local.task,
        1,
        Change::StepSaved {
            key: "k".into(),
            value: json!(1),
        },
    );
    assert_refused(
        store.append(&[early]).await,
        local.id(),
        RefusalReason::NotAllowed,
    );
    assert_stored(store, &local).await;
}
