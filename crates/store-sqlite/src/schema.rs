//! The schema and its migrations, numbered by `PRAGMA user_version`.
//!
//! [`MIGRATIONS`] is a list: entry `n` takes a file from version `n` to version `n + 1`. Opening
//! applies every entry the file has not seen, in one transaction with the new version number,
//! so a file is always wholly at one version. To change the schema, append an entry; never edit
//! one that has shipped.
//!
//! # Why the schema looks like this (version 1)
//!
//! - `tasks` keeps each task whole as JSON in `body` (see `codec.rs`), beside copies of the
//!   fields that listing, resuming and purging select or sort by. It is a rowid table, not
//!   `WITHOUT ROWID` on the task id: a body grows with the task's artifacts and is rewritten on
//!   every change, which SQLite handles better in a rowid table, and new rows go at the end of
//!   the table instead of at the random places random ids would put them. `key` names the rowid
//!   explicitly, so `VACUUM` never renumbers it: events are filed under it. `id` has a unique
//!   index for lookups by id.
//! - `tasks_by_created (created_at, id)` serves listing: newest first is a backward walk of it,
//!   and a cursor is a row-value bound on it, so a page costs its own rows, not a sort.
//!   `tasks_by_owner` and `tasks_by_session` do the same within one owner (a tenant lists its
//!   own tasks) or one session (a conversation lists its tasks).
//! - `tasks_unfinished` is a *partial* index of the tasks that have not ended, in creation
//!   order. Finished tasks outnumber running ones by far in a long-lived file, so resuming after
//!   a restart (`unfinished()`, and the writer's cache at open) reads only the few unfinished
//!   entries instead of scanning every task. A listing that asks only for unfinished statuses
//!   walks it too.
//! - `tasks_by_finish` and `tasks_by_expiry` are partial indexes of finished tasks, for the
//!   purge: expiry walks the second from the oldest, the cap walks the first.
//! - `counters.finished_tasks` is the number of finished tasks, kept by triggers on `tasks`, so
//!   the purge's cap knows how far over it is without counting a million index entries.
//! - `events` is keyed `(task, seq)`, where `task` is the task's `key`, and is `WITHOUT ROWID`:
//!   the log of one task is one contiguous range of the table, which is exactly how it is read,
//!   there is no second index to keep, and because keys grow with creation, the logs being
//!   written are all near the end of the table. (Keyed by the random task id, every commit
//!   touched, and synced, pages scattered over the whole table.)
//! - `inbox.position` is `AUTOINCREMENT`, which SQLite guarantees never to hand out twice, even
//!   after the rows with the highest positions were deleted: the "never goes back" counter the
//!   inbox contract asks for. `inbox_by_session` makes a peek a range walk.
//!
//! # Version 2
//!
//! - `tasks.idempotency_key` copies the key a task was started under, and the *partial* unique
//!   index `tasks_by_idempotency_key (owner, idempotency_key)` keeps one task per owner and key
//!   among the stored tasks: the writer looks the key up there before it inserts (so a taken
//!   key refuses one create, not its batch), and a purged task's row takes its key with it.
//!   Tasks without a key (most of them) have no entry. A delayed task's start time lives only in
//!   `body`: nothing selects by it on a single node, where `unfinished()` reads every
//!   unfinished task anyway.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Failure, backend};

/// Marks a file as a longrun store (`PRAGMA application_id`), so opening some other program's
/// SQLite database fails instead of adding tables to it. The bytes spell `LnRS`.
const APPLICATION_ID: i32 = 0x4c6e_5253;

/// Every migration, in order: entry `n` takes the schema from version `n` to `n + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2];

/// Version 1: tasks, their events, the inbox and the finished-task counter.
const V1: &str = "
CREATE TABLE tasks (
    key         INTEGER PRIMARY KEY,
    id          BLOB    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    session     TEXT,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    expires_at  INTEGER,
    body        TEXT    NOT NULL
);
CREATE INDEX tasks_by_created ON tasks (created_at, id);
CREATE INDEX tasks_by_owner ON tasks (owner, created_at, id);
CREATE INDEX tasks_by_session ON tasks (session, created_at, id) WHERE session IS NOT NULL;
CREATE INDEX tasks_unfinished ON tasks (created_at, id) WHERE finished_at IS NULL;
CREATE INDEX tasks_by_finish ON tasks (finished_at, id) WHERE finished_at IS NOT NULL;
CREATE INDEX tasks_by_expiry ON tasks (expires_at, id) WHERE expires_at IS NOT NULL;

CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('finished_tasks', 0);

CREATE TRIGGER tasks_count_inserted AFTER INSERT ON tasks
WHEN NEW.finished_at IS NOT NULL
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'finished_tasks';
END;
CREATE TRIGGER tasks_count_finished AFTER UPDATE OF finished_at ON tasks
WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'finished_tasks';
END;
CREATE TRIGGER tasks_count_unfinished AFTER UPDATE OF finished_at ON tasks
WHEN OLD.finished_at IS NOT NULL AND NEW.finished_at IS NULL
BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'finished_tasks';
END;
CREATE TRIGGER tasks_count_deleted AFTER DELETE ON tasks
WHEN OLD.finished_at IS NOT NULL
BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'finished_tasks';
END;

CREATE TABLE events (
    task INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    body TEXT    NOT NULL,
    PRIMARY KEY (task, seq)
) WITHOUT ROWID;

CREATE TABLE inbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    session  TEXT    NOT NULL,
    task     BLOB    NOT NULL,
    at       INTEGER NOT NULL,
    entry    TEXT    NOT NULL
);
CREATE INDEX inbox_by_session ON inbox (session, position);
";

/// Version 2: idempotency keys, unique per owner.
const V2: &str = "
ALTER TABLE tasks ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
";

/// Brings the file's schema up to the newest version, or says why it cannot.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), longrun_core::store::Error> {
    let failed = |e| backend("creating or migrating the store's schema", e);
    // IMMEDIATE: the version is read and moved on under one write lock.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed)?;
    let application: i32 = tx
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(failed)?;
    let latest = MIGRATIONS.len();
    let from = usize::try_from(version).unwrap_or(usize::MAX);
    if from == 0 {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(failed)?;
        if tables > 0 || application != 0 {
            return Err(Failure::plain(
                "this SQLite file already holds another program's tables; give the store a \
                 new file of its own",
            )
            .into());
        }
    } else if application != APPLICATION_ID {
        return Err(Failure::plain(format!(
            "this SQLite file is not a longrun store (application id {application:#x}); give \
             the store a file of its own"
        ))
        .into());
    }
    if from > latest {
        return Err(Failure::plain(format!(
            "this file has schema version {version}, written by a newer longrun; this build \
             knows versions up to {latest}: upgrade longrun-store-sqlite to open it"
        ))
        .into());
    }
    if from == latest {
        return Ok(());
    }
    for migration in &MIGRATIONS[from..] {
        tx.execute_batch(migration).map_err(failed)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(failed)?;
    tx.pragma_update(None, "user_version", crate::codec::limit(latest))
        .map_err(failed)?;
    tx.commit().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated database whose planner is set up as the store's connections are.
    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        crate::connect::stable_plans(&conn).expect("the query planner stability guarantee");
        migrate(&mut conn).expect("migrate");
        conn
    }

    /// How SQLite plans `sql`: the `detail` column of `EXPLAIN QUERY PLAN`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("a valid query");
        // Parameters left unbound plan the same as bound ones; they only have to be counted.
        let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(unbound), |row| {
                row.get::<_, String>(3)
            })
            .expect("plan");
        rows.map(|row| row.expect("a plan row"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = migrated();
        migrate(&mut conn).expect("migrate again");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_a_newer_file_and_other_programs_files() {
        let mut conn = migrated();
        conn.pragma_update(None, "user_version", 99).expect("bump");
        let error = migrate(&mut conn).expect_err("a newer file");
        assert!(error.to_string().contains("newer"), "{error}");

        let mut foreign = Connection::open_in_memory().expect("db");
        foreign
            .execute_batch("CREATE TABLE notes (text TEXT)")
            .expect("a foreign table");
        let error = migrate(&mut foreign).expect_err("a foreign file");
        assert!(error.to_string().contains("another program"), "{error}");
    }

    /// The queries that must stay cheap on a file with millions of tasks use their indexes: no
    /// full scan, no sort. (Timing is for benchmarks; the plan is what a test can hold fixed.)
    #[test]
    fn hot_queries_use_their_indexes() {
        let conn = migrated();
        let unfinished = plan(&conn, crate::read::UNFINISHED);
        assert!(unfinished.contains("tasks_unfinished"), "{unfinished}");
        assert!(!unfinished.contains("TEMP B-TREE"), "{unfinished}");

        let page = plan(
            &conn,
            "SELECT id, body FROM tasks WHERE (expires_at IS NULL OR expires_at > 5) \
             AND (created_at, id) < (1, x'00') ORDER BY created_at DESC, id DESC",
        );
        assert!(page.contains("tasks_by_created"), "{page}");
        assert!(!page.contains("TEMP B-TREE"), "{page}");

        let owned = plan(
            &conn,
            "SELECT id, body FROM tasks WHERE (expires_at IS NULL OR expires_at > 5) \
             AND owner = 'alice' ORDER BY created_at DESC, id DESC",
        );
        assert!(owned.contains("tasks_by_owner"), "{owned}");
        assert!(!owned.contains("TEMP B-TREE"), "{owned}");

        let running = plan(
            &conn,
            "SELECT id, body FROM tasks WHERE (expires_at IS NULL OR expires_at > 5) \
             AND status IN ('working') AND finished_at IS NULL \
             ORDER BY created_at DESC, id DESC",
        );
        assert!(running.contains("tasks_unfinished"), "{running}");

        let key = plan(&conn, crate::writer::KEY_HOLDER);
        assert!(key.contains("tasks_by_idempotency_key"), "{key}");

        let expired = plan(&conn, crate::writer::EXPIRED);
        assert!(expired.contains("tasks_by_expiry"), "{expired}");
        let earliest = plan(&conn, crate::writer::EARLIEST_FINISHED);
        assert!(earliest.contains("tasks_by_finish"), "{earliest}");
        assert!(!earliest.contains("TEMP B-TREE"), "{earliest}");
    }

    /// A file written by version 1 opens, gains the key column, and keeps its tasks.
    #[test]
    fn version_1_files_migrate() {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        conn.execute_batch(V1).expect("version 1");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("id");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO tasks (id, kind, owner, status, created_at, body) \
             VALUES (x'01', 'k', 'o', 'submitted', 0, '{}')",
            [],
        )
        .expect("a version-1 task");
        migrate(&mut conn).expect("migrate");
        let (tasks, keys): (i64, i64) = conn
            .query_row(
                "SELECT count(*), count(idempotency_key) FROM tasks",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("count");
        assert_eq!((tasks, keys), (1, 0));
    }

    #[test]
    fn triggers_count_finished_tasks() {
        let conn = migrated();
        let count = || -> i64 {
            conn.query_row(
                "SELECT value FROM counters WHERE name = 'finished_tasks'",
                [],
                |row| row.get(0),
            )
            .expect("counter")
        };
        let insert = "INSERT INTO tasks (id, kind, owner, status, created_at, finished_at, body) \
                      VALUES (?1, 'k', 'o', 's', 0, ?2, '{}')";
        conn.execute(insert, (vec![1u8], None::<i64>))
            .expect("insert");
        conn.execute(insert, (vec![2u8], Some(5_i64)))
            .expect("insert");
        assert_eq!(count(), 1);
        conn.execute("UPDATE tasks SET finished_at = 7 WHERE id = x'01'", [])
            .expect("finish");
        assert_eq!(count(), 2);
        conn.execute("UPDATE tasks SET body = '[]' WHERE id = x'01'", [])
            .expect("touch");
        assert_eq!(count(), 2);
        conn.execute("DELETE FROM tasks WHERE id = x'02'", [])
            .expect("delete");
        assert_eq!(count(), 1);
    }
}
