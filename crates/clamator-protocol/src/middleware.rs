//! Middleware, the tower way: [`ClientLayers`] wrap a client's calls ([`OutgoingCall`] →
//! result), [`ServerLayers`] wrap a server's dispatch ([`IncomingCall`] → result). Any
//! `tower::Layer` fits (`tower::limit::ConcurrencyLimitLayer`, `tower::timeout::TimeoutLayer`,
//! `tower::buffer::BufferLayer` + `RateLimitLayer`, your own); clamator ships
//! [`AuthTokenLayer`] / [`RequireAuthTokenLayer`] and [`RetryIdempotentLayer`].
//!
//! Errors cross the stack as [`BoxError`]: an [`RpcError`] (server) or [`CallError`]
//! (client) passes through unchanged; tower's `Elapsed` becomes a call timeout; anything else
//! becomes `-32603 Internal error` with `{"name": "Middleware"}` (server) or
//! [`CallError::Middleware`] (client).
//!
//! ```
//! use clamator_protocol::middleware::{AuthTokenLayer, ClientLayers, RequireAuthTokenLayer, ServerLayers};
//! let server_layers = ServerLayers::new()
//!     .layer(RequireAuthTokenLayer::new("s3cret"))
//!     .layer(tower::limit::ConcurrencyLimitLayer::new(100));
//! let client_layers = ClientLayers::new().layer(AuthTokenLayer::new("s3cret"));
//! # let _ = (server_layers, client_layers);
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use serde_json::{json, Value};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::contract::Contract;
use crate::error::{BoxError, CallError, RpcError, TransportError};
use crate::transport::{middleware_error, CallKind, IncomingCall, OutgoingCall};

/// A client's middleware stack, boxed.
pub type ClientStack = BoxCloneSyncService<OutgoingCall, Value, BoxError>;
/// A server's middleware stack, boxed.
pub type ServerStack = BoxCloneSyncService<IncomingCall, Value, BoxError>;

type Stack<R> = BoxCloneSyncService<R, Value, BoxError>;
type Wrap<R> = Arc<dyn Fn(Stack<R>) -> Stack<R> + Send + Sync>;

/// Layers around calls of request type `R`; the first added is the outermost. Used as
/// [`ClientLayers`] (around a client's calls) and [`ServerLayers`] (around a server's
/// dispatch).
#[must_use]
pub struct Layers<R> {
    wraps: Vec<Wrap<R>>,
}

/// Layers around a client's calls ([`OutgoingCall`] → result).
pub type ClientLayers = Layers<OutgoingCall>;
/// Layers around a server's dispatch ([`IncomingCall`] → result).
pub type ServerLayers = Layers<IncomingCall>;

impl<R> Clone for Layers<R> {
    fn clone(&self) -> Self {
        Self {
            wraps: self.wraps.clone(),
        }
    }
}

impl<R> Default for Layers<R> {
    fn default() -> Self {
        Self { wraps: Vec::new() }
    }
}

impl<R> fmt::Debug for Layers<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Layers({} layers)", self.wraps.len())
    }
}

impl<R: Send + 'static> Layers<R> {
    /// No layers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a layer inside the ones added before.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Stack<R>> + Send + Sync + 'static,
        L::Service: Service<R, Response = Value> + Clone + Send + Sync + 'static,
        <L::Service as Service<R>>::Error: Into<BoxError>,
        <L::Service as Service<R>>::Future: Send + 'static,
    {
        self.wraps.push(Arc::new(move |inner| {
            BoxCloneSyncService::new(layer.layer(inner).map_err(Into::into))
        }));
        self
    }

    /// Whether no layer was added.
    pub fn is_empty(&self) -> bool {
        self.wraps.is_empty()
    }

    /// The stack around `inner`, or `None` without layers (the caller takes its direct path).
    fn around(&self, inner: Stack<R>) -> Option<Stack<R>> {
        if self.wraps.is_empty() {
            return None;
        }
        Some(self.wraps.iter().rev().fold(inner, |s, w| w(s)))
    }
}

impl ClientLayers {
    pub(crate) fn build<F, Fut>(&self, inner: F) -> Option<ClientStack>
    where
        F: Fn(OutgoingCall) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, BoxError>> + Send + 'static,
    {
        if self.is_empty() {
            return None;
        }
        self.around(BoxCloneSyncService::new(tower::service_fn(inner)))
    }
}

impl ServerLayers {
    pub(crate) fn build(&self) -> Option<ServerStack> {
        if self.wraps.is_empty() {
            return None;
        }
        let dispatch = tower::service_fn(|call: IncomingCall| {
            let ids = call.ids();
            call.service
                .invoke(
                    &call.method,
                    call.params,
                    call.kind == CallKind::Request,
                    ids,
                    call.deadline,
                )
                .map(|outcome| outcome.map_err(BoxError::from))
        });
        self.around(BoxCloneSyncService::new(dispatch))
    }
}

/// A client stack's error as the caller sees it.
pub(crate) fn from_box_error(error: BoxError) -> CallError {
    let error = match error.downcast::<CallError>() {
        Ok(e) => return *e,
        Err(e) => e,
    };
    let error = match error.downcast::<RpcError>() {
        Ok(e) => return CallError::Rpc(*e),
        Err(e) => e,
    };
    match error.downcast::<TransportError>() {
        Ok(e) => CallError::Transport(*e),
        Err(e) if e.is::<tower::timeout::error::Elapsed>() => TransportError::Timeout.into(),
        Err(e) => CallError::Middleware(e),
    }
}

/// A server stack's error as the caller is answered with it.
pub(crate) fn to_rpc_error(error: BoxError) -> RpcError {
    match error.downcast::<RpcError>() {
        Ok(e) => *e,
        Err(e) => {
            tracing::error!(error = %e, "server middleware failed a call; answering -32603 (name Middleware)");
            middleware_error(&e.to_string())
        }
    }
}

/// The metadata field that carries the shared token of [`AuthTokenLayer`].
pub const AUTH_TOKEN_FIELD: &str = "auth-token";

/// The error code of a call refused by [`RequireAuthTokenLayer`] (in the JSON-RPC range
/// reserved for implementation-defined server errors).
pub const UNAUTHORIZED: i64 = -32001;

/// A shared token, never printed.
#[derive(Clone)]
struct Token(Arc<str>);

impl Token {
    fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Client side of shared-token auth: adds the `auth-token` field to every call.
#[derive(Clone, Debug)]
pub struct AuthTokenLayer {
    token: Token,
}

impl AuthTokenLayer {
    /// Sends `token` with every call.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Token::new(token),
        }
    }
}

impl<S> Layer<S> for AuthTokenLayer {
    type Service = AuthToken<S>;
    fn layer(&self, inner: S) -> AuthToken<S> {
        AuthToken {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service of [`AuthTokenLayer`].
#[derive(Clone, Debug)]
pub struct AuthToken<S> {
    inner: S,
    token: Token,
}

impl<S: Service<OutgoingCall>> Service<OutgoingCall> for AuthToken<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: OutgoingCall) -> S::Future {
        call.metadata.insert(AUTH_TOKEN_FIELD, &*self.token.0);
        self.inner.call(call)
    }
}

/// Server side of shared-token auth: a call without the right `auth-token` field is refused
/// with `-32001 Unauthorized` (`data.reason` says whether the token was missing or wrong)
/// and its handler does not run; a refused notification is dropped and logged. The token is
/// compared in constant time.
#[derive(Clone, Debug)]
pub struct RequireAuthTokenLayer {
    token: Token,
}

impl RequireAuthTokenLayer {
    /// Accepts calls carrying `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Token::new(token),
        }
    }
}

impl<S> Layer<S> for RequireAuthTokenLayer {
    type Service = RequireAuthToken<S>;
    fn layer(&self, inner: S) -> RequireAuthToken<S> {
        RequireAuthToken {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service of [`RequireAuthTokenLayer`].
#[derive(Clone, Debug)]
pub struct RequireAuthToken<S> {
    inner: S,
    token: Token,
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S> Service<IncomingCall> for RequireAuthToken<S>
where
    S: Service<IncomingCall, Response = Value>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Value, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, call: IncomingCall) -> Self::Future {
        let reason = match call.metadata.get(AUTH_TOKEN_FIELD) {
            None => "no auth-token field: the client must send the shared token",
            Some(t) if !same_secret(t.as_bytes(), self.token.0.as_bytes()) => {
                "wrong auth-token: the token does not match the server's"
            }
            Some(_) => {
                let fut = self.inner.call(call);
                return Box::pin(async move { fut.await.map_err(Into::into) });
            }
        };
        tracing::warn!(
            service = call.service.name(),
            method = %call.method,
            id = ?call.id,
            reason,
            "call refused by RequireAuthTokenLayer; give the client AuthTokenLayer with the server's token"
        );
        let error =
            RpcError::new(UNAUTHORIZED, "Unauthorized").with_data(json!({ "reason": reason }));
        Box::pin(std::future::ready(Err(error.into())))
    }
}

/// Retries the calls of methods marked idempotent (`#[method(idempotent)]`, or named with
/// [`RetryIdempotentLayer::method`]) when they fail without an answer: a timeout or a
/// transport failure (never an error reply, never a notification). Each attempt gets the
/// call's full timeout and a fresh request id; attempts are spaced by a doubling backoff.
#[derive(Clone, Debug)]
pub struct RetryIdempotentLayer {
    policy: RetryIdempotent,
}

/// The retry policy of [`RetryIdempotentLayer`].
#[derive(Clone, Debug)]
pub struct RetryIdempotent {
    methods: Arc<HashSet<String>>,
    attempts_left: usize,
    backoff: Duration,
}

impl RetryIdempotentLayer {
    /// Up to `retries` retries (after the first attempt) of the idempotent methods of
    /// `contracts`, the first after 50 ms.
    pub fn new<'a>(retries: usize, contracts: impl IntoIterator<Item = &'a Contract>) -> Self {
        let methods = contracts
            .into_iter()
            .flat_map(|c| {
                c.methods()
                    .iter()
                    .filter(|m| m.idempotent)
                    .map(move |m| format!("{}.{}", c.service(), m.name))
            })
            .collect();
        Self {
            policy: RetryIdempotent {
                methods: Arc::new(methods),
                attempts_left: retries,
                backoff: Duration::from_millis(50),
            },
        }
    }

    /// Also retries `<service>.<method>`.
    pub fn method(mut self, service: &str, method: &str) -> Self {
        Arc::make_mut(&mut self.policy.methods).insert(format!("{service}.{method}"));
        self
    }

    /// The delay before the first retry (doubled for each next one). Default: 50 ms.
    pub fn backoff(mut self, first: Duration) -> Self {
        self.policy.backoff = first;
        self
    }
}

impl<S> Layer<S> for RetryIdempotentLayer {
    type Service = tower::retry::Retry<RetryIdempotent, S>;
    fn layer(&self, inner: S) -> Self::Service {
        tower::retry::Retry::new(self.policy.clone(), inner)
    }
}

fn retryable(error: &BoxError) -> bool {
    match error.downcast_ref::<CallError>() {
        Some(CallError::Transport(e)) => e.is_timeout() || e.is_connection_lost(),
        Some(_) => false,
        None => error.is::<tower::timeout::error::Elapsed>(),
    }
}

impl tower::retry::Policy<OutgoingCall, Value, BoxError> for RetryIdempotent {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        call: &mut OutgoingCall,
        result: &mut Result<Value, BoxError>,
    ) -> Option<Self::Future> {
        let Err(error) = result else { return None };
        if self.attempts_left == 0
            || call.kind != CallKind::Request
            || !retryable(error)
            || !self
                .methods
                .contains(&format!("{}.{}", call.service, call.method))
        {
            return None;
        }
        self.attempts_left -= 1;
        let delay = self.backoff;
        self.backoff = self.backoff.saturating_mul(2);
        tracing::debug!(service = %call.service, method = %call.method, error = %error, retries_left = self.attempts_left, "retrying an idempotent call");
        Some(Box::pin(tokio::time::sleep(delay)))
    }

    fn clone_request(&mut self, call: &OutgoingCall) -> Option<OutgoingCall> {
        (call.kind == CallKind::Request).then(|| call.clone())
    }
}

/// Client metrics through the `metrics` facade: `clamator_client_calls_total` (`service`,
/// `method`, `code` = `ok`, the error code, `timeout`, `transport` or `middleware`) and
/// `clamator_client_call_duration_seconds` (`service`, `method`). Opt-in: add it to the
/// client's layers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientMetricsLayer;

impl<S> Layer<S> for ClientMetricsLayer {
    type Service = ClientMetrics<S>;
    fn layer(&self, inner: S) -> ClientMetrics<S> {
        ClientMetrics { inner }
    }
}

/// The service of [`ClientMetricsLayer`].
#[derive(Clone, Debug)]
pub struct ClientMetrics<S> {
    inner: S,
}

fn outcome_code(error: &BoxError) -> String {
    match error.downcast_ref::<CallError>() {
        Some(CallError::Rpc(e)) => e.code.to_string(),
        Some(CallError::Transport(t)) if t.is_timeout() => "timeout".to_owned(),
        Some(CallError::Transport(_)) => "transport".to_owned(),
        Some(CallError::Protocol(_)) => "protocol".to_owned(),
        _ => "middleware".to_owned(),
    }
}

impl<S> Service<OutgoingCall> for ClientMetrics<S>
where
    S: Service<OutgoingCall, Response = Value, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Value, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: OutgoingCall) -> Self::Future {
        let (service, method) = (call.service.clone(), call.method.clone());
        let started = std::time::Instant::now();
        let fut = self.inner.call(call);
        Box::pin(async move {
            let outcome = fut.await;
            let code = match &outcome {
                Ok(_) => "ok".to_owned(),
                Err(e) => outcome_code(e),
            };
            metrics::histogram!("clamator_client_call_duration_seconds", "service" => service.clone(), "method" => method.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("clamator_client_calls_total", "service" => service, "method" => method, "code" => code).increment(1);
            outcome
        })
    }
}

/// Per-method timeouts on the client: a call to a listed method waits at most that long
/// (the shorter of it and the call's own timeout). The server sees the shorter deadline too.
#[derive(Clone, Debug, Default)]
pub struct MethodTimeoutsLayer {
    timeouts: Arc<std::collections::HashMap<String, Duration>>,
}

impl MethodTimeoutsLayer {
    /// No method listed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls to `<service>.<method>` wait at most `timeout`.
    #[must_use]
    pub fn method(mut self, service: &str, method: &str, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.timeouts).insert(format!("{service}.{method}"), timeout);
        self
    }
}

impl<S> Layer<S> for MethodTimeoutsLayer {
    type Service = MethodTimeouts<S>;
    fn layer(&self, inner: S) -> MethodTimeouts<S> {
        MethodTimeouts {
            inner,
            timeouts: Arc::clone(&self.timeouts),
        }
    }
}

/// The service of [`MethodTimeoutsLayer`].
#[derive(Clone, Debug)]
pub struct MethodTimeouts<S> {
    inner: S,
    timeouts: Arc<std::collections::HashMap<String, Duration>>,
}

impl<S: Service<OutgoingCall>> Service<OutgoingCall> for MethodTimeouts<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: OutgoingCall) -> S::Future {
        if let Some(limit) = self
            .timeouts
            .get(&format!("{}.{}", call.service, call.method))
        {
            call.timeout = call.timeout.min(*limit);
        }
        self.inner.call(call)
    }
}

/// Server metrics through the `metrics` facade: `clamator_server_calls_total` (`service`,
/// `method`, `code` = `ok` or the error code), `clamator_server_call_duration_seconds` and
/// `clamator_server_in_flight` (`service`, `method`). A method the service does not have is
/// counted as `method="<unknown>"` (callers cannot create label values). Opt-in, like every
/// layer: a server without layers pays nothing for it. Put it first (outermost) to count calls
/// that other layers refuse.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerMetricsLayer;

impl<S> Layer<S> for ServerMetricsLayer {
    type Service = ServerMetrics<S>;
    fn layer(&self, inner: S) -> ServerMetrics<S> {
        ServerMetrics { inner }
    }
}

/// The service of [`ServerMetricsLayer`].
#[derive(Clone, Debug)]
pub struct ServerMetrics<S> {
    inner: S,
}

impl<S> Service<IncomingCall> for ServerMetrics<S>
where
    S: Service<IncomingCall, Response = Value, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Value, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: IncomingCall) -> Self::Future {
        let metered = call
            .service
            .method_metrics(&call.method)
            .map(crate::observe::CallMetrics::start)
            .ok_or_else(|| call.service.clone());
        let fut = self.inner.call(call);
        Box::pin(async move {
            let outcome = fut.await;
            let code = outcome
                .as_ref()
                .map(|_| ())
                .map_err(crate::observe::error_code);
            match &metered {
                Ok(m) => m.finish(code),
                Err(service) => crate::observe::unknown_method(service.name(), code),
            }
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_never_printed() {
        let client = format!("{:?}", AuthTokenLayer::new("s3cret-value"));
        let server = format!("{:?}", RequireAuthTokenLayer::new("s3cret-value"));
        assert!(
            !client.contains("s3cret") && client.contains("<redacted>"),
            "{client}"
        );
        assert!(
            !server.contains("s3cret") && server.contains("<redacted>"),
            "{server}"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
