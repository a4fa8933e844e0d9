//! The store conformance suite, run against [`MemoryStore`].

use std::sync::Arc;

use longrun_store_memory::MemoryStore;

longrun_store_tests::conformance!(async || Arc::new(MemoryStore::new()));
