//! Registered kinds: each name's spec, handler and gate.

use std::{collections::HashMap, sync::Arc};

use longrun_core::KindSpec;
use parking_lot::RwLock;

use crate::{error::Error, gate::Gate, handler::ErasedHandler};

pub(crate) struct KindEntry {
    /// The kind's name, shared by every task of the kind.
    pub(crate) name: Arc<str>,
    pub(crate) spec: KindSpec,
    pub(crate) handler: Box<dyn ErasedHandler>,
    /// What the kind needs from this node before an attempt starts here (a worker), if
    /// anything.
    pub(crate) gate: Option<Arc<dyn Gate>>,
}

/// The kinds this node may claim tasks of now (see [`Registry::claimable`]).
#[derive(Debug, Default)]
pub(crate) struct Claimable {
    /// Kinds without a gate: claimed as room under the limits allows.
    pub(crate) open: Vec<String>,
    /// Gated kinds with room here, and how many tasks of each could start now.
    pub(crate) gated: Vec<(String, usize)>,
    /// Gated kinds without room here: claimed only for a signal waiting for a task.
    pub(crate) closed: Vec<String>,
}

#[derive(Default)]
pub(crate) struct Registry {
    kinds: RwLock<HashMap<String, Arc<KindEntry>>>,
}

impl Registry {
    pub(crate) fn insert(
        &self,
        spec: KindSpec,
        handler: Box<dyn ErasedHandler>,
        gate: Option<Arc<dyn Gate>>,
    ) -> Result<(), Error> {
        let mut kinds = self.kinds.write();
        if kinds.contains_key(&spec.name) {
            return Err(Error::DuplicateKind(spec.name));
        }
        let name = Arc::from(spec.name.as_str());
        kinds.insert(
            spec.name.clone(),
            Arc::new(KindEntry {
                name,
                spec,
                handler,
                gate,
            }),
        );
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<KindEntry>> {
        self.kinds.read().get(name).cloned()
    }

    /// The registered kinds' names.
    pub(crate) fn names(&self) -> Vec<String> {
        self.kinds.read().keys().cloned().collect()
    }

    /// The kinds split by what their gates say now.
    pub(crate) fn claimable(&self) -> Claimable {
        let mut claimable = Claimable::default();
        for (name, entry) in self.kinds.read().iter() {
            match &entry.gate {
                None => claimable.open.push(name.clone()),
                Some(gate) => match gate.room(name) {
                    0 => claimable.closed.push(name.clone()),
                    room => claimable.gated.push((name.clone(), room)),
                },
            }
        }
        claimable
    }

    pub(crate) fn specs(&self) -> Vec<KindSpec> {
        let mut specs: Vec<_> = self.kinds.read().values().map(|k| k.spec.clone()).collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }
}
