//! The handler of a gateway kind: one upstream tool call per task attempt, its updates relayed
//! as the task's progress, its questions asked through the task, cancellation passed on.
//!
//! The call's update callback is synchronous, and recording progress is not, so updates go
//! through a channel to the handler's own loop, which records them in order. The loop waits
//! on one of: the call ending, an update, or the task being cancelled (which cancels the call's
//! token; the call then cancels upstream and ends, and the loop ends with it).

use std::{pin::pin, sync::Arc};

use longrun::{Context, KindSpec, Runtime, TaskError};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ask::Asker, link::Link};
use crate::{Error, Update};

/// The task failure codes of gateway kinds.
pub(crate) mod code {
    /// The upstream could not be reached.
    pub(crate) const UNAVAILABLE: &str = "upstream_unavailable";
    /// The connection broke during the call.
    pub(crate) const LOST: &str = "upstream_lost";
    /// The upstream tool answered with `isError: true`.
    pub(crate) const TOOL_ERROR: &str = "tool_error";
    /// The upstream task failed, or the upstream refused the call.
    pub(crate) const FAILED: &str = "upstream_failed";
    /// The upstream cancelled the task on its own account.
    pub(crate) const CANCELLED: &str = "upstream_cancelled";
}

pub(crate) fn register(
    runtime: &Runtime,
    spec: KindSpec,
    link: Arc<Link>,
    tool: String,
) -> Result<(), longrun::Error> {
    let tool: Arc<str> = Arc::from(tool);
    runtime.register(spec, move |ctx: Context, input: Value| {
        run(ctx, link.clone(), tool.clone(), input)
    })
}

async fn run(
    ctx: Context,
    link: Arc<Link>,
    tool: Arc<str>,
    input: Value,
) -> Result<Value, TaskError> {
    let client = link.client().await.map_err(|e| {
        TaskError::new(
            code::UNAVAILABLE,
            format!(
                "the upstream MCP server `{}` cannot be reached: {e}",
                link.name
            ),
        )
    })?;
    let (updates, mut updated) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let call = client
        .task()
        .with_cancel(cancel.clone())
        .on_update(move |update| {
            let _ = updates.send(update);
        })
        .answer_with(Arc::new(Asker { ctx: ctx.clone() }))
        .call_tool(&tool, input);
    let mut call = pin!(call);
    let ended = loop {
        tokio::select! {
            ended = &mut call => break ended,
            Some(update) = updated.recv() => relay(&ctx, update).await,
            () = ctx.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
        }
    };
    while let Ok(update) = updated.try_recv() {
        relay(&ctx, update).await;
    }
    match ended {
        Ok(result) => output(result),
        Err(error) => {
            if error.is_disconnected() {
                link.forget(&client).await;
            }
            Err(failure(&link.name, &tool, error))
        }
    }
}

/// Records one update as the task's progress.
async fn relay(ctx: &Context, update: Update) {
    let (percent, message) = match update {
        Update::Created(task) | Update::Status(task) => {
            let Some(message) = task.status_message else {
                return;
            };
            (None, message)
        }
        Update::Progress {
            progress,
            total,
            message,
        } => {
            let percent = total
                .filter(|t| *t > 0.0)
                .map(|t| (progress / t * 100.0).clamp(0.0, 100.0));
            let message = message.unwrap_or_else(|| match total {
                Some(total) => format!("{progress} of {total}"),
                None => format!("{progress}"),
            });
            (percent, message)
        }
        _ => return,
    };
    if let Err(error) = ctx.progress(percent, message).await {
        tracing::debug!(target: "longrun::mcp_client", task = %ctx.id(), %error, "upstream progress not recorded");
    }
}

/// The task's output for a tool result; a tool error fails the task.
fn output(result: CallToolResult) -> Result<Value, TaskError> {
    let value = serde_json::to_value(&result).map_err(TaskError::from)?;
    if result.is_error != Some(true) {
        return Ok(value);
    }
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    let message = if text.is_empty() {
        "the upstream tool reported an error".to_owned()
    } else {
        text.join("\n")
    };
    Err(TaskError::new(code::TOOL_ERROR, message).with_details(value))
}

fn failure(upstream: &str, tool: &str, error: Error) -> TaskError {
    let at = format!("`{tool}` on the upstream MCP server `{upstream}`");
    match error {
        Error::Disconnected(why) => TaskError::new(
            code::LOST,
            format!("the connection to {at} was lost: {why}; the next task connects again"),
        ),
        Error::TaskFailed { error, .. } | Error::Rpc { error, .. } => {
            let details = json!({"code": error.code, "message": error.message, "data": error.data});
            TaskError::new(code::FAILED, format!("{at} failed: {}", error.message))
                .with_details(details)
        }
        Error::Cancelled { reason, .. } => TaskError::new(
            code::CANCELLED,
            format!(
                "{at} was cancelled{}",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        ),
        Error::Connect { .. } => TaskError::new(code::UNAVAILABLE, format!("{at}: {error}")),
        other => TaskError::new(code::FAILED, format!("{at}: {other}")),
    }
}
