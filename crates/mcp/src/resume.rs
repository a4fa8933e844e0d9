//! Resumable SSE streams on `/mcp` (Streamable HTTP, SEP-1699): every event has an id, and a
//! 2025-11-25 client that lost a stream reconnects with `GET` and `Last-Event-ID` to get what
//! it missed, then the live events.
//!
//! A [`Replay`] sits between a call (or a session's GET stream) and the HTTP connections that
//! carry it: a pump moves the call's messages into a log, readers read the log from any point.
//! Event ids are `<stream>-<seq>`; `seq` 0 is the priming event (an id, empty data, a `retry`),
//! so a client can resume even before the first message.
//!
//! Invariants:
//! - The call sees its client gone (its receiver dropped) only when no reader was attached for
//!   a whole `resume_window`: a dropped connection is not a cancellation, a silent client is.
//! - A replay stays findable for `resume_window` after its last message, so a final response
//!   lost with the connection can still be fetched.
//! - `Log` is a plain lock, never held across an await.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};
use futures_util::{Stream, StreamExt as _};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// How many messages a replay keeps; a client resuming from before the oldest gets the oldest
/// on (the calls of this door send few messages: questions, progress, one response).
const KEPT: usize = 1024;

/// How long a client waits before reconnecting to a stream the server closed.
pub(crate) const RETRY: Duration = Duration::from_millis(500);

/// The replays of one session, by stream number.
#[derive(Debug, Default)]
pub(crate) struct Replays {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Replay>>>,
}

impl Replays {
    /// Starts logging `messages` as a new stream; forgets it `window` after it ended, and drops
    /// `messages` (the call's client is gone) after `window` without a reader.
    pub(crate) fn start(
        self: &Arc<Self>,
        first: Option<Value>,
        messages: mpsc::Receiver<Value>,
        window: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Replay> {
        let stream = self.next.fetch_add(1, Ordering::Relaxed);
        let replay = Arc::new(Replay::new(stream));
        if let Some(first) = first {
            let mut log = replay.log.lock();
            log.last = 1;
            log.messages.push_back((1, first));
        }
        self.open.lock().insert(stream, replay.clone());
        let replays = Arc::downgrade(self);
        #[expect(
            clippy::disallowed_methods,
            reason = "the pump ends with its stream's messages or the surface's shutdown; the door owns no TaskTracker yet"
        )]
        tokio::spawn(pump(replay.clone(), messages, window, replays, shutdown));
        replay
    }

    /// The replay a `Last-Event-ID` names, and the sequence number to resume after.
    pub(crate) fn find(&self, last_event_id: &str) -> Option<(Arc<Replay>, u64)> {
        let (stream, seq) = last_event_id.trim().split_once('-')?;
        let stream: u64 = stream.parse().ok()?;
        let seq: u64 = seq.parse().ok()?;
        let replay = self.open.lock().get(&stream)?.clone();
        Some((replay, seq))
    }
}

/// One stream's log.
#[derive(Debug)]
pub(crate) struct Replay {
    stream: u64,
    log: Mutex<Log>,
    /// Woken when a message arrives, the stream ends, or a reader comes or goes.
    changed: Notify,
    /// Woken when a reader comes or goes (not by messages, so a chatty call with nobody
    /// reading is still given up).
    readers_changed: Notify,
}

#[derive(Debug, Default)]
struct Log {
    /// (seq, message), oldest first; seq starts at 1.
    messages: VecDeque<(u64, Value)>,
    last: u64,
    done: bool,
    readers: usize,
}

impl Replay {
    fn new(stream: u64) -> Self {
        Self {
            stream,
            log: Mutex::new(Log::default()),
            changed: Notify::new(),
            readers_changed: Notify::new(),
        }
    }

    /// This stream's events after `after` (0: all of them, with `prime` the priming event
    /// first), then the live ones, until the stream ends or `close_after` passes (a client
    /// resumes from there).
    pub(crate) fn events(
        self: &Arc<Self>,
        after: u64,
        close_after: Option<Duration>,
        prime: bool,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        let reader = Reader::attach(self.clone(), after);
        // axum's `Event` leaves out an empty `data:` field, and an event without one is never
        // dispatched: the priming event is written by hand.
        let priming = (prime && after == 0).then(|| {
            Bytes::from(format!(
                "id: {}-0\nretry: {}\ndata:\n\n",
                self.stream,
                RETRY.as_millis()
            ))
        });
        let live = futures_util::stream::unfold(reader, |mut reader| async move {
            let (seq, message) = reader.next().await?;
            let event = format!("id: {}-{seq}\ndata: {message}\n\n", reader.replay.stream);
            Some((Bytes::from(event), reader))
        });
        let deadline = async move {
            match close_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        futures_util::stream::iter(priming)
            .chain(live)
            .take_until(deadline)
    }
}

/// An SSE response carrying `events`, with a comment every `keep_alive` so that proxies keep
/// an idle stream open.
pub(crate) fn response(
    events: impl Stream<Item = Bytes> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let ticks = futures_util::stream::unfold((), move |()| async move {
        tokio::time::sleep(keep_alive).await;
        Some((Some(Bytes::from_static(b":\n\n")), ()))
    });
    // `None` marks the end of the events: the ticks alone do not keep the stream open.
    let events = events.map(Some).chain(futures_util::stream::iter([None]));
    let body = futures_util::stream::select(events, ticks)
        .take_while(|frame| std::future::ready(frame.is_some()))
        .filter_map(std::future::ready)
        .map(Ok::<_, Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// One connection reading a replay; counted while it lives.
struct Reader {
    replay: Arc<Replay>,
    after: u64,
}

impl Reader {
    fn attach(replay: Arc<Replay>, after: u64) -> Self {
        replay.log.lock().readers += 1;
        replay.changed.notify_waiters();
        replay.readers_changed.notify_waiters();
        Self { replay, after }
    }

    /// The next message after the last one read; `None` once the stream ended.
    async fn next(&mut self) -> Option<(u64, Value)> {
        loop {
            let changed = self.replay.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let log = self.replay.log.lock();
                if let Some((seq, message)) = log.messages.iter().find(|(seq, _)| *seq > self.after)
                {
                    self.after = *seq;
                    return Some((*seq, message.clone()));
                }
                if log.done {
                    return None;
                }
            }
            changed.await;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.replay.log.lock().readers -= 1;
        self.replay.changed.notify_waiters();
        self.replay.readers_changed.notify_waiters();
    }
}

/// Moves a call's messages into the log until it ends, or until nobody read for `window`.
async fn pump(
    replay: Arc<Replay>,
    mut messages: mpsc::Receiver<Value>,
    window: Duration,
    replays: Weak<Replays>,
    shutdown: CancellationToken,
) {
    // One future across messages: a message does not restart the window.
    let abandoned = abandoned(&replay, window);
    let mut abandoned = std::pin::pin!(abandoned);
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => {
                    let mut log = replay.log.lock();
                    log.last += 1;
                    let seq = log.last;
                    log.messages.push_back((seq, message));
                    if log.messages.len() > KEPT {
                        log.messages.pop_front();
                    }
                    drop(log);
                    replay.changed.notify_waiters();
                }
                None => break,
            },
            () = &mut abandoned => break,
            () = shutdown.cancelled() => break,
        }
    }
    // Dropping `messages` tells the call nobody listens any more (if it still runs).
    drop(messages);
    replay.log.lock().done = true;
    replay.changed.notify_waiters();
    // Kept a while for a client that lost the end of the stream.
    tokio::select! {
        () = tokio::time::sleep(window) => {}
        () = shutdown.cancelled() => {}
    }
    if let Some(replays) = replays.upgrade() {
        replays.open.lock().remove(&replay.stream);
    }
}

/// Resolves once no reader has been attached for a whole `window`.
async fn abandoned(replay: &Replay, window: Duration) {
    loop {
        let changed = replay.readers_changed.notified();
        let mut changed = std::pin::pin!(changed);
        changed.as_mut().enable();
        if replay.log.lock().readers > 0 {
            changed.await;
            continue;
        }
        // Unread: give a client the window to come back; a reader coming (and going) looks
        // again.
        tokio::select! {
            () = tokio::time::sleep(window) => {
                if replay.log.lock().readers == 0 {
                    return;
                }
            }
            () = changed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reader_resumes_after_the_last_event_it_saw() {
        let replays = Arc::new(Replays::default());
        let (sender, messages) = mpsc::channel(8);
        let replay = replays.start(
            None,
            messages,
            Duration::from_secs(30),
            CancellationToken::new(),
        );
        sender.send(json!(1)).await.unwrap();
        sender.send(json!(2)).await.unwrap();
        let first: Vec<_> = replay.events(0, None, true).take(2).collect().await;
        assert_eq!(first.len(), 2);
        let (found, after) = replays.find(&format!("{}-1", replay.stream)).unwrap();
        assert_eq!(after, 1);
        sender.send(json!(3)).await.unwrap();
        drop(sender);
        let mut rest = Box::pin(found.events(after, None, true));
        let mut seen = 0;
        while rest.next().await.is_some() {
            seen += 1;
        }
        // Messages 2 and 3, no priming event.
        assert_eq!(seen, 2);
        assert!(replays.find("nonsense").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unread_stream_is_given_up_after_the_window() {
        let replays = Arc::new(Replays::default());
        let (sender, messages) = mpsc::channel(8);
        let _replay = replays.start(
            None,
            messages,
            Duration::from_secs(5),
            CancellationToken::new(),
        );
        // Nobody reads: after the window the call's sender sees its client gone, however
        // much it says meanwhile (a message every 2 s, a window of 5 s).
        let mut sent = 0;
        while sender.send(json!(sent)).await.is_ok() {
            sent += 1;
            assert!(sent < 10, "a stream nobody reads was never given up");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(sent <= 3, "given up after {sent} messages");
    }
}
