//! Where push-notification configs are kept: A2A's view of the shared delivery store
//! ([`longrun_delivery::Store`]), one SQLite file (so they, and how far each delivery got,
//! survive a restart), or memory when no file is configured.
//!
//! What only A2A needs (the notification token, the `Authorization` credentials, the version
//! the config was made in) is the record's detail, as JSON. A file written before the store
//! was shared (a `push_configs` table) is migrated when opened.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{error::Error, version::Version};

/// The door's name in the shared store.
const DOOR: &str = "a2a";

/// Moves configs from the table this door kept before the store was shared (a no-op on a new
/// file: the old table is created empty, then dropped).
const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS push_configs (
    task        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    scheme      TEXT    NOT NULL,
    credentials TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    delivered   INTEGER NOT NULL,
    PRIMARY KEY (task, id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO deliveries (door, task, id, owner, url, detail, delivered)
    SELECT 'a2a', task, id, owner, url,
           json_object('token', token, 'scheme', scheme, 'credentials', credentials,
                       'version', version),
           delivered
    FROM push_configs;
DROP TABLE push_configs;
";

/// One config, and how far its delivery got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The task, as its id's text.
    pub(crate) task: String,
    /// The config's id, unique within the task.
    pub(crate) id: String,
    /// Who made it: the task's owner.
    pub(crate) owner: String,
    pub(crate) url: String,
    /// Sent as `X-A2A-Notification-Token`; empty for none.
    pub(crate) token: String,
    /// `Authorization: {scheme} {credentials}`; empty scheme for none.
    pub(crate) scheme: String,
    pub(crate) credentials: String,
    /// The version the config was made in: 1.0 posts `StreamResponse`s, 0.3 posts the task.
    pub(crate) version: Version,
    /// The sequence number of the last event delivered (0: nothing yet, the snapshot is due).
    pub(crate) delivered: u64,
}

/// A record's A2A-only fields, as the shared store keeps them.
#[derive(Serialize, Deserialize)]
struct Detail {
    token: String,
    scheme: String,
    credentials: String,
    version: String,
}

impl Record {
    fn shared(&self) -> longrun_delivery::Record {
        let detail = Detail {
            token: self.token.clone(),
            scheme: self.scheme.clone(),
            credentials: self.credentials.clone(),
            version: version_text(self.version).to_owned(),
        };
        longrun_delivery::Record {
            task: self.task.clone(),
            id: self.id.clone(),
            owner: self.owner.clone(),
            url: self.url.clone(),
            detail: serde_json::to_string(&detail).unwrap_or_default(),
            delivered: self.delivered,
        }
    }

    fn from_shared(record: longrun_delivery::Record) -> Result<Self, Error> {
        let detail: Detail = serde_json::from_str(&record.detail).map_err(|error| {
            Error::internal(format!(
                "a stored push config of task {} is unreadable: {error}",
                record.task
            ))
        })?;
        Ok(Self {
            task: record.task,
            id: record.id,
            owner: record.owner,
            url: record.url,
            token: detail.token,
            scheme: detail.scheme,
            credentials: detail.credentials,
            version: if detail.version == "0.3" {
                Version::V03
            } else {
                Version::V10
            },
            delivered: record.delivered,
        })
    }
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::V03 => "0.3",
        Version::V10 => "1.0",
    }
}

fn failed(error: longrun_delivery::StoreError) -> Error {
    Error::internal(error.to_string())
}

/// The configs.
#[derive(Clone)]
pub(crate) struct Store(longrun_delivery::Store);

impl Store {
    pub(crate) fn memory() -> Self {
        Self(longrun_delivery::Store::memory(DOOR))
    }

    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        longrun_delivery::Store::open(path, DOOR, MIGRATION).map(Self)
    }

    /// Adds a config, or replaces the one with the same task and id.
    pub(crate) async fn put(&self, record: Record) -> Result<(), Error> {
        self.0.put(record.shared()).await.map_err(failed)
    }

    pub(crate) async fn get(&self, task: &str, id: &str) -> Result<Option<Record>, Error> {
        self.0
            .get(task, id)
            .await
            .map_err(failed)?
            .map(Record::from_shared)
            .transpose()
    }

    /// The task's configs, by id.
    pub(crate) async fn list(&self, task: &str) -> Result<Vec<Record>, Error> {
        let records = self.0.list(task).await.map_err(failed)?;
        records.into_iter().map(Record::from_shared).collect()
    }

    /// Every config, for resuming deliveries after a restart.
    pub(crate) async fn all(&self) -> Result<Vec<Record>, Error> {
        let records = self.0.all().await.map_err(failed)?;
        records.into_iter().map(Record::from_shared).collect()
    }

    /// Removes a config; whether there was one.
    pub(crate) async fn delete(&self, task: &str, id: &str) -> Result<bool, Error> {
        self.0.delete(task, id).await.map_err(failed)
    }

    /// Removes every config of a task (it expired).
    pub(crate) async fn forget(&self, task: &str) -> Result<(), Error> {
        self.0.forget(task).await.map_err(failed)
    }

    /// Records that delivery reached `seq` (never moves backwards).
    pub(crate) async fn delivered(&self, task: &str, id: &str, seq: u64) -> Result<(), Error> {
        self.0.delivered(task, id, seq).await.map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(task: &str, id: &str) -> Record {
        Record {
            task: task.into(),
            id: id.into(),
            owner: "alice".into(),
            url: "https://example.com/hook".into(),
            token: "tok".into(),
            scheme: "Bearer".into(),
            credentials: "secret".into(),
            version: Version::V03,
            delivered: 0,
        }
    }

    #[tokio::test]
    async fn a2a_fields_survive_the_shared_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push.sqlite");
        let store = Store::open(&path).unwrap();
        store.put(record("t1", "a")).await.unwrap();
        store.delivered("t1", "a", 7).await.unwrap();
        let reopened = Store::open(&path).unwrap();
        let mut expected = record("t1", "a");
        expected.delivered = 7;
        assert_eq!(reopened.all().await.unwrap(), [expected]);
    }

    #[tokio::test]
    async fn configs_kept_before_the_store_was_shared_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push.sqlite");
        {
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE push_configs (task TEXT NOT NULL, id TEXT NOT NULL, \
                 owner TEXT NOT NULL, url TEXT NOT NULL, token TEXT NOT NULL, \
                 scheme TEXT NOT NULL, credentials TEXT NOT NULL, version TEXT NOT NULL, \
                 delivered INTEGER NOT NULL, PRIMARY KEY (task, id)) WITHOUT ROWID; \
                 INSERT INTO push_configs VALUES \
                 ('t1', 'a', 'alice', 'https://example.com/hook', 'tok', 'Bearer', \
                  'secret', '0.3', 4);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut expected = record("t1", "a");
        expected.delivered = 4;
        assert_eq!(store.all().await.unwrap(), [expected]);
    }
}
