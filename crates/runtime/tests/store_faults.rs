//! A store that fails for a while (a full disk, a lost database): a task whose write fails is
//! given up, and taken up again by the same runtime, without a restart, once the store works.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use longrun_core::store::{
    Ack, BoxFuture, Error, EventLog, InboxStore, NewInboxItem, Page, Purge, Query, Retention,
    TaskStore,
};
use longrun_core::{Event, Task, inbox::InboxItem};
use longrun_runtime::{
    Context, KindSpec, Options, Outcome, RestartPolicy, Runtime, Seq, Session, StartOptions,
    TaskError, TaskId,
};
use longrun_store_memory::MemoryStore;
use serde_json::json;

/// A memory store whose writes fail while `failing` is set; reads always work, as on a full
/// disk.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    failing: AtomicBool,
}

impl Flaky {
    fn refuse(&self) -> Option<Ack> {
        self.failing
            .load(Ordering::Acquire)
            .then(|| Ack::ready(Err(Error::Backend("no space left on device".into()))))
    }
}

impl TaskStore for Flaky {
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack {
        self.refuse()
            .unwrap_or_else(|| self.inner.create(task, first))
    }
    fn append(&self, events: &[Arc<Event>]) -> Ack {
        self.refuse().unwrap_or_else(|| self.inner.append(events))
    }
    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack {
        self.refuse()
            .unwrap_or_else(|| self.inner.append_with_inbox(events, item))
    }
    fn get(&self, id: TaskId) -> BoxFuture<'_, Result<Option<Task>, Error>> {
        self.inner.get(id)
    }
    fn list(&self, query: &Query) -> BoxFuture<'_, Result<Page, Error>> {
        self.inner.list(query)
    }
    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        self.inner.unfinished()
    }
}

impl EventLog for Flaky {
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>> {
        self.inner.read(task, after, limit)
    }
}

impl InboxStore for Flaky {
    fn push(&self, item: NewInboxItem) -> Ack {
        self.refuse().unwrap_or_else(|| self.inner.push(item))
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

impl Retention for Flaky {
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>> {
        self.inner.purge(purge)
    }
}

/// Reports progress every 20 ms for `input` steps; returns its attempt.
fn stepping(rt: &Runtime) {
    rt.register(
        KindSpec::new("stepping").restart(RestartPolicy::Rerun),
        |ctx: Context, steps: u32| async move {
            for step in 0..steps {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ctx.progress(f64::from(step + 1) * 100.0 / f64::from(steps), "step")
                    .await?;
            }
            Ok::<_, TaskError>(json!({"attempt": ctx.attempt()}))
        },
    )
    .unwrap();
}

/// Polls the store (not the runtime) until `done` holds of the task; a hang guard fails the
/// test after about ten seconds.
async fn until(store: &Flaky, id: TaskId, what: &str, done: impl Fn(&Task) -> bool) -> Task {
    for _ in 0..1000 {
        if let Some(task) = store.get(id).await.unwrap()
            && done(&task)
        {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} never {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_given_up_on_a_failed_write_is_taken_up_again_once_the_store_works() {
    let store = Arc::new(Flaky::default());
    let rt = Runtime::new(Options {
        store: Some(store.clone()),
        ..Options::default()
    });
    stepping(&rt);
    let id = rt
        .start("stepping", 50, StartOptions::default())
        .await
        .unwrap()
        .id();
    until(&store, id, "made progress", |task| {
        task.last_seq() > Seq::FIRST
    })
    .await;

    // The fault: the next progress fails, and the task is given up on this node.
    store.failing.store(true, Ordering::Release);
    let refused = rt.start("stepping", 1, StartOptions::default()).await;
    assert!(refused.is_err(), "a start acknowledged during the fault");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = store.get(id).await.unwrap().unwrap();
    assert!(
        during.outcome().is_none(),
        "ended during the fault: {during:?}"
    );

    // The fault clears: the same runtime takes the task up again (a second attempt), and it
    // ends.
    store.failing.store(false, Ordering::Release);
    let ended = until(&store, id, "ended", |task| task.outcome().is_some()).await;
    assert_eq!(
        ended.outcome(),
        Some(&Outcome::Completed {
            output: json!({"attempt": 2})
        }),
        "{ended:?}"
    );
    rt.shutdown().await;
}
