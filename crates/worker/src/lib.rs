//! `longrun-worker`: serve kinds of a central `longrun serve` from any Rust program, over the
//! [worker protocol] (HTTP requests and one Server-Sent Events stream). It is the protocol's
//! reference client.
//!
//! A [`Worker`] registers its kinds and capacity, keeps itself alive with a heartbeat, and
//! runs each task the server assigns with the kind's [`Handler`]: an
//! `async fn(Job, Value) -> Result<Value, Failure>`. The [`Job`] reports progress and
//! artifacts, asks questions, runs durable steps and sleeps (a task re-run on another worker
//! skips the steps already saved), messages the agent, and says when the task is cancelled.
//!
//! ```no_run
//! use std::time::Duration;
//! use longrun_worker::{Artifact, Failure, Job, Worker};
//! use serde_json::{Value, json};
//! use tokio_util::sync::CancellationToken;
//!
//! async fn research(job: Job, input: Value) -> Result<Value, Failure> {
//!     let topic = input["topic"].as_str().unwrap_or("tides").to_owned();
//!     job.progress(Some(10), Some("searching")).await?;
//!     let sources: Vec<String> = job
//!         .step("search", async { vec![format!("{topic}: a"), format!("{topic}: b")] })
//!         .await?;
//!     let go_on = job
//!         .ask("ok", json!({"message": "Go on?", "type": "boolean"}), Some(Duration::from_secs(600)))
//!         .await?;
//!     if go_on != json!(true) {
//!         return Err(Failure::cancelled_with("the user said no"));
//!     }
//!     job.artifact(Artifact::new("report", vec![json!(sources.join("\n"))]).last_chunk(true))
//!         .await?;
//!     Ok(json!({"sources": sources.len()}))
//! }
//!
//! # async fn run() -> Result<(), longrun_worker::Error> {
//! let shutdown = CancellationToken::new();
//! Worker::builder("http://127.0.0.1:8080")
//!     .token("research-worker-secret")
//!     .name("gpu-box-1")
//!     .capacity(8)
//!     .kind("research", research)
//!     .run(shutdown)
//!     .await
//! # }
//! ```
//!
//! # What it does for you
//!
//! - **Heartbeat** every `heartbeat_ms` (the server says how often); a task the heartbeat does
//!   not list any more is stopped.
//! - **The event stream** is opened again when it breaks, with `Last-Event-ID` so that no event
//!   is lost, waiting 50 ms, then twice as long after each failure (up to 5 s).
//! - **Registering again** when the server answers `404 unknown_worker` (it expired this worker
//!   or restarted); the tasks it held are gone and their handlers are stopped.
//! - **Fencing**: a `revoke` event, or `409 assignment_gone` to a report, stops the task's
//!   handler at once and nothing more is reported for it.
//! - **Order**: the reports of one task are sent one at a time, in the order they were made.
//! - **Capacity**: at most `capacity` handlers run at once.
//! - **Graceful shutdown**: when the token given to [`Worker::run`] is cancelled, the worker
//!   drains (no new tasks), lets its running handlers finish for up to the drain timeout
//!   (30 s), hands back the rest, and leaves.
//! - **A panic** in a handler fails that task (`panicked`), not the worker.
//!
//! [worker protocol]: https://github.com/longrun-rs/longrun/blob/main/docs/worker-protocol.md

mod api;
mod assignment;
mod backoff;
mod builder;
mod error;
mod failure;
mod handler;
mod job;
mod model;
mod session;
mod sse;
mod worker;

pub use builder::Builder;
pub use error::Error;
pub use failure::Failure;
pub use handler::{Handler, HandlerFuture};
pub use job::{Artifact, Job};
pub use worker::Worker;
