//! A process handler on a slow store: its outcome is read even when the durable writes of its
//! progress lines take longer than `term_grace` after the child exited.
//!
//! The session awaits each progress line's write before reading the next line, so on a slow
//! store the child can exit, and its give-up timer come due, while its last lines (the outcome
//! among them) still wait in the pipe. The outcome must not be dropped then.

#![allow(
    clippy::disallowed_methods,
    reason = "test code may sleep in real time: the slow store's delay is the point"
)]

use std::{sync::Arc, time::Duration};

use longrun::{
    KindSpec, Options, Outcome, Runtime, StartOptions, Task, TaskId,
    event::{Event, Seq},
    inbox::InboxItem,
    store::{
        Ack, BoxFuture, Error, EventLog, InboxStore, MemoryStore, NewInboxItem, Purge, Query,
        Retention, TaskStore,
    },
    task::Session,
};
use longrun_process::ProcessSpec;
use serde_json::json;

/// A memory store whose event appends each take `DELAY` to become durable.
#[derive(Default)]
struct Slow {
    inner: MemoryStore,
}

const DELAY: Duration = Duration::from_millis(40);

impl TaskStore for Slow {
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack {
        self.inner.create(task, first)
    }
    fn append(&self, events: &[Arc<Event>]) -> Ack {
        let written = self.inner.append(events);
        Ack::pending(async move {
            tokio::time::sleep(DELAY).await;
            written.await
        })
    }
    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack {
        let written = self.inner.append_with_inbox(events, item);
        Ack::pending(async move {
            tokio::time::sleep(DELAY).await;
            written.await
        })
    }
    fn get(&self, id: TaskId) -> BoxFuture<'_, Result<Option<Task>, Error>> {
        self.inner.get(id)
    }
    fn list(&self, query: &Query) -> BoxFuture<'_, Result<longrun::task::Page, Error>> {
        self.inner.list(query)
    }
    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        self.inner.unfinished()
    }
}

impl EventLog for Slow {
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>> {
        self.inner.read(task, after, limit)
    }
}

impl InboxStore for Slow {
    fn push(&self, item: NewInboxItem) -> Ack {
        self.inner.push(item)
    }
    fn peek(
        &self,
        session: &Session,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<InboxItem>, Error>> {
        self.inner.peek(session, after, limit)
    }
    fn acknowledge(&self, session: &Session, through: u64) -> BoxFuture<'_, Result<usize, Error>> {
        self.inner.acknowledge(session, through)
    }
}

impl Retention for Slow {
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>> {
        self.inner.purge(purge)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outcome_is_read_when_progress_writes_outlast_term_grace() {
    let runtime = Runtime::new(Options {
        store: Some(Arc::new(Slow::default())),
        ..Options::default()
    });
    // Twenty progress lines and the outcome, all written at once; then the child exits. Their
    // writes take 20 × 40 ms, far beyond the 50 ms the session waits for the pipes after the
    // exit.
    let script = r#"read start
i=1
while [ $i -le 20 ]; do
  printf '{"type":"progress","percent":%d,"message":"step"}\n' $((i * 5))
  i=$((i + 1))
done
printf '{"type":"complete","output":{"done":true}}\n'"#;
    let spec = ProcessSpec::new("sh")
        .arg("-c")
        .arg(script)
        .term_grace(Duration::from_millis(50));
    longrun_process::register(&runtime, KindSpec::new("chatty"), spec).unwrap();
    let handle = runtime
        .start("chatty", json!(null), StartOptions::background())
        .await
        .unwrap()
        .handle()
        .expect("a background start returns a handle");
    let task = tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .expect("the task never ended")
        .unwrap();
    match task.outcome() {
        Some(Outcome::Completed { output }) => assert_eq!(output, &json!({"done": true})),
        other => panic!("the outcome was lost: {other:?}"),
    }
}
