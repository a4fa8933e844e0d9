//! The soak's load: mixed operations, the agent's inbox turns, the beacons and their
//! subscribers, against one node or several (each operation on a node in turn; its answer or
//! cancel on the next one, so on two PostgreSQL nodes every signal crosses to the node that
//! runs the task).

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use reqwest::Client;
use serde_json::{Value, json};

use super::Shared;
use crate::http::server::unix_nanos;

/// The nodes' base URLs, taken in turn.
#[derive(Clone)]
pub(super) struct Nodes(pub(super) Arc<[String]>);

impl Nodes {
    /// The `n`th node, round robin.
    pub(super) fn pick(&self, n: u64) -> &str {
        &self.0[(n % self.0.len() as u64) as usize]
    }
}

/// Creates a task of `kind` (30 s ttl) and returns its id; the request's time is a sample.
pub(super) async fn create(
    client: &Client,
    base: &str,
    kind: &str,
    shared: &Shared,
) -> anyhow::Result<String> {
    let began = Instant::now();
    let response = client
        .post(format!("{base}/v1/tasks"))
        .json(&json!({"kind": kind, "input": null, "ttl_ms": 30_000, "session": "soak"}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    shared.window.lock().create.push(began.elapsed());
    if !status.is_success() {
        bail!("creating a {kind} task: {status} {body}");
    }
    body["id"]
        .as_str()
        .map(str::to_owned)
        .context("the created task has no id")
}

/// Starts one operation every `1 / rate` seconds, each on its own task.
pub(super) async fn mixed_load(client: Client, nodes: Nodes, rate: u64, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        let (client, shared) = (client.clone(), shared.clone());
        let (home, next) = (nodes.pick(n).to_owned(), nodes.pick(n + 1).to_owned());
        tokio::spawn(async move {
            let result = operation(n % 5, &client, (&home, &next), &shared).await;
            if shared.stopping.load(Ordering::Relaxed) {
                return;
            }
            let counter = if result.is_ok() {
                &shared.ops
            } else {
                &shared.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = result {
                eprintln!("soak: operation {} failed: {error:#}", n % 5);
            }
        });
    }
}

/// One mixed operation: quick, ask + answer, slow + cancel, process handler, quick + follow.
/// The task is started on `home`; its answer, cancel or stream goes to `next`.
async fn operation(
    which: u64,
    client: &Client,
    (home, next): (&str, &str),
    shared: &Shared,
) -> anyhow::Result<()> {
    let base = home;
    match which {
        0 => create(client, base, "quick", shared).await.map(drop),
        1 => {
            let id = create(client, base, "ask", shared).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let url = format!("{next}/v1/tasks/{id}/answers/confirm");
            let response = client.post(url).json(&json!({"go": true})).send().await?;
            check(response, "answering").await
        }
        2 => {
            let id = create(client, base, "slow", shared).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let response = client
                .post(format!("{next}/v1/tasks/{id}/cancel"))
                .send()
                .await?;
            check(response, "cancelling").await
        }
        3 => create(client, base, "proc", shared).await.map(drop),
        _ => {
            let id = create(client, base, "quick", shared).await?;
            let response = client
                .get(format!("{next}/v1/tasks/{id}/events"))
                .send()
                .await?;
            let response = response.error_for_status()?;
            // The stream ends when the task has ended; reading it to the end is the check.
            let mut body = response.bytes_stream();
            let mut ended = false;
            while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), body.next())
                .await
                .context("a task's stream stalled for 30 s")?
            {
                ended |= String::from_utf8_lossy(&chunk?).contains("\"completed\"");
            }
            if !ended {
                bail!("task {id}'s stream ended without its completion");
            }
            Ok(())
        }
    }
}

/// The agent's turns: drain the session's inbox once a second, acknowledging the last drain,
/// on each node in turn.
pub(super) async fn agent(client: Client, nodes: Nodes, shared: Arc<Shared>) {
    let mut through = Value::Null;
    for turn in 0u64.. {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let url = format!("{}/v1/sessions/soak/inbox:drain", nodes.pick(turn));
        let drained = async {
            let response = client
                .post(&url)
                .json(&json!({"ack": through, "max": 1000}))
                .send()
                .await?
                .error_for_status()?;
            anyhow::Ok(response.json::<Value>().await?)
        }
        .await;
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        match drained {
            Ok(body) => through = body["through"].clone(),
            Err(error) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: draining the inbox failed: {error:#}");
            }
        }
    }
}

async fn check(response: reqwest::Response, what: &str) -> anyhow::Result<()> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    bail!(
        "{what}: {status} {}",
        response.text().await.unwrap_or_default()
    )
}

/// Keeps a slot's beacon going: once its beacon has completed, starts the next one.
pub(super) async fn renew_beacon(
    client: Client,
    base: String,
    slot: Arc<Mutex<String>>,
    shared: Arc<Shared>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let id = slot.lock().clone();
        let ended = async {
            let task: Value = client
                .get(format!("{base}/v1/tasks/{id}"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(task["status"] == "completed")
        }
        .await;
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        match ended {
            Ok(false) => {}
            Ok(true) => match create(&client, &base, "beacon", &shared).await {
                Ok(next) => *slot.lock() = next,
                Err(error) => {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("soak: starting a beacon failed: {error:#}");
                }
            },
            Err(error) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: reading a beacon failed: {error:#}");
            }
        }
    }
}

/// One subscriber: follows its slot's beacon, samples the delivery time of every event emitted
/// while it was connected, and follows the next beacon when the stream ends.
pub(super) async fn subscribe(
    client: Client,
    base: String,
    slot: Arc<Mutex<String>>,
    shared: Arc<Shared>,
) {
    let mut followed = String::new();
    loop {
        let id = slot.lock().clone();
        if id == followed {
            // The slot has not moved on yet.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let url = format!("{base}/v1/tasks/{id}/events");
        followed = id;
        if let Ok(response) = client.get(&url).send().await {
            let connected = unix_nanos();
            let mut body = response.bytes_stream();
            let mut pending = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let arrived = unix_nanos();
                pending.push_str(&String::from_utf8_lossy(&chunk));
                let Some(last_newline) = pending.rfind('\n') else {
                    continue;
                };
                let complete: String = pending.drain(..=last_newline).collect();
                let mut window = shared.window.lock();
                for stamp in complete.split("emit:").skip(1) {
                    let digits: String = stamp.chars().take_while(char::is_ascii_digit).collect();
                    match digits.parse::<u64>() {
                        // Emitted before this subscriber was there: the log replayed, not a
                        // delivery.
                        Ok(emitted) if emitted < connected => {}
                        Ok(emitted) => window
                            .delivery
                            .push(Duration::from_nanos(arrived.saturating_sub(emitted))),
                        Err(_) => {}
                    }
                }
            }
        }
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}
