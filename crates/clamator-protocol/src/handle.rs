//! One handle shape for every transport: [`AnyClient`] and [`AnyServer`], for programs that
//! choose the transport at run time (a CLI flag, a binding's constructor, a test harness) and
//! would otherwise write an enum of every transport and a `match` per method.
//!
//! Like tower's `BoxCloneService`: the concrete [`Client<T>`] / [`Server<T>`] behind an
//! `Arc<dyn …>`, cheap to clone, with the same methods. Typed code that knows its transport
//! keeps the concrete types (no boxing per call there); every transport's client and server
//! convert with `From` (`AnyClient::from(redis_client)`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::client::RpcClient;
use crate::error::{CallError, LifecycleState, ServerError, TransportError};
use crate::transport::{Client, ClientTransport, Server, ServerStats, ServerTransport};

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

trait DynClient: Send + Sync + 'static {
    fn start(&self) -> Fut<'_, Result<(), TransportError>>;
    fn stop(&self) -> Fut<'_, ()>;
    fn state(&self) -> LifecycleState;
    fn default_timeout(&self) -> Duration;
    fn call_value<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Fut<'a, Result<Value, CallError>>;
    fn notify_value<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        params: Value,
    ) -> Fut<'a, Result<(), CallError>>;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: ClientTransport> DynClient for Client<T> {
    fn start(&self) -> Fut<'_, Result<(), TransportError>> {
        Box::pin(Client::start(self))
    }

    fn stop(&self) -> Fut<'_, ()> {
        Box::pin(Client::stop(self))
    }

    fn state(&self) -> LifecycleState {
        Client::state(self)
    }

    fn default_timeout(&self) -> Duration {
        Client::default_timeout(self)
    }

    fn call_value<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Fut<'a, Result<Value, CallError>> {
        Box::pin(RpcClient::call_value(
            self, service, method, params, timeout,
        ))
    }

    fn notify_value<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        params: Value,
    ) -> Fut<'a, Result<(), CallError>> {
        Box::pin(RpcClient::notify_value(self, service, method, params))
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A client of any transport, behind one type: what a program holds when it chooses the
/// transport at run time (a CLI flag, a binding's constructor, a test harness) instead of an
/// enum of every transport with a `match` per method.
///
/// Like tower's `BoxCloneService`: the concrete [`Client<T>`] behind an `Arc<dyn …>`, cheap to
/// clone, with the same methods and [`RpcClient`] (so typed clients take it). Code that knows
/// its transport keeps the concrete type (no boxing per call). Every transport's client
/// converts with `From` (`AnyClient::from(redis_client)`); [`AnyServer`] is the same for
/// servers.
///
/// ```
/// # use clamator_protocol::{AnyClient, Client, RpcClient};
/// # fn make<T: clamator_protocol::ClientTransport + std::fmt::Debug>(t: T) -> AnyClient {
/// let client = AnyClient::new(Client::new(t));
/// # client }
/// ```
#[derive(Clone)]
pub struct AnyClient(Arc<dyn DynClient>);

impl fmt::Debug for AnyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}

impl AnyClient {
    /// Wraps a client.
    pub fn new<T: ClientTransport>(client: Client<T>) -> Self {
        Self(Arc::new(client))
    }

    /// See [`Client::start`].
    pub async fn start(&self) -> Result<(), TransportError> {
        self.0.start().await
    }

    /// See [`Client::stop`].
    pub async fn stop(&self) {
        self.0.stop().await;
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.0.state()
    }

    /// The timeout of calls made without one.
    pub fn default_timeout(&self) -> Duration {
        self.0.default_timeout()
    }
}

impl<T: ClientTransport> From<Client<T>> for AnyClient {
    fn from(client: Client<T>) -> Self {
        Self::new(client)
    }
}

impl RpcClient for AnyClient {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        self.0.call_value(service, method, params, timeout).await
    }

    async fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
    ) -> Result<(), CallError> {
        self.0.notify_value(service, method, params).await
    }
}

trait DynServer: Send + Sync + 'static {
    fn start(&self) -> Fut<'_, Result<(), ServerError>>;
    fn stop_with_grace(&self, grace: Duration) -> Fut<'_, ()>;
    fn shutdown_grace(&self) -> Duration;
    fn state(&self) -> LifecycleState;
    fn stats(&self) -> ServerStats;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: ServerTransport> DynServer for Server<T> {
    fn start(&self) -> Fut<'_, Result<(), ServerError>> {
        Box::pin(Server::start(self))
    }

    fn stop_with_grace(&self, grace: Duration) -> Fut<'_, ()> {
        Box::pin(Server::stop_with_grace(self, grace))
    }

    fn shutdown_grace(&self) -> Duration {
        Server::shutdown_grace(self)
    }

    fn state(&self) -> LifecycleState {
        Server::state(self)
    }

    fn stats(&self) -> ServerStats {
        Server::stats(self)
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A server of any transport, behind one type (see [`AnyClient`]): start, stats, stop. Every
/// transport's server converts with `From` (`AnyServer::from(nats_server)`).
#[derive(Clone)]
pub struct AnyServer(Arc<dyn DynServer>);

impl fmt::Debug for AnyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}

impl AnyServer {
    /// Wraps a server.
    pub fn new<T: ServerTransport>(server: Server<T>) -> Self {
        Self(Arc::new(server))
    }

    /// See [`Server::start`].
    pub async fn start(&self) -> Result<(), ServerError> {
        self.0.start().await
    }

    /// Stops with the server's configured grace; see [`Server::stop_with_grace`].
    pub async fn stop(&self) {
        self.0.stop_with_grace(self.0.shutdown_grace()).await;
    }

    /// See [`Server::stop_with_grace`].
    pub async fn stop_with_grace(&self, grace: Duration) {
        self.0.stop_with_grace(grace).await;
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.0.state()
    }

    /// See [`Server::stats`].
    pub fn stats(&self) -> ServerStats {
        self.0.stats()
    }
}

impl<T: ServerTransport> From<Server<T>> for AnyServer {
    fn from(server: Server<T>) -> Self {
        Self::new(server)
    }
}
