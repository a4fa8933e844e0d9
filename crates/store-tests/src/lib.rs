//! `longrun-store-tests`: the one conformance suite every longrun store backend runs.
//!
//! Each behaviour the store traits promise is written once, as a public `async fn` taking the
//! store under test (`Arc<dyn Store>`), grouped by job in [`tasks`], [`events`], [`list`],
//! [`inbox`], [`journal`], [`retention`], [`concurrency`] and [`starts`]. The [`conformance!`]
//! macro stamps out one
//! `#[test]` per check, so a backend runs the whole suite with one line in its `tests/`:
//!
//! ```ignore
//! // crates/store-memory/tests/conformance.rs
//! longrun_store_tests::conformance!(async || std::sync::Arc::new(MemoryStore::new()));
//! ```
//!
//! The argument is a factory: anything that can be called with no arguments and awaited, giving
//! a [`Fixture`]. It is called once per test, and each call must give a fresh, empty store:
//! checks assume they see only what they wrote. A backend that needs something to outlive the
//! test (a temporary directory, a database to drop) returns `(store, guard)`; the guard is
//! dropped after the check.
//!
//! Every check takes its times from fixed timestamps, never from a clock, so nothing here
//! depends on how fast the machine is. To add a check, write it in its module and add its name
//! to the list in [`conformance!`]; a check not on the list is not run.
//!
//! [`golden`] is the other half: fixtures written by earlier versions of the SQL stores, which
//! each store's `tests/golden.rs` reads back with today's code.

pub mod concurrency;
pub mod events;
pub mod golden;
pub mod inbox;
pub mod journal;
pub mod list;
pub mod retention;
pub mod starts;
mod support;
pub mod tasks;

use std::sync::Arc;

use longrun_core::store::Store;

/// What a factory hands the suite: the store under test, and whatever must live as long as it.
pub trait Fixture: 'static {
    /// The store under test.
    fn store(&self) -> Arc<dyn Store>;
}

impl Fixture for Arc<dyn Store> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(self)
    }
}

impl<S: Store + 'static> Fixture for Arc<S> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(self) as Arc<dyn Store>
    }
}

/// A store and a guard that is dropped after the check (a temporary directory, say).
impl<F: Fixture, G: 'static> Fixture for (F, G) {
    fn store(&self) -> Arc<dyn Store> {
        self.0.store()
    }
}

/// Runs one check against a fresh store from `factory`, on a runtime of its own.
///
/// The runtime has several worker threads, so the concurrency checks run writers in parallel,
/// and every driver enabled (`enable_all`), so backends that do I/O through tokio work in it.
/// [`conformance!`] calls this; a backend may also call it directly to run a single check.
///
/// # Panics
///
/// When the check fails, or the runtime cannot be built.
pub fn run<F, X, C>(factory: F, check: C)
where
    F: AsyncFnOnce() -> X,
    X: Fixture,
    C: AsyncFnOnce(Arc<dyn Store>),
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("the conformance suite needs a tokio runtime");
    runtime.block_on(async {
        let fixture = factory().await;
        check(fixture.store()).await;
        // The guard, if any, goes only once the check is done with the store.
        drop(fixture);
    });
}

/// Stamps out one `#[test]` per conformance check, each against a fresh store from `$factory`.
///
/// `$factory` is called with no arguments and awaited once per test, and gives a [`Fixture`]:
/// an `Arc` of the store, or a `(store, guard)` pair. It is evaluated in the scope of the macro
/// call, so it may use whatever that file imports. The tests appear as
/// `conformance::<module>::<check>`, for example `conformance::tasks::create_then_get`.
///
/// ```ignore
/// use std::sync::Arc;
///
/// use longrun_store_memory::MemoryStore;
///
/// longrun_store_tests::conformance!(async || Arc::new(MemoryStore::new()));
/// ```
#[macro_export]
macro_rules! conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance! {
            $factory;
            tasks: [
                create_then_get,
                duplicate_create_is_refused,
                append_folds_events,
                append_applies_batches_in_order,
                refused_event_changes_nothing,
                append_to_unknown_task_is_not_found,
                unfinished_is_oldest_first,
            ],
            events: [
                read_after_seq_in_order_with_limit,
            ],
            journal: [
                journal_survives_a_retry,
                step_outside_an_attempt_is_refused,
            ],
            list: [
                list_filters,
                list_is_newest_first,
                list_pages_through_everything_once,
                list_leaves_out_expired,
            ],
            inbox: [
                inbox_keeps_order_per_session,
                inbox_acknowledges_through_a_position,
                append_with_inbox_is_both_or_neither,
            ],
            retention: [
                purge_removes_expired,
                purge_caps_finished_earliest_first,
            ],
            concurrency: [
                concurrent_appends_lose_nothing,
            ],
            starts: [
                idempotency_keys_are_unique_per_owner,
                racing_creates_with_one_key_store_one_task,
                purge_frees_idempotency_keys,
                start_times_are_kept,
            ],
        }
    };
}

/// The body of [`conformance!`], kept apart so the public macro shows only the check list.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance {
    ($factory:expr; $($module:ident: [$($check:ident),* $(,)?]),* $(,)?) => {
        // The factory lives at the call site, so its paths resolve against the caller's imports;
        // the test modules below only refer to it.
        async fn __longrun_store_fixture() -> impl $crate::Fixture {
            let factory = $factory;
            factory().await
        }

        mod conformance {
            $(
                mod $module {
                    $(
                        #[test]
                        fn $check() {
                            $crate::run(
                                super::super::__longrun_store_fixture,
                                $crate::$module::$check,
                            );
                        }
                    )*
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    /// A check that is not named in [`conformance!`] is never run; this catches one forgotten.
    /// (The other way round, the compiler already rejects a name with no check behind it.)
    #[test]
    fn every_check_is_on_the_list() {
        let lib = include_str!("lib.rs");
        let list = &lib[lib.find("macro_rules! conformance").expect("the macro")
            ..lib.find("macro_rules! __conformance").expect("its body")];
        let modules = [
            ("tasks", include_str!("tasks.rs")),
            ("events", include_str!("events.rs")),
            ("list", include_str!("list.rs")),
            ("inbox", include_str!("inbox.rs")),
            ("retention", include_str!("retention.rs")),
            ("concurrency", include_str!("concurrency.rs")),
            ("starts", include_str!("starts.rs")),
        ];
        let mut checks = 0;
        for (module, source) in modules {
            let start = list
                .find(&format!("{module}: ["))
                .unwrap_or_else(|| panic!("module {module} is not on the list"));
            let names = &list[start..start + list[start..].find(']').expect("a closing ]")];
            for line in source.lines() {
                let Some(rest) = line.strip_prefix("pub async fn ") else {
                    continue;
                };
                let name = &rest[..rest.find('(').expect("a parameter list")];
                checks += 1;
                assert!(
                    names.contains(&format!(" {name},")),
                    "{module}::{name} is not on the list in `conformance!`"
                );
            }
        }
        assert!(checks > 0, "no checks found: has their signature changed?");
    }
}
