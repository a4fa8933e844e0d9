//! The stored format, pinned: every SQLite fixture written by an earlier version
//! (`crates/store-tests/fixtures/v*/store.sqlite`) opens with today's code, migrations and all,
//! and reads back exactly as it was written (see `longrun_store_tests::golden`).

use std::path::Path;

use longrun_core::{Seq, Status, TaskId, stored};
use longrun_store_sqlite::SqliteStore;
use longrun_store_tests::golden;

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_reads_as_it_was_written() {
    for dir in golden::versions() {
        let copy = tempfile::tempdir().expect("a temporary directory");
        let path = copy.path().join(golden::SQLITE_FILE);
        // A copy, so the migrations the store runs on open leave the committed file alone.
        std::fs::copy(dir.join(golden::SQLITE_FILE), &path)
            .unwrap_or_else(|error| panic!("copying the fixture of {}: {error}", dir.display()));
        let store = SqliteStore::open(&path)
            .unwrap_or_else(|error| panic!("opening the fixture of {}: {error}", dir.display()));
        let sessions = golden::sessions(&golden::expected(&dir));
        let actual = golden::render(&store, &sessions).await;
        golden::assert_reads_as_written(&dir, &actual);
        drop(store);
        assert_eq!(
            schema(&path),
            fresh_schema(),
            "the fixture of {} migrated to a schema a fresh store does not have",
            dir.display()
        );
    }
}

/// The schema of a store file: its version and every table, index and trigger as SQLite keeps
/// it. Migrating an old file must end where creating a new one does.
fn schema(path: &Path) -> (i64, Vec<(String, String, Option<String>)>) {
    let connection = rusqlite::Connection::open(path).expect("open the store file");
    let version = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("the schema version");
    let mut statement = connection
        .prepare(
            "SELECT type, name, sql FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .expect("prepare");
    let objects = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("read the schema")
        .collect::<Result<_, _>>()
        .expect("read the schema");
    (version, objects)
}

/// The schema of a store created by today's code.
fn fresh_schema() -> (i64, Vec<(String, String, Option<String>)>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("fresh.sqlite");
    drop(SqliteStore::open(&path).expect("create a fresh store"));
    schema(&path)
}

/// Today's code writes what version 1 wrote, byte for byte, but for the `"v":1` it adds: every
/// document of the v1 fixture, decoded and encoded again through `longrun_core::stored`, is the
/// stored text with `"v":1,` inserted. A stored field renamed, reordered or dropped fails here.
#[test]
fn version_1_documents_are_written_again_as_they_were() {
    let path = golden::root().join("v1").join(golden::SQLITE_FILE);
    let connection =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the v1 fixture");
    let rows = |sql: &str| -> Vec<(Vec<u8>, i64, String)> {
        let mut statement = connection.prepare(sql).expect("prepare");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("read the rows")
    };
    let id = |key: &[u8]| TaskId::from_u128(u128::from_be_bytes(key.try_into().expect("16 bytes")));
    let again = |old: &str, new: String| {
        assert_eq!(
            new.replacen(r#""v":1,"#, "", 1),
            old,
            "written again differently"
        );
    };

    let tasks = rows("SELECT id, 0, body FROM tasks");
    assert_eq!(tasks.len(), 10, "the fixture's tasks");
    for (_, _, body) in &tasks {
        let task = stored::decode_task(body).expect("a v1 task decodes");
        again(body, stored::encode_task(&task).expect("encodes"));
    }
    let events = rows("SELECT t.id, e.seq, e.body FROM events e JOIN tasks t ON t.key = e.task");
    assert!(events.len() > 40, "the fixture's events");
    for (key, seq, body) in &events {
        let seq = Seq::from_u64(u64::try_from(*seq).expect("a sequence number"));
        let event = stored::decode_event_body(id(key), seq, body).expect("a v1 event decodes");
        again(body, stored::encode_event_body(&event).expect("encodes"));
    }
    let entries = rows("SELECT task, position, entry FROM inbox");
    assert_eq!(entries.len(), 4, "the fixture's inbox entries");
    for (_, _, entry) in &entries {
        let decoded = stored::decode_inbox_entry(entry).expect("a v1 inbox entry decodes");
        again(
            entry,
            stored::encode_inbox_entry(&decoded).expect("encodes"),
        );
    }
}

#[test]
fn the_current_fixture_holds_every_status() {
    let current = golden::root().join(golden::CURRENT);
    let expected = golden::expected(&current);
    assert_eq!(golden::statuses(&expected), Status::ALL.to_vec());
}

/// Writes today's fixture: `cargo test -p longrun-store-sqlite --test golden -- --ignored`.
/// It refuses to overwrite one that exists: a committed fixture is never rewritten.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes the fixture of a new stored-format version; run by hand"]
async fn write_fixture() {
    let dir = golden::root().join(golden::CURRENT);
    std::fs::create_dir_all(&dir).expect("create the fixture directory");
    let path = dir.join(golden::SQLITE_FILE);
    assert!(
        !path.exists(),
        "{} exists: fixtures are never rewritten",
        path.display()
    );
    let store = SqliteStore::open(&path).expect("open a fresh store");
    let expected = golden::write(&store).await;
    let sessions = golden::sessions(&expected);
    assert_eq!(
        golden::render(&store, &sessions).await,
        expected,
        "the store reads back what it wrote"
    );
    drop(store);
    compact(&path);
    // The store's lock file says who has the file open; nobody does now.
    let _ = std::fs::remove_file(dir.join(format!("{}-lock", golden::SQLITE_FILE)));
    write_expected(&dir, &expected);
}

/// Folds the write-ahead log into the file, so the fixture is one file.
fn compact(path: &Path) {
    let connection = rusqlite::Connection::open(path).expect("reopen the fixture");
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE; VACUUM;")
        .expect("compact the fixture");
}

/// Writes `expected.json`, unless it exists (the PostgreSQL fixture may have written it): then
/// the two stores must agree on it.
fn write_expected(dir: &Path, expected: &serde_json::Value) {
    let path = dir.join(golden::EXPECTED_FILE);
    if path.exists() {
        assert_eq!(
            &golden::expected(dir),
            expected,
            "the stores disagree on the fixture"
        );
        return;
    }
    let text = serde_json::to_string_pretty(expected).expect("JSON") + "\n";
    std::fs::write(&path, text).expect("write expected.json");
}
