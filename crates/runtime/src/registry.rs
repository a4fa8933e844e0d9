//! Registered kinds: each name's spec and handler.

use std::{collections::HashMap, sync::Arc};

use longrun_core::KindSpec;
use parking_lot::RwLock;

use crate::{error::Error, handler::ErasedHandler};

pub(crate) struct KindEntry {
    /// The kind's name, shared by every task of the kind.
    pub(crate) name: Arc<str>,
    pub(crate) spec: KindSpec,
    pub(crate) handler: Box<dyn ErasedHandler>,
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

    pub(crate) fn specs(&self) -> Vec<KindSpec> {
        let mut specs: Vec<_> = self.kinds.read().values().map(|k| k.spec.clone()).collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }
}
