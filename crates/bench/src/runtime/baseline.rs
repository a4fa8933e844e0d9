//! Baselines built from plain tokio: what the same work costs with no task runtime on top.
//!
//! Every function runs inside the caller's (fresh, 2-worker) tokio runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, mpsc};

use crate::alloc;

/// (a) `tokio::spawn`s `n` trivial tasks, each sending a `Started` and a `Completed` message on
/// an unbounded mpsc channel (the tokio row of `reference/peers.md` §4.1: the least a runtime
/// that reports a task's start and end can do); a consumer task counts `n` completions.
/// Returns the time from just before the first spawn until the consumer saw the `n`-th
/// completion.
pub(crate) async fn tokio_throughput(n: usize) -> Duration {
    enum Message {
        Started(#[allow(dead_code)] usize),
        Completed(#[allow(dead_code)] usize),
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let consumer = tokio::spawn(async move {
        let mut done = 0;
        while done < n {
            match rx.recv().await {
                Some(Message::Completed(_)) => done += 1,
                Some(Message::Started(_)) => {}
                None => break,
            }
        }
        (done, Instant::now())
    });
    let start = Instant::now();
    for i in 0..n {
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Message::Started(i));
            let _ = tx.send(Message::Completed(i));
        });
    }
    drop(tx);
    let (done, end) = consumer.await.expect("the consumer task panicked");
    assert_eq!(done, n, "the channel closed before every task completed");
    end - start
}

/// (b) `tokio::spawn`s `n` tasks that each sleep `sleep`, and returns once all have finished.
///
/// Completion is counted on one shared atomic (no per-task channel message or `JoinHandle`
/// kept), so the memory in flight is the tokio task and its timer, nothing more.
pub(crate) async fn tokio_inflight(n: usize, sleep: Duration) {
    let remaining = Arc::new((AtomicUsize::new(n), Notify::new()));
    for _ in 0..n {
        let remaining = Arc::clone(&remaining);
        tokio::spawn(async move {
            tokio::time::sleep(sleep).await;
            if remaining.0.fetch_sub(1, Ordering::AcqRel) == 1 {
                remaining.1.notify_one();
            }
        });
    }
    if n > 0 {
        remaining.1.notified().await;
    }
}

/// (c) One `tokio::sync::broadcast` sender and `subscribers` receivers, each in its own task.
/// The sender, itself a spawned task (the "one task emitting"), sends `events` messages, each
/// stamped with `Instant::now()`; every receiver records `stamp.elapsed()` on receipt.
/// Returns all `events × subscribers` latencies.
///
/// Sends are paced: the next message goes out only after every receiver has acknowledged the
/// previous one (an atomic count; the last to acknowledge wakes the sender through a
/// `Notify`), so the figure is delivery latency, not time spent queued behind earlier
/// messages. Before the first send, every receiver task acknowledges once that it is running,
/// so task start-up is not counted either.
pub(crate) async fn broadcast_fanout(events: usize, subscribers: usize) -> Vec<Duration> {
    // On a worker, like every other task here, rather than on the `block_on` thread: a third
    // busy thread on a 2-core machine only adds scheduling noise to the tail.
    tokio::spawn(broadcast_fanout_inner(events, subscribers))
        .await
        .expect("the sender task panicked")
}

async fn broadcast_fanout_inner(events: usize, subscribers: usize) -> Vec<Duration> {
    if events == 0 || subscribers == 0 {
        return Vec::new();
    }
    // Capacity for every message: a receiver can never lag, whatever the scheduling.
    let (tx, _) = broadcast::channel::<Instant>(events);
    let acks = Arc::new((AtomicUsize::new(0), Notify::new()));
    let mut receivers = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let mut rx = tx.subscribe();
        let acks = Arc::clone(&acks);
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events);
            // Acknowledgement round 0 is "running"; round k + 1 is "received message k".
            ack(&acks, subscribers, 0);
            for round in 1..=events {
                let stamp = rx
                    .recv()
                    .await
                    .expect("paced broadcast cannot lag or close");
                latencies.push(stamp.elapsed());
                ack(&acks, subscribers, round);
            }
            latencies
        }));
    }
    acks.1.notified().await;
    for _ in 0..events {
        tx.send(Instant::now()).expect("every receiver is alive");
        acks.1.notified().await;
    }
    let mut all = Vec::with_capacity(events * subscribers);
    for receiver in receivers {
        all.extend(receiver.await.expect("a receiver task panicked"));
    }
    all
}

/// Acknowledges `round`; the last of the `subscribers` acknowledgements wakes the sender.
/// `notify_one` stores a permit if the sender is not yet waiting, so no wake-up is lost.
fn ack(acks: &(AtomicUsize, Notify), subscribers: usize, round: usize) {
    let total = acks.0.fetch_add(1, Ordering::AcqRel) + 1;
    if total == subscribers * (round + 1) {
        acks.1.notify_one();
    }
}

/// (d) Live heap bytes before and after running [`tokio_throughput`]`(n)` to completion, in
/// the same runtime: plain tokio keeps nothing once its tasks are done.
pub(crate) async fn tokio_retention(n: usize) -> (usize, usize) {
    let start = alloc::live_heap_bytes();
    tokio_throughput(n).await;
    (start, alloc::live_heap_bytes())
}
