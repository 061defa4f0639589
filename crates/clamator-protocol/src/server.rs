//! The transport-independent part of a server: its services, its lifecycle and the tracking
//! of in-flight handlers for a bounded drain on stop.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{LifecycleState, ServerError};
use crate::service::{IntoService, Service};

/// The default drain window of `stop`: 5 s, as in the originals.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What `start` should do, decided by [`ServerCore::begin_start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartAction {
    /// The server is idle: the transport should start now and then call
    /// [`ServerCore::finish_start`].
    Start,
    /// Already started: nothing to do (start is idempotent).
    AlreadyStarted,
}

/// Services, lifecycle state and in-flight handler tracking shared by every transport's server.
///
/// Transports use it like this: `begin_start` → set up intake → `finish_start`;
/// handlers run on [`ServerCore::tracker`] and watch [`ServerCore::shutdown_token`];
/// `stop` stops intake, then [`ServerCore::drain`]s.
#[derive(Debug)]
pub struct ServerCore {
    services: Vec<Service>,
    state: Mutex<LifecycleState>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Collects services for a server; rejects duplicates by name.
#[derive(Debug, Default)]
#[must_use]
pub struct Services {
    services: Vec<Service>,
}

impl Services {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service.
    pub fn with(mut self, service: impl IntoService) -> Self {
        self.services.push(service.into_service());
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
    pub fn new(services: Vec<Service>) -> Result<Self, ServerError> {
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
            state: Mutex::new(LifecycleState::Idle),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        })
    }

    /// The services, in registration order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name() == name)
    }

    /// The current lifecycle state.
    pub fn state(&self) -> LifecycleState {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides what `start` does: an error after stop, nothing when started.
    pub fn begin_start(&self) -> Result<StartAction, ServerError> {
        match self.state() {
            LifecycleState::Stopped => Err(ServerError::AlreadyStopped),
            LifecycleState::Started => Ok(StartAction::AlreadyStarted),
            _ => Ok(StartAction::Start),
        }
    }

    /// Marks the server started (after the transport's intake is running).
    pub fn finish_start(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *state == LifecycleState::Idle {
            *state = LifecycleState::Started;
        }
    }

    /// Marks the server stopped; returns the state it was in (stop is idempotent: a transport
    /// only tears down when this returns [`LifecycleState::Started`]).
    pub fn mark_stopped(&self) -> LifecycleState {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *state, LifecycleState::Stopped)
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
