//! `longrun tasks watch [<id>]`: follow one task's event stream (`/v1/tasks/{id}/events`) until
//! it ends, or every visible task's (`/v1/events`) until Ctrl-C.
//!
//! On a terminal (stdout and stderr both TTYs, no `--json`) each task gets a live progress bar,
//! and a question (`input_requested`) becomes a prompt: yes/no when the request asks for a
//! boolean, else one line of JSON; the answer is POSTed like `longrun tasks answer` would. While
//! a prompt is open the bars are hidden, so the prompt line is not drawn over. Otherwise every
//! event is printed as a line (the server's JSON with `--json`), and nothing is asked.
//!
//! A stream that breaks off is resumed from the last event seen (`Last-Event-ID`), so a
//! server restart loses nothing; a server that stays unreachable ends the command with exit 1.

use std::{
    collections::{HashMap, VecDeque},
    io::{BufRead as _, IsTerminal as _, Write as _},
    time::Duration,
};

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    Exit,
    client::{ApiError, Client, Events},
    tasks::{answer, task_path},
    view::{self, Change, Event, Task, compact},
};

/// How long a question waits before it is prompted for: long enough for a replayed log to show
/// that it was answered already, short enough to feel immediate.
const PROMPT_DELAY: Duration = Duration::from_millis(200);
/// How many times in a row a lost stream is reopened before giving up.
const RECONNECTS: u32 = 10;
/// The pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Follows one task until it ends; the exit code tells how it ended.
pub(crate) async fn one(client: &Client, json: bool, id: &str) -> anyhow::Result<Exit> {
    // Read it first: an unknown id fails at once with the server's 404, and the bar gets its
    // kind as its label.
    let task = client.get(&task_path(id), &[]).await?;
    let mut watcher = Watcher::new(client.clone(), json, Some(id.to_owned()));
    // Lines replay the whole log (a script sees the task's history); bars start from the task
    // as it stands, its open questions included, and follow what happens after it.
    let mut after = None;
    if watcher.ui.is_some() {
        watcher.show_task(&task);
        after = task
            .get("last_seq")
            .and_then(Value::as_u64)
            .map(|seq| seq.to_string());
    }
    watcher
        .follow(&format!("{}/events", task_path(id)), after)
        .await
}

/// Follows every task the caller can see, until Ctrl-C.
pub(crate) async fn all(client: &Client, json: bool) -> anyhow::Result<Exit> {
    let mut watcher = Watcher::new(client.clone(), json, None);
    // Tasks already running get their bars (and their open questions) before new events come.
    let unfinished = [
        ("status", "submitted,working,input_required".to_owned()),
        ("limit", "100".to_owned()),
    ];
    let page = client.get("/v1/tasks", &unfinished).await?;
    for task in page
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        watcher.show_task(task);
    }
    watcher.follow("/v1/events", None).await
}

/// How reading one connection ended.
enum Read {
    /// The command is done, with this exit code.
    Done(Exit),
    /// The connection ended after delivering events.
    Progressed,
    /// The connection ended (or could not be opened) without delivering any.
    Nothing,
}

/// Whether a failure to open a stream may pass: anything but an answer from the server, and
/// the server's own "shutting down" or gateway errors, which a restart will cure.
fn retryable(error: &anyhow::Error) -> bool {
    match error.downcast_ref::<ApiError>() {
        Some(api) => api.status.is_server_error(),
        None => true,
    }
}

/// A question waiting for a prompt.
#[derive(Debug, Clone)]
struct Question {
    task: String,
    key: String,
    request: Value,
}

/// The terminal side: bars and prompts.
struct Ui {
    multi: MultiProgress,
    style: ProgressStyle,
    bars: HashMap<String, ProgressBar>,
    /// Questions not yet prompted for, oldest first.
    queue: VecDeque<Question>,
    /// The question whose prompt is on screen.
    active: Option<Question>,
    /// When the first queued question should be prompted for.
    prompt_at: Option<Instant>,
    /// Lines typed on the terminal; started with the first prompt. `None` once stdin closed.
    lines: Option<mpsc::UnboundedReceiver<String>>,
    started_reader: bool,
    interactive: bool,
}

struct Watcher {
    client: Client,
    json: bool,
    /// The one task watched; `None` when watching every task (lines then start with the id).
    only: Option<String>,
    ui: Option<Ui>,
}

impl Watcher {
    fn new(client: Client, json: bool, only: Option<String>) -> Self {
        let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let ui = (tty && !json).then(|| Ui {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            style: ProgressStyle::with_template(
                "{spinner:.green} {prefix:.bold} [{bar:30.cyan/blue}] {pos:>3}% {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
            bars: HashMap::new(),
            queue: VecDeque::new(),
            active: None,
            prompt_at: None,
            lines: None,
            started_reader: false,
            interactive: std::io::stdin().is_terminal(),
        });
        Self {
            client,
            json,
            only,
            ui,
        }
    }

    /// Reads `path`'s event stream, resuming it when it breaks, until the task ends (one
    /// task), Ctrl-C, or the server stays unreachable.
    async fn follow(&mut self, path: &str, after: Option<String>) -> anyhow::Result<Exit> {
        let mut last = after;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut failures = 0;
        loop {
            let opened = tokio::select! {
                opened = self.client.events(path, last.as_deref()) => opened,
                _ = ctrl_c.as_mut() => return Ok(self.interrupted()),
            };
            let outcome = match opened {
                Ok(mut events) if events.finished() => match self.only.clone() {
                    // Every event of an ended task was seen: its status is the answer.
                    Some(id) => {
                        let task = self.client.get(&task_path(&id), &[]).await?;
                        self.close_ui();
                        return Ok(view::exit_for(Task(&task).status()));
                    }
                    None => self.read(&mut events, &mut last, &mut ctrl_c).await?,
                },
                Ok(mut events) => self.read(&mut events, &mut last, &mut ctrl_c).await?,
                Err(error) if !retryable(&error) => return Err(error),
                Err(error) => {
                    failures += 1;
                    if failures > RECONNECTS {
                        return Err(error);
                    }
                    Read::Nothing
                }
            };
            match outcome {
                Read::Done(exit) => return Ok(exit),
                Read::Progressed => failures = 0,
                Read::Nothing => failures += 1,
            }
            if failures > RECONNECTS {
                anyhow::bail!("the event stream at {path} keeps breaking off");
            }
            // The stream ended or broke before the task did (a server restart, a proxy): resume
            // after the last event seen.
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// Reads one connection's events until the command is done or the connection ends.
    async fn read(
        &mut self,
        events: &mut Events,
        last: &mut Option<String>,
        ctrl_c: &mut std::pin::Pin<&mut impl Future<Output = std::io::Result<()>>>,
    ) -> anyhow::Result<Read> {
        let mut progressed = false;
        loop {
            let prompt_at = self.ui.as_ref().and_then(|ui| ui.prompt_at);
            let prompting = self
                .ui
                .as_ref()
                .is_some_and(|ui| ui.active.is_some() && ui.lines.is_some());
            tokio::select! {
                event = events.next() => {
                    let Ok(Some(event)) = event else {
                        return Ok(if progressed { Read::Progressed } else { Read::Nothing });
                    };
                    if event.event == "error" {
                        // The server failed mid-stream and ends it; say why, then resume.
                        eprintln!("the server ended the event stream: {}", event.data);
                        return Ok(Read::Nothing);
                    }
                    progressed = true;
                    if let Some(id) = &event.id {
                        *last = Some(id.clone());
                    }
                    if let Some(exit) = self.on_event(&event.event, &event.data).await? {
                        return Ok(Read::Done(exit));
                    }
                }
                line = next_line(self.ui.as_mut()), if prompting => {
                    self.on_line(line).await;
                }
                () = sleep_until(prompt_at), if prompt_at.is_some() => {
                    self.prompt_next();
                }
                _ = ctrl_c.as_mut() => return Ok(Read::Done(self.interrupted())),
            }
        }
    }

    /// Ctrl-C: watching one task, it had not ended when we stopped waiting (5); watching all,
    /// stopping is the normal end (0).
    fn interrupted(&mut self) -> Exit {
        self.close_ui();
        if self.only.is_some() {
            Exit::Running
        } else {
            Exit::Completed
        }
    }

    /// Handles one SSE event; `Some(exit)` when the watched task ended.
    async fn on_event(&mut self, name: &str, data: &str) -> anyhow::Result<Option<Exit>> {
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            self.print(format!("{name}: {data}"));
            return Ok(None);
        };
        let event = Event(&value);
        // A per-task stream may leave the task id out of its events.
        let task = event.task().or(self.only.as_deref()).map(str::to_owned);
        let (Some(task), false) = (task, name == "lagged") else {
            // The server telling us we fell behind and skipped events: re-read what we show.
            if self.json {
                self.print(compact(&value));
            }
            self.resync().await;
            return Ok(None);
        };
        if self.json {
            self.print(compact(&value));
        } else if self.ui.is_none() {
            let line = event.line();
            self.print(if self.only.is_some() {
                line
            } else {
                format!("{task} {line}")
            });
        }
        if self.ui.is_some() {
            if self.only.is_none() && !self.has_bar(&task) {
                // First sight of a task: its kind and current state make the bar's label.
                if let Ok(current) = self.client.get(&task_path(&task), &[]).await {
                    self.show_task(&current);
                }
            }
            self.update_bar(&task, event);
        }
        if event.change() == Change::Ended && self.only.is_some() {
            self.close_ui();
            return Ok(Some(view::exit_for(event.status())));
        }
        Ok(None)
    }

    fn print(&self, line: String) {
        match &self.ui {
            Some(ui) => {
                let _ = ui.multi.println(line);
            }
            None => println!("{line}"),
        }
    }

    fn has_bar(&self, task: &str) -> bool {
        self.ui
            .as_ref()
            .is_some_and(|ui| ui.bars.contains_key(task))
    }

    /// Adds (or refreshes) the bar of `task` from its JSON, and queues its open questions.
    fn show_task(&mut self, task: &Value) {
        let view = Task(task);
        let id = view.id().to_owned();
        if self.ui.is_none() {
            self.print(if self.json {
                compact(task)
            } else {
                format!("{id} {} {}", view.kind(), view.summary())
            });
            return;
        }
        let bar = self.bar(&id, view.kind());
        let (percent, message) = view.progress();
        if let Some(percent) = percent {
            bar.set_position(percent.clamp(0.0, 100.0) as u64);
        }
        bar.set_message(message.map_or_else(|| view.status().to_owned(), str::to_owned));
        for (key, request) in view.questions() {
            self.ask(Question {
                task: id.clone(),
                key,
                request,
            });
        }
    }

    fn bar(&mut self, task: &str, kind: &str) -> ProgressBar {
        let ui = self.ui.as_mut().expect("bars exist only with a terminal");
        ui.bars
            .entry(task.to_owned())
            .or_insert_with(|| {
                let bar = ui.multi.add(ProgressBar::new(100));
                bar.set_style(ui.style.clone());
                // `task_` and the first 8 hex digits tell tasks apart on one screen.
                let short: String = task.chars().take(13).collect();
                bar.set_prefix(if kind.is_empty() {
                    short
                } else {
                    format!("{short} {kind}")
                });
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn update_bar(&mut self, task: &str, event: Event<'_>) {
        let bar = self.bar(task, "");
        match event.change() {
            Change::Progress { percent, message } => {
                if let Some(percent) = percent {
                    bar.set_position(percent.clamp(0.0, 100.0) as u64);
                }
                if let Some(message) = message {
                    bar.set_message(message.to_owned());
                }
            }
            Change::Asked { key, request } => {
                bar.set_message(format!("asks `{key}`: {}", view::question_text(request)));
                self.ask(Question {
                    task: task.to_owned(),
                    key: key.to_owned(),
                    request: request.clone(),
                });
            }
            Change::Closed { key } => {
                bar.set_message(format!("`{key}` answered"));
                self.closed(task, key);
            }
            Change::Ended => {
                let line = event.line();
                // The line without its `#seq`: the status and how it ended.
                let ended = line
                    .split_once(' ')
                    .map_or(line.as_str(), |(_, rest)| rest.trim_start())
                    .to_owned();
                if event.status() == "completed" {
                    bar.finish_with_message(ended);
                } else {
                    // Left where it stopped: a failed task did not get to 100%.
                    bar.abandon_with_message(ended);
                }
                if let Some(ui) = self.ui.as_mut() {
                    let open: Vec<String> = ui
                        .queue
                        .iter()
                        .chain(&ui.active)
                        .filter(|q| q.task == task)
                        .map(|q| q.key.clone())
                        .collect();
                    for key in open {
                        self.closed(task, &key);
                    }
                }
            }
            // Most other changes (an artifact, a message for the agent) would only hide the
            // progress message; these two say something the bar should show.
            Change::Other => match event.kind() {
                "cancel_requested" => bar.set_message("cancelling…"),
                "started" => {
                    let attempt = event.0["change"]["attempt"].as_u64().unwrap_or(1);
                    if attempt > 1 {
                        bar.set_message(format!("running again (attempt {attempt})"));
                    }
                }
                _ => {}
            },
        }
    }

    /// Queues a question for a prompt (or, without a terminal to read from, says how to answer).
    fn ask(&mut self, question: Question) {
        let Some(ui) = self.ui.as_mut() else { return };
        let known = ui
            .queue
            .iter()
            .chain(&ui.active)
            .any(|q| q.task == question.task && q.key == question.key);
        if known {
            return;
        }
        if !ui.interactive {
            let _ = ui.multi.println(format!(
                "{} asks `{}`: {} (answer with: longrun tasks answer {} {} <json>)",
                question.task,
                question.key,
                view::question_text(&question.request),
                question.task,
                question.key
            ));
            return;
        }
        ui.queue.push_back(question);
        if ui.active.is_none() && ui.prompt_at.is_none() {
            ui.prompt_at = Some(Instant::now() + PROMPT_DELAY);
        }
    }

    /// A question was answered (here or elsewhere) or timed out: forget it.
    fn closed(&mut self, task: &str, key: &str) {
        let Some(ui) = self.ui.as_mut() else { return };
        ui.queue.retain(|q| !(q.task == task && q.key == key));
        if ui
            .active
            .as_ref()
            .is_some_and(|q| q.task == task && q.key == key)
        {
            eprintln!("\n(`{key}` was answered elsewhere, or timed out)");
            ui.active = None;
            ui.multi.set_draw_target(ProgressDrawTarget::stderr());
            self.schedule_next();
        }
    }

    fn schedule_next(&mut self) {
        if let Some(ui) = self.ui.as_mut()
            && ui.active.is_none()
            && !ui.queue.is_empty()
        {
            ui.prompt_at = Some(Instant::now() + PROMPT_DELAY);
        }
    }

    /// Puts the oldest queued question on screen.
    fn prompt_next(&mut self) {
        let Some(ui) = self.ui.as_mut() else { return };
        ui.prompt_at = None;
        if ui.active.is_some() {
            return;
        }
        let Some(question) = ui.queue.pop_front() else {
            return;
        };
        if !ui.started_reader {
            ui.started_reader = true;
            ui.lines = Some(spawn_stdin_reader());
        }
        if ui.lines.is_none() {
            return; // stdin closed: nothing can be typed any more
        }
        // Hide the bars so that their redraws do not overwrite what is being typed.
        let _ = ui.multi.clear();
        ui.multi.set_draw_target(ProgressDrawTarget::hidden());
        prompt(&question);
        ui.active = Some(question);
    }

    /// A line typed at the prompt.
    async fn on_line(&mut self, line: Option<String>) {
        let Some(ui) = self.ui.as_mut() else { return };
        let Some(line) = line else {
            // Standard input closed: stop prompting, keep watching.
            ui.lines = None;
            ui.active = None;
            ui.multi.set_draw_target(ProgressDrawTarget::stderr());
            return;
        };
        let Some(question) = ui.active.clone() else {
            return;
        };
        let value = match view::parse_answer(view::answer_type(&question.request), &line) {
            Ok(value) => value,
            Err(problem) => {
                eprintln!("{problem}");
                prompt(&question);
                return;
            }
        };
        match answer(&self.client, &question.task, &question.key, &value).await {
            Ok(_) => eprintln!("answered `{}` with {}", question.key, compact(&value)),
            Err(error) => eprintln!("could not answer `{}`: {error:#}", question.key),
        }
        if let Some(ui) = self.ui.as_mut() {
            ui.active = None;
            ui.multi.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.schedule_next();
    }

    /// After the server said we fell behind: read every task we show again.
    async fn resync(&mut self) {
        let shown: Vec<String> = match &self.ui {
            Some(ui) => ui.bars.keys().cloned().collect(),
            None if self.json => return,
            None => {
                self.print("(fell behind the event stream; some events were skipped)".into());
                return;
            }
        };
        for id in shown {
            if let Ok(task) = self.client.get(&task_path(&id), &[]).await {
                self.show_task(&task);
            }
        }
    }

    fn close_ui(&mut self) {
        if let Some(ui) = &self.ui {
            for bar in ui.bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

/// Prints the prompt for `question` on stderr.
fn prompt(question: &Question) {
    let hint = match view::answer_type(&question.request) {
        Some("boolean") => "[y/n]",
        Some("string") => "(text)",
        _ => "(JSON)",
    };
    eprint!(
        "{} asks: {} {hint} ",
        question.task,
        view::question_text(&question.request)
    );
    let _ = std::io::stderr().flush();
}

/// Reads lines from standard input on a plain thread (a blocking read cannot be cancelled, and
/// a tokio blocking task would hold the runtime open at exit).
fn spawn_stdin_reader() -> mpsc::UnboundedReceiver<String> {
    let (lines, receiver) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("longrun-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        })
        .context("cannot read standard input");
    if let Err(error) = spawned {
        eprintln!("{error:#}");
    }
    receiver
}

async fn next_line(ui: Option<&mut Ui>) -> Option<String> {
    match ui.and_then(|ui| ui.lines.as_mut()) {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
