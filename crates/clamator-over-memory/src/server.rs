use std::sync::Arc;
use std::time::Duration;

use clamator_protocol::{
    IntoService, LifecycleState, ServerCore, ServerError, Services, StartStep,
    DEFAULT_SHUTDOWN_GRACE,
};

use crate::bus::MemoryBus;

/// Serves services on a [`MemoryBus`].
///
/// Cheap to clone; clones share one server. Dropping the last handle without calling
/// [`MemoryRpcServer::stop`] unregisters the services at once and cancels the handlers still
/// running (their callers get "transport stopped"); `stop` is the graceful way.
#[derive(Debug, Clone)]
pub struct MemoryRpcServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: MemoryBus,
    core: Arc<ServerCore>,
    grace: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.bus.unregister_all(&self.core);
        self.core.shutdown_token().cancel();
    }
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
            inner: Arc::new(Inner {
                bus: self.bus,
                core: Arc::new(self.services.into_core()?),
                grace: self.grace,
            }),
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

    /// Registers the services on the bus. Idempotent (concurrent calls register once); an
    /// error after `stop`, or when another server on the bus already serves one of the
    /// services (then none is registered and the server stays idle).
    pub async fn start(&self) -> Result<(), ServerError> {
        let Inner { bus, core, .. } = &*self.inner;
        match core.lifecycle().begin_start().await {
            StartStep::Start(guard) => {
                bus.register_all(core)?;
                guard.started();
                tracing::debug!(services = ?bus.services(), "memory server started");
                Ok(())
            }
            StartStep::AlreadyStarted => Ok(()),
            StartStep::Stopped => Err(ServerError::AlreadyStopped),
        }
    }

    /// Stops with the configured grace: unregisters the services (new calls get `-32601`),
    /// then waits for in-flight handlers up to the grace and cancels those still running
    /// (their callers get "transport stopped"). Idempotent; every caller returns once the
    /// drain is over.
    pub async fn stop(&self) {
        self.stop_with_grace(self.inner.grace).await;
    }

    /// [`MemoryRpcServer::stop`] with an explicit grace.
    pub async fn stop_with_grace(&self, grace: Duration) {
        let Inner { bus, core, .. } = &*self.inner;
        if let Some(guard) = core.lifecycle().begin_stop().await {
            bus.unregister_all(core);
            core.drain(grace).await;
            guard.stopped();
        }
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.inner.core.state()
    }
}
