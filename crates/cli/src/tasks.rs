//! The client commands: `longrun tasks start|get|list|watch|cancel|answer` and `longrun kinds`.

use std::{io::Read as _, path::PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use crate::{
    ClientArgs, Exit,
    client::{Client, segment},
    steps,
    view::{self, Task, compact},
    watch,
};

/// `longrun tasks …`.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Start a task of KIND.
    Start {
        /// The kind (see `longrun kinds`).
        kind: String,
        /// The input, as JSON (default `{}`).
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// Read the input JSON from a file (`-` for standard input).
        #[arg(long)]
        input_file: Option<PathBuf>,
        /// The session (conversation) the task belongs to; its outcome goes to that inbox.
        #[arg(long)]
        session: Option<String>,
        /// Wait up to this many milliseconds for the outcome; the exit code then tells it
        /// (5 if the task is still running).
        #[arg(long)]
        wait_ms: Option<u64>,
        /// A label `key=value`, for filtering lists; repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// How long the finished task stays readable, in milliseconds.
        #[arg(long)]
        ttl_ms: Option<u64>,
        /// Cancel the task if it runs longer than this many milliseconds.
        #[arg(long)]
        deadline_ms: Option<u64>,
        /// Start the handler this many milliseconds from now, not before.
        #[arg(long, conflicts_with = "start_at_ms")]
        delay_ms: Option<u64>,
        /// Start the handler at this time (milliseconds since the Unix epoch), not before.
        #[arg(long)]
        start_at_ms: Option<u64>,
        /// Name this start: running the command again with the same key starts nothing and
        /// shows the task the first run started.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a task and the steps it saved; the exit code tells its status (5 while it has not
    /// ended).
    Get {
        /// The task id (`task_…`).
        id: String,
    },
    /// List tasks, newest first, a page at a time.
    List {
        /// Only tasks with this status; repeatable.
        #[arg(long)]
        status: Vec<String>,
        /// Only tasks of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only tasks of this session.
        #[arg(long)]
        session: Option<String>,
        /// Only tasks with this label `key=value`; repeatable (all must match).
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// At most this many tasks.
        #[arg(long)]
        limit: Option<usize>,
        /// Continue after this cursor (printed at the end of the previous page).
        #[arg(long)]
        after: Option<String>,
    },
    /// Follow one task (until it ends; exit code by outcome) or every task (until Ctrl-C):
    /// progress bars on a terminal, and a prompt when a task asks a question. Prints one event
    /// per line when the output is not a terminal.
    Watch {
        /// The task id; omit to watch every task.
        id: Option<String>,
    },
    /// Ask a task to stop.
    Cancel {
        /// The task id.
        id: String,
    },
    /// Answer a task's question.
    Answer {
        /// The task id.
        id: String,
        /// The question's key.
        key: String,
        /// The answer, as JSON (`true`, `42`, `"text"`, `{"a": 1}`).
        value: String,
    },
}

/// Runs one `tasks` command.
pub(crate) async fn run(args: &ClientArgs, command: Command) -> anyhow::Result<Exit> {
    let client = Client::new(&args.server, args.token.clone())?;
    match command {
        Command::Start {
            kind,
            input,
            input_file,
            session,
            wait_ms,
            labels,
            ttl_ms,
            deadline_ms,
            delay_ms,
            start_at_ms,
            idempotency_key,
        } => {
            let input = read_input(input, input_file)?;
            let mut body = Map::new();
            body.insert("kind".into(), json!(kind));
            body.insert("input".into(), input);
            if let Some(session) = session {
                body.insert("session".into(), json!(session));
            }
            if let Some(wait_ms) = wait_ms {
                body.insert("wait_ms".into(), json!(wait_ms));
            }
            if let Some(ttl_ms) = ttl_ms {
                body.insert("ttl_ms".into(), json!(ttl_ms));
            }
            if let Some(deadline_ms) = deadline_ms {
                body.insert("deadline_ms".into(), json!(deadline_ms));
            }
            if let Some(delay_ms) = delay_ms {
                body.insert("delay_ms".into(), json!(delay_ms));
            }
            if let Some(start_at_ms) = start_at_ms {
                body.insert("start_at_ms".into(), json!(start_at_ms));
            }
            if !labels.is_empty() {
                let labels: Map<String, Value> =
                    labels.into_iter().map(|(k, v)| (k, json!(v))).collect();
                body.insert("labels".into(), Value::Object(labels));
            }
            let task = client
                .post_keyed(
                    "/v1/tasks",
                    &Value::Object(body),
                    idempotency_key.as_deref(),
                )
                .await?;
            print_task(args, &task);
            let status = Task(&task).status();
            Ok(match (wait_ms, status) {
                (Some(_), status) => view::exit_for(status),
                // A start that did not wait succeeded, unless the task was turned away.
                (None, "rejected") => Exit::Rejected,
                (None, _) => Exit::Completed,
            })
        }
        Command::Get { id } => {
            let mut task = client.get(&task_path(&id), &[]).await?;
            let last_seq = task.get("last_seq").and_then(Value::as_u64).unwrap_or(0);
            let saved = steps::saved(&client, &id, last_seq).await?;
            if args.json {
                // The task as `/v1` shows it, with its saved steps beside it (key → value).
                if let Some(fields) = task.as_object_mut() {
                    let steps: Map<String, Value> = saved.into_iter().collect();
                    fields.insert("steps".into(), Value::Object(steps));
                }
                print_task(args, &task);
            } else {
                print_task(args, &task);
                if !saved.is_empty() {
                    println!("  {}", steps::summary(&saved));
                }
            }
            Ok(view::exit_for(Task(&task).status()))
        }
        Command::List {
            status,
            kind,
            session,
            labels,
            limit,
            after,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            query.extend(status.into_iter().map(|status| ("status", status)));
            query.extend(kind.map(|kind| ("kind", kind)));
            query.extend(session.map(|session| ("session", session)));
            query.extend(
                labels
                    .into_iter()
                    .map(|(k, v)| ("label", format!("{k}:{v}"))),
            );
            query.extend(limit.map(|limit| ("limit", limit.to_string())));
            query.extend(after.map(|after| ("after", after)));
            let page = client.get("/v1/tasks", &query).await?;
            print_list(args, &page);
            Ok(Exit::Completed)
        }
        Command::Watch { id } => match id {
            Some(id) => watch::one(&client, args.json, &id).await,
            None => watch::all(&client, args.json).await,
        },
        Command::Cancel { id } => {
            let task = client
                .post(&format!("{}/cancel", task_path(&id)), &Value::Null)
                .await?;
            print_task(args, &task);
            Ok(Exit::Completed)
        }
        Command::Answer { id, key, value } => {
            let value: Value = serde_json::from_str(&value).with_context(|| {
                format!(
                    "the answer `{value}` is not JSON; write true, 42, \"text\" (with the quotes) \
                     or an object"
                )
            })?;
            let answered = answer(&client, &id, &key, &value).await?;
            if args.json {
                println!("{}", compact(&answered));
            } else {
                println!("answered `{key}` of {id}");
            }
            Ok(Exit::Completed)
        }
    }
}

/// `longrun kinds`.
pub(crate) async fn kinds(args: &ClientArgs) -> anyhow::Result<Exit> {
    let client = Client::new(&args.server, args.token.clone())?;
    let kinds = client.get("/v1/kinds", &[]).await?;
    if args.json {
        println!("{}", pretty(&kinds));
        return Ok(Exit::Completed);
    }
    let list = kinds
        .get("kinds")
        .and_then(Value::as_array)
        .or_else(|| kinds.as_array())
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        println!("no kinds on {}", client.base());
    }
    for kind in &list {
        let name = kind.get("name").and_then(Value::as_str).unwrap_or("?");
        let description = kind
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        println!("{name:<20} {description}");
        // A schema without `type` or `properties` accepts any JSON: not worth a line.
        if let Some(schema) = kind
            .get("input_schema")
            .filter(|s| s.get("type").is_some() || s.get("properties").is_some())
        {
            println!("{:<20} input: {}", "", compact(schema));
        }
    }
    Ok(Exit::Completed)
}

/// POSTs an answer; shared with `watch`'s prompt.
pub(crate) async fn answer(
    client: &Client,
    id: &str,
    key: &str,
    value: &Value,
) -> anyhow::Result<Value> {
    client
        .post(
            &format!("{}/answers/{}", task_path(id), segment(key)),
            value,
        )
        .await
}

/// `/v1/tasks/{id}`.
pub(crate) fn task_path(id: &str) -> String {
    format!("/v1/tasks/{}", segment(id))
}

fn read_input(input: Option<String>, file: Option<PathBuf>) -> anyhow::Result<Value> {
    let (text, origin) = match (input, file) {
        (Some(text), _) => (text, "--input".to_owned()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the input from standard input")?;
            (text, "standard input".to_owned())
        }
        (None, Some(path)) => (
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the input file {}", path.display()))?,
            path.display().to_string(),
        ),
        (None, None) => return Ok(json!({})),
    };
    serde_json::from_str(&text).with_context(|| format!("the input in {origin} is not JSON"))
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A task: its JSON with `--json`, else a few lines.
fn print_task(args: &ClientArgs, task: &Value) {
    if args.json {
        println!("{}", pretty(task));
        return;
    }
    let view = Task(task);
    println!("{}  {}  {}", view.id(), view.kind(), view.summary());
    if let Some(attempt) = task.get("attempt").and_then(Value::as_u64)
        && attempt > 1
    {
        // Retried or re-run: its saved steps were not run again.
        println!("  attempt {attempt}");
    }
    for (key, request) in view.questions() {
        println!(
            "  asks `{key}`: {}  (answer: longrun tasks answer {} {key} <json>)",
            view::question_text(&request),
            view.id()
        );
    }
}

fn print_list(args: &ClientArgs, page: &Value) {
    if args.json {
        println!("{}", pretty(page));
        return;
    }
    let tasks = page
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tasks.is_empty() {
        println!("no tasks");
    }
    for task in &tasks {
        let view = Task(task);
        println!("{}  {:<16} {}", view.id(), view.kind(), view.summary());
    }
    if let Some(next) = page.get("next").and_then(Value::as_str) {
        println!("more: --after {next}");
    }
}
