use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use clamator_protocol::{Intake, RpcService, ServerError};

/// Where a service lives on the bus: its dispatcher and the intake of the server owning it.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) service: RpcService,
    pub(crate) intake: Intake,
}

type Routes = HashMap<String, Route, rustc_hash::FxBuildHasher>;

/// An in-process registry of served services: one server per service per bus.
///
/// Cheap to clone; clones share the registry. Different buses are independent. Lookups (one
/// per call) read a snapshot without locking; registrations (at server start and stop) copy it.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    inner: Arc<BusInner>,
}

#[derive(Debug, Default)]
struct BusInner {
    routes: ArcSwap<Routes>,
    /// Serialises writers (readers never wait).
    writing: Mutex<()>,
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// The names of the services currently served on this bus, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.routes.load().keys().cloned().collect();
        names.sort();
        names
    }

    /// Replaces the routes with `change(copy of the routes)`; `change` may refuse.
    fn update(
        &self,
        change: impl FnOnce(&mut Routes) -> Result<(), ServerError>,
    ) -> Result<(), ServerError> {
        let _writing = self
            .inner
            .writing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut routes = Routes::clone(&self.inner.routes.load());
        change(&mut routes)?;
        self.inner.routes.store(Arc::new(routes));
        Ok(())
    }

    /// Registers all of `intake`'s services, or none of them if one is taken.
    pub(crate) fn register_all(&self, intake: &Intake) -> Result<(), ServerError> {
        self.update(|routes| {
            if let Some(taken) = intake
                .services()
                .iter()
                .find(|s| routes.contains_key(s.name()))
            {
                return Err(ServerError::ServiceTaken(taken.name().to_owned()));
            }
            for service in intake.services() {
                routes.insert(
                    service.name().to_owned(),
                    Route {
                        service: service.clone(),
                        intake: intake.clone(),
                    },
                );
            }
            Ok(())
        })
    }

    /// Unregisters the services that `intake` registered.
    pub(crate) fn unregister_all(&self, intake: &Intake) {
        let _ = self.update(|routes| {
            routes.retain(|_, route| !Arc::ptr_eq(route.intake.core(), intake.core()));
            Ok(())
        });
    }

    pub(crate) fn lookup(&self, service: &str) -> Option<Route> {
        self.inner.routes.load().get(service).cloned()
    }
}
