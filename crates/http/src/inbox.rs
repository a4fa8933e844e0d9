//! `POST /v1/sessions/{session}/inbox:drain`: the agent inbox over HTTP, with acknowledgement.
//!
//! HTTP has no connection to hold a drain open across the agent's turn, so acknowledgement
//! travels with the next drain: a drain returns the oldest items and `through`, the last one's
//! position, and leaves them in the inbox; the next drain sends `ack: through` once the agent
//! has handled them, which removes them for good, and gets the items after. An agent that
//! crashes before acknowledging gets the same items again: at least once, never lost.
//!
//! ```text
//! POST …/inbox:drain {}              → {"items": [#1, #2], "through": 2, "acknowledged": 0}
//! POST …/inbox:drain {"ack": 2}      → {"items": [#3],     "through": 3, "acknowledged": 2}
//! POST …/inbox:drain {"ack": 3, "max": 0} → {"items": [], "through": null, "acknowledged": 1}
//! ```

use std::time::Duration;

use axum::extract::State;
use longrun::inbox::Inbox;

use crate::{
    Api,
    auth::Caller,
    error::Error,
    extract::{Json, Path},
    model,
};

/// How many items one drain returns when the request does not say.
const DEFAULT_DRAIN: usize = 100;
/// How often an acknowledgement starts over because another drain of the same session moved
/// the inbox under it, before it gives up and reports what it removed.
const ACK_ATTEMPTS: usize = 8;

/// Drain the session's agent inbox: acknowledge what the last drain returned, fetch what is next.
///
/// The items are the outcomes of the session's background and detached tasks and the messages
/// its tasks left for the agent, oldest first. They stay until acknowledged: send the
/// `through` of one drain as `ack` in the next. Sessions are the caller's own: another principal
/// draining a session of the same name drains its own inbox.
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/inbox:drain",
    operation_id = "drainInbox",
    tag = "inbox",
    params(("session" = String, Path, description = "The session, as named when starting tasks.")),
    request_body(content = Option<model::DrainRequest>, description = "Optional: what to acknowledge and what to fetch.", content_type = "application/json"),
    responses(
        (status = 200, description = "The items, and the position to acknowledge next time.", body = model::Drained),
        (status = 400, description = "The body is not JSON.", body = model::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
        (status = 415, description = "A body that is not `application/json`.", body = model::ErrorBody),
        (status = 422, description = "An unknown field.", body = model::ErrorBody),
    )
)]
pub(crate) async fn drain(
    State(api): State<Api>,
    Caller(principal): Caller,
    Path(session): Path<String>,
    body: Option<Json<model::DrainRequest>>,
) -> Result<axum::Json<model::Drained>, Error> {
    let request = body.map(|Json(request)| request).unwrap_or_default();
    let inbox = api.runtime().inbox(principal.session(&session));
    let acknowledged = match request.ack {
        Some(through) => acknowledge(&inbox, through, api.limits().max_drain).await?,
        None => 0,
    };
    let max = request
        .max
        .unwrap_or(DEFAULT_DRAIN)
        .min(api.limits().max_drain);
    if max == 0 {
        return Ok(axum::Json(model::Drained {
            items: Vec::new(),
            through: None,
            acknowledged,
        }));
    }
    if let Some(wait) = request.wait_ms {
        let wait = Duration::from_millis(wait).min(api.limits().max_wait);
        // Timing out just means an empty answer.
        if let Ok(ready) = tokio::time::timeout(wait, inbox.ready()).await {
            ready?;
        }
    }
    // Dropped unacknowledged: the items stay for the next drain.
    let drained = inbox.drain(max).await?;
    let items: Vec<model::InboxItem> = drained.items().iter().map(model::InboxItem::from).collect();
    Ok(axum::Json(model::Drained {
        through: items.last().map(|item| item.position),
        items,
        acknowledged,
    }))
}

/// Removes the items up to and including position `through`; returns how many.
///
/// The runtime acknowledges a drain as a whole (through its last item), so this drains exactly
/// the items at or before `through` and acknowledges that drain: first a look at up to `batch`
/// items to count them, then a drain of that many. Drains of one session are serialized by the
/// runtime, but another request may acknowledge between the two steps; the count is then
/// checked again rather than acknowledging an item past `through`.
async fn acknowledge(inbox: &Inbox, through: u64, batch: usize) -> Result<usize, Error> {
    let batch = batch.max(1);
    let mut removed = 0;
    let mut races = 0;
    loop {
        let drained = inbox.drain(batch).await?;
        let covered = drained
            .items()
            .iter()
            .take_while(|item| item.position <= through)
            .count();
        if covered == 0 {
            return Ok(removed);
        }
        if covered == drained.items().len() {
            removed += drained.ack().await?;
            if covered < batch {
                return Ok(removed);
            }
            // A full batch, all covered: there may be more at or before `through`.
            continue;
        }
        drop(drained);
        let exact = inbox.drain(covered).await?;
        if exact
            .items()
            .last()
            .is_some_and(|item| item.position <= through)
        {
            removed += exact.ack().await?;
            return Ok(removed);
        }
        races += 1;
        if races == ACK_ATTEMPTS {
            return Ok(removed);
        }
    }
}
