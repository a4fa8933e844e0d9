//! Bounds on every round trip to PostgreSQL ([`PostgresOptions::io_timeout`]).
//!
//! A database that refuses or closes connections fails calls at once; one behind a *silent*
//! partition (packets go nowhere, the connection stays open, nothing answers) would hold every
//! call until TCP gives up, about 15 minutes later, and a door's request with it. So every
//! connect, statement and batch here is bounded, and a connection whose call ran out of time
//! is dropped, since its state is unknown (a statement may still be queued or running on it):
//! the next call opens another, which also finds a database that moved (a fail-over) rather
//! than waiting on the old address.
//!
//! [`PostgresOptions::io_timeout`]: crate::PostgresOptions::io_timeout

use std::time::Duration;

use longrun_core::store::Error;
use tokio_postgres::{Config, Row, Statement, types::ToSql};

use crate::error::backend;

/// The error of a call that ran out of time.
pub(crate) fn timed_out(bound: Duration) -> Error {
    backend(timed_out_message(bound))
}

/// What [`timed_out`] says, for errors that wrap it.
pub(crate) fn timed_out_message(bound: Duration) -> String {
    format!(
        "PostgreSQL did not answer within {bound:?} (io_timeout): it is unreachable or \
         overloaded; the connection was dropped and the next call opens another"
    )
}

/// What a backend error says without the `Backend` variant's own prefix, for errors that
/// wrap it.
pub(crate) fn cause(error: &Error) -> String {
    match error {
        Error::Backend(source) => source.to_string(),
        other => other.to_string(),
    }
}

/// `call`, failed with [`timed_out`] if it takes longer than `bound`.
pub(crate) async fn within<T, E>(
    bound: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, Error>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(bound, call).await {
        Ok(result) => result.map_err(backend),
        Err(_) => Err(timed_out(bound)),
    }
}

/// Sets what the driver offers to notice a dead peer on every connection made with `config`:
/// a bound on opening the socket, TCP keepalives on idle connections (the listener's, above
/// all, which may wait for a notice for ever), and, on Linux, a bound on how long sent data
/// may stay unacknowledged. They catch a partition the statements' own bounds do not see.
pub(crate) fn configure(config: &mut Config, bound: Duration) {
    let probe = (bound / 3).max(Duration::from_secs(1));
    config
        .connect_timeout(bound)
        .keepalives(true)
        .keepalives_idle(bound.max(Duration::from_secs(1)))
        .keepalives_interval(probe)
        .keepalives_retries(3)
        .tcp_user_timeout(bound);
}

/// A read connection from the pool whose every call is bounded. One whose call ran out of
/// time is taken out of the pool and closed, not returned to it.
pub(crate) struct Reader {
    object: Option<deadpool_postgres::Object>,
    bound: Duration,
}

impl Reader {
    /// A connection from `pool`, within `bound` (a new one is connected when none is free).
    pub(crate) async fn get(
        pool: &deadpool_postgres::Pool,
        bound: Duration,
    ) -> Result<Self, Error> {
        let object = within(bound, pool.get()).await?;
        Ok(Self {
            object: Some(object),
            bound,
        })
    }

    pub(crate) async fn prepare_cached(&mut self, sql: &str) -> Result<Statement, Error> {
        let client = self.client()?;
        let outcome = tokio::time::timeout(self.bound, client.prepare_cached(sql)).await;
        self.settle(outcome)
    }

    pub(crate) async fn query(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let client = self.client()?;
        let outcome = tokio::time::timeout(self.bound, client.query(statement, params)).await;
        self.settle(outcome)
    }

    pub(crate) async fn query_opt(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let client = self.client()?;
        let outcome = tokio::time::timeout(self.bound, client.query_opt(statement, params)).await;
        self.settle(outcome)
    }

    pub(crate) async fn query_one(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        let client = self.client()?;
        let outcome = tokio::time::timeout(self.bound, client.query_one(statement, params)).await;
        self.settle(outcome)
    }

    pub(crate) async fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let client = self.client()?;
        let outcome = tokio::time::timeout(self.bound, client.execute(statement, params)).await;
        self.settle(outcome)
    }

    fn client(&self) -> Result<&deadpool_postgres::Object, Error> {
        // Only a call that ran out of time takes the connection, and it returned that error.
        self.object.as_ref().ok_or_else(|| timed_out(self.bound))
    }

    /// A call's result; a call that ran out of time drops the connection from the pool.
    fn settle<T>(
        &mut self,
        outcome: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, Error> {
        match outcome {
            Ok(result) => result.map_err(backend),
            Err(_) => {
                if let Some(object) = self.object.take() {
                    // Out of the pool and dropped: its client closes, and the pool connects a
                    // new one when asked.
                    drop(deadpool_postgres::Object::take(object));
                }
                Err(timed_out(self.bound))
            }
        }
    }
}
