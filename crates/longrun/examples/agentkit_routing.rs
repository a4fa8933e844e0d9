//! agentkit-task-manager's routing, on longrun (seed 002).
//!
//! agentkit decides per tool call whether the agent loop waits for it (`Foreground`), lets it run
//! in the background (`Background`), or waits a while and then lets go
//! (`ForegroundThenDetachAfter(d)`). Background results are drained out of band at the agent's
//! next turn. Here the same policy is a function from the tool's name to [`StartOptions`]:
//!
//! - foreground: `start` awaits the outcome and returns `Started::Finished`;
//! - background: `start` returns `Started::Running` at once;
//! - `StartOptions::detach_after(d)`: a slow call returns `Started::Detached` after `d`, while
//!   a fast one finishes in time and returns `Started::Finished`;
//! - detach on demand: `runtime.detach(id)` from elsewhere releases a waiting foreground call;
//! - the agent's next turn: `inbox.ready()` wakes the agent (no polling), `inbox.drain(n)`
//!   hands out the results of background and detached calls, and `ack` removes them.
//!
//! agentkit's event stream (Started, Detached, Completed, Cancelled, Failed) is rebuilt from
//! `subscribe_all`. Cancelling a call that already finished is refused with `Error::Ended`,
//! where agentkit emitted `Cancelled` after `Completed` for the same task.
//!
//! Run it with `cargo run -p longrun --example agentkit_routing`. It takes about two seconds and
//! ends with assertions, so CI runs it as a test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use longrun::{
    Context, Error, KindSpec, Options, Outcome, Runtime, StartOptions, Started, TaskError, TaskId,
    event::{AllNotice, AllSubscription, Change, Notice, Seq},
    inbox::InboxEntry,
    task::{CancelReason, Filter, Status},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The conversation whose agent gets the background results.
const SESSION: &str = "session-1";
/// How long an `interactive_step` call is waited for before it detaches.
const DETACH_AFTER: Duration = Duration::from_millis(300);

/// A tool call: which tool, and how long it will take here.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct ToolCall {
    /// The tool's name.
    tool: String,
    /// How long the tool works, in milliseconds.
    millis: u64,
}

/// agentkit's `TaskRoutingPolicy`: the routing of each call, decided from the request.
fn route(tool: &str) -> StartOptions {
    match tool {
        "long_running_search" => StartOptions::background(),
        "interactive_step" => StartOptions::detach_after(DETACH_AFTER),
        _ => StartOptions::foreground(),
    }
}

/// Runs a tool: works for `millis`, stopping early if cancelled.
async fn run_tool(ctx: Context, call: ToolCall) -> Result<Value, TaskError> {
    tokio::select! {
        () = ctx.cancelled() => Err(TaskError::new("stopped", "the call was cancelled")),
        () = tokio::time::sleep(Duration::from_millis(call.millis)) => {
            Ok(json!({ "tool": call.tool, "took_ms": call.millis }))
        }
    }
}

/// Starts call `call_id` of `tool`, routed by the policy.
async fn call(rt: &Runtime, call_id: &str, tool: &str, millis: u64) -> Result<Started, Error> {
    let options = route(tool).session(SESSION).label("call_id", call_id);
    let input = ToolCall {
        tool: tool.into(),
        millis,
    };
    rt.start("tool_call", input, options).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Options::default());
    rt.register(
        KindSpec::new("tool_call").cancel_grace(Duration::from_millis(500)),
        run_tool,
    )?;

    // agentkit's TaskEvent stream, rebuilt from every task's events; subscribed before any
    // call starts, so it misses nothing.
    let events = tokio::spawn(task_events(rt.subscribe_all(), 6));

    println!("== foreground: the turn waits for the outcome ==");
    let read = call(&rt, "call-1", "read_file", 100).await?;
    let Started::Finished(read) = read else {
        panic!("foreground finishes: {read:?}")
    };
    println!(
        "call-1 read_file -> Finished {} ({})",
        read.id,
        read.status()
    );

    println!("\n== background: the turn goes on at once ==");
    let search = call(&rt, "call-2", "long_running_search", 1200).await?;
    let Started::Running(search) = search else {
        panic!("background runs: {search:?}")
    };
    println!("call-2 long_running_search -> Running {}", search.id());

    println!("\n== foreground, detached after {DETACH_AFTER:?} ==");
    let slow = call(&rt, "call-3", "interactive_step", 900).await?;
    let Started::Detached(slow) = slow else {
        panic!("a slow call detaches: {slow:?}")
    };
    println!("call-3 interactive_step (900 ms) -> Detached {}", slow.id());
    let fast = call(&rt, "call-4", "interactive_step", 50).await?;
    let Started::Finished(fast) = fast else {
        panic!("a fast call finishes in time: {fast:?}")
    };
    println!(
        "call-4 interactive_step (50 ms)  -> Finished {} ({})",
        fast.id,
        fast.status()
    );

    println!("\n== foreground, detached on demand ==");
    let waiting = tokio::spawn({
        let rt = rt.clone();
        async move { call(&rt, "call-5", "compile", 1500).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The waiting caller has no id yet; find the call by its label, as a UI would.
    let filter = Filter {
        labels: BTreeMap::from([("call_id".to_owned(), "call-5".to_owned())]),
        ..Filter::default()
    };
    let compile = loop {
        if let Some(task) = rt.list(filter.clone(), None, 1).await?.tasks.first() {
            break task.id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("the user sends call-5 ({compile}) to the background");
    let detached = rt.detach(compile).await?;
    let detached_again = rt.detach(compile).await?;
    let compile_started = waiting.await??;
    println!(
        "call-5 compile -> {} (detach: {detached}, a second detach: {detached_again})",
        if matches!(compile_started, Started::Detached(_)) {
            "Detached"
        } else {
            "not detached?"
        }
    );

    println!("\n== cancelling: a running call, then finished ones ==");
    let doomed = call(&rt, "call-6", "long_running_search", 5000).await?.id();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancelled = rt.cancel_by(doomed, "agent").await?;
    println!(
        "call-6 cancelled -> {}: {}",
        cancelled.status(),
        cancelled.status_message().unwrap_or("")
    );
    let again = rt.cancel(doomed).await.unwrap_err();
    println!("cancel call-6 again -> refused: {again}");
    let before = rt.get(read.id).await?;
    let late = rt.cancel(read.id).await.unwrap_err();
    println!("cancel call-1 (completed) -> refused: {late}");
    let after = rt.get(read.id).await?;

    println!("\n== the agent's next turns: woken by the inbox, not polling ==");
    let inbox = rt.inbox(SESSION);
    let mut delivered = Vec::new();
    let mut turn = 0;
    while delivered.len() < 4 {
        inbox.ready().await?;
        turn += 1;
        let drained = inbox.drain(10).await?;
        println!("turn {turn}: {} result(s) ready", drained.items().len());
        for item in drained.items() {
            if let InboxEntry::Outcome { outcome, .. } = &item.entry {
                println!("  {}: {}", item.task, outcome.describe());
                delivered.push((item.task, outcome.status()));
            }
        }
        drained.ack().await?;
    }
    let leftover = inbox.drain(10).await?.items().len();
    let events = events.await?;
    rt.shutdown().await;

    // Routing did what each call asked.
    assert_eq!(read.status(), Status::Completed);
    assert_eq!(fast.status(), Status::Completed);
    assert!(!fast.is_detached(), "the fast call finished in time");
    assert!(matches!(compile_started, Started::Detached(_)));
    assert!(
        detached && !detached_again,
        "one detach, and a second has nothing to do"
    );

    // Only background and detached calls reach the inbox, each once; foreground ones went to
    // their callers.
    let mut expected = vec![
        (search.id(), Status::Completed),
        (slow.id(), Status::Completed),
        (compile, Status::Completed),
        (doomed, Status::Cancelled),
    ];
    expected.sort_by_key(|(id, _)| id.to_string());
    delivered.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(delivered, expected);
    assert_eq!(leftover, 0, "acknowledged results are not delivered again");

    // Cancelling is refused once a task ended, and changes nothing.
    assert_eq!(
        cancelled.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Requested {
                by: Some("agent".into())
            }
        })
    );
    assert!(
        matches!(
            again,
            Error::Ended {
                status: Status::Cancelled,
                ..
            }
        ),
        "{again}"
    );
    assert!(
        matches!(
            late,
            Error::Ended {
                status: Status::Completed,
                ..
            }
        ),
        "{late}"
    );
    assert_eq!(before, after, "the completed task is untouched");
    assert_eq!(
        history(&rt, read.id).await?.last().map(String::as_str),
        Some("Completed")
    );

    // agentkit's event stream: each call ends once, and nothing follows its end.
    let mut ended = HashSet::new();
    for (id, name) in &events {
        assert!(!ended.contains(id), "{name} after the end of {id}");
        if matches!(
            name.as_str(),
            "Completed" | "Failed" | "Cancelled" | "Rejected"
        ) {
            ended.insert(*id);
        }
    }
    assert_eq!(ended.len(), 6);
    let detaches = events.iter().filter(|(_, name)| name == "Detached").count();
    assert_eq!(detaches, 2, "call-3 after its timeout, call-5 on demand");
    println!("\nagentkit_routing: all assertions hold");
    Ok(())
}

/// agentkit's name for an event, if it has one.
fn task_event(change: &Change) -> Option<&'static str> {
    Some(match change {
        Change::Started { .. } => "Started",
        Change::Detached => "Detached",
        Change::Ended(Outcome::Completed { .. }) => "Completed",
        Change::Ended(Outcome::Failed { .. }) => "Failed",
        Change::Ended(Outcome::Cancelled { .. }) => "Cancelled",
        Change::Ended(Outcome::Rejected { .. }) => "Rejected",
        _ => return None,
    })
}

/// Prints agentkit-style task events until `ends` tasks have ended; returns them.
async fn task_events(mut all: AllSubscription, ends: usize) -> Vec<(TaskId, String)> {
    let mut log = Vec::new();
    let mut seen = 0;
    while seen < ends {
        match all.next().await {
            Some(AllNotice::Event(published)) => {
                let event = &published.event;
                if let Some(name) = task_event(&event.change) {
                    println!("    [event] {name:<9} {}", event.task);
                    log.push((event.task, name.to_owned()));
                    if event.is_terminal() {
                        seen += 1;
                    }
                }
            }
            Some(AllNotice::Lagged { missed }) => println!("    [event] missed {missed}"),
            None => break,
        }
    }
    log
}

/// A task's agentkit-style events, read back from its log.
async fn history(rt: &Runtime, id: TaskId) -> Result<Vec<String>, Error> {
    let mut subscription = rt.subscribe(id, Seq::ZERO).await?;
    let mut names = Vec::new();
    while let Some(notice) = subscription.next().await? {
        if let Notice::Event(event) = notice {
            names.extend(task_event(&event.change).map(str::to_owned));
        }
    }
    Ok(names)
}
