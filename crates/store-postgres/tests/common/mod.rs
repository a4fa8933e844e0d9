//! What every PostgreSQL test needs: the database's URL (or a reason to skip), and a schema of
//! its own that is dropped afterwards, so tests run in parallel without seeing each other.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]
#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

use std::{
    io::Write as _,
    sync::{Arc, Once},
    time::Duration,
};

use longrun_core::NodeId;
use longrun_store_postgres::{PostgresOptions, PostgresStore};

/// The variable that names the test database.
pub(crate) const URL_VAR: &str = "LONGRUN_TEST_POSTGRES_URL";

/// The test database's URL. Without one, CI fails (a database test must never skip silently
/// there) and a developer's run is told loudly that the tests were skipped.
///
/// # Panics
///
/// When the URL is unset and `CI` is set.
pub(crate) fn url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL tests need {URL_VAR}; .ci/run sets it"
    );
    // Once per test binary, and straight to the process's stderr: the test harness captures
    // what `eprintln!` prints from a passing test, and a skip must not go unseen.
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        let notice = format!(
            "\n\
             ************************************************************************\n\
             * SKIPPED: PostgreSQL tests. Set {URL_VAR}, e.g.\n\
             *   {URL_VAR}=postgres://postgres@127.0.0.1:5432/test\n\
             ************************************************************************\n\n"
        );
        let _ = std::io::stderr().write_all(notice.as_bytes());
    });
    None
}

/// A fresh schema, dropped (with everything in it) when this is dropped.
pub(crate) struct Schema {
    url: String,
    /// Its name.
    pub(crate) name: String,
}

impl Schema {
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("lrt_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Options for a node named `node` on this schema.
    pub(crate) fn options(&self, node: &str, lease_ttl: Duration) -> PostgresOptions {
        PostgresOptions::new(&self.url)
            .schema(&self.name)
            .node(NodeId::new(node))
            .lease_ttl(lease_ttl)
    }

    /// Connects a node named `node` to this schema.
    pub(crate) async fn connect(&self, node: &str, lease_ttl: Duration) -> Arc<PostgresStore> {
        PostgresStore::connect(self.options(node, lease_ttl))
            .await
            .unwrap_or_else(|error| panic!("connecting to {}: {error}", self.url))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a future of its own: the
        // schema is dropped from a thread with a runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|error| error.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await
                    .map_err(|error| error.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// Runs `work` in a tokio runtime of its own, on a thread of its own, then drops that runtime
/// without stopping anything: a node built inside dies without a word, as after kill -9, and
/// its leases stay until they expire (or its name is claimed again). Returns what `work` did.
pub(crate) fn die_after<T, F>(work: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the node that dies");
        let done = tokio.block_on(work());
        drop(tokio);
        done
    })
    .join()
    .expect("the dying node's thread did not panic")
}
