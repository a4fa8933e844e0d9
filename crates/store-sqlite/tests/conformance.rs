//! The store conformance suite, run against [`SqliteStore`] on a fresh file per check.

use std::sync::Arc;

use longrun_store_sqlite::SqliteStore;

longrun_store_tests::conformance!(async || {
    // The directory is the guard: it outlives the store and is removed after the check.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("store.db")).expect("open a fresh store");
    (Arc::new(store), dir)
});
