//! Purging in bounded steps: expired finished tasks first, then the earliest-finished beyond
//! the cap, at most [`PURGE_STEP`] tasks per batch, so a large purge shares the writer with
//! the writes that keep arriving instead of holding them up.

use longrun_core::store::Purge;
use rusqlite::{Connection, params};

use super::Done;
use crate::codec;

/// Finished tasks one purge step removes at most: a bound on how long a step holds its batch.
pub(super) const PURGE_STEP: usize = 256;

/// The expired finished tasks, first to expire first. Spelled to match `tasks_by_expiry`.
pub(crate) const EXPIRED: &str = "SELECT key FROM tasks \
     WHERE expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at, id LIMIT ?2";

/// The finished tasks, earliest-finished first. Spelled to match `tasks_by_finish`.
pub(crate) const EARLIEST_FINISHED: &str = "SELECT key FROM tasks \
     WHERE finished_at IS NOT NULL ORDER BY finished_at, id LIMIT ?1";

/// A purge in progress.
pub(super) struct PurgeJob {
    pub(super) purge: Purge,
    pub(super) removed: usize,
    /// Whether every expired task is gone, so only the cap is left.
    pub(super) expired: bool,
    pub(super) done: Done<usize>,
}

/// Runs one bounded step of `job`: expired tasks first, then the earliest-finished beyond the
/// cap. Returns whether the job is finished.
pub(super) fn step(conn: &Connection, job: &mut PurgeJob) -> rusqlite::Result<bool> {
    let mut budget = PURGE_STEP;
    if !job.expired {
        let now = codec::millis(job.purge.now);
        let keys = select_keys(conn, EXPIRED, params![now, codec::limit(budget)])?;
        remove(conn, &keys)?;
        job.removed += keys.len();
        budget -= keys.len();
        if budget == 0 {
            // There may be more: the next batch goes on.
            return Ok(false);
        }
        job.expired = true;
    }
    let finished: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'finished_tasks'")?
        .query_row([], |row| row.get(0))?;
    let excess = usize::try_from(finished)
        .unwrap_or(0)
        .saturating_sub(job.purge.max_finished);
    if excess == 0 {
        return Ok(true);
    }
    let take = excess.min(budget);
    let keys = select_keys(conn, EARLIEST_FINISHED, params![codec::limit(take)])?;
    remove(conn, &keys)?;
    job.removed += keys.len();
    // Finished once the excess is gone, or when the table has fewer finished tasks than the
    // counter says (never expected; stopping beats looping).
    Ok(keys.len() >= excess || keys.len() < take)
}

/// The row keys a purge query selects.
fn select_keys(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let keys = stmt.query_map(params, |row| row.get::<_, i64>(0))?;
    keys.collect()
}

/// Removes tasks and their logs.
fn remove(conn: &Connection, keys: &[i64]) -> rusqlite::Result<()> {
    let mut events = conn.prepare_cached("DELETE FROM events WHERE task = ?1")?;
    let mut tasks = conn.prepare_cached("DELETE FROM tasks WHERE key = ?1")?;
    for key in keys {
        events.execute([key])?;
        tasks.execute([key])?;
    }
    Ok(())
}
