use std::sync::Arc;
use std::time::Duration;

use clamator_protocol::{
    IntoService, LifecycleState, ServerCore, ServerError, Services, StartAction,
    DEFAULT_SHUTDOWN_GRACE,
};

use crate::bus::MemoryBus;

/// Serves services on a [`MemoryBus`].
///
/// Cheap to clone; clones share one server.
#[derive(Debug, Clone)]
pub struct MemoryRpcServer {
    bus: MemoryBus,
    core: Arc<ServerCore>,
    grace: Duration,
}

/// Builds a [`MemoryRpcServer`].
#[derive(Debug)]
#[must_use]
pub struct MemoryRpcServerBuilder {
    bus: MemoryBus,
    services: Services,
    grace: Duration,
}

impl MemoryRpcServerBuilder {
    /// Adds a service (a macro-generated `<Name>Server` or a hand-built `Service`).
    pub fn service(mut self, service: impl IntoService) -> Self {
        self.services = self.services.with(service);
        self
    }

    /// How long `stop` waits for in-flight handlers. Default: 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Builds the server; two services with one name are an error.
    pub fn build(self) -> Result<MemoryRpcServer, ServerError> {
        Ok(MemoryRpcServer {
            bus: self.bus,
            core: Arc::new(self.services.into_core()?),
            grace: self.grace,
        })
    }
}

impl MemoryRpcServer {
    /// Starts building a server on `bus`.
    pub fn builder(bus: &MemoryBus) -> MemoryRpcServerBuilder {
        MemoryRpcServerBuilder {
            bus: bus.clone(),
            services: Services::new(),
            grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Registers the services on the bus. Idempotent; an error after `stop`, or when another
    /// server on the bus already serves one of the services (then none is registered).
    pub async fn start(&self) -> Result<(), ServerError> {
        if self.core.begin_start()? == StartAction::AlreadyStarted {
            return Ok(());
        }
        self.bus.register_all(&self.core)?;
        self.core.finish_start();
        tracing::debug!(services = ?self.bus.services(), "memory server started");
        Ok(())
    }

    /// Stops with the configured grace: unregisters the services (new calls get `-32601`),
    /// then waits for in-flight handlers up to the grace and cancels those still running
    /// (their callers get "transport stopped"). Idempotent.
    pub async fn stop(&self) {
        self.stop_with_grace(self.grace).await;
    }

    /// [`MemoryRpcServer::stop`] with an explicit grace.
    pub async fn stop_with_grace(&self, grace: Duration) {
        if self.core.mark_stopped() != LifecycleState::Started {
            return;
        }
        self.bus.unregister_all(&self.core);
        self.core.drain(grace).await;
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.core.state()
    }
}
