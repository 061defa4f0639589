//! The server half of the transport interface: [`ServerTransport`] (what a transport
//! implements), [`Intake`] (what it hands every call to) and [`Server`] (lifecycle, drain,
//! middleware and spans, shared by every transport).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::Either;
use futures::FutureExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

use super::{CallKind, Metadata, ServerCounters, ServerStats};
use crate::envelope::{Envelope, Id, Response};
use crate::error::{LifecycleState, RpcError, ServerError};
use crate::lifecycle::StartStep;
use crate::middleware::{ServerLayers, ServerStack};
use crate::observe;
use crate::server::{ServerCore, Services, DEFAULT_SHUTDOWN_GRACE};
use crate::service::{CallIds, IntoRpcService, RpcService};

/// The answer to an envelope that names another service than the one whose stream or subject
/// it came from (`billing.add` written into `arith`'s stream): not run (it would run
/// `arith.add`, which the sender did not ask for), a request answered `-32601` naming both;
/// `None` when it names `service`. The 0.1.9 servers dispatch on the method part alone.
fn misrouted(service: &RpcService, envelope: &Envelope) -> Option<Option<Response>> {
    let (named, method, id) = match envelope {
        Envelope::Request(r) => (&r.service, &r.method, Some(&r.id)),
        Envelope::Notification(n) => (&n.service, &n.method, None),
        Envelope::Response(_) => return None,
    };
    if named == service.name() {
        return None;
    }
    let reason = format!(
        "{named}.{method} was sent to the stream of service {:?}: it names another service, so it is not run",
        service.name()
    );
    tracing::warn!(service = service.name(), named = %named, method = %method, "{reason}");
    Some(id.map(|id| {
        Response::error(
            id.to_value(),
            RpcError::method_not_found().with_data(serde_json::json!({ "reason": reason })),
        )
    }))
}

/// A call as server middleware and the dispatch pipeline see it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IncomingCall {
    /// The service it was routed to.
    pub service: RpcService,
    /// The method.
    pub method: String,
    /// The params.
    pub params: Value,
    /// Request or notification.
    pub kind: CallKind,
    /// The request id (requests over a wire; `None` in process).
    pub id: Option<Id>,
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
    /// The extra fields that came with it (auth tokens, trace context).
    pub metadata: Metadata,
    /// The transport's id of the message that carried it (Redis: the stream entry id), for
    /// logs and spans.
    pub message_id: Option<String>,
}

impl IncomingCall {
    /// A call to `method` of `service`.
    pub fn new(
        service: RpcService,
        method: impl Into<String>,
        params: Value,
        kind: CallKind,
    ) -> Self {
        Self {
            service,
            method: method.into(),
            params,
            kind,
            id: None,
            deadline: None,
            metadata: Metadata::new(),
            message_id: None,
        }
    }

    /// With the transport's message id.
    #[must_use]
    pub fn with_message_id(mut self, message_id: Option<String>) -> Self {
        self.message_id = message_id;
        self
    }

    /// The ids that name it in logs.
    pub(crate) fn ids(&self) -> CallIds {
        CallIds {
            id: self.id.clone(),
            message_id: self.message_id.clone(),
        }
    }

    /// With the request id.
    #[must_use]
    pub fn with_id(mut self, id: Option<Id>) -> Self {
        self.id = id;
        self
    }

    /// With a deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// With metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// How an envelope arrived: what a wire transport knows besides the envelope.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Delivery {
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
    /// The extra fields that came with it.
    pub metadata: Metadata,
    /// The transport's id of the message (Redis: the stream entry id).
    pub message_id: Option<String>,
}

impl Delivery {
    /// Nothing known besides the envelope.
    pub fn new() -> Self {
        Self::default()
    }

    /// With a deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// With metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// With the transport's message id.
    #[must_use]
    pub fn with_message_id(mut self, message_id: impl Into<String>) -> Self {
        self.message_id = Some(message_id.into());
        self
    }
}

struct IntakeInner {
    core: Arc<ServerCore>,
    stack: Option<ServerStack>,
    counters: ServerCounters,
    /// The moving average of [`Intake::spawn`]'s inline first polls, in ns (1/32 weight each).
    inline_poll_ns: AtomicU64,
    /// Works not polled inline because the average was over the limit: one in
    /// [`INLINE_PROBE_EVERY`] is polled inline anyway (to see whether the handlers got fast).
    skipped: AtomicU64,
}

/// While first polls average more than this (handlers computing without awaiting), work runs
/// in tasks, spread over the runtime's threads, instead of inline in the transport's loop.
const INLINE_POLL_LIMIT_NS: u64 = 100_000;
const INLINE_PROBE_EVERY: u64 = 256;

/// What a [`ServerTransport`] hands its calls to: the services, the dispatch pipeline behind
/// the server's middleware, and the tracking of running handlers (for the drain on stop).
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<IntakeInner>,
}

impl fmt::Debug for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("services", &self.inner.core.services())
            .field("layers", &self.inner.stack.is_some())
            .finish()
    }
}

impl Intake {
    /// The services, in registration order.
    pub fn services(&self) -> &[RpcService] {
        self.inner.core.services()
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&RpcService> {
        self.inner.core.service(name)
    }

    /// The server core (lifecycle, tracker, shutdown token).
    pub fn core(&self) -> &Arc<ServerCore> {
        &self.inner.core
    }

    /// Where handler tasks run: the server's stop waits for them (up to its grace).
    pub fn tracker(&self) -> &TaskTracker {
        self.inner.core.tracker()
    }

    /// Cancelled when the drain window is over: handlers still running are abandoned.
    pub fn shutdown_token(&self) -> &CancellationToken {
        self.inner.core.shutdown_token()
    }

    /// The server's counters (its [`ServerStats`](super::ServerStats), metrics and rare-event
    /// logs).
    pub fn counters(&self) -> &ServerCounters {
        &self.inner.counters
    }

    /// Runs `work` (one message's handling): polled once here, and if it is not done then (it
    /// waits for a handler, a reply write, …) on the server's tracker, so that `stop` drains
    /// it. Most calls finish on that first poll and cost no task. While first polls average
    /// over 100 µs (handlers that compute without awaiting), work goes straight to tasks, so
    /// that it runs on all the runtime's threads rather than one after another in the
    /// transport's read loop. If the drain window ends first, `work` is dropped at its next
    /// await point and the future `abandoned` makes runs instead (e.g. give the message back
    /// to the broker).
    pub fn spawn<W, F, A>(&self, work: W, abandoned: F)
    where
        W: Future<Output = ()> + Send + 'static,
        F: FnOnce() -> A + Send + 'static,
        A: Future<Output = ()> + Send + 'static,
    {
        let mut work = Box::pin(work);
        // Counted by the drain from here, not only once it is a task: a stop that begins
        // during the inline poll below waits for this work instead of finding an empty
        // tracker and abandoning a handler that has started.
        let counted = self.tracker().token();
        let inner = &self.inner;
        let average = inner.inline_poll_ns.load(Ordering::Relaxed);
        if average <= INLINE_POLL_LIMIT_NS
            || inner.skipped.fetch_add(1, Ordering::Relaxed) % INLINE_PROBE_EVERY
                == INLINE_PROBE_EVERY - 1
        {
            let started = Instant::now();
            let done = (&mut work).now_or_never().is_some();
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let average = average - average / 32 + took / 32;
            inner.inline_poll_ns.store(average, Ordering::Relaxed);
            if done {
                return;
            }
        }
        let shutdown = self.shutdown_token().clone();
        self.tracker().spawn(async move {
            // `biased`, shutdown first: once the server abandons its handlers, none of them
            // takes another step (a handler woken at that moment is not polled again).
            tokio::select! {
                biased;
                () = shutdown.cancelled() => abandoned().await,
                () = work => {}
            }
        });
        drop(counted);
    }

    /// Runs a call through the middleware and the dispatch pipeline (method lookup, params
    /// validation, handler, error mapping, result serialisation). A notification's outcome is
    /// `null` or the error that was logged.
    pub fn call(
        &self,
        call: IncomingCall,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send + 'static {
        let span = observe::server_span(&call);
        if span.is_disabled() && self.inner.stack.is_none() {
            // No subscriber wants the span and no middleware: the pipeline itself, unboxed.
            let ids = call.ids();
            return Either::Left(call.service.invoke(
                &call.method,
                call.params,
                call.kind == CallKind::Request,
                ids,
                call.deadline,
            ));
        }
        observe::otel::extract(&span, &call.metadata);
        let outcome: crate::service::BoxFuture<Result<Value, RpcError>> = match &self.inner.stack {
            None => {
                let ids = call.ids();
                Box::pin(call.service.invoke(
                    &call.method,
                    call.params,
                    call.kind == CallKind::Request,
                    ids,
                    call.deadline,
                ))
            }
            Some(stack) => Box::pin(
                stack
                    .clone()
                    .oneshot(call)
                    .map(|outcome| outcome.map_err(crate::middleware::to_rpc_error)),
            ),
        };
        let recorder = span.clone();
        Either::Right(
            outcome
                .instrument(span)
                .inspect(move |outcome| observe::record_server_outcome(&recorder, outcome)),
        )
    }

    /// [`Intake::call`] for an in-process transport that holds the call's parts by reference:
    /// without middleware and with spans off, nothing is allocated for it (no
    /// [`IncomingCall`] is built).
    pub fn call_parts(
        &self,
        service: &RpcService,
        method: &str,
        params: Value,
        kind: CallKind,
        deadline: Option<Instant>,
        metadata: &Metadata,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send + 'static {
        if self.inner.stack.is_none() && !observe::server_spans_enabled() {
            let request = kind == CallKind::Request;
            return Either::Left(service.invoke(
                method,
                params,
                request,
                CallIds::default(),
                deadline,
            ));
        }
        let call = IncomingCall::new(service.clone(), method, params, kind)
            .with_deadline(deadline)
            .with_metadata(metadata.clone());
        Either::Right(self.call(call))
    }

    /// The pipeline for an envelope that arrived over a wire and was routed to `service`:
    /// the response to send back (requests only).
    pub fn handle(
        &self,
        service: &RpcService,
        envelope: Envelope,
        delivery: Delivery,
    ) -> impl Future<Output = Option<Response>> + Send + 'static {
        let Delivery {
            deadline,
            metadata,
            message_id,
        } = delivery;
        if let Some(misrouted) = misrouted(service, &envelope) {
            return Either::Left(std::future::ready(misrouted));
        }
        let (call, reply_id) = match envelope {
            Envelope::Response(_) => return Either::Left(std::future::ready(None)),
            Envelope::Request(r) => {
                let id = r.id.to_value();
                let call =
                    IncomingCall::new(service.clone(), r.method, r.params, CallKind::Request)
                        .with_id(Some(r.id));
                (call, Some(id))
            }
            Envelope::Notification(n) => (
                IncomingCall::new(service.clone(), n.method, n.params, CallKind::Notification),
                None,
            ),
        };
        let outcome = self.call(
            call.with_deadline(deadline)
                .with_metadata(metadata)
                .with_message_id(message_id),
        );
        Either::Right(async move {
            let outcome = outcome.await;
            reply_id.map(|id| match outcome {
                Ok(result) => Response::success(id, result),
                Err(error) => Response::error(id, error),
            })
        })
    }
}

/// What a transport implements to serve a [`Server`]'s services.
///
/// The [`Server`] does the rest: lifecycle, middleware, spans, and `stop` as three steps —
/// [`stop_intake`](Self::stop_intake), drain the handlers (up to the grace), then
/// [`close`](Self::close).
pub trait ServerTransport: Send + Sync + 'static {
    /// The transport's name: the `transport` label of the server's metrics and logs.
    const NAME: &'static str = "custom";

    /// Starts taking calls and hands them to `intake` (running handlers on
    /// [`Intake::tracker`]). Called once; an error must leave nothing running.
    fn start(&self, intake: &Intake) -> impl Future<Output = Result<(), ServerError>> + Send;

    /// Stops taking new calls; calls already taken keep running.
    fn stop_intake(&self) -> impl Future<Output = ()> + Send;

    /// Called after the drain: flushes what finished calls produced and releases connections.
    fn close(&self) -> impl Future<Output = ()> + Send;

    /// The last handle of the server was dropped without `stop`: end everything now (the
    /// running handlers are cancelled by the server).
    fn abandon(&self) {}
}

struct ServerInner<T: ServerTransport> {
    transport: T,
    intake: Intake,
    grace: Duration,
}

impl<T: ServerTransport> Drop for ServerInner<T> {
    fn drop(&mut self) {
        self.transport.abandon();
        self.intake.shutdown_token().cancel();
    }
}

/// A server on any [`ServerTransport`]: what `MemoryRpcServer` and `RedisRpcServer` are
/// built on, and what a new transport gets for free.
///
/// Cheap to clone; clones share one server.
pub struct Server<T: ServerTransport> {
    inner: Arc<ServerInner<T>>,
}

impl<T: ServerTransport> Clone for Server<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: ServerTransport> fmt::Debug for Server<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state())
            .field("intake", &self.inner.intake)
            .field("grace", &self.inner.grace)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Server`].
#[must_use]
pub struct ServerBuilder<T> {
    transport: T,
    services: Services,
    grace: Duration,
    layers: ServerLayers,
}

impl<T> fmt::Debug for ServerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("services", &self.services)
            .field("grace", &self.grace)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl<T: ServerTransport> ServerBuilder<T> {
    /// Adds a service (a macro-generated `<Name>Server` or a hand-built [`RpcService`]).
    pub fn service(mut self, service: impl IntoRpcService) -> Self {
        self.services = self.services.with(service);
        self
    }

    /// Adds the services collected in `services`.
    pub fn services(mut self, services: Services) -> Self {
        self.services = self.services.extend(services);
        self
    }

    /// How long `stop` waits for running handlers. Default: 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Middleware around every call (see [`ServerLayers`]); replaces earlier layers.
    pub fn layers(mut self, layers: ServerLayers) -> Self {
        self.layers = layers;
        self
    }

    /// Builds the server (not started); two services with one name are an error.
    pub fn build(self) -> Result<Server<T>, ServerError> {
        let core = Arc::new(self.services.into_core()?);
        let stack = self.layers.build();
        Ok(Server {
            inner: Arc::new(ServerInner {
                transport: self.transport,
                intake: Intake {
                    inner: Arc::new(IntakeInner {
                        core,
                        stack,
                        counters: ServerCounters::new(T::NAME),
                        inline_poll_ns: AtomicU64::new(0),
                        skipped: AtomicU64::new(0),
                    }),
                },
                grace: self.grace,
            }),
        })
    }
}

impl<T: ServerTransport> Server<T> {
    /// Starts building a server on `transport`.
    pub fn builder(transport: T) -> ServerBuilder<T> {
        ServerBuilder {
            transport,
            services: Services::new(),
            grace: DEFAULT_SHUTDOWN_GRACE,
            layers: ServerLayers::new(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.inner.transport
    }

    /// The services and dispatch pipeline.
    pub fn intake(&self) -> &Intake {
        &self.inner.intake
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.inner.intake.core().state()
    }

    /// The configured shutdown grace.
    pub fn shutdown_grace(&self) -> Duration {
        self.inner.grace
    }

    /// What the transport has done since the server started (messages run, refused, skipped,
    /// dead-lettered, redelivered; writes retried; broker state recreated).
    pub fn stats(&self) -> ServerStats {
        self.inner.intake.counters().snapshot()
    }

    /// Starts the transport. Idempotent (concurrent calls start once); an error after `stop`,
    /// or when the transport cannot start (then nothing runs and `start` can be called again).
    pub async fn start(&self) -> Result<(), ServerError> {
        let inner = &self.inner;
        match inner.intake.core().lifecycle().begin_start().await {
            StartStep::Start(guard) => {
                inner.transport.start(&inner.intake).await?;
                guard.started();
                Ok(())
            }
            StartStep::AlreadyStarted => Ok(()),
            StartStep::Stopped => Err(ServerError::AlreadyStopped),
        }
    }

    /// Stops with the configured grace. See [`Server::stop_with_grace`].
    pub async fn stop(&self) {
        self.stop_with_grace(self.inner.grace).await;
    }

    /// Stops taking calls, waits up to `grace` for running handlers (they are answered),
    /// cancels the rest, and closes the transport. Idempotent; a stop during `start` waits
    /// for it; every caller returns once it is over. The teardown runs in its own task: it
    /// completes even if this future is dropped.
    pub async fn stop_with_grace(&self, grace: Duration) {
        let Some(guard) = self.inner.intake.core().lifecycle().begin_stop().await else {
            return;
        };
        let inner = Arc::clone(&self.inner);
        let teardown = tokio::spawn(async move {
            inner.transport.stop_intake().await;
            inner.intake.core().drain(grace).await;
            inner.transport.close().await;
        });
        if let Err(e) = teardown.await {
            tracing::error!(error = %e, "server teardown panicked; the transport may not have closed its connections (a bug: please report it)");
        }
        guard.stopped();
    }
}

/// The error a request gets when middleware fails with something that is not an
/// [`RpcError`].
pub(crate) fn middleware_error(message: &str) -> RpcError {
    RpcError::internal(json!({ "name": "Middleware", "message": message }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct NoWire;

    /// An envelope naming another service (`billing.add` in `s`'s stream) is not run as `s.add`:
    /// `-32601` naming both (issue 29; 0.1.9 servers dispatch on the method part alone).
    #[tokio::test]
    async fn an_envelope_for_another_service_is_not_run() {
        let server = intake();
        let intake = server.intake();
        let service = intake.service("s").unwrap().clone();
        let request = crate::parse_envelope_str(
            r#"{"jsonrpc":"2.0","method":"billing.m","params":{},"id":7}"#,
        )
        .unwrap();
        let response = intake
            .handle(&service, request, Delivery::default())
            .await
            .expect("a request is answered");
        let error = response.outcome.expect_err("an error");
        assert_eq!(error.code, crate::codes::METHOD_NOT_FOUND);
        let reason = error.data["reason"].as_str().unwrap().to_owned();
        assert!(
            reason.contains("billing.m") && reason.contains("\"s\""),
            "{reason}"
        );
        let same =
            crate::parse_envelope_str(r#"{"jsonrpc":"2.0","method":"s.m","params":{},"id":8}"#)
                .unwrap();
        let response = intake
            .handle(&service, same, Delivery::default())
            .await
            .unwrap();
        assert!(response.outcome.is_ok(), "{response:?}");
    }

    impl ServerTransport for NoWire {
        async fn start(&self, _: &Intake) -> Result<(), ServerError> {
            Ok(())
        }
        async fn stop_intake(&self) {}
        async fn close(&self) {}
    }

    fn intake() -> Server<NoWire> {
        let service = crate::RpcService::builder("s")
            .raw_method("m", json!({}), json!({}), |_| async {
                Ok::<_, RpcError>(Value::Null)
            })
            .build()
            .unwrap();
        Server::builder(NoWire).service(service).build().unwrap()
    }

    /// A stop that begins while work is in its first (inline) poll waits for it: the drain
    /// counts work from before that poll, not only once it is a task (CI flake of
    /// `server_stop_drains`: the stop found an empty tracker, cancelled, and the handler
    /// that had started was abandoned at its next step).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_during_the_inline_poll_waits_for_the_work() {
        let server = intake();
        server.start().await.unwrap();
        let intake = server.intake().clone();
        let (ran, abandoned) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let reader = {
            let (ran, abandoned) = (Arc::clone(&ran), Arc::clone(&abandoned));
            tokio::spawn(async move {
                intake.spawn(
                    async move {
                        let _ = started_tx.send(());
                        // The rest of the first poll: long enough for the stop's drain to
                        // look at the tracker meanwhile.
                        std::thread::sleep(Duration::from_millis(300));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        ran.fetch_add(1, Ordering::SeqCst);
                    },
                    move || async move {
                        abandoned.fetch_add(1, Ordering::SeqCst);
                    },
                );
            })
        };
        started_rx.await.unwrap();
        server.stop_with_grace(Duration::from_secs(5)).await;
        reader.await.unwrap();
        assert_eq!(
            abandoned.load(Ordering::SeqCst),
            0,
            "the work was abandoned"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the work did not finish");
    }

    /// Quick work runs inline (no task); work that computes for a while without awaiting
    /// moves to tasks after a few such calls, so that the caller's loop is not held by it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quick_work_runs_inline_and_busy_work_moves_to_tasks() {
        let server = intake();
        let intake = server.intake();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = Arc::clone(&ran);
            intake.spawn(
                async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                || async {},
            );
        }
        assert_eq!(ran.load(Ordering::SeqCst), 100, "quick work ran inline");
        assert_eq!(intake.tracker().len(), 0, "no task was spawned");

        let busy = |ran: Arc<AtomicUsize>| async move {
            let until = Instant::now() + Duration::from_millis(2);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            ran.fetch_add(1, Ordering::SeqCst);
        };
        for _ in 0..200 {
            intake.spawn(busy(Arc::clone(&ran)), || async {});
        }
        let started = Instant::now();
        for _ in 0..50 {
            intake.spawn(busy(Arc::clone(&ran)), || async {});
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "50 busy works (2 ms each) took {:?} to hand over: they ran inline",
            started.elapsed()
        );
        intake.tracker().close();
        intake.tracker().wait().await;
        assert_eq!(ran.load(Ordering::SeqCst), 350);
    }
}
