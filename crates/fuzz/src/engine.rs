//! The loop: make inputs, run each under a time bound with its panics caught, keep the memory
//! in sight, and turn whatever goes wrong into findings.
//!
//! Inputs run concurrently (a door answers some of them only after a wait), each in a tokio
//! task of its own, so a panic fails that input alone and is reported with it. Every
//! [`RESET_EVERY`] inputs the door's world (runtime, router, sessions) is built anew, so that
//! tasks piling up in one world do not slow the run down or hide a leak that a world keeps.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::future::BoxFuture;
use tokio::task::JoinSet;

use crate::{Finding, FindingKind, Report, Target, case::Input, mutate::Mutator};

/// A world a target's inputs run in: its runtime, router and sessions.
pub(crate) trait Door: Send + Sync + 'static {
    /// The real messages the mutator takes its words and nodes from.
    fn dictionary(&self) -> Vec<serde_json::Value>;
    /// A new input.
    fn generate(&self, mutator: &mut Mutator) -> Input;
    /// Runs `input`: `Err` says how the answer breaks the protocol.
    fn run(self: Arc<Self>, input: Input) -> BoxFuture<'static, Result<(), String>>;
    /// Ends the world: stops its runtime and streams.
    fn close(&self) -> BoxFuture<'static, ()>;
}

/// One input and how it went: `Err` with what kind of failure and what happened.
type Outcome = (Input, Result<(), (FindingKind, String)>);

/// Inputs run in one world before it is built anew.
const RESET_EVERY: u64 = 5_000;

/// How often the resident memory is checked, in inputs.
const MEMORY_EVERY: u64 = 1_000;

/// What the engine is asked to do.
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) inputs: u64,
    pub(crate) seed: u64,
    pub(crate) concurrency: usize,
    pub(crate) time_limit: Duration,
    pub(crate) memory_limit: u64,
}

/// Panic messages seen by the hook, with the location; the engine reads them.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every panic (beside the usual message on stderr), so that one in a task a door
/// spawned, which no input's result shows, is still a finding.
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut panics) = PANICS.lock() {
                panics.push(info.to_string());
            }
            previous(info);
        }));
    });
}

fn panics_seen() -> usize {
    PANICS.lock().map_or(0, |panics| panics.len())
}

/// Runs the plan with a fresh world from `open`.
pub(crate) async fn run<F>(plan: &Plan, open: F) -> Report
where
    F: Fn() -> BoxFuture<'static, Arc<dyn Door>>,
{
    install_panic_hook();
    let panics_before = panics_seen();
    let started = Instant::now();
    let mut door = open().await;
    let mut mutator = Mutator::new(plan.seed, &door.dictionary());
    let mut findings = Findings::default();
    let mut running: JoinSet<Outcome> = JoinSet::new();
    let mut attributed = 0;
    let mut peak_rss = 0;
    for n in 0..plan.inputs {
        if n > 0 && n % RESET_EVERY == 0 {
            while let Some(done) = running.join_next().await {
                attributed += findings.add(plan.target, done);
            }
            door.close().await;
            door = open().await;
        }
        if n % MEMORY_EVERY == 0 {
            let rss = rss_bytes();
            peak_rss = peak_rss.max(rss);
            if rss > plan.memory_limit {
                findings.push(Finding {
                    target: plan.target,
                    kind: FindingKind::Memory,
                    message: format!(
                        "resident memory {} MiB after {n} inputs, above the limit of {} MiB",
                        rss >> 20,
                        plan.memory_limit >> 20
                    ),
                    input: Vec::new(),
                });
                break;
            }
        }
        while running.len() >= plan.concurrency {
            if let Some(done) = running.join_next().await {
                attributed += findings.add(plan.target, done);
            }
        }
        let input = door.generate(&mut mutator);
        running.spawn(one(door.clone(), input, plan.time_limit));
    }
    while let Some(done) = running.join_next().await {
        attributed += findings.add(plan.target, done);
    }
    door.close().await;
    let elsewhere: Vec<String> = PANICS
        .lock()
        .map(|panics| panics.iter().skip(panics_before).cloned().collect())
        .unwrap_or_default();
    if elsewhere.len() > attributed {
        findings.push(Finding {
            target: plan.target,
            kind: FindingKind::Panic,
            message: format!(
                "a panic outside any request's own task (in a task a door spawned):\n{}",
                elsewhere.join("\n")
            ),
            input: Vec::new(),
        });
    }
    Report {
        target: plan.target,
        inputs: plan.inputs,
        elapsed: started.elapsed(),
        peak_rss,
        findings: findings.list,
    }
}

/// Runs one input: in a task of its own (its panic is caught there), under the time bound.
async fn one(door: Arc<dyn Door>, input: Input, limit: Duration) -> Outcome {
    let mut task = tokio::spawn(door.run(input.clone()));
    let result = match tokio::time::timeout(limit, &mut task).await {
        Err(_) => {
            task.abort();
            Err((
                FindingKind::Hang,
                format!("no answer within {} ms", limit.as_millis()),
            ))
        }
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(problem))) => Err((FindingKind::Shape, problem)),
        Ok(Err(error)) => Err((FindingKind::Panic, panic_message(error))),
    };
    (input, result)
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return format!("the input's task was cancelled: {error}");
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .map_or_else(
            || "a panic without a message".into(),
            |m| format!("panic: {m}"),
        )
}

/// Findings, one kept per distinct problem (its kind and first line, digits ignored).
#[derive(Default)]
struct Findings {
    list: Vec<Finding>,
    seen: BTreeMap<String, ()>,
}

impl Findings {
    /// Adds the result of one input; returns 1 when it was a panic of the input's own task.
    fn add(&mut self, target: Target, done: Result<Outcome, tokio::task::JoinError>) -> usize {
        let Ok((input, Err((kind, message)))) = done else {
            return 0;
        };
        let panicked = usize::from(kind == FindingKind::Panic);
        self.push(Finding {
            target,
            kind,
            message,
            input: input.encode(),
        });
        panicked
    }

    fn push(&mut self, finding: Finding) {
        let first_line = finding.message.lines().next().unwrap_or("");
        let signature: String = format!("{:?} {first_line}", finding.kind)
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(160)
            .collect();
        if self.seen.insert(signature, ()).is_none() {
            self.list.push(finding);
        }
    }
}

/// This process's resident memory, from `/proc/self/statm` (0 where there is none).
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
