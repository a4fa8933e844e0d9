//! [`Cluster`] for [`PostgresStore`]: leases, claims, signals and notices.
//!
//! Everything that changes a lease goes through the writer, which owns this node's tokens: a
//! claim, a renewal or a take runs inside the next group commit (before that batch's writes, on
//! the rows as they were), and its answer comes once that commit is durable.

use std::{future, sync::Arc};

use longrun_core::{
    Claim, Event, NodeId, Notice, Renewal, Signal, Signalled, Task, TaskId,
    cluster::{Cluster, NoticeStream},
    store::{Ack, BoxFuture, Error},
};
use tokio_stream::{StreamExt, wrappers::BroadcastStream};

use crate::{PostgresStore, batch::Request, writer::Reply};

impl Cluster for PostgresStore {
    fn node(&self) -> &NodeId {
        &self.node
    }

    fn lease_ttl(&self) -> std::time::Duration {
        self.lease_ttl
    }

    fn create_held(&self, task: &Task, first: &Arc<Event>) -> Ack {
        self.write(Request::Create {
            task: Box::new(task.clone()),
            first: Arc::clone(first),
            held: true,
        })
    }

    fn claim(&self, claim: Claim) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        if claim.is_empty() {
            return Box::pin(future::ready(Ok(Vec::new())));
        }
        self.ask(Request::Claim(claim), Reply::Claim)
    }

    fn renew(&self) -> BoxFuture<'_, Result<Renewal, Error>> {
        self.ask(Request::Renew, Reply::Renew)
    }

    fn release(&self, tasks: &[TaskId]) -> Ack {
        if tasks.is_empty() {
            return Ack::ready(Ok(()));
        }
        self.write(Request::Release(tasks.to_vec()))
    }

    fn signal(&self, task: TaskId, signal: Signal) -> Ack {
        self.write(Request::Signal { task, signal })
    }

    fn take_signals(&self) -> BoxFuture<'_, Result<Vec<Signalled>, Error>> {
        self.ask(Request::TakeSignals, Reply::Signals)
    }

    fn notices(&self) -> NoticeStream {
        // A stream that fell behind the broadcast lost notices: it says so, and goes on.
        let stream = BroadcastStream::new(self.notices.subscribe())
            .map(|notice| notice.unwrap_or(Notice::Missed));
        Box::pin(stream)
    }
}
