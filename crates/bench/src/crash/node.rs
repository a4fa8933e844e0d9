//! `crash-node`: the child process the crash harness kills.
//!
//! It opens the store, registers the harness's kinds, recovers, prints `ready`, and then (unless
//! `--drain`) starts tasks under a steady load until it is killed. Everything it prints is
//! something a client was told, printed only once it was told:
//!
//! - `ready <ms>`: recovery is done and the first task may be dispatched;
//! - `ack <task> <kind>`: a start returned, so the task is durably created;
//! - `ev <task> <seq> <tag>`: an event was published, so it is durable;
//! - `run <task>`: a handler of the fail-on-restart kind `once` began (counts executions);
//! - `exec <task> <key>`: the future of durable step `key` began to run (counts executions);
//! - `saved <task> <key>`: `ctx.step` returned: the step's save was acknowledged;
//! - `drained`: (with `--drain`) no task is left unfinished.
//!
//! A kill can cut the last line short; the parent ignores lines it cannot parse.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use longrun::{
    Context, KindSpec, Options, Runtime, StartOptions, TaskError,
    event::{AllNotice, Event},
    kind::RestartPolicy,
    task::{Filter, Status},
};
use serde_json::{Value, json};

use super::{KINDS, tag};
use crate::stores::{self, Location, StoreKind};

/// The child's arguments.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The store.
    #[arg(long, value_enum)]
    store: StoreKind,
    #[command(flatten)]
    location: Location,
    /// This node's name (PostgreSQL).
    #[arg(long, default_value = "node-a")]
    node: String,
    /// Start no tasks; finish the unfinished ones, print `drained` and exit.
    #[arg(long)]
    drain: bool,
    /// The PostgreSQL lease time to live, in milliseconds.
    #[arg(long, default_value_t = 6000)]
    lease_ms: u64,
    /// Test the harness: now and then, acknowledge a task that was never started. The
    /// harness must then report it lost.
    #[arg(long)]
    inject_loss: bool,
    /// Test the harness: now and then, run a durable step again after its save was
    /// acknowledged. The harness must then report it duplicated.
    #[arg(long)]
    inject_double_step: bool,
    /// Keep at most this many finished tasks (the runtime's retention cap).
    #[arg(long, default_value_t = 100_000)]
    max_finished: usize,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let began = Instant::now();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(node(args, began))
}

/// Prints one line at once: a line printed is a fact the parent may rely on.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

async fn node(args: &Args, began: Instant) -> anyhow::Result<()> {
    let lease = Duration::from_millis(args.lease_ms);
    let opened = stores::open(args.store, &args.location, &args.node, lease).await?;
    let store = opened.store.clone();
    let runtime = Runtime::new(Options {
        store: Some(opened.store),
        cluster: opened.cluster,
        renew_interval: lease / 3,
        max_finished: args.max_finished,
        ..Options::default()
    });
    register(&runtime, args.inject_double_step)?;

    // Subscribed before recovery, so the events of re-runs are reported too.
    let mut all = runtime.subscribe_all();
    tokio::spawn(async move {
        while let Some(notice) = all.next().await {
            if let AllNotice::Event(published) = notice {
                report(&published.event);
            }
        }
    });
    runtime.recover().await?;
    say(format_args!("ready {}", began.elapsed().as_millis()));
    tokio::spawn(answer_questions(runtime.clone()));

    if args.drain {
        loop {
            if store.unfinished().await?.is_empty() {
                say(format_args!("drained"));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let starters: Vec<_> = (0..4)
        .map(|_| tokio::spawn(start_tasks(runtime.clone(), args.inject_loss)))
        .collect();
    for starter in starters {
        starter.await??;
    }
    Ok(())
}

fn report(event: &Event) {
    say(format_args!(
        "ev {} {} {}",
        event.task,
        event.seq,
        tag(event)
    ));
}

/// The harness's kinds: some re-run after a crash, one fails instead, one waits on `ask`, one
/// runs durable steps.
fn register(runtime: &Runtime, inject_double_step: bool) -> anyhow::Result<()> {
    let rerun = |name: &str| KindSpec::new(name).restart(RestartPolicy::Rerun);
    runtime.register(rerun(KINDS[0]), |_ctx: Context, ms: u64| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, TaskError>(ms)
    })?;
    runtime.register(
        KindSpec::new(KINDS[1]).restart(RestartPolicy::Fail),
        |ctx: Context, ms: u64| async move {
            say(format_args!("run {}", ctx.id()));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, TaskError>(ms)
        },
    )?;
    runtime.register(rerun(KINDS[2]), |ctx: Context, _: Value| async move {
        let first = ctx
            .ask("first", json!({"type": "boolean"}), Duration::MAX)
            .await?;
        let second = ctx
            .ask("second", json!({"type": "boolean"}), Duration::MAX)
            .await?;
        Ok::<_, TaskError>(json!([first, second]))
    })?;
    runtime.register(rerun(KINDS[3]), |ctx: Context, steps: u64| async move {
        for step in 0..steps {
            ctx.progress(Some(100.0 * step as f64 / steps as f64), "step")
                .await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok::<_, TaskError>(steps)
    })?;
    runtime.register(
        rerun(KINDS[4]),
        move |ctx: Context, steps: u64| async move {
            let id = ctx.id();
            for step in 0..steps {
                ctx.step(format!("s{step}"), async move {
                    say(format_args!("exec {id} s{step}"));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok::<_, TaskError>(step)
                })
                .await?;
                say(format_args!("saved {id} s{step}"));
                if inject_double_step && fastrand::u8(..) < 16 {
                    // What the harness must catch: the step's work done again after its save.
                    say(format_args!("exec {id} s{step}"));
                }
            }
            Ok::<_, TaskError>(steps)
        },
    )?;
    Ok(())
}

/// Starts tasks of every kind back to back, with short random pauses, until killed.
async fn start_tasks(runtime: Runtime, inject_loss: bool) -> anyhow::Result<()> {
    loop {
        if inject_loss && fastrand::u8(..) < 8 {
            say(format_args!("ack {} quick", longrun::TaskId::random()));
        }
        let kind = KINDS[fastrand::usize(..KINDS.len())];
        let input = match kind {
            "quick" => json!(fastrand::u64(0..20)),
            "once" => json!(fastrand::u64(0..100)),
            "steps" => json!(fastrand::u64(1..20)),
            "journal" => json!(fastrand::u64(1..10)),
            _ => json!(null),
        };
        let started = runtime
            .start(kind, input, StartOptions::background())
            .await?;
        say(format_args!("ack {} {kind}", started.id()));
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..4000))).await;
    }
}

/// Answers every open question a little while after it was asked, as a client would.
async fn answer_questions(runtime: Runtime) {
    let waiting = Filter {
        status: vec![Status::InputRequired],
        ..Filter::default()
    };
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(page) = runtime.list(waiting.clone(), None, 1000).await else {
            continue;
        };
        for task in page.tasks {
            for key in task
                .state()
                .pending_input()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                // Refusals (answered meanwhile, or the task runs on another node) are fine.
                let _ = runtime.answer(task.id, key, json!(true)).await;
            }
        }
    }
}
