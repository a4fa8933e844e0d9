//! The read queries: one function per read of the store traits, each taking a connection.
//!
//! They run on the read pool; the writer also uses [`get`] and [`unfinished`] on its own
//! connection, to load a task it does not hold and to fill its cache at open.

use std::sync::Arc;

use longrun_core::{
    Event, InboxItem, Seq, Session, Task, TaskId, Timestamp,
    store::{Cursor, Error, Page, Query},
};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter, types::Value};

use crate::{
    codec::{self, decode_entry, decode_event, decode_task, id_from_key, id_key},
    error::backend,
};

/// Every unfinished task, oldest first. The `WHERE` matches the partial index
/// `tasks_unfinished` word for word, which is what lets SQLite use it (see `schema.rs`).
pub(crate) const UNFINISHED: &str =
    "SELECT id, body, key FROM tasks WHERE finished_at IS NULL ORDER BY created_at, id";

/// The task `id`, if it is stored.
pub(crate) fn get(conn: &Connection, id: TaskId) -> Result<Option<Task>, Error> {
    Ok(row(conn, id)?.map(|(_, task)| task))
}

/// The task `id` and its row's key, if it is stored.
pub(crate) fn row(conn: &Connection, id: TaskId) -> Result<Option<(i64, Task)>, Error> {
    let failed = |e| backend(format!("reading task {id}"), e);
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT key, body FROM tasks WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([id_key(id)], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(failed)?;
    row.map(|(key, body)| Ok((key, decode_task(id, &body)?)))
        .transpose()
}

/// Every unfinished task, oldest first (by creation time, then id).
pub(crate) fn unfinished(conn: &Connection) -> Result<Vec<Task>, Error> {
    Ok(unfinished_rows(conn)?
        .into_iter()
        .map(|(_, task)| task)
        .collect())
}

/// Every unfinished task with its row's key, oldest first.
pub(crate) fn unfinished_rows(conn: &Connection) -> Result<Vec<(i64, Task)>, Error> {
    let failed = |e| backend("reading the unfinished tasks", e);
    let mut stmt = conn.prepare_cached(UNFINISHED).map_err(failed)?;
    let mut rows = stmt.query([]).map_err(failed)?;
    let mut tasks = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let task = task_from_row(row)?;
        let key = row.get(2).map_err(failed)?;
        tasks.push((key, task));
    }
    Ok(tasks)
}

/// A task from a row whose first two columns are `id, body`.
fn task_from_row(row: &Row<'_>) -> Result<Task, Error> {
    let failed = |e| backend("reading a task row", e);
    let key: Vec<u8> = row.get(0).map_err(failed)?;
    let id = id_from_key(&key)?;
    let body: String = row
        .get(1)
        .map_err(|e| backend(format!("reading task {id}"), e))?;
    decode_task(id, &body)
}

/// A page of `query`, newest first.
///
/// SQL narrows by the columns it has (expiry, cursor, status, kind, session, owner) and walks
/// an index in listing order; [`Filter::matches`](longrun_core::store::Filter::matches) then has
/// the last word on every row, which is how labels (kept only in the JSON) are filtered. Rows
/// are stepped one at a time, so a page that labels thin out simply reads further, and the walk
/// stops as soon as the page is full.
pub(crate) fn list(conn: &Connection, query: &Query) -> Result<Page, Error> {
    let empty = Page {
        tasks: Vec::new(),
        next: None,
    };
    if query.limit == 0 {
        return Ok(empty);
    }
    let (sql, values) = listing_sql(query);
    let failed = |e| backend("listing tasks", e);
    let mut stmt = conn.prepare_cached(&sql).map_err(failed)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(failed)?;
    let mut tasks = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next().map_err(failed)? {
        if tasks.len() == query.limit {
            // A row is left: there may be another page. (It may not pass the label filter;
            // the contract says "may", and stepping on to find out could read the whole rest.)
            more = true;
            break;
        }
        let task = task_from_row(row)?;
        let expired = task.expires_at().is_some_and(|at| at <= query.now);
        if !expired && query.filter.matches(&task) {
            tasks.push(task);
        }
    }
    let next = match tasks.last() {
        Some(last) if more => Some(Cursor::after(last)),
        _ => None,
    };
    Ok(Page { tasks, next })
}

/// The SQL of a listing and its parameters. Statements are cached by their text, so the text
/// depends only on which filters are set (and how many statuses), never on their values.
fn listing_sql(query: &Query) -> (String, Vec<Value>) {
    let filter = &query.filter;
    let mut sql =
        String::from("SELECT id, body FROM tasks WHERE (expires_at IS NULL OR expires_at > ?)");
    let mut values = vec![Value::Integer(codec::millis(query.now))];
    if let Some(after) = query.after {
        sql.push_str(" AND (created_at, id) < (?, ?)");
        values.push(Value::Integer(codec::millis(after.created_at)));
        values.push(Value::Blob(id_key(after.id).to_vec()));
    }
    if !filter.status.is_empty() {
        let marks = vec!["?"; filter.status.len()].join(", ");
        sql.push_str(&format!(" AND status IN ({marks})"));
        values.extend(
            filter
                .status
                .iter()
                .map(|status| Value::Text(status.as_str().to_owned())),
        );
        // Only unfinished statuses: say so in the partial index's own words, so SQLite can walk
        // the (much smaller) index of unfinished tasks.
        if filter.status.iter().all(|status| !status.is_terminal()) {
            sql.push_str(" AND finished_at IS NULL");
        }
    }
    let mut equal = |column: &str, value: Option<&str>| {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(Value::Text(value.to_owned()));
        }
    };
    equal("kind", filter.kind.as_deref());
    equal("session", filter.session.as_ref().map(Session::as_str));
    equal("owner", filter.owner.as_ref().map(|owner| owner.as_str()));
    sql.push_str(" ORDER BY created_at DESC, id DESC");
    (sql, values)
}

/// Events of `task` after `after`, in order, at most `limit`.
pub(crate) fn events(
    conn: &Connection,
    task: TaskId,
    after: Seq,
    limit: usize,
) -> Result<Vec<Arc<Event>>, Error> {
    let failed = |e| backend(format!("reading the log of task {task}"), e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, body FROM events WHERE task = (SELECT key FROM tasks WHERE id = ?1) \
             AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(failed)?;
    let mut rows = stmt
        .query(params![
            id_key(task),
            codec::integer(after.as_u64()),
            codec::limit(limit)
        ])
        .map_err(failed)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let seq: i64 = row.get(0).map_err(failed)?;
        let body: String = row.get(1).map_err(failed)?;
        events.push(decode_event(task, seq, &body)?);
    }
    Ok(events)
}

/// Items of `session` above position `after`, in order, at most `limit`.
pub(crate) fn peek(
    conn: &Connection,
    session: &Session,
    after: u64,
    limit: usize,
) -> Result<Vec<InboxItem>, Error> {
    let failed = |e| backend(format!("reading the inbox of session {session}"), e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT position, task, at, entry FROM inbox \
             WHERE session = ?1 AND position > ?2 ORDER BY position LIMIT ?3",
        )
        .map_err(failed)?;
    let mut rows = stmt
        .query(params![
            session.as_str(),
            codec::integer(after),
            codec::limit(limit)
        ])
        .map_err(failed)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let position: i64 = row.get(0).map_err(failed)?;
        let position = codec::unsigned(position, || format!("reading the inbox of {session}"))?;
        let task: Vec<u8> = row.get(1).map_err(failed)?;
        let at: i64 = row.get(2).map_err(failed)?;
        let at = codec::unsigned(at, || format!("reading inbox item {position}"))?;
        let entry: String = row.get(3).map_err(failed)?;
        items.push(InboxItem {
            session: session.clone(),
            position,
            task: id_from_key(&task)?,
            at: Timestamp::from_millis(at),
            entry: decode_entry(position, &entry)?,
        });
    }
    Ok(items)
}
