//! `longrun-store-sqlite`: a durable longrun store on one SQLite file.
//!
//! Tasks, their event logs and the agent inboxes survive the process, so a runtime on this
//! store resumes its unfinished tasks after a restart. SQLite is compiled in (`bundled`); no
//! system library is needed.
//!
//! # Shape
//!
//! - **One writer thread** owns the only write connection. `create`, `append`, `push` and
//!   `acknowledge` encode their rows on the caller's thread and queue a command before they
//!   return, which fixes their order; the writer applies whatever is queued when it wakes in one
//!   transaction and resolves the acks once it has committed. Many concurrent writers share one
//!   fsync (group commit); a lone write is never held back waiting for company. See
//!   `writer.rs`.
//! - **Validation happens in memory.** The writer keeps every unfinished task in a map, filled
//!   at open from a partial index, and folds appended events with
//!   [`Task::apply`](longrun_core::Task::apply) before writing anything: a refused event fails
//!   its call and changes nothing, and the other calls of the batch still commit.
//! - **Reads** (`get`, `list`, `read`, `unfinished`, `peek`) run on read-only connections from
//!   a small pool, on tokio's blocking threads. The file is in WAL mode, so they never wait for
//!   the writer, and a read that starts after an ack resolved sees that write.
//! - **The schema** is versioned with `PRAGMA user_version` and migrated at open; why it looks
//!   the way it does is in `schema.rs`.
//!
//! # Durability
//!
//! By default every commit is fsynced before its acks resolve ([`Synchronous::Full`]), which is
//! what the store traits call durable. [`Synchronous::Normal`] trades the last moments of work
//! on a power cut for cheaper commits; its docs say exactly what it gives up.
//!
//! # Files
//!
//! Beside the database at `path`, SQLite keeps `path-wal` and `path-shm`, and the store keeps
//! `path-lock`, which it holds locked while open so that no second store (in this process or
//! another) writes the same file. Copy or move the files only while no store has them open.

mod codec;
mod connect;
mod error;
mod options;
mod pool;
mod read;
mod schema;
mod writer;

use std::{
    fmt,
    fs::File,
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
};

use longrun_core::{
    Event, InboxItem, Seq, Session, Task, TaskId,
    store::{
        Ack, BoxFuture, Error, EventLog, InboxStore, NewInboxItem, Page, Purge, Query, Retention,
        TaskStore,
    },
};

pub use crate::options::{SqliteOptions, Synchronous};
use crate::{
    codec::TaskRow,
    error::backend,
    pool::Readers,
    writer::{Command, Encoded, InboxRow, Write},
};

/// A store on one SQLite file.
///
/// Share one store per file (it is `Send + Sync`; wrap it in an `Arc`, usually as
/// `Arc<dyn Store>`): opening a file that another store has open fails. Dropping the store waits
/// for the writes already queued to commit, then closes the file.
///
/// ```
/// use std::{sync::Arc, time::Duration};
///
/// use longrun_core::{
///     Labels, NewTask, Owner, Status, Task, TaskId, Timestamp,
///     store::{Error, TaskStore},
/// };
/// use longrun_store_sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let store = SqliteStore::open(dir.path().join("tasks.db"))?;
/// let (task, first) = Task::create(NewTask {
///     id: TaskId::random(),
///     kind: "summarize".into(),
///     owner: Owner::default(),
///     session: None,
///     input: serde_json::json!({"url": "https://example.com"}),
///     labels: Labels::new(),
///     ttl: Duration::from_secs(3600),
///     deadline: None,
///     created_at: Timestamp::from_millis(1_000),
///     idempotency_key: None,
///     start_at: None,
///     trace: None,
/// });
/// // The write takes its place now; awaiting the ack waits until it is on disk.
/// store.create(&task, &Arc::new(first)).await?;
///
/// let stored = store.get(task.id).await?.expect("just created");
/// assert_eq!(stored.status(), Status::Submitted);
/// assert_eq!(store.stats().commits, 1);
/// # Ok(())
/// # }
/// ```
pub struct SqliteStore {
    path: PathBuf,
    readers: Arc<Readers>,
    /// Dropped before `_lock`: the writer's connection closes before the lock is released.
    writer: writer::Handle,
    _lock: File,
}

/// What the writer has done since the store was opened: how well group commit is working.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Transactions committed (each one fsync with [`Synchronous::Full`]).
    pub commits: u64,
    /// Write calls (`create`, `append`, `push`, `acknowledge`) in those transactions, refused
    /// ones included. `writes / commits` is the average batch.
    pub writes: u64,
}

impl SqliteStore {
    /// Opens the store at `path` with [`SqliteOptions::default`], creating the file if it does
    /// not exist. See [`SqliteStore::open_with`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = longrun_store_sqlite::SqliteStore::open(dir.path().join("tasks.db"))?;
    /// # Ok::<(), longrun_core::store::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store at `path`, creating the file if it does not exist and migrating its
    /// schema to this version.
    ///
    /// This blocks while the file is opened and the unfinished tasks are loaded into the
    /// writer's memory (only those: it reads a partial index, so a file of a million finished
    /// tasks opens as fast as an empty one); from async code, call it once at start-up or in
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the file cannot be opened, locked or migrated: another store has
    /// it open, it belongs to another program, it was written by a newer version, or SQLite
    /// cannot use its write-ahead log there.
    ///
    /// ```
    /// use longrun_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
    ///
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let path = dir.path().join("tasks.db");
    /// let options = SqliteOptions {
    ///     synchronous: Synchronous::Normal,
    ///     ..SqliteOptions::default()
    /// };
    /// let store = SqliteStore::open_with(&path, options).expect("open");
    /// assert!(
    ///     SqliteStore::open(&path).is_err(),
    ///     "a file has one store at a time"
    /// );
    /// drop(store);
    /// SqliteStore::open(&path).expect("free again once the first store is gone");
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, Error> {
        // Absolute, so readers opened later find the same file even if the working directory
        // changes in between.
        let path = std::path::absolute(path.as_ref())
            .map_err(|e| backend(format!("resolving {}", path.as_ref().display()), e))?;
        let lock = connect::lock(&path)?;
        let mut conn = connect::writer(&path, options.synchronous)?;
        schema::migrate(&mut conn)?;
        let writer = writer::Writer::new(conn, path.clone(), options.max_batch)?;
        let writer = writer::Handle::spawn(writer)?;
        Ok(Self {
            readers: Arc::new(Readers::new(
                &path,
                options.max_idle_readers,
                options.max_readers,
            )),
            path,
            writer,
            _lock: lock,
        })
    }

    /// The database file, as an absolute path.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = longrun_store_sqlite::SqliteStore::open(dir.path().join("tasks.db"))?;
    /// assert!(store.path().ends_with("tasks.db"));
    /// # Ok::<(), longrun_core::store::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has done since the store was opened. Two relaxed atomic loads: cheap
    /// enough to poll.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = longrun_store_sqlite::SqliteStore::open(dir.path().join("tasks.db"))?;
    /// let stats = store.stats();
    /// assert_eq!((stats.commits, stats.writes), (0, 0));
    /// # Ok::<(), longrun_core::store::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let counters = self.writer.counters();
        Stats {
            commits: counters.commits.load(Ordering::Relaxed),
            writes: counters.writes.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TaskStore for SqliteStore {
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack {
        // Encoding here, on the caller's thread, keeps the one writer thread for SQL.
        let encoded = TaskRow::new(task).and_then(|row| Ok((row, Encoded::new(first)?)));
        match encoded {
            Ok((row, first)) => self.writer.write(|done| Write::Create {
                task: Box::new(task.clone()),
                row: Box::new(row),
                first,
                done,
            }),
            Err(error) => Ack::ready(Err(error)),
        }
    }

    fn append(&self, events: &[Arc<Event>]) -> Ack {
        if events.is_empty() {
            return Ack::ready(Ok(()));
        }
        match events.iter().map(Encoded::new).collect() {
            Ok(events) => self.writer.write(|done| Write::Append {
                events,
                inbox: None,
                done,
            }),
            Err(error) => Ack::ready(Err(error)),
        }
    }

    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack {
        let encoded = events
            .iter()
            .map(Encoded::new)
            .collect::<Result<Vec<_>, _>>()
            .and_then(|events| Ok((events, InboxRow::new(&item)?)));
        match encoded {
            Ok((events, row)) => self.writer.write(|done| Write::Append {
                events,
                inbox: Some(row),
                done,
            }),
            Err(error) => Ack::ready(Err(error)),
        }
    }

    fn get(&self, id: TaskId) -> BoxFuture<'_, Result<Option<Task>, Error>> {
        self.readers.run(move |conn| read::get(conn, id))
    }

    fn list(&self, query: &Query) -> BoxFuture<'_, Result<Page, Error>> {
        let query = query.clone();
        self.readers.run(move |conn| read::list(conn, &query))
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        self.readers.run(read::unfinished)
    }
}

impl EventLog for SqliteStore {
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>> {
        self.readers
            .run(move |conn| read::events(conn, task, after, limit))
    }
}

impl InboxStore for SqliteStore {
    fn push(&self, item: NewInboxItem) -> Ack {
        match InboxRow::new(&item) {
            Ok(row) => self.writer.write(|done| Write::Push { row, done }),
            Err(error) => Ack::ready(Err(error)),
        }
    }

    fn peek(
        &self,
        session: &Session,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<InboxItem>, Error>> {
        let session = session.clone();
        self.readers
            .run(move |conn| read::peek(conn, &session, after, limit))
    }

    fn acknowledge(&self, session: &Session, through: u64) -> BoxFuture<'_, Result<usize, Error>> {
        // Through the writer like a push, so it is ordered with the pushes called before it.
        self.writer.request(|done| {
            Command::Write(Write::Acknowledge {
                session: session.as_str().to_owned(),
                through: codec::integer(through),
                done,
            })
        })
    }
}

impl Retention for SqliteStore {
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>> {
        self.writer.request(|done| Command::Purge { purge, done })
    }
}
