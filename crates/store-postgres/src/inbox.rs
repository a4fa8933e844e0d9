//! The agent inboxes' reads and acknowledgements, on the read pool. Pushes are writes and go
//! through the writer, which keeps them in call order.

use longrun_core::{InboxItem, Session, store::Error};

use crate::{
    Db,
    codec::{self, parse_entry},
};

impl Db {
    pub(crate) async fn peek(
        &self,
        session: &Session,
        after: u64,
        limit: usize,
    ) -> Result<Vec<InboxItem>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.peek).await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[&session.as_str(), &after, &codec::count(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(InboxItem {
                    session: session.clone(),
                    position: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                    task: codec::task_id(row.get(1)),
                    at: codec::timestamp(row.get(2)),
                    entry: parse_entry(row.get(3))?,
                })
            })
            .collect()
    }

    /// Removes the items through `through`. It needs no place in the writer's order: it only
    /// removes items the agent has already seen, which no later write can change.
    pub(crate) async fn acknowledge(
        &self,
        session: &Session,
        through: u64,
    ) -> Result<usize, Error> {
        let mut client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.acknowledge).await?;
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let removed = client
            .execute(&statement, &[&session.as_str(), &through])
            .await?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}
