//! nekro-agent's web-app generation plugin, on longrun (seed 001).
//!
//! nekro mounts an async generator per task type and the task reports itself with
//! `yield TaskCtl.report_progress(...)`, then `TaskCtl.success(...)` or `TaskCtl.fail(...)`.
//! Here the same task is a stream-style handler (`register_stream` with `async_stream::stream!`)
//! yielding [`Signal`]s. It analyses, generates, waits for a human to approve the deploy (nekro's
//! `await handle.wait("approval", timeout)`, here `ctx.ask`), and deploys. Each start carries
//! an `on_terminal` callback that messages the agent through the chat's inbox, as nekro's
//! `_on_terminal` pushes a system message with `trigger_agent=True`. The kind allows one
//! generation at a time, so a second one waits in `submitted` until the first ends. nekro
//! checks that limit by hand in every tool; here the runtime enforces it. A rejected deploy
//! fails the task and its callback still runs exactly once, and `stop_all` (nekro's
//! `task.stop_all()` when a plugin is disabled) cancels a generation mid-way.
//!
//! Run it with `cargo run -p longrun --example nekro_webapp`. It takes about two seconds and
//! ends with assertions, so CI runs it as a test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_stream::stream;
use longrun::{
    Context, KindSpec, Options, Outcome, Runtime, StartOptions, Task, TaskError, TaskId,
    event::{AllNotice, AllSubscription, Change, Notice, Seq},
    inbox::InboxEntry,
    kind::Signal,
    task::{CancelReason, Status},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// How long each phase of a generation takes here.
const STEP: Duration = Duration::from_millis(150);
/// How long the reviewer takes to read a deploy request.
const REVIEW: Duration = Duration::from_millis(300);

/// The input of `webapp_dev`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct WebApp {
    /// A short name; the app is deployed under it.
    name: String,
    /// What the user asked for.
    requirement: String,
}

/// What the terminal callbacks report back to `main`.
type Ended = mpsc::UnboundedSender<(TaskId, Status)>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::new(Options::default());
    let spec = KindSpec::new("webapp_dev")
        .description("Generates a web app from a requirement and deploys it once approved.")
        .concurrency(1)
        .cancel_grace(Duration::from_secs(1));
    rt.register_stream(spec, |ctx: Context, app: WebApp| {
        stream! {
            yield Signal::progress("analysing the requirement", 10.0);
            tokio::time::sleep(STEP).await;
            if ctx.is_cancelled() {
                yield Signal::cancel("cancelled while analysing");
                return;
            }
            yield Signal::progress("generating the app", 40.0);
            tokio::time::sleep(STEP).await;
            yield Signal::progress("waiting for approval to deploy", 60.0);
            let request = json!({
                "message": format!("Deploy `{}`?", app.name),
                "requirement": app.requirement,
                "schema": {
                    "type": "object",
                    "properties": {
                        "approved": { "type": "boolean" },
                        "reason": { "type": "string" },
                    },
                },
            });
            match ctx.ask("approval", request, Duration::from_secs(3)).await {
                Ok(answer) if answer["approved"] == json!(true) => {}
                Ok(answer) => {
                    let reason = answer["reason"].as_str().unwrap_or("no reason given");
                    let message = format!("deploy rejected: {reason}");
                    yield Signal::fail(TaskError::new("rejected", message));
                    return;
                }
                Err(error) => {
                    yield Signal::fail(error);
                    return;
                }
            }
            yield Signal::progress("deploying", 85.0);
            tokio::time::sleep(STEP).await;
            let url = format!("https://apps.example.com/{}", app.name);
            yield Signal::success(json!({ "url": url }));
        }
    })?;

    // nekro's chat_key: the conversation the tasks belong to and whose agent is told.
    let chat = "chat-42";
    let callbacks = Arc::new(Mutex::default());
    let (ended, mut ended_rx) = mpsc::unbounded_channel();

    // A human reviewer who watches every task's events and answers deploy requests.
    // It subscribes here, before any task starts, so it misses nothing.
    let reviewer = tokio::spawn(reviewer(rt.clone(), rt.subscribe_all()));

    println!("== two generations, one at a time (kind concurrency 1) ==");
    let todo = start(
        &rt,
        chat,
        "todo",
        "a todo list with due dates",
        &callbacks,
        &ended,
    )
    .await?;
    let login = start(
        &rt,
        chat,
        "login",
        "a login page that emails passwords to us",
        &callbacks,
        &ended,
    )
    .await?;
    println!("started todo  = {todo}");
    println!("started login = {login}");

    wait_for(&rt, todo, Status::InputRequired).await?;
    let waiting = rt.get(login).await?;
    println!(
        "while todo waits for approval, login is `{}` (no handler running yet, started_at {:?})",
        waiting.status(),
        waiting.started_at()
    );
    assert_eq!(
        waiting.status(),
        Status::Submitted,
        "the second generation waits its turn"
    );
    assert!(waiting.started_at().is_none());

    let todo_task = rt.handle(todo).wait().await?;
    let login_task = rt.handle(login).wait().await?;
    println!(
        "todo  ended {}: {}",
        todo_task.status(),
        todo_task.status_message().unwrap_or("")
    );
    println!(
        "login ended {}: {}",
        login_task.status(),
        login_task.status_message().unwrap_or("")
    );

    println!("\n== the plugin is disabled mid-generation: stop_all ==");
    let shop = start(&rt, chat, "shop", "a small online shop", &callbacks, &ended).await?;
    println!("started shop  = {shop}");
    wait_for(&rt, shop, Status::Working).await?;
    let stopped = rt.stop_all().await;
    println!("stop_all() stopped {stopped} task(s)");
    let shop_task = rt.get(shop).await?;
    println!(
        "shop  ended {}: {}",
        shop_task.status(),
        shop_task.status_message().unwrap_or("")
    );

    // A task's end is written, and waiters are woken, before its callback runs: collect the
    // three callbacks' reports, then give a fourth (which must not come) a moment.
    let mut reported = HashMap::new();
    for _ in 0..3 {
        let (id, status) = tokio::time::timeout(Duration::from_secs(2), ended_rx.recv())
            .await?
            .expect("callbacks report");
        reported.insert(id, status);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let extra = ended_rx.try_recv().is_ok();
    let reviews = reviewer.await??;

    println!("\n== the agent's next turn: what the chat's inbox holds ==");
    let inbox = rt.inbox(chat);
    let drained = inbox.drain(100).await?;
    let mut per_task: HashMap<TaskId, Vec<InboxEntry>> = HashMap::new();
    for item in drained.items() {
        let what = match &item.entry {
            InboxEntry::Outcome { kind, outcome } => {
                format!("outcome of {kind}: {}", outcome.describe())
            }
            InboxEntry::Message { message, trigger } => {
                format!("message (trigger {trigger}): {message}")
            }
        };
        println!("  #{} {}  {what}", item.position, short(item.task));
        per_task
            .entry(item.task)
            .or_default()
            .push(item.entry.clone());
    }
    let acked = drained.ack().await?;
    println!("acknowledged {acked} item(s)");
    rt.shutdown().await;

    // The approved generation deployed; the rejected one failed; the stopped one cancelled.
    let url = json!("https://apps.example.com/todo");
    assert_eq!(
        todo_task.outcome(),
        Some(&Outcome::Completed {
            output: json!({ "url": url })
        })
    );
    let Some(Outcome::Failed { error }) = login_task.outcome() else {
        panic!("a rejected deploy fails the task: {login_task:?}");
    };
    assert_eq!(error.code, "rejected");
    assert_eq!(
        shop_task.outcome(),
        Some(&Outcome::Cancelled {
            reason: CancelReason::Stopped
        })
    );
    assert_eq!(stopped, 1);
    assert_eq!(reviews, (1, 1), "one approval, one rejection");

    // Progress came through the stream in order, and the second waited for the first.
    let phases: Vec<_> = progress_messages(&rt, todo).await?;
    assert_eq!(
        phases,
        [
            "analysing the requirement",
            "generating the app",
            "waiting for approval to deploy",
            "deploying"
        ]
    );
    let login_began = login_task.started_at().expect("login ran");
    let todo_ended = todo_task.finished_at().expect("todo ended");
    assert!(
        login_began >= todo_ended,
        "login started only after todo ended"
    );

    // Every callback ran exactly once, with the final status.
    let calls = callbacks.lock().expect("not poisoned").clone();
    for (id, status) in [
        (todo, Status::Completed),
        (login, Status::Failed),
        (shop, Status::Cancelled),
    ] {
        assert_eq!(calls.get(&id), Some(&1), "one callback for {id}");
        assert_eq!(reported.get(&id), Some(&status));
    }
    assert!(!extra, "no callback ran twice");

    // The inbox holds, per task, the runtime's outcome and then the callback's message.
    assert_eq!(acked, 6);
    for (id, status, words) in [
        (todo, Status::Completed, "https://apps.example.com/todo"),
        (login, Status::Failed, "deploy rejected"),
        (shop, Status::Cancelled, "stopped all tasks"),
    ] {
        let entries = &per_task[&id];
        assert!(
            matches!(&entries[0], InboxEntry::Outcome { outcome, .. } if outcome.status() == status)
        );
        assert!(
            matches!(
                &entries[1],
                InboxEntry::Message { message, trigger: true } if message.contains(words)
            ),
            "{entries:?}"
        );
    }
    println!("\nnekro_webapp: all assertions hold");
    Ok(())
}

/// Starts one generation in the background, with nekro's terminal callback: it tells the agent
/// how the task ended through the chat's inbox.
async fn start(
    rt: &Runtime,
    chat: &str,
    name: &str,
    requirement: &str,
    callbacks: &Arc<Mutex<HashMap<TaskId, usize>>>,
    ended: &Ended,
) -> Result<TaskId, longrun::Error> {
    let (runtime, chat_key, callbacks, ended) = (
        rt.clone(),
        chat.to_owned(),
        callbacks.clone(),
        ended.clone(),
    );
    let on_terminal = move |task: Task| async move {
        *callbacks
            .lock()
            .expect("not poisoned")
            .entry(task.id)
            .or_default() += 1;
        let message = match task.outcome() {
            Some(Outcome::Completed { output }) => format!("Dev task complete! {}", output["url"]),
            Some(outcome) => format!("Dev task did not finish: {}", outcome.describe()),
            None => unreachable!("callbacks run after the end"),
        };
        println!(
            "        on_terminal({}): {} -> message the agent",
            short(task.id),
            task.status()
        );
        let entry = InboxEntry::Message {
            message,
            trigger: true,
        };
        if let Err(error) = runtime.inbox(chat_key).push(task.id, entry).await {
            eprintln!("could not message the agent: {error}");
        }
        let _ = ended.send((task.id, task.status()));
    };
    let options = StartOptions::background()
        .session(chat)
        .on_terminal(on_terminal);
    let app = WebApp {
        name: name.into(),
        requirement: requirement.into(),
    };
    Ok(rt.start("webapp_dev", app, options).await?.id())
}

/// Prints every task's events and answers deploy requests: approves unless the requirement
/// smells of phishing. Returns (approved, rejected) once three tasks have ended.
async fn reviewer(rt: Runtime, mut all: AllSubscription) -> Result<(usize, usize), longrun::Error> {
    let (mut approved, mut rejected, mut ends) = (0, 0, 0);
    while ends < 3 {
        let Some(notice) = all.next().await else {
            break;
        };
        let AllNotice::Event(published) = notice else {
            continue;
        };
        let event = &published.event;
        println!(
            "  {} #{:<2} {:<14} {}",
            short(event.task),
            event.seq,
            event.status.as_str(),
            describe(&event.change)
        );
        match &event.change {
            Change::Ended(_) => ends += 1,
            Change::InputRequested { key, request } => {
                let (rt, id, key, requirement) = (
                    rt.clone(),
                    event.task,
                    key.clone(),
                    request["requirement"].clone(),
                );
                let verdict = !requirement.as_str().unwrap_or("").contains("password");
                if verdict {
                    approved += 1
                } else {
                    rejected += 1
                }
                // Review in the background so the printing goes on meanwhile.
                tokio::spawn(async move {
                    tokio::time::sleep(REVIEW).await;
                    let answer = if verdict {
                        json!({ "approved": true })
                    } else {
                        json!({ "approved": false, "reason": "it would collect passwords" })
                    };
                    println!("        reviewer answers {}: {answer}", short(id));
                    if let Err(error) = rt.answer(id, &key, answer).await {
                        println!("        reviewer was too late: {error}");
                    }
                });
            }
            _ => {}
        }
    }
    Ok((approved, rejected))
}

/// Waits until task `id` reaches `status`, by following its events.
async fn wait_for(rt: &Runtime, id: TaskId, status: Status) -> Result<(), longrun::Error> {
    let mut events = rt.subscribe(id, Seq::ZERO).await?;
    while let Some(notice) = events.next().await? {
        if let Notice::Event(event) = notice
            && event.status == status
        {
            return Ok(());
        }
    }
    panic!("{id} ended without reaching {status}");
}

/// The progress messages of a task, from its log.
async fn progress_messages(rt: &Runtime, id: TaskId) -> Result<Vec<String>, longrun::Error> {
    let mut events = rt.subscribe(id, Seq::ZERO).await?;
    let mut phases = Vec::new();
    while let Some(notice) = events.next().await? {
        if let Notice::Event(event) = notice
            && let Change::Progress(progress) = &event.change
        {
            phases.extend(progress.message.clone());
        }
    }
    Ok(phases)
}

fn describe(change: &Change) -> String {
    match change {
        Change::Progress(p) => format!(
            "{:>3.0}% {}",
            p.percent.unwrap_or(0.0),
            p.message.as_deref().unwrap_or("")
        ),
        Change::InputRequested { key, request } => format!("asks `{key}`: {}", request["message"]),
        Change::InputAnswered { key, value } => format!("answer to `{key}`: {value}"),
        Change::CancelRequested { reason } => format!("cancel requested ({reason})"),
        Change::Ended(Outcome::Completed { output }) => format!("ended: completed with {output}"),
        Change::Ended(outcome) => format!("ended: {}", outcome.describe()),
        Change::Started { attempt } => format!("started (attempt {attempt})"),
        Change::Submitted => "submitted".into(),
        other => format!("{other:?}"),
    }
}

/// `task_…abc123`: enough of an id to tell tasks apart in a log.
fn short(id: TaskId) -> String {
    let id = id.to_string();
    format!("task_…{}", &id[id.len() - 6..])
}
