//! The longrun side of the `runtime` benchmark.
//!
//! Each function runs inside a fresh multi-thread tokio runtime with 2 workers, built by the
//! caller, and builds its own [`Runtime`] (with the default in-memory store) inside, so that
//! its cost is part of the figure.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use longrun::{
    Context, KindSpec, Options, Runtime, StartOptions, TaskError,
    event::{AllNotice, Change, Notice, Seq},
};
use tokio::{sync::Notify, time::Instant};

fn noop_runtime(options: Options) -> Runtime {
    let runtime = Runtime::new(options);
    runtime
        .register(KindSpec::new("noop"), |_ctx: Context, _: ()| async {
            Ok::<_, TaskError>(())
        })
        .expect("a fresh runtime has no kinds");
    runtime
}

/// (a) Starts `n` trivial background tasks and returns the time from just before the first
/// start until the `n`-th terminal event was observed by a subscriber to every task's events.
pub(crate) async fn longrun_throughput(n: usize) -> Duration {
    // The consumer must see every terminal event, so its buffer holds a whole run's events
    // (three per task); with a smaller one it would be told it lagged, which is correct
    // behaviour but would make the count meaningless.
    let runtime = noop_runtime(Options {
        all_subscriber_buffer: (3 * n).next_power_of_two(),
        max_finished: n,
        ..Options::default()
    });
    let mut all = runtime.subscribe_all();
    let began = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut ended = 0;
        while ended < n {
            match all.next().await.expect("the runtime outlives the consumer") {
                AllNotice::Event(published) if published.event.is_terminal() => ended += 1,
                AllNotice::Event(_) => {}
                AllNotice::Lagged { missed } => panic!("the consumer lagged by {missed} events"),
            }
        }
    });
    for _ in 0..n {
        runtime
            .start("noop", (), StartOptions::background())
            .await
            .expect("start");
    }
    consumer.await.expect("consumer");
    began.elapsed()
}

/// (b) Runs `n` tasks concurrently that each sleep `sleep`, and returns once all are terminal.
pub(crate) async fn longrun_inflight(n: usize, sleep: Duration) {
    let runtime = Runtime::new(Options {
        max_finished: n,
        ..Options::default()
    });
    runtime
        .register(
            KindSpec::new("sleep"),
            move |_ctx: Context, _: ()| async move {
                tokio::time::sleep(sleep).await;
                Ok::<_, TaskError>(())
            },
        )
        .expect("a fresh runtime has no kinds");
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let started = runtime
            .start("sleep", (), StartOptions::background())
            .await
            .expect("start");
        handles.push(started.handle().expect("background tasks run"));
    }
    for handle in handles {
        handle.wait().await.expect("wait");
    }
}

/// (c) One task emits `events` progress events to `subscribers` subscribers; returns one
/// latency per (event, subscriber), from just before `ctx.progress` to the subscriber's
/// receipt. The next event is emitted only after every subscriber got the previous one, so
/// the figure is delivery latency, not queueing.
pub(crate) async fn longrun_fanout(events: usize, subscribers: usize) -> Vec<Duration> {
    struct Shared {
        base: Instant,
        /// Nanoseconds after `base` at which event `i` was emitted.
        emitted: Vec<AtomicU64>,
        received: AtomicUsize,
        all_received: Notify,
        go: Notify,
    }
    let shared = Arc::new(Shared {
        base: Instant::now(),
        emitted: (0..events).map(|_| AtomicU64::new(0)).collect(),
        received: AtomicUsize::new(0),
        all_received: Notify::new(),
        go: Notify::new(),
    });

    let runtime = Runtime::new(Options {
        subscriber_buffer: events.max(1),
        ..Options::default()
    });
    let emitter = shared.clone();
    runtime
        .register(KindSpec::new("emit"), move |ctx: Context, _: ()| {
            let shared = emitter.clone();
            async move {
                shared.go.notified().await;
                for i in 0..events {
                    let waiting = shared.all_received.notified();
                    let mut waiting = std::pin::pin!(waiting);
                    waiting.as_mut().enable();
                    let at = shared.base.elapsed().as_nanos() as u64;
                    shared.emitted[i].store(at, Ordering::Release);
                    ctx.progress(None, i.to_string()).await?;
                    waiting.await;
                }
                Ok::<_, TaskError>(())
            }
        })
        .expect("a fresh runtime has no kinds");
    let id = runtime
        .start("emit", (), StartOptions::background())
        .await
        .expect("start")
        .id();

    let mut receivers = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let mut subscription = runtime.subscribe(id, Seq::ZERO).await.expect("subscribe");
        let shared = shared.clone();
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events);
            while let Some(notice) = subscription.next().await.expect("subscription") {
                let Notice::Event(event) = notice else {
                    panic!("a fan-out subscriber lagged")
                };
                let Change::Progress(progress) = &event.change else {
                    continue;
                };
                let now = shared.base.elapsed().as_nanos() as u64;
                let i: usize = progress
                    .message
                    .as_deref()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
                let emitted = shared.emitted[i].load(Ordering::Acquire);
                latencies.push(Duration::from_nanos(now.saturating_sub(emitted)));
                if shared.received.fetch_add(1, Ordering::AcqRel) + 1 == subscribers * (i + 1) {
                    shared.all_received.notify_one();
                }
            }
            latencies
        }));
    }
    // Let every subscriber reach the live stream before the first event.
    tokio::time::sleep(Duration::from_millis(50)).await;
    shared.go.notify_one();

    let mut latencies = Vec::with_capacity(events * subscribers);
    for receiver in receivers {
        latencies.extend(receiver.await.expect("subscriber"));
    }
    latencies
}

/// (d) Returns `(start_bytes, after_bytes)`: live heap bytes before the runtime exists, and
/// after `n` trivial tasks ran and everything about them expired, with the runtime alive.
pub(crate) async fn longrun_retention(n: usize) -> (usize, usize) {
    let start = crate::alloc::live_heap_bytes();
    let ttl = Duration::from_millis(200);
    let sweep_interval = Duration::from_millis(100);
    let runtime = noop_runtime(Options {
        sweep_interval,
        ..Options::default()
    });
    let mut handles = Vec::with_capacity(1024);
    for i in 0..n {
        let started = runtime
            .start("noop", (), StartOptions::background().ttl(ttl))
            .await
            .expect("start");
        handles.push(started.handle().expect("background tasks run"));
        // Wait in batches so the run does not hold every handle at once.
        if handles.len() == 1024 || i + 1 == n {
            for handle in handles.drain(..) {
                handle.wait().await.expect("wait");
            }
        }
    }
    drop(handles);
    // Past the ttl, then two sweeps.
    tokio::time::sleep(ttl + 3 * sweep_interval).await;
    assert_eq!(runtime.running(), 0);
    let after = crate::alloc::live_heap_bytes();
    drop(runtime);
    (start, after)
}
