//! One config's delivery: the task snapshot first (when nothing was delivered yet), then every
//! event A2A shows, in order, each POSTed until the webhook takes it.
//!
//! What is POSTed depends on the version the config was made in: 1.0 posts each event as a
//! `StreamResponse` (`{"task": …}`, `{"statusUpdate": …}`, `{"artifactUpdate": …}`); 0.3
//! posted the whole task on each change, and so does this for a 0.3 config.

use axum::http::header;
use longrun::{Notice, Seq, Task, TaskId};
use serde_json::Value;
// tokio's clock, so paused-time tests reach the give-up deadline.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Inner, Record, sign::SIGNATURE_HEADER};
use crate::{
    map::{self, Mapper, Shape},
    v03,
    version::Version,
    wire::StreamResponse,
};

/// The header carrying the config's token.
const TOKEN_HEADER: &str = "x-a2a-notification-token";

/// Delivers until the task has ended and everything is delivered, the config is deleted or
/// replaced (`stop`), the server stops, or a POST fails for longer than the retry policy's
/// give-up time.
pub(super) async fn run(inner: &Inner, record: Record, stop: &CancellationToken) {
    let Ok(id) = record.task.parse::<TaskId>() else {
        tracing::warn!(task = %record.task, "a push config names no task id; ignored");
        return;
    };
    let mut delivered = record.delivered;
    let mut wait = inner.retry.first;
    loop {
        let task = match inner.runtime.get(id).await {
            Ok(task) => task,
            Err(longrun::Error::Unknown(_)) => {
                // The task expired: its configs go with it.
                if let Err(error) = inner.store.forget(&record.task).await {
                    tracing::warn!(%error, task = %id, "cannot remove an expired task's push configs");
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, task = %id, "cannot read a task for push delivery; retrying");
                if !pause(inner, stop, &mut wait).await {
                    return;
                }
                continue;
            }
        };
        let mut mapper = if delivered == 0 {
            let snapshot = map::task(&task, &[], Shape::SNAPSHOT);
            let body = match record.version {
                Version::V10 => json(&StreamResponse::Task(snapshot)),
                Version::V03 => v03::task(&snapshot),
            };
            if !post(inner, &record, &body, stop).await {
                return;
            }
            delivered = task.last_seq().as_u64();
            save(inner, &record, delivered).await;
            Mapper::new(&task)
        } else {
            Mapper::resumed(&task)
        };
        if task.status().is_terminal() && delivered >= task.last_seq().as_u64() {
            return;
        }
        let mut events = match inner.runtime.subscribe(id, Seq::from_u64(delivered)).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, task = %id, "cannot follow a task for push delivery; retrying");
                if !pause(inner, stop, &mut wait).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = events.next() => next,
            };
            let event = match next {
                Ok(Some(Notice::Event(event))) => event,
                Ok(Some(Notice::Lagged { .. })) => continue,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, task = %id, "a push delivery lost its task's events; resuming");
                    break;
                }
            };
            if let Some(response) = mapper.event(&event) {
                let body = match record.version {
                    Version::V10 => json(&response),
                    Version::V03 => match inner.runtime.get(id).await {
                        Ok(task) => v03_task(&task),
                        Err(_) => continue,
                    },
                };
                if !post(inner, &record, &body, stop).await {
                    return;
                }
                delivered = event.seq.as_u64();
                save(inner, &record, delivered).await;
            }
            if event.is_terminal() {
                return;
            }
        }
        if !pause(inner, stop, &mut wait).await {
            return;
        }
    }
}

fn json(response: &StreamResponse) -> Value {
    serde_json::to_value(response).unwrap_or(Value::Null)
}

fn v03_task(task: &Task) -> Value {
    v03::task(&map::task(task, &[], Shape::SNAPSHOT))
}

async fn save(inner: &Inner, record: &Record, delivered: u64) {
    if let Err(error) = inner
        .store
        .delivered(&record.task, &record.id, delivered)
        .await
    {
        // Not fatal: after a restart the event is delivered again (webhooks should be
        // idempotent, as the spec says).
        tracing::warn!(%error, task = %record.task, "cannot record a push delivery");
    }
}

/// Waits `wait` (doubling it for next time, up to the maximum); false if stopped meanwhile.
async fn pause(inner: &Inner, stop: &CancellationToken, wait: &mut std::time::Duration) -> bool {
    let this = *wait;
    *wait = (*wait * 2).min(inner.retry.max);
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(this) => true,
    }
}

/// POSTs `body` until the webhook answers 2xx; false if stopped or given up.
async fn post(inner: &Inner, record: &Record, body: &Value, stop: &CancellationToken) -> bool {
    let started = Instant::now();
    let mut wait = inner.retry.first;
    let mut attempt = 1u32;
    loop {
        let sent = tokio::select! {
            () = stop.cancelled() => return false,
            sent = send(inner, record, body) => sent,
        };
        let why = match sent {
            Ok(()) => return true,
            Err(why) => why,
        };
        if started.elapsed() >= inner.retry.give_up {
            tracing::error!(
                task = %record.task,
                config = %record.id,
                attempt,
                %why,
                "giving up on a push notification: the webhook kept failing"
            );
            return false;
        }
        tracing::warn!(
            task = %record.task,
            config = %record.id,
            attempt,
            %why,
            retry_in_ms = wait.as_millis() as u64,
            "push notification failed; retrying"
        );
        if !pause(inner, stop, &mut wait).await {
            return false;
        }
        attempt += 1;
    }
}

async fn send(inner: &Inner, record: &Record, body: &Value) -> Result<(), String> {
    // Checked again on every POST: the policy may have changed since the config was made.
    let url = inner.policy.check(&record.url)?;
    let body = serde_json::to_vec(body).map_err(|error| error.to_string())?;
    let signature = inner.signer.as_ref().map(|signer| signer.header(&body));
    let mut request = inner
        .client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    if !record.scheme.is_empty() {
        let value = if record.credentials.is_empty() {
            record.scheme.clone()
        } else {
            format!("{} {}", record.scheme, record.credentials)
        };
        request = request.header(header::AUTHORIZATION, value);
    }
    if !record.token.is_empty() {
        request = request.header(TOKEN_HEADER, record.token.as_str());
    }
    let response = request.send().await.map_err(|error| {
        // reqwest's message names the URL, which may hold secrets in its query: keep the cause.
        let mut cause: &dyn std::error::Error = &error;
        while let Some(next) = cause.source() {
            cause = next;
        }
        format!("the request failed: {cause}")
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}
