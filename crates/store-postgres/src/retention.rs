//! Purging expired and surplus finished tasks, in bounded batches, and the dead-tuple count
//! that shows whether vacuum keeps up.
//!
//! Deleting is what leaves dead tuples behind, so a purge never deletes everything at once: each
//! statement removes at most `purge_batch` tasks (with their events and signals) in a
//! transaction of its own, which keeps locks short and lets autovacuum reclaim space between
//! batches instead of after one huge transaction.

use longrun_core::store::{Error, Purge};
use uuid::Uuid;

use crate::{Db, codec};

impl Db {
    pub(crate) async fn purge(&self, purge: Purge, batch: usize) -> Result<usize, Error> {
        let mut client = self.client().await?;
        let batch = codec::count(batch.max(1));
        let mut removed = 0;

        let expired = client.prepare_cached(&self.sql.purge_expired).await?;
        let now = codec::millis(purge.now);
        loop {
            let count: i64 = client.query_one(&expired, &[&now, &batch]).await?.get(0);
            removed += codec::usize_of(count);
            // Fewer than a batch: nothing is left, or what is left is locked by a writer and
            // waits for the next purge.
            if count < batch {
                break;
            }
        }

        // The cap: find the newest finished task beyond it once, then remove it and everything
        // that finished before it, a batch at a time. Tasks finishing meanwhile finish later,
        // so they are not caught by the cut.
        let cutoff = client.prepare_cached(&self.sql.cap_cutoff).await?;
        let Some(cut) = client
            .query_opt(&cutoff, &[&codec::count(purge.max_finished)])
            .await?
        else {
            return Ok(removed);
        };
        let (finished_at, id): (i64, Uuid) = (cut.get(0), cut.get(1));
        let through = client.prepare_cached(&self.sql.purge_through).await?;
        loop {
            let count: i64 = client
                .query_one(&through, &[&finished_at, &id, &batch])
                .await?
                .get(0);
            removed += codec::usize_of(count);
            if count < batch {
                break;
            }
        }
        Ok(removed)
    }

    pub(crate) async fn dead_tuples(&self, schema: &str) -> Result<u64, Error> {
        let mut client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.dead_tuples).await?;
        let dead: i64 = client.query_one(&statement, &[&schema]).await?.get(0);
        Ok(u64::try_from(dead).unwrap_or(0))
    }
}
