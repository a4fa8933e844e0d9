//! `crash`: kill -9 a node again and again under load, then check that nothing a client was
//! told was lost or done twice.
//!
//! Each cycle starts a node ([`node`], a child process of this binary) on the same store,
//! waits until it has recovered (`ready`), lets it run a steady load of tasks for a random
//! time, and kills it with SIGKILL. The load never pauses, so kills land mid-commit as often
//! as not. Every line the child printed before dying is something a client was told: a task
//! acknowledged (its start returned), an event published, a handler run begun. After the last
//! cycle a final node drains every unfinished task, and the harness opens the store itself and
//! checks, for every task and event a client was told of:
//!
//! - **lost**: the task is missing or not terminal, or a told event is missing or different;
//! - **duplicated**: a task has two terminal events, or a task of the fail-on-restart kind
//!   `once` ran its handler twice (or has an attempt above 1), or a durable step of the kind
//!   `journal` began to run again after its save had been acknowledged to the handler (each
//!   step's executions are counted by the node's own output, outside the store).
//!
//! On PostgreSQL it then runs two nodes, kills one, and measures how long the other takes to
//! rescue the dead node's unfinished tasks (`rescue_ms`: kill → the survivor's first event for
//! the last of them).

pub(crate) mod node;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use longrun::{
    TaskId,
    event::{Change, Event, Seq},
};
use serde_json::json;

use crate::stores::{self, Location, StoreKind};

/// The harness's kinds, registered by [`node`]: `quick`, `steps` and `journal` re-run after a
/// crash, `once` fails instead (`interrupted`), `asking` waits on two questions, `journal`
/// runs durable steps.
pub(crate) const KINDS: [&str; 5] = ["quick", "once", "asking", "steps", "journal"];

/// How long a node may take to recover before the harness gives up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the final drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

/// The harness's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The store to crash.
    #[arg(long, value_enum)]
    store: StoreKind,
    /// How many kill -9 cycles.
    #[arg(long, default_value_t = 20)]
    cycles: usize,
    /// PostgreSQL URL (default: `LONGRUN_TEST_POSTGRES_URL`, else the local test database).
    #[arg(long)]
    postgres: Option<String>,
    /// Shortest time a node runs before it is killed, in milliseconds.
    #[arg(long, default_value_t = 100)]
    min_run_ms: u64,
    /// Longest time a node runs before it is killed, in milliseconds.
    #[arg(long, default_value_t = 700)]
    max_run_ms: u64,
    /// PostgreSQL lease time to live, in milliseconds (the store's default is 6,000).
    #[arg(long, default_value_t = 6000)]
    lease_ms: u64,
    /// Test the harness itself: the nodes acknowledge some tasks they never start, so the run
    /// must report them lost (and fail).
    #[arg(long)]
    inject_loss: bool,
    /// Test the harness itself: the nodes now and then run a durable step again after its save
    /// was acknowledged, so the run must report it duplicated (and fail).
    #[arg(long)]
    inject_double_step: bool,
    /// Keep the SQLite file or PostgreSQL schema afterwards, for inspection.
    #[arg(long)]
    keep: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let location = fresh_location(args)?;
    let mut ledger = Ledger::default();
    let mut recoveries = Vec::new();
    for cycle in 0..args.cycles {
        let mut node = Node::spawn(args, &location, "node-a", false)?;
        recoveries.push(node.wait_ready(&mut ledger)?);
        let run_for = Duration::from_millis(fastrand::u64(args.min_run_ms..=args.max_run_ms));
        node.collect_for(run_for, &mut ledger);
        node.kill(&mut ledger)?;
        if (cycle + 1) % 50 == 0 || cycle + 1 == args.cycles {
            eprintln!(
                "crash: {} cycles, {} tasks acknowledged",
                cycle + 1,
                ledger.acked.len()
            );
        }
    }
    let rescue = match args.store {
        StoreKind::Postgres => Some(rescue(args, &location, &mut ledger)?),
        StoreKind::Sqlite => None,
    };

    let mut drain = Node::spawn(args, &location, "node-a", true)?;
    drain.wait_ready(&mut ledger)?;
    let drained = drain.wait_for("drained", DRAIN_TIMEOUT, &mut ledger);
    drain.kill(&mut ledger)?;
    drained.context("the final node did not drain every unfinished task")?;

    let verdict = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(verify(args, &location, &ledger))?;
    if !args.keep {
        cleanup(args, &location)?;
    }

    recoveries.sort_unstable();
    let max_recovery = recoveries.last().copied().unwrap_or_default();
    let p50_recovery = recoveries
        .get(recoveries.len() / 2)
        .copied()
        .unwrap_or_default();
    println!("crash harness, store {}", args.store.name());
    println!("  cycles (kill -9)          {:>10}", args.cycles);
    println!("  tasks acknowledged        {:>10}", ledger.acked.len());
    println!("  events acknowledged       {:>10}", ledger.event_count());
    println!(
        "  handler runs of `once`    {:>10}",
        ledger.runs.values().sum::<usize>()
    );
    println!(
        "  durable steps saved       {:>10}",
        ledger
            .steps
            .values()
            .filter(|seen| seen.contains(&Step::Saved))
            .count()
    );
    println!(
        "  step executions           {:>10}",
        ledger
            .steps
            .values()
            .flatten()
            .filter(|seen| **seen == Step::Ran)
            .count()
    );
    println!("  re-runs seen (attempt>1)  {:>10}", verdict.reruns);
    println!("  ended `interrupted`       {:>10}", verdict.interrupted);
    println!(
        "  recovery p50 / max (ms)   {:>10} / {}",
        p50_recovery, max_recovery
    );
    if let Some(rescue) = &rescue {
        println!(
            "  rescue of a dead node     {:>10} ms for {} tasks",
            rescue.millis, rescue.tasks
        );
    }
    println!("  lost                      {:>10}", verdict.lost.len());
    println!(
        "  duplicated                {:>10}",
        verdict.duplicated.len()
    );
    for problem in verdict.lost.iter().chain(&verdict.duplicated).take(20) {
        println!("    {problem}");
    }
    let mut summary = json!({
        "store": args.store.name(),
        "cycles": args.cycles,
        "acknowledged": ledger.acked.len(),
        "acknowledged_events": ledger.event_count(),
        "lost": verdict.lost.len(),
        "duplicated": verdict.duplicated.len(),
        "max_recovery_ms": max_recovery,
        "p50_recovery_ms": p50_recovery,
        "reruns": verdict.reruns,
        "steps_saved": ledger.steps.values().filter(|seen| seen.contains(&Step::Saved)).count(),
        "interrupted": verdict.interrupted,
    });
    if let Some(dead) = verdict.dead_tuples {
        println!("  dead tuples at the end    {dead:>10}");
        summary["dead_tuples"] = json!(dead);
    }
    if let Some(rescue) = rescue {
        summary["rescue_ms"] = json!(rescue.millis);
        summary["rescued_tasks"] = json!(rescue.tasks);
    }
    println!("{summary}");
    if !verdict.lost.is_empty() || !verdict.duplicated.is_empty() {
        bail!("acknowledged work was lost or duplicated");
    }
    Ok(())
}

/// A short, comparable name for what an event says.
pub(crate) fn tag(event: &Event) -> String {
    match &event.change {
        Change::Submitted => "submitted".to_owned(),
        Change::Started { attempt } => format!("started.{attempt}"),
        Change::Progress(_) => "progress".to_owned(),
        Change::Artifact(_) => "artifact".to_owned(),
        Change::InputRequested { key, .. } => format!("asked.{key}"),
        Change::InputAnswered { key, .. } => format!("answered.{key}"),
        Change::InputTimedOut { key } => format!("timed_out.{key}"),
        Change::AgentMessage { .. } => "message".to_owned(),
        Change::Detached => "detached".to_owned(),
        Change::CancelRequested { .. } => "cancel_requested".to_owned(),
        Change::StepSaved { key, .. } => format!("step.{key}"),
        Change::TimerStarted { key, .. } => format!("timer.{key}"),
        Change::RetryScheduled { attempt, .. } => format!("retry.{attempt}"),
        Change::Ended(_) => format!("ended.{}", event.status),
    }
}

/// Everything the nodes told their clients.
#[derive(Default)]
pub(crate) struct Ledger {
    acked: HashMap<TaskId, String>,
    events: HashMap<TaskId, BTreeMap<Seq, String>>,
    runs: HashMap<TaskId, usize>,
    /// What the nodes said of each durable step (task, key), in the order they said it.
    steps: HashMap<(TaskId, String), Vec<Step>>,
}

/// What a node said of a durable step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Its future began to run (`exec`).
    Ran,
    /// Its save was acknowledged to the handler (`saved`).
    Saved,
}

impl Ledger {
    /// Records one line; lines it cannot parse (cut short by a kill) are ignored.
    fn record(&mut self, line: &str) {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["ack", task, kind] => {
                if let Ok(task) = task.parse() {
                    self.acked.insert(task, (*kind).to_owned());
                }
            }
            ["ev", task, seq, tag] => {
                if let (Ok(task), Ok(seq)) = (task.parse(), seq.parse::<u64>()) {
                    self.events
                        .entry(task)
                        .or_default()
                        .insert(Seq::from_u64(seq), (*tag).to_owned());
                }
            }
            ["run", task] => {
                if let Ok(task) = task.parse() {
                    *self.runs.entry(task).or_default() += 1;
                }
            }
            [said @ ("exec" | "saved"), task, key] => {
                if let Ok(task) = task.parse() {
                    let step = if *said == "exec" {
                        Step::Ran
                    } else {
                        Step::Saved
                    };
                    self.steps
                        .entry((task, (*key).to_owned()))
                        .or_default()
                        .push(step);
                }
            }
            _ => {}
        }
    }

    fn event_count(&self) -> usize {
        self.events.values().map(BTreeMap::len).sum()
    }
}

/// One node process and the lines it prints, each with when it arrived.
pub(crate) struct Node {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    spawned: Instant,
}

impl Node {
    fn spawn(args: &Args, location: &Location, name: &str, drain: bool) -> anyhow::Result<Self> {
        let mut extra = vec!["--lease-ms".to_owned(), args.lease_ms.to_string()];
        if args.inject_loss {
            extra.push("--inject-loss".to_owned());
        }
        if args.inject_double_step {
            extra.push("--inject-double-step".to_owned());
        }
        if drain {
            extra.push("--drain".to_owned());
        }
        Self::spawn_with(args.store, location, name, &extra)
    }

    /// Starts a node with `extra` arguments for `crash-node`.
    pub(crate) fn spawn_with(
        store: StoreKind,
        location: &Location,
        name: &str,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("crash-node")
            .args(["--store", store.name(), "--node", name])
            .args(extra)
            .args(location.to_args())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let spawned = Instant::now();
        let mut child = command.spawn().context("could not start a node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            lines,
            spawned,
        })
    }

    /// Waits for `ready`; returns how long recovery took from the spawn, in milliseconds.
    pub(crate) fn wait_ready(&mut self, ledger: &mut Ledger) -> anyhow::Result<u64> {
        let at = self.wait_for("ready", READY_TIMEOUT, ledger)?;
        Ok(at.duration_since(self.spawned).as_millis() as u64)
    }

    /// Records lines until one starts with `word`; returns when it arrived.
    fn wait_for(
        &mut self,
        word: &str,
        timeout: Duration,
        ledger: &mut Ledger,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("the node never printed `{word}`"))?;
            ledger.record(&line);
            if line.split(' ').next() == Some(word) {
                return Ok(at);
            }
        }
    }

    /// Records lines for `span`, calling `each` with every one.
    pub(crate) fn collect_for(&mut self, span: Duration, ledger: &mut Ledger) {
        self.collect_with(span, ledger, |_, _| {});
    }

    fn collect_with(
        &mut self,
        span: Duration,
        ledger: &mut Ledger,
        mut each: impl FnMut(Instant, &str),
    ) {
        let deadline = Instant::now() + span;
        while let Ok((at, line)) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            ledger.record(&line);
            each(at, &line);
        }
    }

    /// SIGKILL, then records whatever the node printed before it died.
    pub(crate) fn kill(mut self, ledger: &mut Ledger) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        while let Ok((_, line)) = self.lines.recv() {
            ledger.record(&line);
        }
        Ok(())
    }
}

struct Rescue {
    millis: u64,
    tasks: usize,
}

/// Two nodes run; one is killed; how long until the other has taken up its unfinished tasks?
fn rescue(args: &Args, location: &Location, ledger: &mut Ledger) -> anyhow::Result<Rescue> {
    let mut victim = Node::spawn(args, location, "node-v", false)?;
    let mut survivor = Node::spawn(args, location, "node-s", false)?;
    victim.wait_ready(ledger)?;
    survivor.wait_ready(ledger)?;
    // Let both run; record what the victim said, so its unfinished tasks are known.
    let mut victim_ledger = Ledger::default();
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        victim.collect_for(Duration::from_millis(20), &mut victim_ledger);
        survivor.collect_for(Duration::from_millis(20), ledger);
    }
    let killed = Instant::now();
    victim.kill(&mut victim_ledger)?;
    let orphans: HashSet<TaskId> = victim_ledger
        .acked
        .keys()
        .filter(|task| {
            !victim_ledger
                .events
                .get(task)
                .is_some_and(|events| events.values().any(|tag| tag.starts_with("ended")))
        })
        .copied()
        .collect();
    merge(ledger, victim_ledger);

    // Wait up to three lease lifetimes for the survivor to touch every orphan.
    let mut waiting = orphans.clone();
    let mut last = killed;
    let deadline = Duration::from_millis(3 * args.lease_ms + 5_000);
    while !waiting.is_empty() && killed.elapsed() < deadline {
        survivor.collect_with(Duration::from_millis(50), ledger, |at, line| {
            let mut words = line.split(' ');
            if words.next() == Some("ev")
                && let Some(task) = words.next().and_then(|task| task.parse().ok())
                && waiting.remove(&task)
            {
                last = at;
            }
        });
    }
    survivor.kill(ledger)?;
    // Orphans never touched had in fact ended before the kill (their last line was cut);
    // the verification below checks every one of them anyway.
    eprintln!(
        "crash: rescue took {} ms for {} of {} unfinished tasks of the killed node",
        last.duration_since(killed).as_millis(),
        orphans.len() - waiting.len(),
        orphans.len()
    );
    Ok(Rescue {
        millis: last.duration_since(killed).as_millis() as u64,
        tasks: orphans.len() - waiting.len(),
    })
}

fn merge(into: &mut Ledger, from: Ledger) {
    into.acked.extend(from.acked);
    for (task, events) in from.events {
        into.events.entry(task).or_default().extend(events);
    }
    for (task, runs) in from.runs {
        *into.runs.entry(task).or_default() += runs;
    }
    // `from` was told after `into`: its lines follow.
    for (step, seen) in from.steps {
        into.steps.entry(step).or_default().extend(seen);
    }
}

#[derive(Default)]
struct Verdict {
    lost: Vec<String>,
    duplicated: Vec<String>,
    reruns: usize,
    interrupted: usize,
    /// PostgreSQL: dead tuples in the store's tables at the end (bloat).
    dead_tuples: Option<u64>,
}

/// Opens the store and checks every task and event the nodes told a client of.
async fn verify(args: &Args, location: &Location, ledger: &Ledger) -> anyhow::Result<Verdict> {
    let lease = Duration::from_millis(args.lease_ms);
    let opened = stores::open(args.store, location, "verifier", lease).await?;
    let store = opened.store;
    let mut verdict = Verdict::default();
    if let Some(postgres) = &opened.postgres {
        verdict.dead_tuples = Some(postgres.dead_tuples().await?);
    }
    let tasks: HashSet<TaskId> = ledger
        .acked
        .keys()
        .chain(ledger.events.keys())
        .copied()
        .collect();
    for id in tasks {
        let Some(task) = store.get(id).await? else {
            verdict.lost.push(format!("{id}: missing"));
            continue;
        };
        if !task.status().is_terminal() {
            verdict.lost.push(format!("{id}: still {}", task.status()));
        }
        let mut log = BTreeMap::new();
        let mut after = Seq::ZERO;
        loop {
            let events = store.read(id, after, 1000).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            log.extend(events.iter().map(|event| (event.seq, event.clone())));
        }
        for (seq, told) in ledger.events.get(&id).into_iter().flatten() {
            match log.get(seq) {
                Some(event) if tag(event) == *told => {}
                Some(event) => verdict.lost.push(format!(
                    "{id}: event {seq} was told as {told} but is stored as {}",
                    tag(event)
                )),
                None => verdict
                    .lost
                    .push(format!("{id}: event {seq} ({told}) missing")),
            }
        }
        let ends = log.values().filter(|event| event.is_terminal()).count();
        if ends > 1 {
            verdict
                .duplicated
                .push(format!("{id}: {ends} terminal events"));
        }
        if task.attempt() > 1 {
            verdict.reruns += 1;
        }
        if task.outcome().and_then(|outcome| match outcome {
            longrun::Outcome::Failed { error } => Some(error.code.as_str()),
            _ => None,
        }) == Some(longrun::TaskError::INTERRUPTED)
        {
            verdict.interrupted += 1;
        }
        if task.kind == "once" {
            let runs = ledger.runs.get(&id).copied().unwrap_or(0);
            if runs > 1 || task.attempt() > 1 {
                verdict.duplicated.push(format!(
                    "{id}: fail-on-restart task ran {runs} times (attempt {})",
                    task.attempt()
                ));
            }
        }
    }
    for ((id, key), seen) in &ledger.steps {
        let saved_at = seen.iter().position(|step| *step == Step::Saved);
        if let Some(saved_at) = saved_at
            && seen[saved_at..].contains(&Step::Ran)
        {
            verdict.duplicated.push(format!(
                "{id}: durable step {key} ran again after its save was acknowledged"
            ));
        }
    }
    Ok(verdict)
}

/// A fresh SQLite file or PostgreSQL schema for this run.
fn fresh_location(args: &Args) -> anyhow::Result<Location> {
    let stamp = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    Ok(match args.store {
        StoreKind::Sqlite => {
            let dir = std::env::temp_dir().join(format!("longrun-crash-{stamp}"));
            std::fs::create_dir_all(&dir)?;
            Location {
                path: Some(dir.join("longrun.db")),
                postgres: None,
                schema: None,
            }
        }
        StoreKind::Postgres => Location {
            path: None,
            postgres: Some(
                args.postgres
                    .clone()
                    .unwrap_or_else(stores::default_postgres_url),
            ),
            schema: Some(format!("crash_{stamp}")),
        },
    })
}

fn cleanup(args: &Args, location: &Location) -> anyhow::Result<()> {
    match args.store {
        StoreKind::Sqlite => {
            if let Some(dir) = location.path.as_ref().and_then(|path| path.parent()) {
                std::fs::remove_dir_all(dir)?;
            }
        }
        StoreKind::Postgres => {
            let url = location
                .postgres
                .clone()
                .unwrap_or_else(stores::default_postgres_url);
            let schema = location.schema.clone().unwrap_or_default();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(stores::drop_schema(&url, &schema))?;
        }
    }
    Ok(())
}
