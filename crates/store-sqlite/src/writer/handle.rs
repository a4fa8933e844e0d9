//! The store's side of the writer: the channel commands go in by, the thread to join on close,
//! and the counters behind [`Stats`](crate::Stats).

use std::{
    sync::{
        Arc,
        atomic::AtomicU64,
        mpsc::{self, Sender},
    },
    thread::JoinHandle,
};

use longrun_core::store::{Ack, BoxFuture, Error};
use tokio::sync::oneshot;

use super::{Command, Done, Write, Writer};
use crate::error::{Failure, backend};

/// What the writer has done, for [`Stats`](crate::Stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) writes: AtomicU64,
}

/// The store's side of the writer: the channel in, and the thread to join on close.
pub(crate) struct Handle {
    /// `None` only while dropping, so the thread sees the channel close before it is joined.
    commands: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Handle {
    /// Starts `writer` on a thread of its own.
    pub(crate) fn spawn(writer: Writer) -> Result<Self, Error> {
        let (commands, receiver) = mpsc::channel();
        let counters = Arc::clone(&writer.counters);
        let thread = std::thread::Builder::new()
            .name("longrun-sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| backend("starting the SQLite writer thread", e))?;
        Ok(Self {
            commands: Some(commands),
            thread: Some(thread),
            counters,
        })
    }

    /// Queues a write now; the ack resolves once its batch has committed.
    pub(crate) fn write(&self, write: impl FnOnce(Done<()>) -> Write) -> Ack {
        let (done, result) = oneshot::channel();
        if !self.send(Command::Write(write(done))) {
            return Ack::ready(Err(stopped()));
        }
        Ack::pending(async move { result.await.unwrap_or_else(|_| Err(stopped())) })
    }

    /// Queues a command now; the future gives its result once its batch has committed.
    pub(crate) fn request<T: Send + 'static>(
        &self,
        command: impl FnOnce(Done<T>) -> Command,
    ) -> BoxFuture<'static, Result<T, Error>> {
        let (done, result) = oneshot::channel();
        let sent = self.send(command(done));
        Box::pin(async move {
            if !sent {
                return Err(stopped());
            }
            result.await.unwrap_or_else(|_| Err(stopped()))
        })
    }

    fn send(&self, command: Command) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|commands| commands.send(command).is_ok())
    }

    /// What the writer has done so far.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Drop for Handle {
    /// Closes the channel and waits for the writer to commit what is queued and close its
    /// connection, so the file can be opened again as soon as the store is gone.
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            // A writer that panicked has already failed its acks (their senders dropped);
            // there is nothing more to report here.
            let _ = thread.join();
        }
    }
}

/// The error of a write that never reached the writer, or whose writer went away.
pub(super) fn stopped() -> Error {
    Failure::plain(
        "the SQLite writer thread has stopped, so the write was not stored; reopen the store",
    )
    .into()
}
