//! The listener: one dedicated connection `LISTEN`ing on the schema's channel, fanning every
//! notice out to this node's notice streams.
//!
//! Notices are hints (the database is the source of truth), so a lost connection costs only
//! latency: the listener reconnects with a growing delay and, once it listens again, sends
//! `Missed` so that every watcher re-reads what it watches.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use longrun_core::Notice;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification};
use tokio_util::sync::CancellationToken;

use crate::notice;

/// The first delay before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection that listens, and the notifications it receives.
pub(crate) struct Listening {
    /// Kept so the connection stays open: it closes when its client is dropped.
    _client: Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
}

/// Connects and listens on `channel`; notifications sent once this returns are received.
pub(crate) async fn listen(
    config: &Config,
    channel: &str,
) -> Result<Listening, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (forward, notifications) = mpsc::unbounded_channel();
    // The connection hands notifications out only to whoever polls it for messages, so a task
    // of its own polls it and forwards them. It ends with the connection, which drops the
    // sender and so tells the listener to reconnect.
    #[expect(
        clippy::disallowed_methods,
        reason = "drives one tokio-postgres connection, as that crate requires; it ends with the connection"
    )]
    tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if forward.send(notification).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the notice connection broke");
                    break;
                }
            }
        }
    });
    // The channel is `longrun_` and a validated schema name: no quoting can go wrong.
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    Ok(Listening {
        _client: client,
        notifications,
    })
}

/// Receives notices until cancelled.
pub(crate) struct Listener {
    pub(crate) config: Config,
    /// How long connecting and `LISTEN` may take ([`crate::bound`]). A silent partition of an
    /// open connection is noticed by the TCP keepalives `bound::configure` sets.
    pub(crate) bound: Duration,
    pub(crate) channel: String,
    pub(crate) notices: broadcast::Sender<Notice>,
    pub(crate) cancel: CancellationToken,
}

impl Listener {
    /// Fans out what `listening` receives, listening again whenever the connection is lost.
    pub(crate) async fn run(self, mut listening: Listening) {
        loop {
            let notification = tokio::select! {
                () = self.cancel.cancelled() => return,
                notification = listening.notifications.recv() => notification,
            };
            match notification {
                Some(notification) => {
                    for notice in notice::decode(notification.payload()) {
                        // No stream open is no error: notices are for whoever listens now.
                        let _ = self.notices.send(notice);
                    }
                }
                None => {
                    let Some(again) = self.reconnect().await else {
                        return;
                    };
                    listening = again;
                    let _ = self.notices.send(Notice::Missed);
                }
            }
        }
    }

    /// Listens again, waiting longer after each failure; `None` once cancelled.
    async fn reconnect(&self) -> Option<Listening> {
        let mut delay = MIN_BACKOFF;
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            match crate::bound::within(self.bound, listen(&self.config, &self.channel)).await {
                Ok(listening) => {
                    tracing::info!(channel = self.channel, "listening for notices again");
                    return Some(listening);
                }
                Err(error) => {
                    tracing::warn!(%error, ?delay, "cannot listen for notices; trying again");
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
