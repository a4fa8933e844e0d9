//! Where push-notification configs are kept: one SQLite file (so they, and how far each
//! delivery got, survive a restart), or memory when no file is configured.
//!
//! SQLite calls are short and run on tokio's blocking pool, one at a time behind one lock; the
//! table is small (a handful of configs per task) and written once per delivered event.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{error::Error, version::Version};

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

/// The configs.
#[derive(Clone)]
pub(crate) enum Store {
    Memory(Arc<Mutex<BTreeMap<(String, String), Record>>>),
    Sqlite(Arc<Mutex<Connection>>),
}

const SCHEMA: &str = "
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
";

impl Store {
    pub(crate) fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self::Sqlite(Arc::new(Mutex::new(connection))))
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn sql<T: Send + 'static>(
        connection: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let connection = connection.clone();
        let result = tokio::task::spawn_blocking(move || f(&connection.lock()))
            .await
            .map_err(|error| Error::internal(format!("the push store's worker failed: {error}")))?;
        result.map_err(|error| {
            tracing::error!(%error, "the push-notification store failed");
            Error::internal(format!("the push-notification store failed: {error}"))
        })
    }

    /// Adds a config, or replaces the one with the same task and id.
    pub(crate) async fn put(&self, record: Record) -> Result<(), Error> {
        match self {
            Self::Memory(map) => {
                map.lock()
                    .insert((record.task.clone(), record.id.clone()), record);
                Ok(())
            }
            Self::Sqlite(connection) => {
                Self::sql(connection, move |c| {
                    c.execute(
                        "INSERT OR REPLACE INTO push_configs \
                         (task, id, owner, url, token, scheme, credentials, version, delivered) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            record.task,
                            record.id,
                            record.owner,
                            record.url,
                            record.token,
                            record.scheme,
                            record.credentials,
                            version_text(record.version),
                            record.delivered as i64,
                        ],
                    )
                })
                .await?;
                Ok(())
            }
        }
    }

    pub(crate) async fn get(&self, task: &str, id: &str) -> Result<Option<Record>, Error> {
        match self {
            Self::Memory(map) => Ok(map.lock().get(&(task.to_owned(), id.to_owned())).cloned()),
            Self::Sqlite(connection) => {
                let (task, id) = (task.to_owned(), id.to_owned());
                Self::sql(connection, move |c| {
                    c.query_row(
                        &format!("{SELECT} WHERE task = ?1 AND id = ?2"),
                        params![task, id],
                        row,
                    )
                    .optional()
                })
                .await
            }
        }
    }

    /// The task's configs, by id.
    pub(crate) async fn list(&self, task: &str) -> Result<Vec<Record>, Error> {
        match self {
            Self::Memory(map) => Ok(map
                .lock()
                .range((task.to_owned(), String::new())..)
                .take_while(|((t, _), _)| t == task)
                .map(|(_, record)| record.clone())
                .collect()),
            Self::Sqlite(connection) => {
                let task = task.to_owned();
                Self::sql(connection, move |c| {
                    let mut statement =
                        c.prepare(&format!("{SELECT} WHERE task = ?1 ORDER BY id"))?;
                    let rows = statement.query_map(params![task], row)?;
                    rows.collect()
                })
                .await
            }
        }
    }

    /// Every config, for resuming deliveries after a restart.
    pub(crate) async fn all(&self) -> Result<Vec<Record>, Error> {
        match self {
            Self::Memory(map) => Ok(map.lock().values().cloned().collect()),
            Self::Sqlite(connection) => {
                Self::sql(connection, |c| {
                    let mut statement = c.prepare(&format!("{SELECT} ORDER BY task, id"))?;
                    let rows = statement.query_map([], row)?;
                    rows.collect()
                })
                .await
            }
        }
    }

    /// Removes a config; whether there was one.
    pub(crate) async fn delete(&self, task: &str, id: &str) -> Result<bool, Error> {
        match self {
            Self::Memory(map) => Ok(map
                .lock()
                .remove(&(task.to_owned(), id.to_owned()))
                .is_some()),
            Self::Sqlite(connection) => {
                let (task, id) = (task.to_owned(), id.to_owned());
                let removed = Self::sql(connection, move |c| {
                    c.execute(
                        "DELETE FROM push_configs WHERE task = ?1 AND id = ?2",
                        params![task, id],
                    )
                })
                .await?;
                Ok(removed > 0)
            }
        }
    }

    /// Removes every config of a task (it expired).
    pub(crate) async fn forget(&self, task: &str) -> Result<(), Error> {
        match self {
            Self::Memory(map) => {
                map.lock().retain(|(t, _), _| t != task);
                Ok(())
            }
            Self::Sqlite(connection) => {
                let task = task.to_owned();
                Self::sql(connection, move |c| {
                    c.execute("DELETE FROM push_configs WHERE task = ?1", params![task])
                })
                .await?;
                Ok(())
            }
        }
    }

    /// Records that delivery reached `seq` (never moves backwards).
    pub(crate) async fn delivered(&self, task: &str, id: &str, seq: u64) -> Result<(), Error> {
        match self {
            Self::Memory(map) => {
                if let Some(record) = map.lock().get_mut(&(task.to_owned(), id.to_owned())) {
                    record.delivered = record.delivered.max(seq);
                }
                Ok(())
            }
            Self::Sqlite(connection) => {
                let (task, id) = (task.to_owned(), id.to_owned());
                Self::sql(connection, move |c| {
                    c.execute(
                        "UPDATE push_configs SET delivered = MAX(delivered, ?3) \
                         WHERE task = ?1 AND id = ?2",
                        params![task, id, seq as i64],
                    )
                })
                .await?;
                Ok(())
            }
        }
    }
}

const SELECT: &str = "SELECT task, id, owner, url, token, scheme, credentials, version, delivered \
                      FROM push_configs";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let version: String = row.get(7)?;
    let delivered: i64 = row.get(8)?;
    Ok(Record {
        task: row.get(0)?,
        id: row.get(1)?,
        owner: row.get(2)?,
        url: row.get(3)?,
        token: row.get(4)?,
        scheme: row.get(5)?,
        credentials: row.get(6)?,
        version: if version == "0.3" {
            Version::V03
        } else {
            Version::V10
        },
        delivered: u64::try_from(delivered).unwrap_or(0),
    })
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::V03 => "0.3",
        Version::V10 => "1.0",
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
            version: Version::V10,
            delivered: 0,
        }
    }

    async fn exercise(store: Store) {
        store.put(record("t1", "a")).await.unwrap();
        store.put(record("t1", "b")).await.unwrap();
        store.put(record("t2", "a")).await.unwrap();
        let ids: Vec<String> = store
            .list("t1")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        store.delivered("t1", "a", 7).await.unwrap();
        store.delivered("t1", "a", 3).await.unwrap();
        assert_eq!(store.get("t1", "a").await.unwrap().unwrap().delivered, 7);
        assert!(store.delete("t1", "b").await.unwrap());
        assert!(!store.delete("t1", "b").await.unwrap());
        assert_eq!(store.get("t1", "b").await.unwrap(), None);
        store.forget("t2").await.unwrap();
        assert_eq!(store.all().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn memory_and_sqlite_agree() {
        exercise(Store::memory()).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push.sqlite");
        exercise(Store::open(&path).unwrap()).await;
        // What was written is there after reopening.
        let reopened = Store::open(&path).unwrap();
        let records = reopened.all().await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].delivered, 7);
        assert_eq!(records[0].credentials, "secret");
    }
}
