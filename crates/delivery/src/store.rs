//! Where deliveries are kept: one SQLite file (so they, and how far each got, survive a
//! restart), or memory when no file is configured.
//!
//! A record is one delivery of one task's events to one URL. What a door needs beyond the URL
//! (A2A's token and credentials, `/v1`'s event filter and secret) is its `detail`, text the
//! door writes and reads (JSON); this store never looks inside. Each store serves one door:
//! several doors can share a file, each seeing only its own rows.
//!
//! SQLite calls are short and run on tokio's blocking pool, one at a time behind one lock; the
//! table is small (a handful of deliveries per task) and written once per delivered event.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};

/// One delivery, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The task, as its id's text.
    pub task: String,
    /// The delivery's id, unique within the task (and the door).
    pub id: String,
    /// Who made it: the task's owner.
    pub owner: String,
    /// Where the events go.
    pub url: String,
    /// The door's own settings for the delivery; opaque here.
    pub detail: String,
    /// The sequence number of the last event delivered (0: nothing yet).
    pub delivered: u64,
}

/// A store operation failed; the text says why, for the log.
#[derive(Debug, thiserror::Error)]
#[error("the webhook delivery store failed: {0}")]
pub struct StoreError(String);

/// The deliveries of one door. Cloning is cheap.
#[derive(Clone)]
pub struct Store {
    door: &'static str,
    kept: Kept,
}

#[derive(Clone)]
enum Kept {
    Memory(Arc<Mutex<BTreeMap<(String, String), Record>>>),
    Sqlite(Arc<Mutex<Connection>>),
}

/// The table every door's deliveries share.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    door      TEXT    NOT NULL,
    task      TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    owner     TEXT    NOT NULL,
    url       TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    delivered INTEGER NOT NULL,
    PRIMARY KEY (door, task, id)
) WITHOUT ROWID;
";

const SELECT: &str = "SELECT task, id, owner, url, detail, delivered FROM deliveries";

impl Store {
    /// A store in memory: deliveries end with the process.
    pub fn memory(door: &'static str) -> Self {
        Self {
            door,
            kept: Kept::Memory(Arc::default()),
        }
    }

    /// The door's deliveries in the SQLite file at `path` (created if missing). `migration`
    /// is SQL run once the table exists, in one transaction, for a door that kept its
    /// deliveries elsewhere before (empty for none).
    pub fn open(path: &Path, door: &'static str, migration: &str) -> rusqlite::Result<Self> {
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        if !migration.is_empty() {
            let transaction = connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.commit()?;
        }
        Ok(Self {
            door,
            kept: Kept::Sqlite(Arc::new(Mutex::new(connection))),
        })
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn sql<T: Send + 'static>(
        connection: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = connection.clone();
        let result = tokio::task::spawn_blocking(move || f(&connection.lock()))
            .await
            .map_err(|error| StoreError(format!("its worker failed: {error}")))?;
        result.map_err(|error| {
            tracing::error!(%error, "the webhook delivery store failed");
            StoreError(error.to_string())
        })
    }

    /// Adds a delivery, or replaces the one with the same task and id.
    pub async fn put(&self, record: Record) -> Result<(), StoreError> {
        match &self.kept {
            Kept::Memory(map) => {
                map.lock()
                    .insert((record.task.clone(), record.id.clone()), record);
                Ok(())
            }
            Kept::Sqlite(connection) => {
                let door = self.door;
                Self::sql(connection, move |c| {
                    c.execute(
                        "INSERT OR REPLACE INTO deliveries \
                         (door, task, id, owner, url, detail, delivered) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            door,
                            record.task,
                            record.id,
                            record.owner,
                            record.url,
                            record.detail,
                            record.delivered as i64,
                        ],
                    )
                })
                .await?;
                Ok(())
            }
        }
    }

    /// One delivery.
    pub async fn get(&self, task: &str, id: &str) -> Result<Option<Record>, StoreError> {
        match &self.kept {
            Kept::Memory(map) => Ok(map.lock().get(&(task.to_owned(), id.to_owned())).cloned()),
            Kept::Sqlite(connection) => {
                let (door, task, id) = (self.door, task.to_owned(), id.to_owned());
                Self::sql(connection, move |c| {
                    c.query_row(
                        &format!("{SELECT} WHERE door = ?1 AND task = ?2 AND id = ?3"),
                        params![door, task, id],
                        row,
                    )
                    .optional()
                })
                .await
            }
        }
    }

    /// The task's deliveries, by id.
    pub async fn list(&self, task: &str) -> Result<Vec<Record>, StoreError> {
        match &self.kept {
            Kept::Memory(map) => Ok(map
                .lock()
                .range((task.to_owned(), String::new())..)
                .take_while(|((t, _), _)| t == task)
                .map(|(_, record)| record.clone())
                .collect()),
            Kept::Sqlite(connection) => {
                let (door, task) = (self.door, task.to_owned());
                Self::sql(connection, move |c| {
                    let mut statement = c.prepare(&format!(
                        "{SELECT} WHERE door = ?1 AND task = ?2 ORDER BY id"
                    ))?;
                    let rows = statement.query_map(params![door, task], row)?;
                    rows.collect()
                })
                .await
            }
        }
    }

    /// Every delivery of the door, for resuming them after a restart.
    pub async fn all(&self) -> Result<Vec<Record>, StoreError> {
        match &self.kept {
            Kept::Memory(map) => Ok(map.lock().values().cloned().collect()),
            Kept::Sqlite(connection) => {
                let door = self.door;
                Self::sql(connection, move |c| {
                    let mut statement =
                        c.prepare(&format!("{SELECT} WHERE door = ?1 ORDER BY task, id"))?;
                    let rows = statement.query_map(params![door], row)?;
                    rows.collect()
                })
                .await
            }
        }
    }

    /// Removes a delivery; whether there was one.
    pub async fn delete(&self, task: &str, id: &str) -> Result<bool, StoreError> {
        match &self.kept {
            Kept::Memory(map) => Ok(map
                .lock()
                .remove(&(task.to_owned(), id.to_owned()))
                .is_some()),
            Kept::Sqlite(connection) => {
                let (door, task, id) = (self.door, task.to_owned(), id.to_owned());
                let removed = Self::sql(connection, move |c| {
                    c.execute(
                        "DELETE FROM deliveries WHERE door = ?1 AND task = ?2 AND id = ?3",
                        params![door, task, id],
                    )
                })
                .await?;
                Ok(removed > 0)
            }
        }
    }

    /// Removes every delivery of a task (it expired).
    pub async fn forget(&self, task: &str) -> Result<(), StoreError> {
        match &self.kept {
            Kept::Memory(map) => {
                map.lock().retain(|(t, _), _| t != task);
                Ok(())
            }
            Kept::Sqlite(connection) => {
                let (door, task) = (self.door, task.to_owned());
                Self::sql(connection, move |c| {
                    c.execute(
                        "DELETE FROM deliveries WHERE door = ?1 AND task = ?2",
                        params![door, task],
                    )
                })
                .await?;
                Ok(())
            }
        }
    }

    /// Records that delivery reached `seq` (never moves backwards).
    pub async fn delivered(&self, task: &str, id: &str, seq: u64) -> Result<(), StoreError> {
        match &self.kept {
            Kept::Memory(map) => {
                if let Some(record) = map.lock().get_mut(&(task.to_owned(), id.to_owned())) {
                    record.delivered = record.delivered.max(seq);
                }
                Ok(())
            }
            Kept::Sqlite(connection) => {
                let (door, task, id) = (self.door, task.to_owned(), id.to_owned());
                Self::sql(connection, move |c| {
                    c.execute(
                        "UPDATE deliveries SET delivered = MAX(delivered, ?4) \
                         WHERE door = ?1 AND task = ?2 AND id = ?3",
                        params![door, task, id, seq as i64],
                    )
                })
                .await?;
                Ok(())
            }
        }
    }
}

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let delivered: i64 = row.get(5)?;
    Ok(Record {
        task: row.get(0)?,
        id: row.get(1)?,
        owner: row.get(2)?,
        url: row.get(3)?,
        detail: row.get(4)?,
        delivered: u64::try_from(delivered).unwrap_or(0),
    })
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
            detail: r#"{"token":"tok"}"#.into(),
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
    async fn memory_and_sqlite_agree_and_doors_do_not_see_each_other() {
        exercise(Store::memory("a")).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deliveries.sqlite");
        exercise(Store::open(&path, "a", "").unwrap()).await;
        // What was written is there after reopening, for its door only.
        let reopened = Store::open(&path, "a", "").unwrap();
        let records = reopened.all().await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].delivered, 7);
        assert_eq!(records[0].detail, r#"{"token":"tok"}"#);
        let other = Store::open(&path, "b", "").unwrap();
        assert!(other.all().await.unwrap().is_empty());
        assert!(other.get("t1", "a").await.unwrap().is_none());
    }
}
