//! What a caller may choose when opening a store: durability against power loss, and the
//! bounds of group commit and of the read pool.

/// How hard each commit works to survive a power loss (SQLite's `PRAGMA synchronous`, in WAL
/// mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit reaches the disk (an fsync of the write-ahead log) before the acks of its
    /// writes resolve: an acknowledged write survives the process dying, the operating system
    /// crashing and the power going out. This is what the store traits mean by *durable*.
    #[default]
    Full,
    /// Commits are written to the write-ahead log but synced only when SQLite checkpoints it
    /// into the database. An acknowledged write still survives the process dying in any way
    /// (`kill -9`, a panic, the OOM killer), because the operating system already holds it.
    /// What this gives up: a power loss or kernel crash may roll back the most recent commits,
    /// those since the last checkpoint, as if they had never been acknowledged (the file stays
    /// consistent; it just loses a suffix of history). Each commit then costs a `write` instead
    /// of an fsync. Choose it only where losing the last moments of work on a power cut is
    /// acceptable.
    Normal,
}

impl Synchronous {
    /// The pragma's value.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// How to open a [`SqliteStore`](crate::SqliteStore).
///
/// ```
/// use longrun_store_sqlite::{SqliteOptions, Synchronous};
///
/// let options = SqliteOptions {
///     synchronous: Synchronous::Normal,
///     ..SqliteOptions::default()
/// };
/// assert_eq!(options.max_batch, SqliteOptions::default().max_batch);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How hard each commit works to survive a power loss. Default: [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// At most this many write calls share one transaction (one fsync). A batch is whatever is
    /// queued when the writer gets to it, never held back to wait for more: a lone write
    /// commits at once, and writes that arrive while a commit is in flight share the next one.
    /// The bound keeps one transaction, and the wait of the first write in it, from growing
    /// without limit under a flood. Default: 1024; 0 counts as 1.
    pub max_batch: usize,
    /// Read connections kept open between reads. More may be open at once when many reads run
    /// together (up to [`max_readers`](Self::max_readers)); those beyond this many are closed
    /// when their read ends. Default: 8.
    pub max_idle_readers: usize,
    /// Reads that run at once, each on one of tokio's blocking threads with its own
    /// connection; a read beyond these waits (asynchronously) for one to end. Without a bound,
    /// a burst of reads (10,000 event streams opening together) starts up to tokio's 512
    /// blocking threads and as many connections, whose memory stays resident long after the
    /// burst, while SQLite reads are CPU work that more threads than CPUs cannot speed up.
    /// Default: 8; 0 counts as 1.
    pub max_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::default(),
            max_batch: 1024,
            max_idle_readers: 8,
            max_readers: 8,
        }
    }
}
