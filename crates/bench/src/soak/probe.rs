//! What the soak reads of the store itself, on a connection of its own: rows in the three
//! tables that grow with load (`tasks`, `events`, `inbox`), the bytes they take on disk, and on
//! PostgreSQL the dead tuples autovacuum has not reclaimed yet.
//!
//! On a PostgreSQL server with autovacuum turned off (CI machines do that for repeatable
//! figures), nothing would ever reclaim a dead tuple, and the series would show the server's
//! setting rather than the store. There the probe stands in for autovacuum: after each sample
//! it vacuums the schema's tables, as autovacuum would at its default one-minute naptime, and
//! says so on stderr.

use std::path::PathBuf;

use anyhow::Context as _;

/// The store's figures at one moment.
pub(super) struct StoreFigures {
    pub(super) tasks: i64,
    pub(super) events: i64,
    pub(super) inbox: i64,
    /// SQLite: the file and its WAL; PostgreSQL: the schema's tables with their indexes and
    /// TOAST.
    pub(super) bytes: u64,
    /// PostgreSQL's `n_dead_tup` summed over the schema's tables (`None` on SQLite).
    pub(super) dead_tuples: Option<i64>,
}

/// A store the soak's servers share.
pub(super) enum Probe {
    Sqlite(PathBuf),
    Postgres {
        client: tokio_postgres::Client,
        schema: String,
        /// The server's autovacuum is off: the probe vacuums after each sample.
        vacuums: bool,
    },
}

impl Probe {
    /// Connects to the PostgreSQL database the nodes use (their schema is made by the first
    /// node to open it).
    pub(super) async fn postgres(url: &str, schema: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("the soak's own connection to PostgreSQL")?;
        tokio::spawn(connection);
        let autovacuum: String = client.query_one("SHOW autovacuum", &[]).await?.get(0);
        let vacuums = autovacuum != "on";
        if vacuums {
            eprintln!(
                "soak: autovacuum is off on this PostgreSQL server; the soak vacuums the schema's \
                 tables after each sample instead"
            );
        }
        Ok(Self::Postgres {
            client,
            schema: schema.to_owned(),
            vacuums,
        })
    }

    /// What autovacuum would have done since the last sample, where it is off.
    pub(super) async fn maintain(&self) -> anyhow::Result<()> {
        if let Self::Postgres {
            client,
            schema,
            vacuums: true,
        } = self
        {
            let quoted = schema.replace('"', "\"\"");
            let tables = ["tasks", "events", "inbox", "signals"]
                .map(|table| format!("\"{quoted}\".{table}"))
                .join(", ");
            client
                .batch_execute(&format!("VACUUM (ANALYZE) {tables}"))
                .await
                .context("vacuuming the soak's schema")?;
        }
        Ok(())
    }

    pub(super) async fn read(&self) -> anyhow::Result<StoreFigures> {
        match self {
            Self::Sqlite(path) => sqlite(path),
            Self::Postgres { client, schema, .. } => postgres(client, schema).await,
        }
    }
}

fn sqlite(path: &PathBuf) -> anyhow::Result<StoreFigures> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let count = |table: &str| -> rusqlite::Result<i64> {
        connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
    };
    let bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            std::fs::metadata(file).ok().map(|m| m.len())
        })
        .sum();
    Ok(StoreFigures {
        tasks: count("tasks")?,
        events: count("events")?,
        inbox: count("inbox")?,
        bytes,
        dead_tuples: None,
    })
}

async fn postgres(client: &tokio_postgres::Client, schema: &str) -> anyhow::Result<StoreFigures> {
    let quoted = schema.replace('"', "\"\"");
    let counts = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM \"{quoted}\".tasks), \
                        (SELECT count(*) FROM \"{quoted}\".events), \
                        (SELECT count(*) FROM \"{quoted}\".inbox)"
            ),
            &[],
        )
        .await?;
    // The statistics lag by up to the stats collector's interval (about 0.5 s): fine for a
    // series sampled every minute.
    let totals = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint, \
                    coalesce(sum(s.n_dead_tup), 0)::bigint \
             FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&schema],
        )
        .await?;
    Ok(StoreFigures {
        tasks: counts.get(0),
        events: counts.get(1),
        inbox: counts.get(2),
        bytes: u64::try_from(totals.get::<_, i64>(0)).unwrap_or_default(),
        dead_tuples: Some(totals.get(1)),
    })
}
