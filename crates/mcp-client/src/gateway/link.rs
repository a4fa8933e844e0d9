//! One upstream's connection, shared by all its kinds' tasks, made again after it is lost.
//!
//! The connection is made on first use and kept; a task that finds it broken (an
//! [`Error::Disconnected`]) drops it, and the next task connects again. A task never waits on
//! another's call, only on the connect itself (one at a time, behind the async lock).

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::{Client, Error, Protocol, Target};

pub(crate) struct Link {
    pub(crate) name: String,
    target: Target,
    protocol: Protocol,
    client: Mutex<Option<Arc<Client>>>,
}

impl Link {
    pub(crate) fn new(name: String, target: Target, protocol: Protocol) -> Self {
        Self {
            name,
            target,
            protocol,
            client: Mutex::new(None),
        }
    }

    /// The live connection, made now if there is none.
    pub(crate) async fn client(&self) -> Result<Arc<Client>, Error> {
        let mut client = self.client.lock().await;
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let connected = Arc::new(
            Client::builder(self.target.clone())
                .protocol(self.protocol)
                .client_info("longrun-gateway", env!("CARGO_PKG_VERSION"))
                .relays()
                .connect()
                .await?,
        );
        *client = Some(connected.clone());
        Ok(connected)
    }

    /// Drops `lost` if it is still the live connection.
    pub(crate) async fn forget(&self, lost: &Arc<Client>) {
        let mut client = self.client.lock().await;
        if client.as_ref().is_some_and(|c| Arc::ptr_eq(c, lost)) {
            *client = None;
        }
    }
}
