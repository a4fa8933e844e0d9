//! Fail-stop in a cluster when the database goes silent: a renewal that neither succeeds nor
//! fails (packets go nowhere, the connection stays open) must not hold the node loop past its
//! leases. Once no renewal has succeeded for a whole lease, the node stops its handlers, since
//! another node may be rescuing their tasks, and releases their leases once the store answers.
//!
//! The cluster is a fake over the in-memory store whose `renew` can be made to hang for ever;
//! time is paused, so the lease's six seconds pass at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use longrun_core::{
    Claim, Cluster, Event, NodeId, Renewal, Signal, Signalled, Task,
    cluster::NoticeStream,
    inbox::InboxItem,
    store::{
        Ack, BoxFuture, Error, EventLog, InboxStore, NewInboxItem, Page, Purge, Query, Retention,
        TaskStore,
    },
};
use longrun_runtime::{KindSpec, Options, Runtime, Seq, Session, StartOptions, TaskError, TaskId};
use longrun_store_memory::MemoryStore;
use parking_lot::Mutex;
use serde_json::{Value, json};

const LEASE: Duration = Duration::from_secs(6);

/// A one-node cluster over a memory store: it never has anything to claim, and its renewals
/// hang for ever while `silent` is set.
struct Silent {
    inner: MemoryStore,
    node: NodeId,
    silent: AtomicBool,
    released: Mutex<Vec<TaskId>>,
}

impl Cluster for Silent {
    fn node(&self) -> &NodeId {
        &self.node
    }
    fn lease_ttl(&self) -> Duration {
        LEASE
    }
    fn create_held(&self, task: &Task, first: &Arc<Event>) -> Ack {
        self.inner.create(task, first)
    }
    fn claim(&self, _claim: Claim) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn renew(&self) -> BoxFuture<'_, Result<Renewal, Error>> {
        Box::pin(async {
            if self.silent.load(Ordering::Acquire) {
                std::future::pending::<()>().await;
            }
            Ok(Renewal::default())
        })
    }
    fn release(&self, tasks: &[TaskId]) -> Ack {
        self.released.lock().extend_from_slice(tasks);
        Ack::ready(Ok(()))
    }
    fn signal(&self, _task: TaskId, _signal: Signal) -> Ack {
        Ack::ready(Ok(()))
    }
    fn take_signals(&self) -> BoxFuture<'_, Result<Vec<Signalled>, Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn notices(&self) -> NoticeStream {
        Box::pin(futures_util::stream::pending())
    }
}

impl TaskStore for Silent {
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack {
        self.inner.create(task, first)
    }
    fn append(&self, events: &[Arc<Event>]) -> Ack {
        self.inner.append(events)
    }
    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack {
        self.inner.append_with_inbox(events, item)
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

impl EventLog for Silent {
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>> {
        self.inner.read(task, after, limit)
    }
}

impl InboxStore for Silent {
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

impl Retention for Silent {
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>> {
        self.inner.purge(purge)
    }
}

/// Sets its flag when dropped: the handler's future was dropped, so the handler stopped.
struct Stopped(Arc<AtomicBool>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_whose_renewals_hang_stops_its_handlers_once_its_leases_lapse() {
    let store = Arc::new(Silent {
        inner: MemoryStore::new(),
        node: NodeId::new("silent"),
        silent: AtomicBool::new(false),
        released: Mutex::default(),
    });
    let rt = Runtime::new(Options {
        store: Some(store.clone()),
        cluster: Some(store.clone()),
        renew_interval: Duration::from_secs(2),
        ..Options::default()
    });
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    rt.register(KindSpec::new("long"), move |_ctx, _input: Value| {
        let guard = Stopped(flag.clone());
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, TaskError>(json!(null))
        }
    })
    .unwrap();
    let id = rt
        .start("long", json!({}), StartOptions::default())
        .await
        .unwrap()
        .id();

    // Renewals succeed at 0, 2 and 4 s; then the database goes silent.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!stopped.load(Ordering::Acquire), "stopped while renewing");
    store.silent.store(true, Ordering::Release);

    // Just before the last successful renewal's lease runs out (4 s + 6 s), the handler runs.
    tokio::time::sleep(Duration::from_millis(4_900)).await;
    assert!(
        !stopped.load(Ordering::Acquire),
        "stopped before the leases could have lapsed"
    );
    assert!(store.released.lock().is_empty());

    // The lease has run out with renewals still hanging: the handler is stopped, nothing is
    // written for the task, and its lease is released (the fake's release answers).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        stopped.load(Ordering::Acquire),
        "the handler still runs after the node's leases lapsed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*store.released.lock(), vec![id]);
    let task = store.get(id).await.unwrap().unwrap();
    assert!(task.outcome().is_none(), "{task:?}");
}
