//! Choosing and opening a durable store from the command line (`--store sqlite|postgres`).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use longrun::{
    cluster::{Cluster, NodeId},
    store::Store,
};
use longrun_store_postgres::{PostgresOptions, PostgresStore};
use longrun_store_sqlite::SqliteStore;

/// Which durable store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StoreKind {
    /// One SQLite file (the server's default).
    Sqlite,
    /// PostgreSQL, shared by several nodes.
    Postgres,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The PostgreSQL server the benchmarks use unless told otherwise.
pub(crate) fn default_postgres_url() -> String {
    std::env::var("LONGRUN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Where a store lives: a SQLite file, or a PostgreSQL schema.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Location {
    /// The SQLite file.
    #[arg(long)]
    pub(crate) path: Option<PathBuf>,
    /// The PostgreSQL URL.
    #[arg(long)]
    pub(crate) postgres: Option<String>,
    /// The PostgreSQL schema holding the tables.
    #[arg(long)]
    pub(crate) schema: Option<String>,
}

impl Location {
    /// Command-line arguments that give this location to a child process.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(path) = &self.path {
            args.extend(["--path".to_owned(), path.display().to_string()]);
        }
        if let Some(url) = &self.postgres {
            args.extend(["--postgres".to_owned(), url.clone()]);
        }
        if let Some(schema) = &self.schema {
            args.extend(["--schema".to_owned(), schema.clone()]);
        }
        args
    }
}

/// An opened store: the cluster is set for PostgreSQL.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cluster: Option<Arc<dyn Cluster>>,
    pub(crate) sqlite: Option<Arc<SqliteStore>>,
    pub(crate) postgres: Option<Arc<PostgresStore>>,
}

/// Opens the store at `location` as node `node`, with leases of `lease_ttl` on PostgreSQL.
pub(crate) async fn open(
    kind: StoreKind,
    location: &Location,
    node: &str,
    lease_ttl: Duration,
) -> anyhow::Result<Opened> {
    match kind {
        StoreKind::Sqlite => {
            let path = location
                .path
                .as_ref()
                .context("--path is needed for SQLite")?;
            let store = Arc::new(SqliteStore::open(path)?);
            Ok(Opened {
                store: store.clone(),
                cluster: None,
                sqlite: Some(store),
                postgres: None,
            })
        }
        StoreKind::Postgres => {
            let url = location
                .postgres
                .clone()
                .unwrap_or_else(default_postgres_url);
            let mut options = PostgresOptions::new(url)
                .node(NodeId::new(node))
                .lease_ttl(lease_ttl);
            if let Some(schema) = &location.schema {
                options = options.schema(schema.clone());
            }
            let store = PostgresStore::connect(options).await?;
            Ok(Opened {
                store: store.clone(),
                cluster: Some(store.clone()),
                sqlite: None,
                postgres: Some(store),
            })
        }
    }
}

/// Drops a PostgreSQL schema and everything in it (the end of a benchmark's run).
pub(crate) async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let schema = schema.replace('"', "\"\"");
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    drop(client);
    let _ = connection.await;
    Ok(())
}
