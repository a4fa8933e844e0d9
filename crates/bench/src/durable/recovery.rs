//! SQLite: restart after SIGKILL with many tasks stored, to the first task dispatched.

use std::{sync::Arc, time::Duration};

use longrun::{
    Outcome, TaskId,
    event::{Change, Event, Seq},
    store::{NewTask, TaskStore as _},
    task::Status,
    time::Timestamp,
};
use longrun_store_sqlite::SqliteStore;

use super::raw;
use crate::{
    crash::{Ledger, Node},
    stats,
    stores::{Location, StoreKind},
};

/// Restarts after a kill; the median is reported (the first start, after a clean seeding,
/// does not count).
const RESTARTS: usize = 5;
/// Unfinished tasks among the stored ones: what the restarted node takes up.
const UNFINISHED: usize = 100;
/// How long a node runs under load before it is killed.
const RUN_BEFORE_KILL: Duration = Duration::from_millis(500);

pub(crate) struct Figures {
    pub(crate) recovery_ms: f64,
    pub(crate) raw_open_ms: f64,
}

pub(crate) fn measure(tokio: &tokio::runtime::Runtime, stored: usize) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!("longrun-recovery-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("longrun.db");
    eprintln!("durable: storing {stored} tasks for the recovery scenario");
    tokio.block_on(seed(&path, stored))?;
    let location = Location {
        path: Some(path.clone()),
        postgres: None,
        schema: None,
    };
    // Keep every stored task: the retention cap would otherwise purge most of them.
    let extra = ["--max-finished".to_owned(), (stored * 2).to_string()];
    let mut ledger = Ledger::default();
    let mut restarts = Vec::new();
    for restart in 0..=RESTARTS {
        let mut node = Node::spawn_with(StoreKind::Sqlite, &location, "node", &extra)?;
        let ready = node.wait_ready(&mut ledger)?;
        if restart > 0 {
            restarts.push(Duration::from_millis(ready));
        }
        node.collect_for(RUN_BEFORE_KILL, &mut ledger);
        node.kill(&mut ledger)?;
    }
    let mut opens = Vec::new();
    for _ in 0..3 {
        opens.push(Duration::from_secs_f64(
            raw::sqlite_open_and_count(&path, "tasks")? / 1000.0,
        ));
    }
    std::fs::remove_dir_all(&dir)?;
    eprintln!("durable: restarts after SIGKILL took {restarts:?}");
    Ok(Figures {
        recovery_ms: stats::median(&restarts).as_secs_f64() * 1000.0,
        raw_open_ms: stats::median(&opens).as_secs_f64() * 1000.0,
    })
}

/// Stores `count` tasks of the harness's `quick` kind through the store itself: all but
/// [`UNFINISHED`] of them completed.
async fn seed(path: &std::path::Path, count: usize) -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::open(path)?);
    let mut acks = Vec::new();
    for n in 0..count {
        let (task, first) = longrun::Task::create(NewTask {
            id: TaskId::random(),
            kind: "quick".to_owned(),
            owner: Default::default(),
            session: None,
            input: serde_json::json!(1),
            labels: Default::default(),
            ttl: Duration::from_secs(30 * 24 * 3600),
            deadline: None,
            created_at: Timestamp::from_millis(n as u64 + 1),
            idempotency_key: None,
            start_at: None,
        });
        acks.push(store.create(&task, &Arc::new(first)));
        if n >= UNFINISHED {
            let at = task.created_at;
            let started = Event {
                task: task.id,
                seq: Seq::from_u64(2),
                at,
                status: Status::Working,
                change: Change::Started { attempt: 1 },
            };
            let ended = Event {
                task: task.id,
                seq: Seq::from_u64(3),
                at,
                status: Status::Completed,
                change: Change::Ended(Outcome::Completed {
                    output: serde_json::json!(1),
                }),
            };
            acks.push(store.append(&[Arc::new(started), Arc::new(ended)]));
        }
        if acks.len() >= 4096 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok(())
}
