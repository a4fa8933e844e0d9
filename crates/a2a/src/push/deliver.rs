//! One config's delivery: the task snapshot first (when nothing was delivered yet), then every
//! event A2A shows, in order, each POSTed until the webhook takes it.
//!
//! What is POSTed depends on the version the config was made in: 1.0 posts each event as a
//! `StreamResponse` (`{"task": …}`, `{"statusUpdate": …}`, `{"artifactUpdate": …}`); 0.3
//! posted the whole task on each change, and so does this for a 0.3 config.

use longrun::{
    Task, TaskId,
    event::{Notice, Seq},
};
use longrun_delivery::Label;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Inner, Record, sign::SIGNATURE_HEADER};
use crate::{
    map::{self, Mapper, Shape},
    v03,
    version::Version,
    wire::StreamResponse,
};

/// The `Authorization` header.
const AUTHORIZATION: &str = "authorization";

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
    let mut wait = inner.sender.retry().first;
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
                if !inner.sender.pause(stop, &mut wait).await {
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
                if !inner.sender.pause(stop, &mut wait).await {
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
        if !inner.sender.pause(stop, &mut wait).await {
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

/// POSTs `body` until the webhook answers 2xx; false if stopped or given up.
async fn post(inner: &Inner, record: &Record, body: &Value, stop: &CancellationToken) -> bool {
    let Ok(body) = serde_json::to_vec(body) else {
        return false;
    };
    let headers = |body: &[u8]| -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(signer) = &inner.signer {
            headers.push((SIGNATURE_HEADER, signer.header(body)));
        }
        if !record.scheme.is_empty() {
            let value = if record.credentials.is_empty() {
                record.scheme.clone()
            } else {
                format!("{} {}", record.scheme, record.credentials)
            };
            headers.push((AUTHORIZATION, value));
        }
        if !record.token.is_empty() {
            headers.push((TOKEN_HEADER, record.token.clone()));
        }
        headers
    };
    let label = Label {
        task: &record.task,
        id: &record.id,
    };
    inner
        .sender
        .post(label, &record.url, &body, &headers, stop)
        .await
}
