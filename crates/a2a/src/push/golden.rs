//! The push-config store's format, pinned: every `a2a-push.sqlite` fixture written by an
//! earlier version (in `crates/store-tests/fixtures/v*/`, beside the task stores' fixtures of
//! the same version) opens with today's code and reads back as its `a2a-push.json` says.
//! `write_fixture` (ignored) writes today's; a committed fixture is never rewritten.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::store::{Record, Store};
use crate::version::Version;

/// Today's fixture version: the task stores' (`longrun_store_tests::golden::CURRENT`).
const CURRENT: &str = "v1";
const FILE: &str = "a2a-push.sqlite";
const EXPECTED: &str = "a2a-push.json";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../store-tests/fixtures")
}

/// Every fixture directory that holds a push store, oldest first.
fn versions() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root())
        .expect("the fixtures directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let number = path
                .file_name()?
                .to_str()?
                .strip_prefix('v')?
                .parse()
                .ok()?;
            path.join(FILE).exists().then_some((number, path))
        })
        .collect();
    versions.sort();
    versions.into_iter().map(|(_, path)| path).collect()
}

fn render(records: &[Record]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "task": r.task, "id": r.id, "owner": r.owner, "url": r.url, "token": r.token,
                "scheme": r.scheme, "credentials": r.credentials,
                "version": match r.version { Version::V03 => "0.3", Version::V10 => "1.0" },
                "delivered": r.delivered,
            })
        })
        .collect();
    Value::from(records)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_reads_as_it_was_written() {
    let versions = versions();
    assert!(
        versions.iter().any(|dir| dir.ends_with(CURRENT)),
        "no push-store fixture for {CURRENT}"
    );
    for dir in versions {
        let copy = tempfile::tempdir().expect("a temporary directory");
        let path = copy.path().join(FILE);
        std::fs::copy(dir.join(FILE), &path).expect("copy the fixture");
        let store = Store::open(&path).expect("open the fixture");
        let actual = render(&store.all().await.expect("read every config"));
        let text = std::fs::read_to_string(dir.join(EXPECTED)).expect("the expected rendering");
        let expected: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            actual,
            expected,
            "{} no longer reads as it was written",
            dir.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes the push store's fixture of a new version; run by hand"]
async fn write_fixture() {
    let dir = root().join(CURRENT);
    std::fs::create_dir_all(&dir).expect("the fixture directory");
    let path = dir.join(FILE);
    assert!(
        !path.exists(),
        "{} exists: fixtures are never rewritten",
        path.display()
    );
    let store = Store::open(&path).expect("create the fixture");
    let records = [
        Record {
            task: "task_00000000000000000000000000000002".to_owned(),
            id: "hook-1".to_owned(),
            owner: "alice".to_owned(),
            url: "https://hooks.example/a2a".to_owned(),
            token: "tok-1".to_owned(),
            scheme: "Bearer".to_owned(),
            credentials: "secret".to_owned(),
            version: Version::V10,
            delivered: 4,
        },
        Record {
            task: "task_00000000000000000000000000000002".to_owned(),
            id: "hook-2".to_owned(),
            owner: "alice".to_owned(),
            url: "https://hooks.example/legacy".to_owned(),
            token: String::new(),
            scheme: String::new(),
            credentials: String::new(),
            version: Version::V03,
            delivered: 0,
        },
        Record {
            task: "task_00000000000000000000000000000003".to_owned(),
            id: "only".to_owned(),
            owner: "anonymous".to_owned(),
            url: "http://127.0.0.1:9/hook".to_owned(),
            token: "t".to_owned(),
            scheme: String::new(),
            credentials: String::new(),
            version: Version::V10,
            delivered: 2,
        },
    ];
    for record in &records {
        store.put(record.clone()).await.expect("put a config");
    }
    let read = render(&store.all().await.expect("read back"));
    assert_eq!(read, render(&records), "the store reads back what it wrote");
    drop(store);
    let connection = rusqlite::Connection::open(&path).expect("reopen");
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE; VACUUM;")
        .expect("fold the log into one file");
    let text = serde_json::to_string_pretty(&read).expect("JSON") + "\n";
    std::fs::write(dir.join(EXPECTED), text).expect("write the expected rendering");
}
