//! Open streams, counted per principal across every door, each held by an RAII permit that
//! lives inside the stream's body: when the client goes away the body is dropped, and the
//! permit with it.
//!
//! Invariant: `open[p]` is the number of live [`StreamPermit`]s of principal `p` (no entry for
//! zero), and `total` is their sum; both change only under the one lock.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;

use crate::{auth::Principal, refusal::Refusal};

/// Open streams per principal.
#[derive(Default, Debug)]
pub(crate) struct Streams {
    state: Mutex<State>,
}

#[derive(Default, Debug)]
struct State {
    open: HashMap<Principal, usize>,
    total: usize,
}

impl Streams {
    /// One more stream for `principal`, unless it already holds `limit`.
    pub(crate) fn open(
        self: &Arc<Self>,
        principal: &Principal,
        limit: usize,
    ) -> Result<StreamPermit, Refusal> {
        let mut state = self.state.lock();
        let count = state.open.entry(principal.clone()).or_default();
        if *count >= limit {
            if *count == 0 {
                state.open.remove(principal);
            }
            return Err(Refusal::TooManyStreams { limit });
        }
        *count += 1;
        state.total += 1;
        Ok(StreamPermit {
            streams: self.clone(),
            principal: principal.clone(),
        })
    }

    /// Streams open now, all principals together.
    pub(crate) fn total(&self) -> usize {
        self.state.lock().total
    }
}

/// One open stream of a principal; dropping it closes it in the count.
#[must_use = "the stream counts as open only while its permit lives"]
pub struct StreamPermit {
    streams: Arc<Streams>,
    principal: Principal,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut state = self.streams.state.lock();
        state.total -= 1;
        if let Some(count) = state.open.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                state.open.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_principal_and_frees_on_drop() {
        let streams = Arc::new(Streams::default());
        let alice = Principal::from("alice");
        let bob = Principal::from("bob");
        let first = streams.open(&alice, 2).unwrap();
        let second = streams.open(&alice, 2).unwrap();
        assert!(matches!(
            streams.open(&alice, 2),
            Err(Refusal::TooManyStreams { limit: 2 })
        ));
        // Another principal has its own allowance.
        let bobs = streams.open(&bob, 2).unwrap();
        assert_eq!(streams.total(), 3);
        drop(first);
        let third = streams.open(&alice, 2).unwrap();
        drop((second, third, bobs));
        assert_eq!(streams.total(), 0);
        assert!(streams.state.lock().open.is_empty());
        // A limit of zero refuses without leaving an entry behind.
        assert!(streams.open(&alice, 0).is_err());
        assert!(streams.state.lock().open.is_empty());
    }
}
