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
//! - At most `max_readers` reads run at once: each holds a permit of `running` from before its
//!   blocking task is spawned until that task returns (the permit moves into the task, so a
//!   caller that stops waiting does not free it early). Readers beyond that wait in the
//!   semaphore's queue, in order, holding no thread.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use longrun_core::store::{BoxFuture, Error};
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::{connect, error::backend};

/// Read-only connections to one file, opened when none is idle.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    /// One permit per read that may run now.
    running: Arc<Semaphore>,
}

impl Readers {
    /// A pool for `path` that runs at most `max_readers` reads at once (0 counts as 1) and
    /// keeps at most `max_idle` connections between reads.
    pub(crate) fn new(path: &Path, max_idle: usize, max_readers: usize) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            max_idle,
            running: Arc::new(Semaphore::new(max_readers.max(1))),
        }
    }

    /// Runs `read` on a pooled connection on tokio's blocking pool, once fewer than
    /// `max_readers` reads run.
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
            let permit = Arc::clone(&readers.running)
                .acquire_owned()
                .await
                .map_err(|e| backend("the read pool is closed", e))?;
            tokio::task::spawn_blocking(move || {
                let _running = permit;
                readers.with(read)
            })
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

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "test code: reads are spawned to run together, and a read sleeps on its blocking \
              thread (never a runtime worker) so that unbounded reads would overlap"
)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// However many reads are asked for at once, no more than `max_readers` run together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_readers_run_at_once() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("pool.db");
        rusqlite::Connection::open(&path)
            .and_then(|conn| conn.execute_batch("CREATE TABLE t (x INTEGER)"))
            .expect("a database to read");
        let readers = Arc::new(Readers::new(&path, 1, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads: Vec<_> = (0..32)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(readers.run(move |conn| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Long enough that unbounded reads would overlap far beyond two.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    let count: i64 = conn
                        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
                        .map_err(|e| backend("counting", e))?;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(count)
                }))
            })
            .collect();
        for read in reads {
            let count = read
                .await
                .expect("the read's task")
                .expect("the read works");
            assert_eq!(count, 0);
        }
        // Not `== 2`: on a loaded host two reads need not overlap, and that is no bug.
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= 2,
            "{most} reads ran at once, more than max_readers (2)"
        );
    }
}
