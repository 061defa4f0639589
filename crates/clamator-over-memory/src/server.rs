use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use clamator_protocol::middleware::ServerLayers;
use clamator_protocol::{
    Intake, IntoRpcService, LifecycleState, Server, ServerBuilder, ServerError, ServerTransport,
};

use crate::bus::MemoryBus;

/// The memory bus as a [`ServerTransport`]: `start` registers the services on the bus,
/// `stop_intake` unregisters them.
#[derive(Debug)]
pub struct MemoryServerTransport {
    bus: MemoryBus,
    registered: Mutex<Option<Intake>>,
}

impl MemoryServerTransport {
    /// A transport serving on `bus`.
    pub fn new(bus: &MemoryBus) -> Self {
        Self {
            bus: bus.clone(),
            registered: Mutex::new(None),
        }
    }

    fn unregister(&self) {
        let registered = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(intake) = registered {
            self.bus.unregister_all(&intake);
        }
    }
}

impl ServerTransport for MemoryServerTransport {
    async fn start(&self, intake: &Intake) -> Result<(), ServerError> {
        self.bus.register_all(intake)?;
        *self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(intake.clone());
        tracing::debug!(services = ?self.bus.services(), "memory server started");
        Ok(())
    }

    async fn stop_intake(&self) {
        self.unregister();
    }

    async fn close(&self) {}

    fn abandon(&self) {
        self.unregister();
    }
}

/// Serves services on a [`MemoryBus`].
///
/// Cheap to clone; clones share one server. Dropping the last handle without calling
/// [`MemoryRpcServer::stop`] unregisters the services at once and cancels the handlers still
/// running (their callers get "transport stopped"); `stop` is the graceful way.
#[derive(Debug, Clone)]
pub struct MemoryRpcServer {
    server: Server<MemoryServerTransport>,
}

/// Builds a [`MemoryRpcServer`].
#[derive(Debug)]
#[must_use]
pub struct MemoryRpcServerBuilder {
    builder: ServerBuilder<MemoryServerTransport>,
}

impl MemoryRpcServerBuilder {
    /// Adds a service (a macro-generated `<Name>Server` or a hand-built `RpcService`).
    pub fn service(mut self, service: impl IntoRpcService) -> Self {
        self.builder = self.builder.service(service);
        self
    }

    /// How long `stop` waits for in-flight handlers. Default: 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.builder = self.builder.shutdown_grace(grace);
        self
    }

    /// Middleware around every call (see `clamator::middleware`).
    pub fn layers(mut self, layers: ServerLayers) -> Self {
        self.builder = self.builder.layers(layers);
        self
    }

    /// Builds the server; two services with one name are an error.
    pub fn build(self) -> Result<MemoryRpcServer, ServerError> {
        Ok(MemoryRpcServer {
            server: self.builder.build()?,
        })
    }
}

impl MemoryRpcServer {
    /// Starts building a server on `bus`.
    pub fn builder(bus: &MemoryBus) -> MemoryRpcServerBuilder {
        MemoryRpcServerBuilder {
            builder: Server::builder(MemoryServerTransport::new(bus)),
        }
    }

    /// Registers the services on the bus. Idempotent (concurrent calls register once); an
    /// error after `stop`, or when another server on the bus already serves one of the
    /// services (then none is registered and the server stays idle).
    pub async fn start(&self) -> Result<(), ServerError> {
        self.server.start().await
    }

    /// Stops with the configured grace: unregisters the services (new calls get `-32601`),
    /// then waits for in-flight handlers up to the grace and cancels those still running
    /// (their callers get "transport stopped"). Idempotent; every caller returns once the
    /// drain is over.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// [`MemoryRpcServer::stop`] with an explicit grace.
    pub async fn stop_with_grace(&self, grace: Duration) {
        self.server.stop_with_grace(grace).await;
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.server.state()
    }

    /// The generic server it is built on.
    pub fn server(&self) -> &Server<MemoryServerTransport> {
        &self.server
    }
}

impl From<MemoryRpcServer> for clamator_protocol::AnyServer {
    /// The same server behind the handle every transport shares.
    fn from(value: MemoryRpcServer) -> Self {
        Self::new(value.server)
    }
}
