//! The read pool: read-only connections that run queries on tokio's blocking threads.
//!
//! SQLite calls block, so a read runs on `spawn_blocking`, never on a runtime worker. WAL lets
//! any number of readers run beside the writer, each on its own snapshot taken when its
//! statement starts: a read that starts after an ack resolved sees that write.
//!
//! # Invariants
//!
//! - A connection in `idle` has no transaction open (it is checked before it goes back), so
//!   the next read on it starts a fresh snapshot instead of seeing an old one.
//! - The `idle` lock is held only to push or pop, never while a query runs or a connection is
//!   opened or closed.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use longrun_core::store::{BoxFuture, Error};
use parking_lot::Mutex;
use rusqlite::Connection;

use crate::{connect, error::backend};

/// Read-only connections to one file, opened when none is idle.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Readers {
    /// A pool for `path` that keeps at most `max_idle` connections between reads.
    pub(crate) fn new(path: &Path, max_idle: usize) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Runs `read` on a pooled connection on tokio's blocking pool.
    ///
    /// Nothing is spawned until the future is first polled, so calling this outside a runtime
    /// is fine as long as the future is awaited inside one.
    pub(crate) fn run<T, F>(self: &Arc<Self>, read: F) -> BoxFuture<'static, Result<T, Error>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let readers = Arc::clone(self);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || readers.with(read))
                .await
                .map_err(|e| backend("a read on tokio's blocking pool did not finish", e))?
        })
    }

    /// Runs `read` on an idle connection, or a new one, and keeps it for later if there is
    /// room.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let pooled = self.idle.lock().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect::reader(&self.path)?,
        };
        let result = read(&conn);
        // A read that failed half-way might leave a transaction open; such a connection is
        // closed rather than pooled (see the invariants).
        if conn.is_autocommit() {
            let mut idle = self.idle.lock();
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        result
    }
}
