//! Checks of [`EventLog`](longrun_core::store::EventLog): reading a task's log.

use std::sync::Arc;

use longrun_core::{Seq, TaskId, store::Store};

use crate::support::{ALL, Local, new_task, progress, started};

/// `read` gives the events after a sequence number, in order, at most `limit`, of that task
/// only; past the end, and for a task that is not stored, it gives nothing.
pub async fn read_after_seq_in_order_with_limit(store: Arc<dyn Store>) {
    let store = &*store;
    let mut local = Local::create(store, new_task(0)).await;
    let mut other = Local::create(store, new_task(0)).await;
    local.step(store, 1, started()).await;
    other.step(store, 1, started()).await;
    for n in 0..5 {
        local
            .step(store, 2 + n, progress(10.0 * n as f64, "step"))
            .await;
        other.step(store, 2 + n, progress(1.0, "other")).await;
    }
    let all = &local.events;
    assert_eq!(all.len(), 7);

    let read = async |after: u64, limit: usize| {
        store
            .read(local.id(), Seq::from_u64(after), limit)
            .await
            .expect("read")
    };
    assert_eq!(read(0, ALL).await, *all);
    assert_eq!(read(0, 3).await, all[..3]);
    assert_eq!(read(2, 2).await, all[2..4]);
    assert_eq!(read(5, ALL).await, all[5..]);
    assert_eq!(read(6, ALL).await, all[6..]);
    assert!(
        read(7, ALL).await.is_empty(),
        "nothing after the last event"
    );
    assert!(read(100, ALL).await.is_empty(), "nothing far past the end");
    assert!(read(0, 0).await.is_empty(), "a limit of zero reads nothing");

    let unknown = store
        .read(TaskId::random(), Seq::ZERO, ALL)
        .await
        .expect("reading a task that is not stored is not an error");
    assert!(unknown.is_empty());
}
