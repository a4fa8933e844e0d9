//! The schema's migrations: numbered SQL files, embedded in the binary, applied in order.
//!
//! Every node runs [`migrate`] at start-up. The whole run is one transaction under a
//! transaction-scoped advisory lock keyed on the schema's name, so when several nodes start at
//! once, one applies what is missing and the others wait, then find nothing left to do. A
//! version table inside the schema records what has been applied; files are never edited once
//! released, only added.

use tokio_postgres::Client;

/// The migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "starts", include_str!("../migrations/0002_starts.sql")),
];

/// Creates `schema` if needed and applies every migration it lacks. `schema` has been validated
/// as a plain identifier.
pub(crate) async fn migrate(client: &Client, schema: &str) -> Result<(), tokio_postgres::Error> {
    // The lock key hashes the schema's name, so stores in different schemas never wait on each
    // other; a hash collision would only make two of them start one after the other.
    client
        .batch_execute(&format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtextextended('longrun.migrate/{schema}', 0));
             CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             SET LOCAL search_path TO \"{schema}\";
             CREATE TABLE IF NOT EXISTS schema_version (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await?;
    let result = apply_missing(client).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    // A failed ROLLBACK means the connection is gone; the migration error says more.
    let ended = client.batch_execute(end).await;
    result.and(ended)
}

async fn apply_missing(client: &Client) -> Result<(), tokio_postgres::Error> {
    let current: i32 = client
        .query_one("SELECT COALESCE(max(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    for (version, name, sql) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        tracing::info!(version, name, "applying migration");
        client.batch_execute(sql).await?;
        client
            .execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
    }
    Ok(())
}

/// Warns when the server runs without autovacuum. The tables are made for it: a task row is
/// updated a few times in a short life (`fillfactor 70`, per-table vacuum thresholds in the
/// migrations) and finished tasks are deleted in batches, so without it their dead tuples are
/// never reclaimed and the tables and indexes grow with every task ever run. Only a warning:
/// an operator may vacuum on a schedule of their own, and test machines turn it off for
/// repeatable figures.
pub(crate) async fn warn_without_autovacuum(client: &Client) {
    let setting = match client.query_one("SHOW autovacuum", &[]).await {
        Ok(row) => row.get::<_, String>(0),
        Err(error) => {
            tracing::debug!(%error, "could not read the server's autovacuum setting");
            return;
        }
    };
    if setting != "on" {
        tracing::warn!(
            autovacuum = %setting,
            "PostgreSQL runs without autovacuum: longrun's tables will keep their dead tuples \
             and grow until they are vacuumed; turn autovacuum on, or VACUUM the schema's tables \
             on a schedule"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_count_up_from_one() {
        for (index, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(*version).ok(), Some(index + 1));
        }
    }
}
