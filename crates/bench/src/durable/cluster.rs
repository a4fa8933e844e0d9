//! PostgreSQL across two nodes: completion → remote subscriber, cancel → remote handler, and
//! the write cost of holding many running tasks.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use longrun::{
    Context, KindSpec, Options, Runtime, StartOptions, TaskError, TaskId,
    event::{Notice, Seq},
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;

use crate::{
    stats,
    stores::{self, Location, StoreKind},
};

/// The measured figures.
pub(crate) struct Figures {
    pub(crate) notify_p50_ms: f64,
    pub(crate) notify_p99_ms: f64,
    pub(crate) cancel_p50_ms: f64,
    pub(crate) cancel_p99_ms: f64,
    pub(crate) raw_notify_p99_ms: f64,
    pub(crate) renewal_commits_per_s: f64,
    pub(crate) per_task_heartbeat_commits_per_s: f64,
}

/// When something happened to which task, shared between the nodes' handlers and listeners.
#[derive(Default)]
struct Marks {
    at: Mutex<HashMap<TaskId, Instant>>,
    changed: Notify,
}

impl Marks {
    fn mark(&self, task: TaskId) {
        self.at.lock().entry(task).or_insert_with(Instant::now);
        self.changed.notify_waiters();
    }

    async fn wait(&self, task: TaskId) -> Instant {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if let Some(at) = self.at.lock().get(&task) {
                return *at;
            }
            changed.await;
        }
    }
}

pub(crate) async fn measure(
    url: &str,
    samples: usize,
    held: usize,
    window: Duration,
) -> anyhow::Result<Figures> {
    let schema = format!("cluster_{}", std::process::id());
    let location = Location {
        path: None,
        postgres: Some(url.to_owned()),
        schema: Some(schema.clone()),
    };
    let lease = Duration::from_secs(6);
    let opened_a = stores::open(StoreKind::Postgres, &location, "node-a", lease).await?;
    let opened_b = stores::open(StoreKind::Postgres, &location, "node-b", lease).await?;
    let node = |opened: stores::Opened| {
        Runtime::new(Options {
            store: Some(opened.store),
            cluster: opened.cluster,
            all_subscriber_buffer: 1 << 20,
            ..Options::default()
        })
    };
    let (a, b) = (node(opened_a), node(opened_b));

    let cancelled = Arc::new(Marks::default());
    let marks = cancelled.clone();
    a.register(KindSpec::new("park"), move |ctx: Context, _: Value| {
        let marks = marks.clone();
        async move {
            ctx.cancelled().await;
            marks.mark(ctx.id());
            Ok::<_, TaskError>(())
        }
    })?;
    // When each handler on node A returned: the start of the completion → subscriber latency,
    // which so includes writing the end on A.
    let ended = Arc::new(Marks::default());
    let marks = ended.clone();
    a.register(KindSpec::new("done_soon"), move |ctx: Context, _: Value| {
        let marks = marks.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            marks.mark(ctx.id());
            Ok::<_, TaskError>(())
        }
    })?;

    // Completion on A → a subscriber on B.
    let mut notify = Vec::with_capacity(samples);
    for _ in 0..samples {
        let id = a
            .start("done_soon", Value::Null, StartOptions::background())
            .await?
            .id();
        let mut subscription = b.subscribe(id, Seq::ZERO).await?;
        let received = loop {
            match subscription.next().await? {
                Some(Notice::Event(event)) if event.is_terminal() => break Instant::now(),
                Some(_) => {}
                None => anyhow::bail!("the subscription ended without the end"),
            }
        };
        let returned = ended.wait(id).await;
        notify.push(received.saturating_duration_since(returned));
    }

    // Cancel on B → the handler on A sees it.
    let mut cancel = Vec::with_capacity(samples);
    for _ in 0..samples {
        let id = a
            .start("park", Value::Null, StartOptions::background())
            .await?
            .id();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let asked = Instant::now();
        let b = b.clone();
        let waiting = tokio::spawn(async move { b.cancel(id).await });
        let seen = cancelled.wait(id).await;
        cancel.push(seen.saturating_duration_since(asked));
        waiting.await??;
    }

    // The write cost of holding `held` running tasks.
    for _ in 0..held {
        a.start("park", Value::Null, StartOptions::background())
            .await?;
    }
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let xids = async || -> anyhow::Result<i64> {
        let row = client
            .query_one(
                "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
                &[],
            )
            .await?;
        Ok(row.get(0))
    };
    let before = xids().await?;
    tokio::time::sleep(window).await;
    let after = xids().await?;
    let renewal_commits_per_s = (after - before) as f64 / window.as_secs_f64();
    let renew_interval = Options::default().renew_interval;

    a.shutdown().await;
    b.shutdown().await;
    stores::drop_schema(url, &schema).await?;
    let raw = raw_notify(url, samples).await?;

    let millis = |durations: &mut Vec<Duration>, quantile: f64| {
        durations.sort_unstable();
        stats::percentile(durations, quantile).as_secs_f64() * 1000.0
    };
    Ok(Figures {
        notify_p50_ms: millis(&mut notify, 50.0),
        notify_p99_ms: millis(&mut notify, 99.0),
        cancel_p50_ms: millis(&mut cancel, 50.0),
        cancel_p99_ms: millis(&mut cancel, 99.0),
        raw_notify_p99_ms: millis(&mut raw.clone(), 99.0),
        renewal_commits_per_s,
        per_task_heartbeat_commits_per_s: held as f64 / renew_interval.as_secs_f64(),
    })
}

/// `pg_notify` on one connection → the notification on another, `samples` times.
async fn raw_notify(url: &str, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let (listener, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(_) = message {
                let _ = sender.send(Instant::now());
            }
        }
    });
    listener.batch_execute("LISTEN bench_raw").await?;
    let (notifier, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let sent = Instant::now();
        notifier
            .batch_execute("SELECT pg_notify('bench_raw', 'x')")
            .await?;
        let received = notifications
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the listener stopped"))?;
        latencies.push(received.saturating_duration_since(sent));
    }
    Ok(latencies)
}
