//! The stored format, pinned: every PostgreSQL fixture written by an earlier version
//! (`crates/store-tests/fixtures/v*/postgres.sql`, a plain `pg_dump` of one store's schema) is
//! loaded into a fresh schema, opened with today's code (which runs today's migrations on it)
//! and reads back exactly as it was written (see `longrun_store_tests::golden`).

mod common;

use std::{path::Path, time::Duration};

use longrun_core::stored;
use longrun_store_postgres::{PostgresOptions, PostgresStore};
use longrun_store_tests::golden;
use tokio_postgres::NoTls;

/// Long enough that nothing expires while a test reads.
const LEASE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_reads_as_it_was_written() {
    let Some(url) = common::url() else { return };
    for dir in golden::versions() {
        let schema = common::Schema::new(&url);
        load(&url, &dir, &schema.name).await;
        let store = schema.connect("golden", LEASE).await;
        let sessions = golden::sessions(&golden::expected(&dir));
        let actual = golden::render(&*store, &sessions).await;
        golden::assert_reads_as_written(&dir, &actual);
        drop(store);

        let fresh = common::Schema::new(&url);
        drop(fresh.connect("fresh", LEASE).await);
        assert_eq!(
            shape(&url, &schema.name).await,
            shape(&url, &fresh.name).await,
            "the fixture of {} migrated to a schema a fresh store does not have",
            dir.display()
        );
    }
}

/// Today's code writes what version 1 wrote, byte for byte, but for the `"v":1` it adds: every
/// document of the v1 dump (the `json` columns keep the text as written), decoded and encoded
/// again through `longrun_core::stored`, is the stored text with `"v":1,` inserted.
#[tokio::test(flavor = "multi_thread")]
async fn version_1_documents_are_written_again_as_they_were() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    load(&url, &golden::root().join("v1"), &schema.name).await;
    let client = client(&url).await;
    let documents = |table: &str, column: &str| {
        let sql = format!("SELECT {column}::text FROM \"{}\".{table}", schema.name);
        let client = &client;
        async move {
            let rows = client.query(&sql, &[]).await.expect("read the fixture");
            rows.iter().map(|row| row.get(0)).collect::<Vec<String>>()
        }
    };
    let again = |old: &str, new: String| {
        assert_eq!(
            new.replacen(r#""v":1,"#, "", 1),
            old,
            "written again differently"
        );
    };

    let tasks = documents("tasks", "doc").await;
    assert_eq!(tasks.len(), 10, "the fixture's tasks");
    for doc in &tasks {
        let task = stored::decode_task(doc).expect("a v1 task decodes");
        again(doc, stored::encode_task(&task).expect("encodes"));
    }
    let events = documents("events", "doc").await;
    assert!(events.len() > 40, "the fixture's events");
    for doc in &events {
        let event = stored::decode_event(doc).expect("a v1 event decodes");
        again(doc, stored::encode_event(&event).expect("encodes"));
    }
    let entries = documents("inbox", "entry").await;
    assert_eq!(entries.len(), 4, "the fixture's inbox entries");
    for doc in &entries {
        let entry = stored::decode_inbox_entry(doc).expect("a v1 inbox entry decodes");
        again(doc, stored::encode_inbox_entry(&entry).expect("encodes"));
    }
    // Signals are taken at once, so the fixture holds none; their shape is pinned by the
    // literals in `longrun_core::stored`'s tests.
    for doc in &documents("signals", "signal").await {
        let signal = stored::decode_signal(doc).expect("a v1 signal decodes");
        again(doc, stored::encode_signal(&signal).expect("encodes"));
    }
}

/// What a schema holds, with its name left out: applied migrations, every column, every index
/// and constraint. Migrating an old fixture must end where creating a new store does.
async fn shape(url: &str, schema: &str) -> Vec<String> {
    let client = client(url).await;
    let queries = [
        "SELECT format('migration %s %s', version, name) FROM \"{s}\".schema_version",
        "SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, \
         is_nullable, column_default) FROM information_schema.columns WHERE table_schema = '{s}'",
        "SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = '{s}'",
        "SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE connamespace = '{s}'::regnamespace",
        "SELECT format('table %s %s', relname, reloptions) FROM pg_class \
         WHERE relnamespace = '{s}'::regnamespace",
    ];
    let mut shape = Vec::new();
    for query in queries {
        for row in client
            .query(&query.replace("{s}", schema), &[])
            .await
            .unwrap_or_else(|error| panic!("reading the shape of {schema}: {error}"))
        {
            let line: String = row.get(0);
            shape.push(line.replace(schema, "<schema>"));
        }
    }
    shape.sort();
    for what in ["migration ", "column ", "index ", "constraint ", "table "] {
        assert!(
            shape.iter().any(|line| line.starts_with(what)),
            "the shape of {schema} has no {what}line: has the catalog query broken?"
        );
    }
    shape
}

/// Loads the dump of the fixture in `dir` into `schema`, which must not exist yet.
async fn load(url: &str, dir: &Path, schema: &str) {
    let path = dir.join(golden::POSTGRES_FILE);
    let dump = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let client = client(url).await;
    client
        .batch_execute(&dump.replace(golden::PG_SCHEMA, schema))
        .await
        .unwrap_or_else(|error| panic!("loading {}: {error}", path.display()));
}

/// A plain connection, driven on a task of its own until the client is dropped.
async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
    #[expect(
        clippy::disallowed_methods,
        reason = "drives the connection, as tokio-postgres requires; it ends with the client"
    )]
    tokio::spawn(connection);
    client
}

/// Writes today's fixture: with `LONGRUN_TEST_POSTGRES_URL` set and `pg_dump` on the path,
/// `cargo test -p longrun-store-postgres --test golden -- --ignored`. It refuses to overwrite a
/// dump that exists: a committed fixture is never rewritten.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes the fixture of a new stored-format version; run by hand"]
async fn write_fixture() {
    let url = common::url().expect("writing the fixture needs a database");
    let dir = golden::root().join(golden::CURRENT);
    std::fs::create_dir_all(&dir).expect("create the fixture directory");
    let path = dir.join(golden::POSTGRES_FILE);
    assert!(
        !path.exists(),
        "{} exists: fixtures are never rewritten",
        path.display()
    );

    let admin = client(&url).await;
    let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", golden::PG_SCHEMA);
    admin
        .batch_execute(&drop_schema)
        .await
        .expect("drop an old fixture schema");
    let options = PostgresOptions::new(&url)
        .schema(golden::PG_SCHEMA)
        .lease_ttl(LEASE);
    let store = PostgresStore::connect(options).await.expect("connect");
    let expected = golden::write(&*store).await;
    let sessions = golden::sessions(&expected);
    assert_eq!(
        golden::render(&*store, &sessions).await,
        expected,
        "the store reads back what it wrote"
    );
    drop(store);

    let output = std::process::Command::new("pg_dump")
        .args([
            "--schema",
            golden::PG_SCHEMA,
            "--inserts",
            "--no-owner",
            "--no-privileges",
        ])
        .arg("--dbname")
        .arg(&url)
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8(output.stdout).expect("pg_dump writes UTF-8");
    // psql meta-commands (newer pg_dumps write `\restrict`) are not SQL; the test loads plain SQL.
    let dump: String = dump
        .lines()
        .filter(|line| !line.starts_with('\\'))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&path, dump).expect("write the dump");
    admin
        .batch_execute(&drop_schema)
        .await
        .expect("drop the fixture schema");

    let expected_path = dir.join(golden::EXPECTED_FILE);
    if expected_path.exists() {
        assert_eq!(
            golden::expected(&dir),
            expected,
            "the stores disagree on the fixture"
        );
    } else {
        let text = serde_json::to_string_pretty(&expected).expect("JSON") + "\n";
        std::fs::write(&expected_path, text).expect("write expected.json");
    }
}
