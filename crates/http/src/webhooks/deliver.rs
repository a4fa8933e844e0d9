//! One task's webhook delivery: its events from the first not yet delivered, each POSTed (all
//! of them, or only the last, as the webhook asked) until the receiver takes it, signed under
//! a `webhook-id` that names the event, so a retried or re-sent POST can be recognised.

use longrun::{
    TaskId,
    event::{Notice, Seq},
};
use longrun_delivery::{Label, Record, SigningSecret};
use tokio_util::sync::CancellationToken;

use super::{Detail, Inner};
use crate::model::{self, WebhookEvents};

/// Delivers until the task's last event is delivered (then the record is removed), the
/// server stops, or a POST fails for longer than the retry policy's give-up time.
pub(super) async fn run(inner: &Inner, record: Record, stop: &CancellationToken) {
    let Ok(id) = record.task.parse::<TaskId>() else {
        tracing::warn!(task = %record.task, "a stored webhook names no task id; ignored");
        return;
    };
    let detail = match serde_json::from_str::<Detail>(&record.detail) {
        Ok(detail) => detail,
        Err(error) => {
            tracing::warn!(%error, task = %id, "a stored webhook is unreadable; ignored");
            return;
        }
    };
    let secret = match SigningSecret::parse(&detail.secret) {
        Ok(secret) => secret,
        Err(error) => {
            tracing::warn!(%error, task = %id, "a stored webhook's secret is unreadable; ignored");
            return;
        }
    };
    let label = Label {
        task: &record.task,
        id: &record.id,
    };
    let mut delivered = record.delivered;
    let mut wait = inner.sender.retry().first;
    loop {
        let mut events = match inner.runtime.subscribe(id, Seq::from_u64(delivered)).await {
            Ok(events) => events,
            Err(longrun::Error::Unknown(_)) => {
                // The task expired: its webhook goes with it.
                forget(inner, &record).await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, task = %id, "cannot follow a task for its webhook; retrying");
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
                Ok(None) => {
                    // The log ended with nothing left to deliver (the last POST went out, but
                    // the record outlived a stop): it is done.
                    if ended(inner, id).await {
                        forget(inner, &record).await;
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, task = %id, "a webhook delivery lost its task's events; resuming");
                    break;
                }
            };
            let seq = event.seq.as_u64();
            if detail.events == WebhookEvents::All || event.is_terminal() {
                let Ok(body) = serde_json::to_vec(&model::Event::from(&*event)) else {
                    return;
                };
                let message = format!("{}_{seq}", record.task);
                let headers = |body: &[u8]| secret.headers(&message, body);
                if !inner
                    .sender
                    .post(label, &record.url, &body, &headers, stop)
                    .await
                {
                    return;
                }
                delivered = seq;
                if let Err(error) = inner
                    .store
                    .delivered(&record.task, &record.id, delivered)
                    .await
                {
                    // Not fatal: after a restart the event is sent again, under the same
                    // `webhook-id`, which the receiver can de-duplicate.
                    tracing::warn!(%error, task = %id, "cannot record a webhook delivery");
                }
            }
            if event.is_terminal() {
                forget(inner, &record).await;
                return;
            }
        }
        if !inner.sender.pause(stop, &mut wait).await {
            return;
        }
    }
}

/// Whether the task has ended.
async fn ended(inner: &Inner, id: TaskId) -> bool {
    inner
        .runtime
        .get(id)
        .await
        .is_ok_and(|task| task.status().is_terminal())
}

async fn forget(inner: &Inner, record: &Record) {
    if let Err(error) = inner.store.delete(&record.task, &record.id).await {
        tracing::warn!(%error, task = %record.task, "cannot remove a finished webhook");
    }
}
