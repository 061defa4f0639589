use std::time::Duration;

use clamator_protocol::middleware::ClientLayers;
use clamator_protocol::{
    Call, CallError, CallKind, Client, ClientBuilder, ClientTransport, IncomingCall,
    LifecycleState, Replies, RpcClient, RpcError, TransportError,
};
use serde_json::Value;

use crate::bus::MemoryBus;

/// The memory bus as a [`ClientTransport`]: a call runs the server's pipeline in the
/// caller's task (no envelope, no id, no correlation needed).
#[derive(Debug)]
pub struct MemoryClientTransport {
    bus: MemoryBus,
}

impl MemoryClientTransport {
    /// A transport calling services on `bus`.
    pub fn new(bus: &MemoryBus) -> Self {
        Self { bus: bus.clone() }
    }
}

impl ClientTransport for MemoryClientTransport {
    async fn start(&self, _replies: &Replies) -> Result<(), TransportError> {
        Ok(())
    }

    async fn request<'a>(
        &'a self,
        call: Call<'a>,
        _replies: &'a Replies,
    ) -> Result<Value, CallError> {
        let Some(route) = self.bus.lookup(call.service) else {
            // An answer without any await point: spend budget like a served call does, so that
            // a loop of calls to nobody still lets the runtime run its other tasks and timers.
            tokio::task::coop::consume_budget().await;
            return Err(RpcError::method_not_found().into());
        };
        // The same pipeline as a request over Redis, without building and re-parsing an
        // envelope nobody else sees. It runs in the caller's task (no spawn, no cross-thread
        // wake-up) and is tracked by the server, so the server's stop drains it.
        let deadline = std::time::Instant::now().checked_add(call.timeout);
        let outcome = route.intake.call_parts(
            &route.service,
            call.method,
            call.params,
            CallKind::Request,
            deadline,
            call.metadata,
        );
        // `cooperative`: a call takes part in tokio's budget like any tokio resource, so a
        // loop of calls that finish at once still lets the runtime run its other tasks.
        let outcome = tokio::task::coop::cooperative(route.intake.tracker().track_future(outcome));
        let mut outcome = std::pin::pin!(outcome);
        // Most handlers finish on their first poll: then nothing waits on the shutdown token.
        if let std::task::Poll::Ready(outcome) = futures::poll!(outcome.as_mut()) {
            return outcome.map_err(CallError::Rpc);
        }
        tokio::select! {
            biased;
            outcome = outcome => outcome.map_err(CallError::Rpc),
            () = route.intake.shutdown_token().cancelled() => Err(TransportError::Stopped.into()),
        }
    }

    async fn notify<'a>(&'a self, call: Call<'a>) -> Result<(), CallError> {
        let Some(route) = self.bus.lookup(call.service) else {
            tracing::debug!(
                service = call.service,
                method = call.method,
                "notification dropped: service not on the bus"
            );
            tokio::task::coop::consume_budget().await;
            return Ok(());
        };
        let incoming = IncomingCall::new(
            route.service,
            call.method,
            call.params,
            CallKind::Notification,
        )
        .with_metadata(call.metadata.clone());
        let shutdown = route.intake.shutdown_token().clone();
        let run = route.intake.call(incoming);
        route.intake.tracker().spawn(async move {
            tokio::select! {
                _ = run => {},
                () = shutdown.cancelled() => {},
            }
        });
        // Spawning does not yield: a loop of notifications takes part in the budget too.
        tokio::task::coop::consume_budget().await;
        Ok(())
    }

    async fn stop(&self) {}
}

/// Calls services on a [`MemoryBus`]. Cheap to clone; clones share one client.
#[derive(Debug, Clone)]
pub struct MemoryRpcClient {
    client: Client<MemoryClientTransport>,
}

/// Builds a [`MemoryRpcClient`].
#[derive(Debug)]
#[must_use]
pub struct MemoryRpcClientBuilder {
    builder: ClientBuilder<MemoryClientTransport>,
}

impl MemoryRpcClientBuilder {
    /// The timeout of calls made without one. Default: 30 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.default_timeout(timeout);
        self
    }

    /// Middleware around every call (see `clamator::middleware`).
    pub fn layers(mut self, layers: ClientLayers) -> Self {
        self.builder = self.builder.layers(layers);
        self
    }

    /// Builds the client (not started); a zero default timeout is an error.
    pub fn build(self) -> Result<MemoryRpcClient, TransportError> {
        Ok(MemoryRpcClient {
            client: self.builder.build()?,
        })
    }
}

impl MemoryRpcClient {
    /// A client on `bus` with the default settings (not started).
    pub fn new(bus: &MemoryBus) -> Self {
        Self {
            client: Client::new(MemoryClientTransport::new(bus)),
        }
    }

    /// Starts building a client on `bus`.
    pub fn builder(bus: &MemoryBus) -> MemoryRpcClientBuilder {
        MemoryRpcClientBuilder {
            builder: Client::builder(MemoryClientTransport::new(bus)),
        }
    }

    /// Starts the client. Idempotent; an error after `stop`.
    pub async fn start(&self) -> Result<(), TransportError> {
        self.client.start().await
    }

    /// Stops the client: pending calls fail with "transport stopped". Idempotent.
    pub async fn stop(&self) {
        self.client.stop().await;
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.client.state()
    }

    /// The generic client it is built on.
    pub fn client(&self) -> &Client<MemoryClientTransport> {
        &self.client
    }
}

impl RpcClient for MemoryRpcClient {
    fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> impl std::future::Future<Output = Result<Value, CallError>> + Send {
        self.client.call_value(service, method, params, timeout)
    }

    fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
    ) -> impl std::future::Future<Output = Result<(), CallError>> + Send {
        self.client.notify_value(service, method, params)
    }
}

impl From<MemoryRpcClient> for clamator_protocol::AnyClient {
    /// The same client behind the handle every transport shares.
    fn from(value: MemoryRpcClient) -> Self {
        Self::new(value.client)
    }
}
