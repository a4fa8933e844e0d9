//! The peer: agentkit-task-manager 0.10.7's `AsyncTaskManager` (agentkit-core and
//! agentkit-tools-core 0.10.5), set up as in `reference/peers.md` §4.1.
//!
//! Every call is routed `Background`. The tool is a `ToolExecutor` implemented directly
//! (no registry, no permission lookup) that returns `"ok"` at once; permissions are
//! `AllowAllPermissions`, resources `()`. The host consumes `TaskEvent`s through
//! `TaskManagerHandle::next_event()` and counts `Completed`, skipping `Started`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentkit_core::{MetadataMap, SessionId, ToolCallId, ToolOutput, ToolResultPart, TurnId};
use agentkit_task_manager::{
    AsyncTaskManager, RoutingDecision, TaskEvent, TaskLaunchRequest, TaskManager, TaskStartContext,
};
use agentkit_tools_core::{
    AllowAllPermissions, OwnedToolContext, ToolContext, ToolExecutionOutcome, ToolExecutor,
    ToolName, ToolRequest, ToolResult, ToolSpec,
};
use async_trait::async_trait;

use crate::alloc;

/// A tool executor whose every call completes at once with the text `"ok"`.
struct Noop;

#[async_trait]
impl ToolExecutor for Noop {
    fn specs(&self) -> Vec<ToolSpec> {
        Vec::new()
    }

    async fn execute(
        &self,
        request: ToolRequest,
        _ctx: &mut ToolContext<'_>,
    ) -> ToolExecutionOutcome {
        ToolExecutionOutcome::Completed(ToolResult::new(ToolResultPart::success(
            request.call_id,
            ToolOutput::Text("ok".into()),
        )))
    }
}

/// (a) Starts `n` trivial background tool calls and returns the time from just before the
/// first `start_task` until a consumer task saw the `n`-th `TaskEvent::Completed`.
pub(crate) async fn agentkit_throughput(n: usize) -> Duration {
    let manager = AsyncTaskManager::new().routing(|_: &ToolRequest| RoutingDecision::Background);
    run(&manager, n).await
}

/// (d) Live heap bytes before creating a manager and after `n` trivial background calls have
/// completed, with the manager still alive (a host keeps it for the process's lifetime).
/// Pending loop updates are drained first, as agentkit-loop does at its next step; what
/// remains is what agentkit never lets go: one `TaskRecord` (and its `JoinHandle`) per task.
pub(crate) async fn agentkit_retention(n: usize) -> (usize, usize) {
    let start = alloc::live_heap_bytes();
    let manager = AsyncTaskManager::new().routing(|_: &ToolRequest| RoutingDecision::Background);
    run(&manager, n).await;
    let drained = manager
        .take_pending_loop_updates()
        .await
        .expect("AsyncTaskManager::take_pending_loop_updates does not fail");
    drop(drained);
    let after = alloc::live_heap_bytes();
    drop(manager);
    (start, after)
}

async fn run(manager: &AsyncTaskManager, n: usize) -> Duration {
    let handle = manager.handle();
    let consumer = tokio::spawn(async move {
        let mut done = 0;
        while done < n {
            match handle.next_event().await {
                Some(TaskEvent::Completed(..)) => done += 1,
                Some(_) => {}
                None => break,
            }
        }
        (done, Instant::now())
    });
    let executor: Arc<dyn ToolExecutor> = Arc::new(Noop);
    let tool_context = OwnedToolContext {
        session_id: SessionId::new("session"),
        turn_id: TurnId::new("turn"),
        metadata: MetadataMap::new(),
        permissions: Arc::new(AllowAllPermissions),
        resources: Arc::new(()),
        cancellation: None,
        execution_scope: None,
        approved_request: None,
    };
    let start = Instant::now();
    for i in 0..n {
        let request = ToolRequest {
            call_id: ToolCallId::new(format!("call-{i}")),
            tool_name: ToolName::new("noop"),
            input: serde_json::Value::Null,
            session_id: SessionId::new("session"),
            turn_id: TurnId::new("turn"),
            metadata: MetadataMap::new(),
        };
        let context = TaskStartContext {
            executor: Arc::clone(&executor),
            tool_context: tool_context.clone(),
        };
        manager
            .start_task(TaskLaunchRequest::plain(None, request), context)
            .await
            .expect("AsyncTaskManager::start_task does not fail");
    }
    let (done, end) = consumer.await.expect("the consumer task panicked");
    assert_eq!(
        done, n,
        "the event stream ended before every task completed"
    );
    end - start
}
