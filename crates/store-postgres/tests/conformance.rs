//! The store conformance suite, run against [`PostgresStore`], each check in a fresh schema.

mod common;

use std::time::Duration;

use longrun_store_postgres::PostgresStore;

longrun_store_tests::conformance!(async || {
    let Some(url) = common::url() else {
        // The suite's macro has no way to skip one check, so the whole binary stops here,
        // successfully, after the notice above.
        #[expect(
            clippy::disallowed_methods,
            reason = "the suite's macro cannot skip one check, so the test binary stops, successfully, without a database"
        )]
        std::process::exit(0)
    };
    let schema = common::Schema::new(&url);
    let store: std::sync::Arc<PostgresStore> =
        schema.connect("conformance", Duration::from_secs(30)).await;
    (store, schema)
});
