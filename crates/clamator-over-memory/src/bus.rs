use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use clamator_protocol::{ServerCore, ServerError, Service};

/// Where a service lives on the bus: its dispatcher and the core of the server owning it.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) service: Service,
    pub(crate) core: Arc<ServerCore>,
}

/// An in-process registry of served services: one server per service per bus.
///
/// Cheap to clone; clones share the registry. Different buses are independent.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    routes: Arc<RwLock<HashMap<String, Route>>>,
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// The names of the services currently served on this bus, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn lock(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Route>> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers all of `core`'s services, or none of them if one is taken.
    pub(crate) fn register_all(&self, core: &Arc<ServerCore>) -> Result<(), ServerError> {
        let mut routes = self.lock();
        if let Some(taken) = core
            .services()
            .iter()
            .find(|s| routes.contains_key(s.name()))
        {
            return Err(ServerError::ServiceTaken(taken.name().to_owned()));
        }
        for service in core.services() {
            routes.insert(
                service.name().to_owned(),
                Route {
                    service: service.clone(),
                    core: Arc::clone(core),
                },
            );
        }
        Ok(())
    }

    /// Unregisters the services that `core` registered.
    pub(crate) fn unregister_all(&self, core: &Arc<ServerCore>) {
        self.lock()
            .retain(|_, route| !Arc::ptr_eq(&route.core, core));
    }

    pub(crate) fn lookup(&self, service: &str) -> Option<Route> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .cloned()
    }
}
