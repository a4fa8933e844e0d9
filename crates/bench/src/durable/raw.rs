//! The baselines: raw batched SQL doing what a trivial task costs the store (insert the task
//! and its `submitted` event; mark it working with its `started` event; mark it completed with
//! its `ended` event), with the same durability (SQLite WAL + `synchronous=FULL`; PostgreSQL
//! `synchronous_commit=on`), in batches of [`BATCH`] tasks per transaction.

use std::{path::Path, time::Instant};

use anyhow::Context as _;

/// Tasks per transaction: the batch size of the published raw-SQL anchors.
pub(crate) const BATCH: usize = 100;

/// A task row's body, about the size of a stored trivial task.
fn body(id: &str, status: &str) -> String {
    format!(
        r#"{{"id":"{id}","kind":"noop","owner":"local","input":null,"ttl":86400000,"created_at":1,"state":{{"status":"{status}"}},"attempt":1,"updated_at":2,"last_seq":3}}"#
    )
}

/// Tasks per second through three SQLite transactions per batch, on a fresh file at `path`.
pub(crate) fn sqlite(path: &Path, tasks: usize) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, body TEXT NOT NULL);
         CREATE TABLE events (task TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
                              PRIMARY KEY (task, seq)) WITHOUT ROWID;",
    )?;
    let began = Instant::now();
    let mut done = 0;
    while done < tasks {
        let ids: Vec<String> = (done..(done + BATCH).min(tasks))
            .map(|n| format!("task_{n:032x}"))
            .collect();
        for (seq, status) in [(1, "submitted"), (2, "working"), (3, "completed")] {
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO jobs (id, status, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body",
                )?;
                let mut event =
                    tx.prepare_cached("INSERT INTO events (task, seq, body) VALUES (?1, ?2, ?3)")?;
                for id in &ids {
                    upsert.execute((id, status, body(id, status)))?;
                    event.execute((id, seq, format!(r#"{{"seq":{seq},"status":"{status}"}}"#)))?;
                }
            }
            tx.commit()?;
        }
        done += ids.len();
    }
    Ok(tasks as f64 / began.elapsed().as_secs_f64())
}

/// Tasks per second through three PostgreSQL transactions per batch, from `clients`
/// connections at once, in a fresh schema.
pub(crate) async fn postgres(
    url: &str,
    schema: &str,
    tasks: usize,
    clients: usize,
) -> anyhow::Result<f64> {
    let (setup, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    setup
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.jobs (id text PRIMARY KEY, status text NOT NULL, body jsonb NOT NULL);
             CREATE TABLE {schema}.events (task text NOT NULL, seq bigint NOT NULL, body jsonb NOT NULL,
                                           PRIMARY KEY (task, seq));"
        ))
        .await?;
    let began = Instant::now();
    let per_client = tasks.div_ceil(clients);
    let mut workers = Vec::new();
    for client in 0..clients {
        let url = url.to_owned();
        let schema = schema.to_owned();
        workers.push(tokio::spawn(async move {
            let (mut db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            let mut done = 0;
            while done < per_client {
                let ids: Vec<String> = (done..(done + BATCH).min(per_client))
                    .map(|n| format!("task_{client:08x}{n:024x}"))
                    .collect();
                for (seq, status) in [(1i64, "submitted"), (2, "working"), (3, "completed")] {
                    let bodies: Vec<String> = ids.iter().map(|id| body(id, status)).collect();
                    let tx = db.transaction().await?;
                    tx.execute(
                        &format!(
                            "INSERT INTO {schema}.jobs (id, status, body)
                             SELECT id, $2::text, body::jsonb FROM unnest($1::text[], $3::text[]) AS t (id, body)
                             ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body"
                        ),
                        &[&ids, &status, &bodies],
                    )
                    .await?;
                    tx.execute(
                        &format!(
                            "INSERT INTO {schema}.events (task, seq, body)
                             SELECT id, $2::bigint, jsonb_build_object('seq', $2::bigint, 'status', $3::text)
                             FROM unnest($1::text[]) AS t (id)"
                        ),
                        &[&ids, &seq, &status],
                    )
                    .await?;
                    tx.commit().await?;
                }
                done += ids.len();
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await.context("a baseline client panicked")??;
    }
    let rate = (per_client * clients) as f64 / began.elapsed().as_secs_f64();
    setup
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    Ok(rate)
}

/// Milliseconds to open a SQLite file and count its rows: the floor under any recovery.
pub(crate) fn sqlite_open_and_count(path: &Path, table: &str) -> anyhow::Result<f64> {
    let began = Instant::now();
    let conn = rusqlite::Connection::open(path)?;
    let _: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })?;
    Ok(began.elapsed().as_secs_f64() * 1000.0)
}
