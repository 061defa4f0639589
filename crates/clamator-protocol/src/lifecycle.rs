//! The one lifecycle state machine of every clamator client and server:
//! idle → starting → started → stopping → stopped.
//!
//! Concurrent `start` calls start once (the others wait for it); `stop` during `start` waits for
//! the start to finish and then tears down; every `stop` caller returns only after the teardown
//! finished; nothing starts again after a stop.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use crate::error::{LifecycleState, TransportError};

const IDLE: u8 = 0;
const STARTING: u8 = 1;
const STARTED: u8 = 2;
const STOPPING: u8 = 3;
const STOPPED: u8 = 4;

fn decode(v: u8) -> LifecycleState {
    match v {
        IDLE => LifecycleState::Idle,
        STARTING => LifecycleState::Starting,
        STARTED => LifecycleState::Started,
        STOPPING => LifecycleState::Stopping,
        _ => LifecycleState::Stopped,
    }
}

/// The lifecycle of a client or server. Reading the state is lock-free (it is checked on every
/// call); transitions wake whoever waits for them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use clamator_protocol::{Lifecycle, LifecycleState, StartStep};
/// let lifecycle = Lifecycle::default();
/// match lifecycle.begin_start().await {
///     StartStep::Start(guard) => {
///         // ... connect, spawn intake ...
///         guard.started();
///     }
///     StartStep::AlreadyStarted => {}
///     StartStep::Stopped => unreachable!(),
/// }
/// assert_eq!(lifecycle.state(), LifecycleState::Started);
/// if let Some(guard) = lifecycle.begin_stop().await {
///     // ... stop intake, drain, close ...
///     guard.stopped();
/// }
/// assert_eq!(lifecycle.state(), LifecycleState::Stopped);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Lifecycle {
    state: AtomicU8,
    changed: Notify,
}

/// What [`Lifecycle::begin_start`] decided.
#[derive(Debug)]
#[must_use]
pub enum StartStep<'a> {
    /// The caller starts now and calls [`StartGuard::started`] once intake runs; dropping the
    /// guard instead (start failed or was cancelled) returns to idle.
    Start(StartGuard<'a>),
    /// Started already (by a concurrent call, which this one waited for, or earlier).
    AlreadyStarted,
    /// Stopping or stopped: a stopped transport cannot start again.
    Stopped,
}

/// Held while starting; see [`StartStep::Start`].
#[derive(Debug)]
#[must_use = "dropping the guard means the start failed"]
pub struct StartGuard<'a> {
    lifecycle: &'a Lifecycle,
    done: bool,
}

/// Held while stopping; see [`Lifecycle::begin_stop`]. Dropping it (or calling
/// [`StopGuard::stopped`]) marks the lifecycle stopped and releases the other `stop` callers.
#[derive(Debug)]
#[must_use = "dropping the guard marks the transport stopped"]
pub struct StopGuard<'a> {
    lifecycle: &'a Lifecycle,
}

impl Lifecycle {
    /// A lifecycle in the idle state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    pub fn state(&self) -> LifecycleState {
        decode(self.state.load(Ordering::Acquire))
    }

    /// An error unless started (what a call checks first).
    pub fn ensure_started(&self) -> Result<(), TransportError> {
        match self.state.load(Ordering::Acquire) {
            STARTED => Ok(()),
            other => Err(TransportError::NotStarted {
                state: decode(other),
            }),
        }
    }

    fn set(&self, v: u8) {
        self.state.store(v, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn swap_if(&self, from: u8, to: u8) -> bool {
        let swapped = self
            .state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if swapped {
            self.changed.notify_waiters();
        }
        swapped
    }

    /// Runs `decide` on the current state until it returns `Some`, waiting for the next
    /// transition whenever it returns `None`.
    async fn wait_for<T>(&self, mut decide: impl FnMut(u8) -> Option<T>) -> T {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            if let Some(out) = decide(self.state.load(Ordering::Acquire)) {
                return out;
            }
            changed.await;
        }
    }

    /// Decides what `start` does: start now (idle), nothing (started; a concurrent start is
    /// waited for), or refuse (stopping or stopped).
    pub async fn begin_start(&self) -> StartStep<'_> {
        self.wait_for(|state| match state {
            IDLE => self.swap_if(IDLE, STARTING).then(|| {
                StartStep::Start(StartGuard {
                    lifecycle: self,
                    done: false,
                })
            }),
            STARTING => None,
            STARTED => Some(StartStep::AlreadyStarted),
            _ => Some(StartStep::Stopped),
        })
        .await
    }

    /// Decides what `stop` does. Idle: marks it stopped, nothing to tear down (`None`).
    /// Starting: waits for the start, then decides again. Started: the caller tears down and
    /// drops the returned guard. Stopping: waits until the stop in progress finished (`None`).
    /// Stopped: `None`.
    pub async fn begin_stop(&self) -> Option<StopGuard<'_>> {
        self.wait_for(|state| match state {
            IDLE => self.swap_if(IDLE, STOPPED).then_some(None),
            STARTED => self
                .swap_if(STARTED, STOPPING)
                .then(|| Some(StopGuard { lifecycle: self })),
            STOPPED => Some(None),
            _ => None, // starting or stopping: wait
        })
        .await
    }

    /// Runs `start` once (see [`Lifecycle::begin_start`]); `Ok(false)` when already started,
    /// `stopped()` after stop.
    pub async fn start_with<E, Fut>(
        &self,
        stopped: impl FnOnce() -> E,
        start: impl FnOnce() -> Fut,
    ) -> Result<bool, E>
    where
        Fut: Future<Output = Result<(), E>>,
    {
        match self.begin_start().await {
            StartStep::Start(guard) => {
                start().await?;
                guard.started();
                Ok(true)
            }
            StartStep::AlreadyStarted => Ok(false),
            StartStep::Stopped => Err(stopped()),
        }
    }
}

impl StartGuard<'_> {
    /// Intake runs: the lifecycle is started.
    pub fn started(mut self) {
        self.done = true;
        self.lifecycle.set(STARTED);
    }
}

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lifecycle.set(IDLE);
        }
    }
}

impl StopGuard<'_> {
    /// The teardown finished: the lifecycle is stopped.
    pub fn stopped(self) {}
}

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        self.lifecycle.set(STOPPED);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_failed_start_returns_to_idle_and_can_be_retried() {
        let l = Lifecycle::new();
        match l.begin_start().await {
            StartStep::Start(guard) => drop(guard),
            other => panic!("{other:?}"),
        }
        assert_eq!(l.state(), LifecycleState::Idle);
        assert!(matches!(l.begin_start().await, StartStep::Start(_)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_during_start_waits_for_it_and_concurrent_stops_wait_for_the_teardown() {
        let l = Arc::new(Lifecycle::new());
        let StartStep::Start(guard) = l.begin_start().await else {
            panic!()
        };
        let stopper = tokio::spawn({
            let l = l.clone();
            async move {
                let guard = l.begin_stop().await.expect("tears down");
                tokio::time::sleep(Duration::from_millis(100)).await;
                guard.stopped();
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            l.state(),
            LifecycleState::Starting,
            "stop waits for the start"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(10), l.begin_start())
                .await
                .is_err(),
            "a start waits while another is starting"
        );
        guard.started();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(l.state(), LifecycleState::Stopping);
        // a second stop returns only once the first finished tearing down
        assert!(l.begin_stop().await.is_none());
        assert_eq!(l.state(), LifecycleState::Stopped);
        stopper.await.unwrap();
        assert!(matches!(l.begin_start().await, StartStep::Stopped));
    }

    #[tokio::test]
    async fn stop_before_start_needs_no_teardown() {
        let l = Lifecycle::new();
        assert!(l.begin_stop().await.is_none());
        assert_eq!(l.state(), LifecycleState::Stopped);
        assert!(l.ensure_started().is_err());
    }
}
