//! Opening connections to the file, each with the settings its job needs, and the lock that
//! keeps one store per file.

use std::{
    ffi::OsString,
    fs::{File, OpenOptions, TryLockError},
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use longrun_core::store::Error;
use rusqlite::{Connection, OpenFlags, config::DbConfig};

use crate::{
    error::{Failure, backend},
    options::Synchronous,
};

/// How long a connection waits for a lock another connection holds before giving up. In WAL
/// mode readers never wait for the writer; this covers the rare moments SQLite itself needs an
/// exclusive lock (recovering the log after a crash, say).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How large the write-ahead log may stay after a checkpoint. Without a limit, one burst leaves
/// a log file as large as the burst on disk for good.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Prepared statements each connection keeps: every fixed query of the store, plus room for
/// the shapes of listing that filters produce.
const STATEMENT_CACHE: usize = 64;

/// The writer's connection: creates the file if needed and switches it to WAL.
pub(crate) fn writer(path: &Path, synchronous: Synchronous) -> Result<Connection, Error> {
    let failed = |e| backend(format!("opening {} for writing", path.display()), e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(failed)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    // WAL lets readers run beside the writer, and makes a commit one append to the log (one
    // fsync) instead of a rollback journal's several.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Failure::plain(format!(
            "{} cannot use SQLite's write-ahead log (journal mode stayed `{mode}`); the store \
             needs a file on a local disk",
            path.display()
        ))
        .into());
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(failed)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .map_err(failed)?;
    stable_plans(&conn).map_err(failed)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Turns on SQLite's query planner stability guarantee: a cached statement keeps its plan
/// whatever its parameters are. Without it, the bundled SQLite (built with STAT4) re-planned
/// the log read (`read::events`) on every call with a new task, which was a tenth of the CPU
/// of a blocking A2A call (perf, `longrun-bench doors --door a2a`). Every statement here is
/// written for one plan, which `schema`'s query-plan tests check under the same setting.
pub(crate) fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
}

/// A read-only connection for the read pool.
pub(crate) fn reader(path: &Path) -> Result<Connection, Error> {
    let failed = |e| backend(format!("opening {} for reading", path.display()), e);
    // Read-only, so a bug in a read path can never write behind the writer's back (and its
    // in-memory cache's).
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(failed)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    stable_plans(&conn).map_err(failed)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The lock file beside the database: `<path>-lock`, next to SQLite's own `-wal` and `-shm`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push("-lock");
    PathBuf::from(name)
}

/// Takes the file's writer lock, held for as long as the returned file is open.
///
/// The writer validates every write against its in-memory copy of the unfinished tasks, so a
/// second store writing the same file (in this process or another) would validate against a
/// stale copy and could store events the state machine never saw in order. The lock makes that
/// an error at open instead. It is a separate file because SQLite's own POSIX locks on the
/// database are released whenever *any* handle to it in the process is closed.
pub(crate) fn lock(path: &Path) -> Result<File, Error> {
    let lock = lock_path(path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| backend(format!("creating the lock file {}", lock.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Failure::plain(format!(
            "{} is already open in another SqliteStore, in this process or another; a file has \
             one writer, so share that store (behind an Arc) instead of opening it twice",
            path.display()
        ))
        .into()),
        // Where the platform has no file locks, go on without one.
        Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => Ok(file),
        Err(TryLockError::Error(e)) => Err(backend(
            format!("locking {} for this store", lock.display()),
            e,
        )),
    }
}
