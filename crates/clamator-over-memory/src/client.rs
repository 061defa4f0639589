use std::sync::Arc;
use std::time::Duration;

use clamator_protocol::{
    build_notification, check_names, parse_envelope, CallError, Lifecycle, LifecycleState,
    RpcClient, RpcError, StartStep, TransportError, DEFAULT_CALL_TIMEOUT,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::bus::MemoryBus;

#[derive(Debug)]
struct Inner {
    bus: MemoryBus,
    default_timeout: Duration,
    lifecycle: Lifecycle,
    stopped: CancellationToken,
}

/// Calls services on a [`MemoryBus`]. Cheap to clone; clones share one client.
#[derive(Debug, Clone)]
pub struct MemoryRpcClient {
    inner: Arc<Inner>,
}

/// Builds a [`MemoryRpcClient`].
#[derive(Debug)]
#[must_use]
pub struct MemoryRpcClientBuilder {
    bus: MemoryBus,
    default_timeout: Duration,
}

impl MemoryRpcClientBuilder {
    /// The timeout of calls made without one. Default: 30 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Builds the client (not started).
    pub fn build(self) -> MemoryRpcClient {
        MemoryRpcClient {
            inner: Arc::new(Inner {
                bus: self.bus,
                default_timeout: self.default_timeout,
                lifecycle: Lifecycle::new(),
                stopped: CancellationToken::new(),
            }),
        }
    }
}

impl MemoryRpcClient {
    /// A client on `bus` with the default settings (not started).
    pub fn new(bus: &MemoryBus) -> Self {
        Self::builder(bus).build()
    }

    /// Starts building a client on `bus`.
    pub fn builder(bus: &MemoryBus) -> MemoryRpcClientBuilder {
        MemoryRpcClientBuilder {
            bus: bus.clone(),
            default_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Starts the client. Idempotent; an error after `stop`.
    pub async fn start(&self) -> Result<(), TransportError> {
        match self.inner.lifecycle.begin_start().await {
            StartStep::Start(guard) => guard.started(),
            StartStep::AlreadyStarted => {}
            StartStep::Stopped => return Err(TransportError::AlreadyStopped),
        }
        Ok(())
    }

    /// Stops the client: pending calls fail with "transport stopped". Idempotent.
    pub async fn stop(&self) {
        if let Some(guard) = self.inner.lifecycle.begin_stop().await {
            self.inner.stopped.cancel();
            guard.stopped();
        }
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.inner.lifecycle.state()
    }
}

impl RpcClient for MemoryRpcClient {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        self.inner.lifecycle.ensure_started()?;
        check_names(service, method)?;
        let Some(route) = self.inner.bus.lookup(service) else {
            return Err(RpcError::method_not_found().into());
        };
        // The same pipeline as a request over Redis (`Service::call`), without building and
        // re-parsing an envelope nobody else sees. It runs in the caller's task (no spawn, no
        // cross-thread wake-up) and is tracked by the server, so the server's stop drains it.
        let timeout = timeout.unwrap_or(self.inner.default_timeout);
        let deadline = std::time::Instant::now().checked_add(timeout);
        // `cooperative`: a call takes part in tokio's budget like any tokio resource, so a
        // loop of calls that finish at once still lets the runtime run its other tasks.
        let call = tokio::task::coop::cooperative(
            route
                .core
                .tracker()
                .track_future(route.service.call(method, params, deadline)),
        );
        let mut call = std::pin::pin!(call);
        // Most handlers finish on their first poll: then no timer is created and no waiter is
        // queued on the shared tokens.
        if let std::task::Poll::Ready(outcome) = futures::poll!(call.as_mut()) {
            return outcome.map_err(CallError::Rpc);
        }
        tokio::select! {
            biased;
            outcome = call => outcome.map_err(CallError::Rpc),
            () = route.core.shutdown_token().cancelled() => Err(TransportError::Stopped.into()),
            () = tokio::time::sleep(timeout) => Err(TransportError::Timeout.into()),
            () = self.inner.stopped.cancelled() => Err(TransportError::Stopped.into()),
        }
    }

    async fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
    ) -> Result<(), CallError> {
        self.inner.lifecycle.ensure_started()?;
        tokio::task::coop::consume_budget().await;
        let notification = build_notification(service, method, params)?;
        let Some(route) = self.inner.bus.lookup(service) else {
            tracing::debug!(
                service,
                method,
                "notification dropped: service not on the bus"
            );
            return Ok(());
        };
        let envelope = parse_envelope(notification.into_value())?;
        let shutdown = route.core.shutdown_token().clone();
        route.core.tracker().spawn(async move {
            tokio::select! {
                _ = route.service.dispatch(envelope) => {},
                () = shutdown.cancelled() => {},
            }
        });
        Ok(())
    }
}
