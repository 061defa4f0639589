//! The client half of the transport interface: [`ClientTransport`] (what a transport
//! implements), [`Replies`] (call correlation for transports whose replies arrive on their own)
//! and [`Client`] (lifecycle, timeouts, stop, middleware and spans, shared by every transport).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use super::{CallKind, Metadata};
use crate::client::{check_names, RpcClient, DEFAULT_CALL_TIMEOUT, MAX_CALL_TIMEOUT};
use crate::envelope::{parse_envelope_slice, Envelope, EnvelopeError, Response};
use crate::error::{BoxError, CallError, LifecycleState, RpcError, TransportError};
use crate::lifecycle::{Lifecycle, StartStep};
use crate::middleware::{from_box_error, ClientLayers, ClientStack};
use crate::observe;

/// A call as a transport sees it: names checked, timeout decided, metadata to carry.
#[derive(Debug)]
#[non_exhaustive]
pub struct Call<'a> {
    /// The service.
    pub service: &'a str,
    /// The method.
    pub method: &'a str,
    /// The params.
    pub params: Value,
    /// How long the caller waits; a wire transport tells the server (e.g. `timeout-ms`).
    /// The [`Client`] enforces it: the transport need not.
    pub timeout: Duration,
    /// Extra fields to carry with the request (auth tokens, trace context).
    pub metadata: &'a Metadata,
}

/// A call as client middleware sees it (owned, so layers can keep, change or repeat it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OutgoingCall {
    /// The service.
    pub service: String,
    /// The method.
    pub method: String,
    /// The params.
    pub params: Value,
    /// Request or notification.
    pub kind: CallKind,
    /// How long the caller waits for the reply (requests only).
    pub timeout: Duration,
    /// Extra fields the transport carries with the request.
    pub metadata: Metadata,
}

impl OutgoingCall {
    /// A call (what the [`Client`] hands to its layers).
    pub fn new(
        service: impl Into<String>,
        method: impl Into<String>,
        params: Value,
        kind: CallKind,
        timeout: Duration,
    ) -> Self {
        Self {
            service: service.into(),
            method: method.into(),
            params,
            kind,
            timeout,
            metadata: Metadata::new(),
        }
    }
}

/// What a transport implements to carry a [`Client`]'s calls.
///
/// The [`Client`] does everything else: lifecycle, name checks, the call timeout, failing
/// pending calls on stop, middleware, spans. A transport whose replies arrive separately from
/// the request (a reply stream, an inbox) correlates them with the [`Replies`] it is given.
pub trait ClientTransport: Send + Sync + 'static {
    /// Connects and starts receiving replies into `replies` (called once, by
    /// [`Client::start`]; an error leaves the client idle so that start can be retried).
    fn start(&self, replies: &Replies) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Sends a request and waits for its reply. A transport that correlates replies calls
    /// [`Replies::expect`] before sending and awaits the returned waiter.
    fn request<'a>(
        &'a self,
        call: Call<'a>,
        replies: &'a Replies,
    ) -> impl Future<Output = Result<Value, CallError>> + Send + 'a;

    /// Sends a notification.
    fn notify<'a>(
        &'a self,
        call: Call<'a>,
    ) -> impl Future<Output = Result<(), CallError>> + Send + 'a;

    /// Stops receiving replies and releases connections (called once, by [`Client::stop`],
    /// after pending calls were failed).
    fn stop(&self) -> impl Future<Output = ()> + Send;

    /// Where calls go, for the `server.address` span attribute (e.g. the Redis host).
    fn server_address(&self) -> Option<String> {
        None
    }
}

type Waiters = HashMap<String, oneshot::Sender<Result<Value, RpcError>>, rustc_hash::FxBuildHasher>;

/// Calls waiting for their replies, by request id.
///
/// Cheap to clone. A transport registers a call with [`Replies::expect`] before sending it
/// and hands every reply it receives to [`Replies::deliver`] (or [`Replies::deliver_slice`]);
/// late, duplicate and unknown replies are dropped. [`Client::stop`] closes it: waiting calls
/// fail with "transport stopped".
#[derive(Clone, Default)]
pub struct Replies {
    waiters: Arc<Mutex<Waiters>>,
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replies")
            .field("pending", &self.len())
            .finish()
    }
}

fn key_of(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Replies {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the call with request id `id` (its string form, or the JSON of a number id).
    /// The waiter resolves with the reply; dropping it forgets the call.
    pub fn expect(&self, id: impl Into<String>) -> ReplyWaiter {
        let id = id.into();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), tx);
        ReplyWaiter {
            replies: self.clone(),
            id,
            rx,
        }
    }

    /// Completes the call `response` answers. Returns whether one was waiting.
    pub fn deliver(&self, response: Response) -> bool {
        let waiter = self.lock().remove(&key_of(&response.id));
        waiter.is_some_and(|w| w.send(response.outcome).is_ok())
    }

    /// Parses a reply envelope and completes the call it answers (anything but a response is
    /// ignored). Returns whether a call was waiting for it.
    pub fn deliver_slice(&self, raw: &[u8]) -> Result<bool, EnvelopeError> {
        match parse_envelope_slice(raw)? {
            Envelope::Response(response) => Ok(self.deliver(response)),
            _ => Ok(false),
        }
    }

    /// Whether the call with this id still waits for its reply.
    pub fn is_pending(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// How many calls wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fails every waiting call with "transport stopped".
    pub fn close(&self) {
        self.lock().clear();
    }
}

/// A call waiting for its reply (see [`Replies::expect`]); forgets the call when dropped.
#[derive(Debug)]
pub struct ReplyWaiter {
    replies: Replies,
    id: String,
    rx: oneshot::Receiver<Result<Value, RpcError>>,
}

impl ReplyWaiter {
    /// The request id it waits for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the reply: the result, the peer's error object, or "transport stopped" when
    /// the client stops first.
    pub async fn reply(mut self) -> Result<Value, CallError> {
        match (&mut self.rx).await {
            Ok(outcome) => outcome.map_err(CallError::Rpc),
            Err(_) => Err(TransportError::Stopped.into()),
        }
    }
}

impl Drop for ReplyWaiter {
    fn drop(&mut self) {
        self.replies.lock().remove(&self.id);
    }
}

/// What the client's call path and its middleware stack share.
struct Core<T> {
    transport: T,
    replies: Replies,
    lifecycle: Lifecycle,
    stopped: CancellationToken,
    default_timeout: Duration,
    server_address: Option<String>,
}

impl<T> Drop for Core<T> {
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

/// A client on any [`ClientTransport`]: what `MemoryRpcClient` and `RedisRpcClient` are
/// built on, and what a new transport gets for free.
///
/// Cheap to clone; clones share one client. Calls fail with "transport stopped" when the
/// client stops (or its last handle is dropped) while they wait.
pub struct Client<T> {
    core: Arc<Core<T>>,
    stack: Option<ClientStack>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            stack: self.stack.clone(),
        }
    }
}

impl<T> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.core.lifecycle.state())
            .field("default_timeout", &self.core.default_timeout)
            .field("layers", &self.stack.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
#[must_use]
pub struct ClientBuilder<T> {
    transport: T,
    default_timeout: Duration,
    layers: ClientLayers,
}

impl<T> fmt::Debug for ClientBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("default_timeout", &self.default_timeout)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl<T: ClientTransport> ClientBuilder<T> {
    /// The timeout of calls made without one. Default: 30 s; longer than
    /// [`MAX_CALL_TIMEOUT`] waits that long.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Middleware around every call (see [`ClientLayers`]); replaces earlier layers.
    pub fn layers(mut self, layers: ClientLayers) -> Self {
        self.layers = layers;
        self
    }

    /// Builds the client (not started); a zero default timeout is an error.
    pub fn build(self) -> Result<Client<T>, TransportError> {
        if self.default_timeout.is_zero() {
            return Err(TransportError::Config(
                "the default call timeout must be longer than zero".into(),
            ));
        }
        Ok(self.assemble())
    }

    fn assemble(self) -> Client<T> {
        let server_address = self.transport.server_address();
        let core = Arc::new(Core {
            transport: self.transport,
            replies: Replies::new(),
            lifecycle: Lifecycle::new(),
            stopped: CancellationToken::new(),
            default_timeout: self.default_timeout,
            server_address,
        });
        let stack = self.layers.build({
            let core = Arc::clone(&core);
            move |call: OutgoingCall| {
                let core = Arc::clone(&core);
                async move { core.send(call).await.map_err(BoxError::from) }
            }
        });
        Client { core, stack }
    }
}

impl<T: ClientTransport> Core<T> {
    /// The call without middleware: transport, timeout, stop. Transports see at most
    /// [`MAX_CALL_TIMEOUT`], so that `now + timeout` never overflows a clock.
    async fn exchange(&self, mut call: Call<'_>) -> Result<Value, CallError> {
        call.timeout = call.timeout.min(MAX_CALL_TIMEOUT);
        let timeout = call.timeout;
        let exchange = self.transport.request(call, &self.replies);
        let mut exchange = std::pin::pin!(exchange);
        // A call that completes on its first poll (in-process transports) creates no timer
        // and queues no waiter on the stop token.
        if let Poll::Ready(outcome) = futures::poll!(exchange.as_mut()) {
            return outcome;
        }
        tokio::select! {
            biased;
            outcome = exchange => outcome,
            () = tokio::time::sleep(timeout) => Err(TransportError::Timeout.into()),
            () = self.stopped.cancelled() => Err(TransportError::Stopped.into()),
        }
    }

    async fn notify(&self, mut call: Call<'_>) -> Result<(), CallError> {
        call.timeout = call.timeout.min(MAX_CALL_TIMEOUT);
        tokio::select! {
            biased;
            sent = self.transport.notify(call) => sent,
            () = self.stopped.cancelled() => Err(TransportError::Stopped.into()),
        }
    }

    /// The innermost service of a middleware stack.
    async fn send(&self, call: OutgoingCall) -> Result<Value, CallError> {
        self.lifecycle.ensure_started()?;
        let OutgoingCall {
            service,
            method,
            params,
            kind,
            timeout,
            metadata,
        } = call;
        let call = Call {
            service: &service,
            method: &method,
            params,
            timeout,
            metadata: &metadata,
        };
        match kind {
            CallKind::Request => self.exchange(call).await,
            CallKind::Notification => self.notify(call).await.map(|()| Value::Null),
        }
    }
}

impl<T: ClientTransport> Client<T> {
    /// A client with the default settings (not started).
    pub fn new(transport: T) -> Self {
        Self::builder(transport).assemble()
    }

    /// Starts building a client on `transport`.
    pub fn builder(transport: T) -> ClientBuilder<T> {
        ClientBuilder {
            transport,
            default_timeout: DEFAULT_CALL_TIMEOUT,
            layers: ClientLayers::new(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.core.transport
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.core.lifecycle.state()
    }

    /// The timeout of calls made without one.
    pub fn default_timeout(&self) -> Duration {
        self.core.default_timeout
    }

    /// Starts the transport. Idempotent (concurrent calls start once); an error after `stop`,
    /// or when the transport cannot start (then `start` can be called again).
    pub async fn start(&self) -> Result<(), TransportError> {
        let core = &self.core;
        match core.lifecycle.begin_start().await {
            StartStep::Start(guard) => {
                core.transport.start(&core.replies).await?;
                guard.started();
                Ok(())
            }
            StartStep::AlreadyStarted => Ok(()),
            StartStep::Stopped => Err(TransportError::AlreadyStopped),
        }
    }

    /// Stops: waiting calls fail with "transport stopped", then the transport stops.
    /// Idempotent; a stop during `start` waits for it.
    pub async fn stop(&self) {
        let core = &self.core;
        if let Some(guard) = core.lifecycle.begin_stop().await {
            core.stopped.cancel();
            core.replies.close();
            core.transport.stop().await;
            guard.stopped();
        }
    }

    async fn through_stack(
        &self,
        stack: &ClientStack,
        call: OutgoingCall,
    ) -> Result<Value, CallError> {
        stack.clone().oneshot(call).await.map_err(from_box_error)
    }
}

impl<T: ClientTransport> RpcClient for Client<T> {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        let core = &self.core;
        core.lifecycle.ensure_started()?;
        check_names(service, method)?;
        let timeout = timeout.unwrap_or(core.default_timeout);
        if self.stack.is_none() && !observe::client_spans_enabled() {
            // No subscriber wants the span and no middleware: the exchange itself.
            let call = Call {
                service,
                method,
                params,
                timeout,
                metadata: Metadata::empty(),
            };
            return core.exchange(call).await;
        }
        let span = observe::client_span(service, method, core.server_address.as_deref());
        let mut traced = Metadata::new();
        observe::otel::inject(&span, &mut traced);
        let outcome = async {
            match &self.stack {
                None => {
                    let call = Call {
                        service,
                        method,
                        params,
                        timeout,
                        metadata: &traced,
                    };
                    core.exchange(call).await
                }
                Some(stack) => {
                    let mut call =
                        OutgoingCall::new(service, method, params, CallKind::Request, timeout);
                    call.metadata = traced;
                    self.through_stack(stack, call).await
                }
            }
        }
        .instrument(span.clone())
        .await;
        observe::record_client_outcome(&span, &outcome);
        outcome
    }

    async fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
    ) -> Result<(), CallError> {
        let core = &self.core;
        core.lifecycle.ensure_started()?;
        check_names(service, method)?;
        tokio::task::coop::consume_budget().await;
        let mut traced = Metadata::new();
        observe::otel::inject(&tracing::Span::current(), &mut traced);
        match &self.stack {
            None => {
                let call = Call {
                    service,
                    method,
                    params,
                    timeout: core.default_timeout,
                    metadata: &traced,
                };
                core.notify(call).await
            }
            Some(stack) => {
                let mut call = OutgoingCall::new(
                    service,
                    method,
                    params,
                    CallKind::Notification,
                    core.default_timeout,
                );
                call.metadata = traced;
                self.through_stack(stack, call).await.map(|_| ())
            }
        }
    }
}
