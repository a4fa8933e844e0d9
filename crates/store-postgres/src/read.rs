//! Reads of tasks and their logs, on the read pool.
//!
//! Reads never go through the writer: they see what has committed, which includes every write
//! whose ack has resolved.

use std::sync::Arc;

use longrun_core::{
    Event, Seq, Task, TaskId,
    store::{Cursor, Error, Page, Query},
};
use tokio_postgres::types::ToSql;

use crate::{
    Db,
    codec::{self, parse_event, parse_task},
};

/// A listing parameter, owned until the query has run.
type Param = Box<dyn ToSql + Sync + Send>;

impl Db {
    pub(crate) async fn get(&self, id: TaskId) -> Result<Option<Task>, Error> {
        let mut client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.get).await?;
        let row = client.query_opt(&statement, &[&codec::uuid(id)]).await?;
        row.map(|row| parse_task(row.get(0))).transpose()
    }

    /// A page newest first: keyset pagination on (created_at, id) down the `tasks_newest`
    /// index, every filter applied in SQL so that a page holds `limit` matching tasks however
    /// sparse they are. One row more than asked tells whether another page exists.
    pub(crate) async fn list(&self, query: &Query) -> Result<Page, Error> {
        if query.limit == 0 {
            return Ok(Page {
                tasks: Vec::new(),
                next: None,
            });
        }
        let mut sql = self.sql.list.clone();
        let mut params: Vec<Param> = Vec::new();
        // Appends `clause` with its `$?` replaced by the next parameter's number.
        let mut bind = |sql: &mut String, clause: &str, value: Param| {
            params.push(value);
            sql.push_str(&clause.replace("$?", &format!("${}", params.len())));
        };
        bind(
            &mut sql,
            " AND (expires_at IS NULL OR expires_at > $?::int8)",
            Box::new(codec::millis(query.now)),
        );
        if let Some(after) = query.after {
            bind(
                &mut sql,
                " AND (created_at, id) < ($?::int8",
                Box::new(codec::millis(after.created_at)),
            );
            bind(&mut sql, ", $?::uuid)", Box::new(codec::uuid(after.id)));
        }
        let filter = &query.filter;
        if !filter.status.is_empty() {
            let statuses: Vec<String> = filter
                .status
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            bind(
                &mut sql,
                " AND status = ANY($?::text[])",
                Box::new(statuses),
            );
        }
        if let Some(kind) = &filter.kind {
            bind(&mut sql, " AND kind = $?::text", Box::new(kind.clone()));
        }
        if let Some(session) = &filter.session {
            bind(
                &mut sql,
                " AND session = $?::text",
                Box::new(session.as_str().to_owned()),
            );
        }
        if let Some(owner) = &filter.owner {
            bind(
                &mut sql,
                " AND owner = $?::text",
                Box::new(owner.as_str().to_owned()),
            );
        }
        if !filter.labels.is_empty() {
            // Containment of a flat object of strings: every label present with its value,
            // which is what `Filter::matches` asks.
            bind(
                &mut sql,
                " AND labels @> ($?::text)::jsonb",
                Box::new(codec::labels(&filter.labels)?),
            );
        }
        let limit = query.limit.min(usize::MAX - 1);
        bind(
            &mut sql,
            " ORDER BY created_at DESC, id DESC LIMIT $?::int8",
            Box::new(codec::count(limit + 1)),
        );

        let mut client = self.client().await?;
        let statement = client.prepare_cached(&sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&statement, &refs).await?;
        let more = rows.len() > limit;
        let tasks = rows
            .iter()
            .take(limit)
            .map(|row| parse_task(row.get(0)))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            tasks.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page { tasks, next })
    }

    pub(crate) async fn unfinished(&self) -> Result<Vec<Task>, Error> {
        let mut client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.unfinished).await?;
        let rows = client.query(&statement, &[]).await?;
        rows.iter().map(|row| parse_task(row.get(0))).collect()
    }

    pub(crate) async fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Arc<Event>>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let statement = client.prepare_cached(&self.sql.read_events).await?;
        let rows = client
            .query(
                &statement,
                &[&codec::uuid(task), &codec::seq(after), &codec::count(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| parse_event(row.get(0)).map(Arc::new))
            .collect()
    }
}
