//! Checks of [`TaskStore::list`](longrun_core::store::TaskStore::list): filters, order,
//! cursor pagination and expiry.

use std::{collections::HashSet, sync::Arc, time::Duration};

use longrun_core::{
    Owner, Session, Status, Task, TaskId, Timestamp,
    store::{Cursor, Filter, Query, Store},
};

use crate::support::{ALL, Local, at, completed, labels, new_task, started};

/// When the listing checks look: after every task was created and ended, before any expired.
const NOW: u64 = 1_000;

fn query(filter: Filter, limit: usize) -> Query {
    Query {
        filter,
        after: None,
        limit,
        now: at(NOW),
    }
}

/// Every page of `query`, followed through the cursors, in the order the store gave them.
async fn every_page(store: &dyn Store, mut query: Query) -> Vec<Vec<Task>> {
    let mut pages = Vec::new();
    loop {
        let page = store.list(&query).await.expect("list");
        assert!(
            page.tasks.len() <= query.limit,
            "a page of {} tasks for a limit of {}",
            page.tasks.len(),
            query.limit
        );
        let next = page.next;
        let empty = page.tasks.is_empty();
        pages.push(page.tasks);
        match next {
            Some(cursor) => {
                assert!(!empty, "an empty page must not send the caller on");
                query.after = Some(cursor);
            }
            None => return pages,
        }
        assert!(pages.len() <= ALL, "the cursor never ran out");
    }
}

/// Every task `query` lists, across all its pages.
async fn everything(store: &dyn Store, query: Query) -> Vec<Task> {
    every_page(store, query).await.concat()
}

/// `tasks` as a listing must order them: newest first, by creation time, then by id.
fn newest_first(tasks: &[Task]) -> Vec<Task> {
    let mut tasks = tasks.to_vec();
    tasks.sort_by_key(|task| std::cmp::Reverse((task.created_at, task.id)));
    tasks
}

fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|task| task.id).collect()
}

/// Tasks that differ in every field a filter looks at: status, kind, session, owner, labels;
/// creation times tie in pairs.
async fn population(store: &dyn Store) -> Vec<Task> {
    let sessions = [Some("s1"), Some("s2"), None];
    let label_sets = [
        labels(&[("team", "x")]),
        labels(&[("team", "x"), ("tier", "gold")]),
        labels(&[("tier", "gold")]),
        labels(&[]),
    ];
    let mut tasks = Vec::new();
    for i in 0..28_usize {
        let mut new = new_task(i as u64 / 2 * 10);
        new.kind = ["a", "b", "c"][i % 3].into();
        new.owner = Owner::new(["alice", "bob"][i % 2]);
        new.session = sessions[i / 3 % 3].map(Session::new);
        new.labels = label_sets[i % 4].clone();
        new.ttl = Duration::from_secs(3_600);
        let mut local = Local::create(store, new).await;
        local.reach(store, Status::ALL[i % 7], 500).await;
        tasks.push(local.task);
    }
    tasks
}

/// A listing returns exactly the tasks [`Filter::matches`] accepts, whole and newest first:
/// for several statuses at once, a kind, a session, an owner, labels (all of them must match)
/// and combinations.
pub async fn list_filters(store: Arc<dyn Store>) {
    let store = &*store;
    let tasks = population(store).await;
    let filter = |edit: fn(&mut Filter)| {
        let mut filter = Filter::default();
        edit(&mut filter);
        filter
    };
    let filters = [
        filter(|_| {}),
        filter(|f| f.status = vec![Status::Working]),
        filter(|f| f.status = vec![Status::Completed, Status::Failed, Status::Cancelled]),
        filter(|f| f.status = vec![Status::Submitted, Status::InputRequired]),
        filter(|f| f.kind = Some("b".into())),
        filter(|f| f.session = Some(Session::new("s1"))),
        filter(|f| f.owner = Some(Owner::new("bob"))),
        filter(|f| f.labels = labels(&[("team", "x")])),
        filter(|f| f.labels = labels(&[("team", "x"), ("tier", "gold")])),
        filter(|f| {
            f.kind = Some("a".into());
            f.owner = Some(Owner::new("alice"));
            f.status = vec![Status::Submitted, Status::Working, Status::Rejected];
        }),
        filter(|f| {
            f.session = Some(Session::new("s2"));
            f.labels = labels(&[("tier", "gold")]);
        }),
    ];
    for filter in filters {
        let expected: Vec<Task> = newest_first(&tasks)
            .into_iter()
            .filter(|task| filter.matches(task))
            .collect();
        assert!(
            !expected.is_empty() && (filter == Filter::default() || expected.len() < tasks.len()),
            "the population should make {filter:?} pick some tasks but not all"
        );
        let listed = everything(store, query(filter.clone(), ALL)).await;
        assert_eq!(ids(&listed), ids(&expected), "listing {filter:?}");
        assert_eq!(listed, expected, "listing {filter:?}");
    }

    let nothing = [
        filter(|f| f.kind = Some("nope".into())),
        filter(|f| f.labels = labels(&[("team", "y")])),
        filter(|f| f.labels = labels(&[("team", "x"), ("tier", "silver")])),
        filter(|f| f.session = Some(Session::new("s9"))),
        filter(|f| {
            f.kind = Some("a".into());
            f.owner = Some(Owner::new("carol"));
        }),
    ];
    for filter in nothing {
        let listed = everything(store, query(filter.clone(), ALL)).await;
        assert!(listed.is_empty(), "{filter:?} listed {:?}", ids(&listed));
    }
}

/// A listing is ordered newest first: by creation time, and by id among tasks created at the
/// same time.
pub async fn list_is_newest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let mut tasks = Vec::new();
    for created in [5, 1, 5, 3, 3, 9, 1, 5, 0, 9, 5, 5] {
        tasks.push(Local::create(store, new_task(created)).await.task);
    }
    let page = store
        .list(&query(Filter::default(), ALL))
        .await
        .expect("list");
    assert_eq!(ids(&page.tasks), ids(&newest_first(&tasks)));
    assert_eq!(page.next, None, "everything fit on one page");
}

/// Following the cursors lists every task exactly once, in order, whatever the page size, with
/// or without a filter; a cursor from a previous page keeps working after newer tasks arrive.
pub async fn list_pages_through_everything_once(store: Arc<dyn Store>) {
    let store = &*store;
    let mut tasks = Vec::new();
    for i in 0..37_u64 {
        // Many ties, so pages must break them by id to neither skip nor repeat.
        let mut local = Local::create(store, new_task(i % 5 * 10)).await;
        if i % 3 == 0 {
            local.step(store, 100, started()).await;
        }
        tasks.push(local.task);
    }
    let expected = newest_first(&tasks);

    for limit in [1, 5, 36, 37, 38] {
        let pages = every_page(store, query(Filter::default(), limit)).await;
        assert!(
            pages.iter().all(|page| page.len() <= limit),
            "limit {limit} exceeded"
        );
        let listed = pages.concat();
        let unique: HashSet<TaskId> = listed.iter().map(|task| task.id).collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "limit {limit} listed a task twice"
        );
        assert_eq!(ids(&listed), ids(&expected), "limit {limit}");
    }

    let working = Filter {
        status: vec![Status::Working],
        ..Filter::default()
    };
    let expected_working: Vec<TaskId> = expected
        .iter()
        .filter(|task| task.status() == Status::Working)
        .map(|task| task.id)
        .collect();
    assert_eq!(expected_working.len(), 13);
    let listed = everything(store, query(working, 3)).await;
    assert_eq!(ids(&listed), expected_working);

    // The second page, asked for after a newer task arrived, still starts where the first
    // ended: the cursor names a place in the order, not an offset.
    let first = store
        .list(&query(Filter::default(), 10))
        .await
        .expect("list");
    let cursor = first.next.expect("more than one page");
    Local::create(store, new_task(900)).await;
    let second = store
        .list(&Query {
            after: Some(cursor),
            ..query(Filter::default(), 10)
        })
        .await
        .expect("list");
    assert_eq!(ids(&second.tasks), ids(&expected[10..20]));

    // A cursor built by hand (as an adapter parses one from a request) works the same.
    let cursor = Cursor::after(&expected[19]);
    let third = store
        .list(&Query {
            after: Some(cursor),
            ..query(Filter::default(), 10)
        })
        .await
        .expect("list");
    assert_eq!(ids(&third.tasks), ids(&expected[20..30]));
}

/// A listing leaves out tasks that have expired by `now` (their end plus their ttl is at or
/// before it), even though `get` still finds them until a purge removes them.
pub async fn list_leaves_out_expired(store: Arc<dyn Store>) {
    let store = &*store;
    let mut short = new_task(0);
    short.ttl = Duration::from_millis(100);
    let mut short = Local::create(store, short).await;
    short.step(store, 5, started()).await;
    short.step(store, 10, completed(serde_json::json!(1))).await;
    let expires = short.task.expires_at().expect("ended");
    assert_eq!(expires, at(110));

    let mut long = Local::create(store, new_task(1)).await;
    long.step(store, 5, started()).await;
    long.step(store, 10, completed(serde_json::json!(2))).await;
    let running = Local::create(store, new_task(2)).await;

    let listed_at = async |now: Timestamp| {
        let query = Query {
            now,
            ..query(Filter::default(), ALL)
        };
        ids(&everything(store, query).await)
    };
    let all = vec![running.id(), long.id(), short.id()];
    assert_eq!(listed_at(at(109)).await, all);
    assert_eq!(listed_at(at(110)).await, all[..2]);
    assert_eq!(listed_at(at(1_000_000_000)).await, all[..1]);
    assert!(
        store.get(short.id()).await.expect("get").is_some(),
        "an expired task is readable until it is purged"
    );
}
