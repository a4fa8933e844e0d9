//! Checks of [`InboxStore`](longrun_core::store::InboxStore): the agent inbox of each session,
//! and of [`TaskStore::append_with_inbox`](longrun_core::store::TaskStore::append_with_inbox),
//! which writes a task's events and an inbox item together.

use std::sync::Arc;

use longrun_core::{
    InboxEntry, InboxItem, Outcome, Session, TaskId,
    state::RefusalReason,
    store::{Error, NewInboxItem, Store},
};
use serde_json::json;

use crate::support::{
    ALL, Local, assert_refused, assert_stored, at, completed, event, failed, new_task, started,
};

fn message(session: &Session, text: &str, offset: u64) -> NewInboxItem {
    NewInboxItem {
        session: session.clone(),
        task: TaskId::random(),
        at: at(offset),
        entry: InboxEntry::Message {
            message: text.to_owned(),
            trigger: offset.is_multiple_of(2),
        },
    }
}

fn outcome(session: &Session, offset: u64) -> NewInboxItem {
    NewInboxItem {
        session: session.clone(),
        task: TaskId::random(),
        at: at(offset),
        entry: InboxEntry::Outcome {
            kind: "research".into(),
            outcome: Outcome::Completed {
                output: json!({"found": 3}),
            },
        },
    }
}

async fn push(store: &dyn Store, item: &NewInboxItem) {
    store.push(item.clone()).await.expect("push");
}

async fn peek(store: &dyn Store, session: &Session, after: u64, limit: usize) -> Vec<InboxItem> {
    store.peek(session, after, limit).await.expect("peek")
}

/// Asserts `items` are `pushed`, in order, in `session`, at growing positions.
fn assert_items(items: &[InboxItem], pushed: &[&NewInboxItem], session: &Session) {
    let got: Vec<_> = items
        .iter()
        .map(|item| (&item.session, item.task, item.at, &item.entry))
        .collect();
    let want: Vec<_> = pushed
        .iter()
        .map(|item| (session, item.task, item.at, &item.entry))
        .collect();
    assert_eq!(got, want);
    assert!(
        items
            .windows(2)
            .all(|pair| pair[0].position < pair[1].position),
        "positions must grow: {:?}",
        items.iter().map(|item| item.position).collect::<Vec<_>>()
    );
}

/// Items come back in the order they were pushed, each in its own session's inbox only, at
/// growing positions; `peek` starts after a position and stops at a limit, and removes nothing.
pub async fn inbox_keeps_order_per_session(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (Session::new("a"), Session::new("b"));
    let a1 = message(&a, "first", 1);
    let b1 = message(&b, "other", 2);
    let a2 = message(&a, "second", 3);
    let a3 = outcome(&a, 4);
    let b2 = outcome(&b, 5);
    for item in [&a1, &b1, &a2, &a3, &b2] {
        push(store, item).await;
    }

    let in_a = peek(store, &a, 0, ALL).await;
    assert_items(&in_a, &[&a1, &a2, &a3], &a);
    assert_items(&peek(store, &b, 0, ALL).await, &[&b1, &b2], &b);
    assert!(peek(store, &Session::new("c"), 0, ALL).await.is_empty());

    assert_eq!(peek(store, &a, in_a[0].position, ALL).await, in_a[1..]);
    assert_eq!(peek(store, &a, in_a[1].position, ALL).await, in_a[2..]);
    assert!(peek(store, &a, in_a[2].position, ALL).await.is_empty());
    assert_eq!(peek(store, &a, 0, 2).await, in_a[..2]);
    assert_eq!(peek(store, &a, in_a[0].position, 1).await, in_a[1..2]);
    assert!(peek(store, &a, 0, 0).await.is_empty());
    assert_eq!(
        peek(store, &a, 0, ALL).await,
        in_a,
        "peeking removes nothing"
    );
}

/// Acknowledging through a position removes that session's items up to and including it and
/// says how many; other sessions keep theirs; positions keep growing after an inbox empties, so
/// an item pushed later is never hidden behind an old acknowledgement.
pub async fn inbox_acknowledges_through_a_position(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (Session::new("a"), Session::new("b"));
    for (n, session) in [&a, &b, &a, &b, &a, &a].into_iter().enumerate() {
        push(store, &message(session, &format!("m{n}"), n as u64)).await;
    }
    let in_a = peek(store, &a, 0, ALL).await;
    let in_b = peek(store, &b, 0, ALL).await;
    assert_eq!((in_a.len(), in_b.len()), (4, 2));

    let acknowledge = async |session: &Session, through: u64| {
        store
            .acknowledge(session, through)
            .await
            .expect("acknowledge")
    };
    assert_eq!(acknowledge(&a, 0).await, 0, "nothing sits at or before 0");
    assert_eq!(acknowledge(&a, in_a[1].position).await, 2);
    assert_eq!(peek(store, &a, 0, ALL).await, in_a[2..]);
    assert_eq!(acknowledge(&a, in_a[1].position).await, 0, "already gone");
    assert_eq!(
        peek(store, &b, 0, ALL).await,
        in_b,
        "other sessions keep theirs"
    );
    assert_eq!(acknowledge(&Session::new("c"), u64::MAX).await, 0);

    // Through the position just before an item: the items before it go, it stays.
    assert_eq!(acknowledge(&a, in_a[3].position - 1).await, 1);
    assert_eq!(peek(store, &a, 0, ALL).await, in_a[3..]);
    assert_eq!(acknowledge(&a, in_a[3].position).await, 1);
    assert!(peek(store, &a, 0, ALL).await.is_empty());

    let late = message(&a, "late", 10);
    push(store, &late).await;
    let now_in_a = peek(store, &a, 0, ALL).await;
    assert_items(&now_in_a, &[&late], &a);
    assert!(
        now_in_a[0].position > in_a[3].position,
        "a position was reused after the inbox emptied"
    );
    // The agent resumes from its last acknowledgement and still sees the new item.
    assert_eq!(peek(store, &a, in_a[3].position, ALL).await, now_in_a);

    assert_eq!(acknowledge(&b, u64::MAX).await, 2);
    assert!(peek(store, &b, 0, ALL).await.is_empty());
}

/// `append_with_inbox` writes the events and the item together: an accepted end is in the log
/// and its item in the inbox once the ack resolves; a refused event (an end after the end)
/// fails the call and places nothing, so no inbox tells of an end the log does not hold.
pub async fn append_with_inbox_is_both_or_neither(store: Arc<dyn Store>) {
    let store = &*store;
    let session = Session::new("a");
    let mut local = Local::create(store, new_task(1)).await;
    local.step(store, 2, started()).await;
    let end = local.next(3, completed(json!("done")));
    let item = NewInboxItem {
        session: session.clone(),
        task: local.id(),
        at: at(3),
        entry: InboxEntry::Outcome {
            kind: local.task.kind.clone(),
            outcome: Outcome::Completed {
                output: json!("done"),
            },
        },
    };
    store
        .append_with_inbox(&[end], item.clone())
        .await
        .expect("append with inbox");
    assert_stored(store, &local).await;
    assert_items(&peek(store, &session, 0, ALL).await, &[&item], &session);

    let again = event(&local.task, 4, failed("late"));
    let refused = store.append_with_inbox(&[again], item.clone()).await;
    assert_refused(refused, local.id(), RefusalReason::Terminal);
    assert_stored(store, &local).await;
    assert_items(&peek(store, &session, 0, ALL).await, &[&item], &session);

    let mut ghost = Local::new(new_task(5));
    let missing = store
        .append_with_inbox(&[ghost.next(6, started())], item.clone())
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound(id)) if id == ghost.id()),
        "{missing:?}"
    );
    assert_items(&peek(store, &session, 0, ALL).await, &[&item], &session);
}
