//! The process protocol: what a child writes on its stdout, read by the real session code.
//!
//! Each input is a few lines (mutated protocol messages, blank lines, a line over the length
//! limit now and then) that a real child prints: `sh` reads its start line, then `cat`s the
//! input's file. The task must end, whatever the lines: completed, failed (a `protocol_error`
//! with a message) or cancelled, within the time bound.

use std::{sync::Arc, time::Duration};

use futures_util::{FutureExt, future::BoxFuture};
use longrun::{KindSpec, Outcome, Runtime, StartOptions};
use longrun_process::{MAX_LINE_BYTES, PROCESS_FAILED, PROTOCOL_ERROR, ProcessSpec};
use serde_json::{Value, json};

use crate::{case::Input, engine::Door, mutate::Mutator};

/// Children running at once; an input waits for a free slot (its file and its kind).
const SLOTS: usize = 16;

pub(crate) struct Process {
    runtime: Runtime,
    dir: tempfile::TempDir,
    slots: Slots,
    seeds: Vec<Value>,
}

pub(crate) async fn open() -> Arc<dyn Door> {
    let runtime = Runtime::new(Default::default());
    let dir = tempfile::tempdir().expect("a temporary directory for the children's files");
    for slot in 0..SLOTS {
        let file = dir.path().join(format!("slot-{slot}"));
        let spec = ProcessSpec::new("sh")
            .arg("-c")
            .arg(r#"read -r start; exec cat "$0""#)
            .arg(file.display().to_string())
            .term_grace(Duration::from_millis(200));
        let kind = KindSpec::new(format!("slot-{slot}")).cancel_grace(Duration::from_millis(500));
        longrun_process::register(&runtime, kind, spec)
            .expect("the fuzz kinds have distinct names");
    }
    Arc::new(Process {
        runtime,
        dir,
        slots: Slots::new(SLOTS),
        seeds: seeds(),
    })
}

impl Door for Process {
    fn dictionary(&self) -> Vec<Value> {
        self.seeds.clone()
    }

    fn generate(&self, mutator: &mut Mutator) -> Input {
        let mut out = Vec::new();
        for _ in 0..mutator.rng.usize(1..7) {
            match mutator.rng.u32(0..40) {
                0 => out.extend_from_slice(b"   \t"),
                1 if mutator.one_in(10) => out.resize(out.len() + MAX_LINE_BYTES + 1, b'x'),
                _ => {
                    let mut line = mutator.pick(&self.seeds).clone();
                    if !mutator.one_in(6) {
                        mutator.json(&mut line);
                    }
                    out.extend_from_slice(line.to_string().as_bytes());
                }
            }
            out.extend_from_slice(if mutator.one_in(10) { b"\r\n" } else { b"\n" });
        }
        if mutator.one_in(5) {
            mutator.bytes(&mut out);
        }
        Input::Bytes(out)
    }

    fn run(self: Arc<Self>, input: Input) -> BoxFuture<'static, Result<(), String>> {
        async move {
            let Input::Bytes(lines) = input else {
                return Ok(());
            };
            let slot = self.slots.take().await;
            let file = self.dir.path().join(format!("slot-{}", slot.index()));
            std::fs::write(&file, &lines).map_err(|e| format!("cannot write {file:?}: {e}"))?;
            let kind = format!("slot-{}", slot.index());
            let started = self
                .runtime
                .start(&kind, json!({}), StartOptions::background())
                .await
                .map_err(|error| format!("the task did not start: {error}"))?;
            let task = self
                .runtime
                .handle(started.id())
                .wait()
                .await
                .map_err(|error| format!("the task could not be awaited: {error}"))?;
            drop(slot);
            match task.outcome() {
                // A child's own `fail` may leave `message` out; the runtime's must say why.
                Some(Outcome::Failed { error })
                    if error.message.is_empty()
                        && [PROTOCOL_ERROR, PROCESS_FAILED].contains(&error.code.as_str()) =>
                {
                    Err(format!("the task failed without a message: {error:?}"))
                }
                Some(_) => Ok(()),
                None => Err(format!("the task was left {}", task.status())),
            }
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let runtime = self.runtime.clone();
        async move {
            runtime.shutdown().await;
        }
        .boxed()
    }
}

/// Slots for children: a semaphore for how many, a free list for which.
struct Slots {
    permits: tokio::sync::Semaphore,
    free: std::sync::Mutex<Vec<usize>>,
}

/// A slot in use; back on the free list when dropped.
struct Slot<'a> {
    slots: &'a Slots,
    index: usize,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Slots {
    fn new(count: usize) -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(count),
            free: std::sync::Mutex::new((0..count).collect()),
        }
    }

    async fn take(&self) -> Slot<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let index = self
            .free
            .lock()
            .map(|mut free| free.pop())
            .ok()
            .flatten()
            .expect("a permit means a free slot");
        Slot {
            slots: self,
            index,
            _permit: permit,
        }
    }
}

impl Slot<'_> {
    fn index(&self) -> usize {
        self.index
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut free) = self.slots.free.lock() {
            free.push(self.index);
        }
    }
}

/// The protocol's lines, as `docs/process-protocol.md` and the crate's tests write them.
fn seeds() -> Vec<Value> {
    vec![
        json!({"type": "progress", "percent": 50, "message": "half"}),
        json!({"type": "progress", "percent": 0.0, "message": "2 s left"}),
        json!({"type": "progress"}),
        json!({"type": "progress", "percent": 150}),
        json!({"type": "artifact", "id": "out", "name": "output", "parts": ["chunk-0"],
               "append": false, "last_chunk": false}),
        json!({"type": "artifact", "id": "out", "parts": [{"file": {"url": "https://x/y"}}],
               "append": true, "last_chunk": true}),
        json!({"type": "ask", "key": "confirm", "request": {"type": "boolean",
               "message": "Continue?"}, "timeout_ms": 50}),
        json!({"type": "ask", "key": "name", "request": {"message": "Who is there?"}}),
        json!({"type": "message", "text": "hello, agent", "trigger": true}),
        json!({"type": "complete", "output": {"seconds": 2, "confirmed": true}}),
        json!({"type": "complete"}),
        json!({"type": "fail", "code": "boom", "message": "it broke", "details": {"at": 1}}),
        json!({"type": "fail"}),
        json!({"type": "cancelled", "message": "nothing to do"}),
        json!({"type": "dance"}),
    ]
}
