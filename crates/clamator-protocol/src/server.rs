//! The transport-independent part of a server: its services, its lifecycle and the tracking
//! of in-flight handlers for a bounded drain on stop.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{LifecycleState, ServerError};
use crate::lifecycle::Lifecycle;
use crate::service::{IntoRpcService, RpcService};

/// The default drain window of `stop`: 5 s, as in the originals.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Services, lifecycle state and in-flight handler tracking shared by every transport's server.
///
/// Transports use it like this: `start` goes through [`ServerCore::lifecycle`]
/// (`begin_start` → set up intake → `started`); handlers run on [`ServerCore::tracker`] and
/// watch [`ServerCore::shutdown_token`]; `stop` (`begin_stop`) stops intake, then
/// [`ServerCore::drain`]s.
#[derive(Debug)]
pub struct ServerCore {
    services: Vec<RpcService>,
    lifecycle: Lifecycle,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Collects services for a server; rejects duplicates by name.
#[derive(Debug, Default)]
#[must_use]
pub struct Services {
    services: Vec<RpcService>,
}

impl Services {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service.
    pub fn with(mut self, service: impl IntoRpcService) -> Self {
        self.services.push(service.into_rpc_service());
        self
    }

    /// Adds every service of `other`.
    pub fn extend(mut self, other: Services) -> Self {
        self.services.extend(other.services);
        self
    }

    /// Whether no service was added.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Checks for duplicates and builds the core.
    pub fn into_core(self) -> Result<ServerCore, ServerError> {
        ServerCore::new(self.services)
    }
}

impl ServerCore {
    /// A core serving `services`; two services with one name are an error.
    pub fn new(services: Vec<RpcService>) -> Result<Self, ServerError> {
        if services.is_empty() {
            return Err(ServerError::NoServices);
        }
        let mut seen = HashSet::new();
        for s in &services {
            if !seen.insert(s.name()) {
                return Err(ServerError::DuplicateService(s.name().to_owned()));
            }
        }
        Ok(Self {
            services,
            lifecycle: Lifecycle::new(),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        })
    }

    /// The services, in registration order.
    pub fn services(&self) -> &[RpcService] {
        &self.services
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&RpcService> {
        self.services.iter().find(|s| s.name() == name)
    }

    /// The current lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.lifecycle.state()
    }

    /// The server's lifecycle (start once, stop once, concurrent callers wait).
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Tracks in-flight handler tasks.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Cancelled when the drain window is over: handlers still running then are abandoned.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Waits for in-flight handlers up to `grace`; then cancels those still running.
    /// Returns whether everything finished in time.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                still_running = self.tracker.len(),
                grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                "shutdown grace elapsed with handlers still running; cancelling them"
            );
        }
        self.shutdown.cancel();
        // Cancelled tasks finish at their next await point.
        let _ = tokio::time::timeout(Duration::from_millis(100), self.tracker.wait()).await;
        finished
    }
}
