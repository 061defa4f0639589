//! The engines Python drives: a server whose handlers are Python coroutines and a client whose
//! calls are awaited in Python, over memory, Redis Streams or NATS JetStream. Every operation
//! is started by a synchronous call from the loop thread and reports back through the bridge.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use clamator_over_memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator_over_nats::{NatsRpcClient, NatsRpcServer};
use clamator_over_redis::{RedisConnection, RedisRpcClient, RedisRpcServer};
use clamator_protocol::{
    AnyClient, AnyServer, CallError, HandlerError, RpcClient, RpcError, RpcService,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::bridge::{Bridge, Event, Outcome, Shared};

/// The process's tokio runtime and the pid that started it.
static RUNTIME: OnceLock<(Runtime, u32)> = OnceLock::new();

/// The tokio runtime, started on first use (a `start()`, never at import, so that a process
/// may fork before it uses clamator_rs). A forked child cannot use its parent's runtime.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    let (runtime, pid) = RUNTIME.get_or_init(|| {
        crate::logs::install();
        let threads = std::env::var("CLAMATOR_RS_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            // One worker by default: the engine's I/O keeps one thread busy long before a
            // Python loop runs out of handlers, and a second worker costs CPU in wake-ups
            // (measured: ~8 % fewer calls/s and ~10 % more CPU per call with two).
            .unwrap_or(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("clamator-rs")
            .enable_all()
            .build()
            .expect("the tokio runtime starts");
        (runtime, std::process::id())
    });
    if *pid != std::process::id() {
        return Err(PyRuntimeError::new_err(
            "clamator_rs was started in this process's parent before it forked: its engine \
             threads do not exist here; start clamator_rs servers and clients only after forking",
        ));
    }
    Ok(runtime)
}

/// A shared in-process bus (`MemoryBus`).
#[pyclass(frozen, name = "Bus", module = "clamator_rs._native")]
#[derive(Debug, Default)]
pub(crate) struct Bus {
    bus: MemoryBus,
}

#[pymethods]
impl Bus {
    #[new]
    fn new() -> Self {
        Self::default()
    }
}

/// Where an engine connects.
#[derive(Debug, Clone)]
enum Wire {
    Memory(MemoryBus),
    Redis(RedisConnection),
    Nats(Vec<String>),
}

fn list(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

/// The TLS material a `redis=` client object named (PEM bytes), for `redis::Client::build_with_tls`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Tls {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

impl Wire {
    fn from_py(
        transport: &str,
        url: Option<String>,
        bus: Option<&Bus>,
        tls: Option<Tls>,
    ) -> PyResult<Self> {
        match (transport, url, bus) {
            ("memory", _, Some(bus)) => Ok(Self::Memory(bus.bus.clone())),
            ("redis", Some(url), _) => match tls {
                None => Ok(Self::Redis(RedisConnection::url(url))),
                Some(Tls { ca, cert, key }) => {
                    let client_tls = match (cert, key) {
                        (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig {
                            client_cert,
                            client_key,
                        }),
                        (None, None) => None,
                        _ => return Err(PyValueError::new_err(
                            "a TLS client certificate needs its key (ssl_certfile and ssl_keyfile)",
                        )),
                    };
                    let certificates = redis::TlsCertificates {
                        client_tls,
                        root_cert: ca,
                    };
                    redis::Client::build_with_tls(url.as_str(), certificates)
                        .map(|client| Self::Redis(RedisConnection::client(client)))
                        .map_err(|e| PyValueError::new_err(format!("redis TLS settings: {e}")))
                }
            },
            ("redis-cluster", Some(_), _) if tls.is_some() => Err(PyValueError::new_err(
                "a private CA or client certificate for a Redis Cluster is not supported yet",
            )),
            ("redis-cluster", Some(urls), _) => {
                Ok(Self::Redis(RedisConnection::cluster(list(&urls))))
            }
            ("nats", Some(urls), _) => Ok(Self::Nats(list(&urls))),
            (other, _, _) => Err(PyValueError::new_err(format!(
                "transport {other:?} needs a url (redis, nats) or a bus (memory)"
            ))),
        }
    }
}

/// Settings of an engine, from the Python constructor.
#[derive(Debug, Clone)]
struct Settings {
    wire: Wire,
    key_prefix: Option<String>,
    instance_id: Option<String>,
    /// The liveness window: Redis `consumer_claim_idle`, NATS `ack_wait`. Running handlers'
    /// requests are refreshed every third of it (the heartbeat).
    claim_idle: Option<Duration>,
    reply_stream_maxlen: Option<usize>,
    grace: Duration,
    concurrency: NonZeroUsize,
    max_deliveries: Option<u32>,
    default_timeout: Duration,
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn transport_error(e: impl std::fmt::Display) -> Outcome {
    Outcome::Transport(e.to_string())
}

/// Calls waiting for their Python handler, by token.
#[derive(Debug, Default)]
struct Waiting {
    next: AtomicU64,
    open: Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>,
}

impl Waiting {
    fn open(&self) -> (u64, oneshot::Receiver<Result<Value, RpcError>>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(token, tx);
        (token, rx)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forgets a waiting call whose Rust side was dropped before Python answered (the server
/// abandoned it after its stop grace), and has Python cancel the handler's task.
struct Forget(Arc<Waiting>, Arc<Shared>, u64);

impl Drop for Forget {
    fn drop(&mut self) {
        if self.0.lock().remove(&self.2).is_some() {
            self.1.push(Event::Cancel { token: self.2 });
        }
    }
}

/// The server `settings` describe, on its transport.
fn build_server(settings: &Settings, services: Vec<RpcService>) -> Result<AnyServer, String> {
    let s = settings;
    let built = match &s.wire {
        Wire::Memory(bus) => {
            let mut b = MemoryRpcServer::builder(bus).shutdown_grace(s.grace);
            for service in services {
                b = b.service(service);
            }
            b.build().map(AnyServer::from)
        }
        Wire::Redis(connection) => {
            let mut b = RedisRpcServer::builder()
                .connection(connection.clone())
                .shutdown_grace(s.grace)
                .concurrency(s.concurrency);
            if let Some(p) = &s.key_prefix {
                b = b.key_prefix(p);
            }
            if let Some(id) = &s.instance_id {
                b = b.instance_id(id);
            }
            if let Some(idle) = s.claim_idle {
                b = b.consumer_claim_idle(idle);
            }
            if let Some(n) = s.reply_stream_maxlen {
                b = b.reply_stream_maxlen(n);
            }
            if let Some(n) = s.max_deliveries {
                b = b.max_deliveries(n);
            }
            for service in services {
                b = b.service(service);
            }
            b.build().map(AnyServer::from)
        }
        Wire::Nats(urls) => {
            let mut b = NatsRpcServer::builder()
                .urls(urls.clone())
                .shutdown_grace(s.grace)
                .concurrency(s.concurrency);
            if let Some(p) = &s.key_prefix {
                b = b.key_prefix(p);
            }
            if let Some(id) = &s.instance_id {
                b = b.instance_id(id);
            }
            if let Some(n) = s.max_deliveries {
                b = b.max_deliveries(n);
            }
            if let Some(wait) = s.claim_idle {
                b = b.ack_wait(wait);
            }
            for service in services {
                b = b.service(service);
            }
            b.build().map(AnyServer::from)
        }
    };
    built.map_err(|e| e.to_string())
}

/// A server whose handlers run in Python: `register_service` declares each service's methods,
/// `start` builds and starts the Rust server; requests reach Python through the bridge
/// (`("q", token, …)`) and `complete(token, …)` answers them.
#[pyclass(frozen, module = "clamator_rs._native")]
pub(crate) struct EngineServer {
    bridge: Arc<Shared>,
    settings: Settings,
    waiting: Arc<Waiting>,
    services: Mutex<Vec<RpcService>>,
    server: Mutex<Option<AnyServer>>,
}

impl std::fmt::Debug for EngineServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineServer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl EngineServer {
    #[new]
    #[pyo3(signature = (bridge, transport, *, url=None, bus=None, key_prefix=None,
        instance_id=None, consumer_claim_idle_ms=None, reply_stream_maxlen=None,
        shutdown_grace_ms=5000, concurrency=64, max_deliveries=None, tls=None))]
    fn new(
        bridge: &Bridge,
        transport: &str,
        url: Option<String>,
        bus: Option<PyRef<'_, Bus>>,
        key_prefix: Option<String>,
        instance_id: Option<String>,
        consumer_claim_idle_ms: Option<u64>,
        reply_stream_maxlen: Option<usize>,
        shutdown_grace_ms: u64,
        concurrency: usize,
        max_deliveries: Option<u32>,
        tls: Option<Tls>,
    ) -> PyResult<Self> {
        let concurrency = NonZeroUsize::new(concurrency)
            .ok_or_else(|| PyValueError::new_err("concurrency must be at least 1"))?;
        Ok(Self {
            bridge: bridge.shared(),
            settings: Settings {
                wire: Wire::from_py(transport, url, bus.as_deref(), tls)?,
                key_prefix,
                instance_id,
                claim_idle: consumer_claim_idle_ms.map(ms),
                reply_stream_maxlen,
                grace: ms(shutdown_grace_ms),
                concurrency,
                max_deliveries,
                default_timeout: Duration::ZERO,
            },
            waiting: Arc::default(),
            services: Mutex::new(Vec::new()),
            server: Mutex::new(None),
        })
    }

    /// Declares a service: `methods` is `[(name, is_notification), …]`. Before `start`.
    fn register_service(&self, name: &str, methods: Vec<(String, bool)>) -> PyResult<()> {
        if self.lock_server().is_some() {
            return Err(PyRuntimeError::new_err(format!(
                "service \"{name}\" registered after start: register every service before start()"
            )));
        }
        let service: Arc<str> = Arc::from(name);
        let mut builder = RpcService::builder(name);
        for (method, is_notification) in methods {
            let handler = self.handler(&service, &method, !is_notification);
            builder = if is_notification {
                builder.raw_notification(method, Value::Object(Default::default()), {
                    move |params| {
                        let run = handler(params);
                        async move {
                            let _ = run.await;
                        }
                    }
                })
            } else {
                builder.raw_method(
                    method,
                    Value::Object(Default::default()),
                    Value::Object(Default::default()),
                    handler,
                )
            };
        }
        let built = builder
            .build()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        self.services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(built);
        Ok(())
    }

    /// Answers request `token`: `kind` 0 with `a` the result's JSON bytes (or `None`), 1 with
    /// `(a, b, c)` = `(code, message, data JSON bytes)`. An unknown token (the call's deadline
    /// passed, or the server stopped) is ignored.
    #[pyo3(signature = (token, kind, a=None, b=None, c=None))]
    fn complete(
        &self,
        token: u64,
        kind: u8,
        a: Option<&Bound<'_, PyAny>>,
        b: Option<String>,
        c: Option<&[u8]>,
    ) -> PyResult<()> {
        let Some(tx) = self.waiting.lock().remove(&token) else {
            return Ok(());
        };
        let outcome = match kind {
            0 => match a {
                None => Ok(Value::Null),
                Some(a) if a.is_none() => Ok(Value::Null),
                Some(a) => {
                    let bytes: &[u8] = a.extract()?;
                    serde_json::from_slice(bytes).map_err(|e| {
                        RpcError::internal(serde_json::json!({
                            "name": "ResultEncoding",
                            "message": format!("the handler's result is not JSON: {e}"),
                        }))
                    })
                }
            },
            _ => {
                let code: i64 = a.map(|a| a.extract()).transpose()?.unwrap_or(-32603);
                let data = c
                    .map(serde_json::from_slice::<Value>)
                    .transpose()
                    .ok()
                    .flatten()
                    .unwrap_or(Value::Null);
                Err(RpcError::new(code, b.unwrap_or_default()).with_data(data))
            }
        };
        let _ = tx.send(outcome);
        Ok(())
    }

    /// Builds (first time) and starts the server; reports `("d", token, …)`.
    fn start(&self, token: u64) -> PyResult<()> {
        let runtime = runtime()?;
        let server = {
            let mut slot = self.lock_server();
            match &*slot {
                Some(server) => server.clone(),
                None => {
                    let services = std::mem::take(
                        &mut *self.services.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    match build_server(&self.settings, services) {
                        Ok(server) => slot.insert(server).clone(),
                        Err(e) => {
                            self.bridge.done(token, Outcome::Value(e));
                            return Ok(());
                        }
                    }
                }
            }
        };
        let bridge = Arc::clone(&self.bridge);
        runtime.spawn(async move {
            let outcome = match server.start().await {
                Ok(()) => Outcome::Ok(None),
                Err(e) => Outcome::Transport(e.to_string()),
            };
            bridge.done(token, outcome);
        });
        Ok(())
    }

    /// Stops within `grace_ms` (default: the configured grace); reports `("d", token, …)`.
    #[pyo3(signature = (token, grace_ms=None))]
    fn stop(&self, token: u64, grace_ms: Option<u64>) -> PyResult<()> {
        let Some(server) = self.lock_server().clone() else {
            self.bridge.done(token, Outcome::Ok(None));
            return Ok(());
        };
        let grace = grace_ms.map_or(self.settings.grace, ms);
        let bridge = Arc::clone(&self.bridge);
        runtime()?.spawn(async move {
            server.stop_with_grace(grace).await;
            bridge.done(token, Outcome::Ok(None));
        });
        Ok(())
    }
}

impl EngineServer {
    fn lock_server(&self) -> std::sync::MutexGuard<'_, Option<AnyServer>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Rust handler of one Python method: hands the call to the loop, waits for
    /// `complete`.
    fn handler(
        &self,
        service: &Arc<str>,
        method: &str,
        is_request: bool,
    ) -> impl Fn(
        Value,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Value, HandlerError>> + Send>,
    > + Send
           + Sync
           + Clone
           + 'static {
        let (bridge, waiting) = (Arc::clone(&self.bridge), Arc::clone(&self.waiting));
        let (service, method): (Arc<str>, Arc<str>) = (Arc::clone(service), Arc::from(method));
        move |params: Value| {
            let (token, reply) = waiting.open();
            let forget = Forget(Arc::clone(&waiting), Arc::clone(&bridge), token);
            bridge.push(Event::Request {
                token,
                service: Arc::clone(&service),
                method: Arc::clone(&method),
                params: serde_json::to_vec(&params).unwrap_or_default(),
                is_request,
                id: clamator_protocol::request_id().map(|id| id.to_string()),
                remaining: clamator_protocol::remaining().map(|left| left.as_secs_f64()),
            });
            Box::pin(async move {
                let _forget = forget;
                match reply.await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => Err(HandlerError::Rpc(e)),
                    Err(_) => Err(HandlerError::internal(
                        "Abandoned",
                        "the Python side of the server went away before answering",
                    )),
                }
            })
        }
    }
}

/// The client `s` describes, on its transport.
fn build_client(s: &Settings) -> Result<AnyClient, String> {
    let built = match &s.wire {
        Wire::Memory(bus) => MemoryRpcClient::builder(bus)
            .default_timeout(s.default_timeout)
            .build()
            .map(AnyClient::from),
        Wire::Redis(connection) => {
            let mut b = RedisRpcClient::builder()
                .connection(connection.clone())
                .default_timeout(s.default_timeout);
            if let Some(p) = &s.key_prefix {
                b = b.key_prefix(p);
            }
            if let Some(id) = &s.instance_id {
                b = b.instance_id(id);
            }
            b.build().map(AnyClient::from)
        }
        Wire::Nats(urls) => {
            let mut b = NatsRpcClient::builder()
                .urls(urls.clone())
                .default_timeout(s.default_timeout);
            if let Some(p) = &s.key_prefix {
                b = b.key_prefix(p);
            }
            if let Some(id) = &s.instance_id {
                b = b.instance_id(id);
            }
            b.build().map(AnyClient::from)
        }
    };
    built.map_err(|e| e.to_string())
}

fn call_outcome(error: CallError) -> Outcome {
    match error {
        CallError::Rpc(e) => Outcome::Rpc {
            code: e.code,
            message: e.message,
            data: serde_json::to_vec(&e.data).unwrap_or_default(),
        },
        CallError::Protocol(e) => Outcome::Protocol(e.to_string()),
        other => transport_error(other),
    }
}

/// A client whose calls are awaited in Python: each `call`/`notify` starts the call on tokio
/// and reports `("d", token, …)` when it is over.
#[pyclass(frozen, module = "clamator_rs._native")]
pub(crate) struct EngineClient {
    bridge: Arc<Shared>,
    settings: Settings,
    client: Mutex<Option<AnyClient>>,
}

impl std::fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::too_many_arguments)] // the Python constructor's keywords
#[pymethods]
impl EngineClient {
    #[new]
    #[pyo3(signature = (bridge, transport, *, url=None, bus=None, key_prefix=None,
        instance_id=None, default_timeout_ms=30000, tls=None))]
    fn new(
        bridge: &Bridge,
        transport: &str,
        url: Option<String>,
        bus: Option<PyRef<'_, Bus>>,
        key_prefix: Option<String>,
        instance_id: Option<String>,
        default_timeout_ms: u64,
        tls: Option<Tls>,
    ) -> PyResult<Self> {
        Ok(Self {
            bridge: bridge.shared(),
            settings: Settings {
                wire: Wire::from_py(transport, url, bus.as_deref(), tls)?,
                key_prefix,
                instance_id,
                claim_idle: None,
                reply_stream_maxlen: None,
                grace: Duration::ZERO,
                concurrency: NonZeroUsize::MIN,
                max_deliveries: None,
                default_timeout: ms(default_timeout_ms),
            },
            client: Mutex::new(None),
        })
    }

    /// Builds (first time) and starts the client; reports `("d", token, …)`.
    fn start(&self, token: u64) -> PyResult<()> {
        let runtime = runtime()?;
        let client = {
            let mut slot = self.lock_client();
            match &*slot {
                Some(client) => client.clone(),
                None => {
                    let built = {
                        let _entered = runtime.enter();
                        build_client(&self.settings)
                    };
                    match built {
                        Ok(client) => slot.insert(client).clone(),
                        Err(e) => {
                            self.bridge.done(token, Outcome::Value(e));
                            return Ok(());
                        }
                    }
                }
            }
        };
        let bridge = Arc::clone(&self.bridge);
        runtime.spawn(async move {
            let outcome = match client.start().await {
                Ok(()) => Outcome::Ok(None),
                Err(e) => Outcome::Transport(e.to_string()),
            };
            bridge.done(token, outcome);
        });
        Ok(())
    }

    /// Stops the client (waiting calls fail with "transport stopped").
    fn stop(&self, token: u64) -> PyResult<()> {
        let Some(client) = self.lock_client().clone() else {
            self.bridge.done(token, Outcome::Ok(None));
            return Ok(());
        };
        let bridge = Arc::clone(&self.bridge);
        runtime()?.spawn(async move {
            client.stop().await;
            bridge.done(token, Outcome::Ok(None));
        });
        Ok(())
    }

    /// Calls `service.method` with `params` (JSON bytes); reports the result's JSON bytes or
    /// the error.
    #[pyo3(signature = (token, service, method, params, timeout_ms=None))]
    fn call(
        &self,
        token: u64,
        service: String,
        method: String,
        params: &[u8],
        timeout_ms: Option<u64>,
    ) -> PyResult<()> {
        let Some((client, params)) = self.prepare(token, params)? else {
            return Ok(());
        };
        let bridge = Arc::clone(&self.bridge);
        runtime()?.spawn(async move {
            let outcome = match client
                .call_value(&service, &method, params, timeout_ms.map(ms))
                .await
            {
                Ok(value) => Outcome::Ok(Some(serde_json::to_vec(&value).unwrap_or_default())),
                Err(e) => call_outcome(e),
            };
            bridge.done(token, outcome);
        });
        Ok(())
    }

    /// Sends the notification `service.method` with `params` (JSON bytes).
    fn notify(&self, token: u64, service: String, method: String, params: &[u8]) -> PyResult<()> {
        let Some((client, params)) = self.prepare(token, params)? else {
            return Ok(());
        };
        let bridge = Arc::clone(&self.bridge);
        runtime()?.spawn(async move {
            let outcome = match client.notify_value(&service, &method, params).await {
                Ok(()) => Outcome::Ok(None),
                Err(e) => call_outcome(e),
            };
            bridge.done(token, outcome);
        });
        Ok(())
    }
}

impl EngineClient {
    fn lock_client(&self) -> std::sync::MutexGuard<'_, Option<AnyClient>> {
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The started client and the parsed params, or `None` after reporting why not.
    fn prepare(&self, token: u64, params: &[u8]) -> PyResult<Option<(AnyClient, Value)>> {
        let Some(client) = self.lock_client().clone() else {
            self.bridge.done(
                token,
                Outcome::Transport("transport not started (state=idle)".into()),
            );
            return Ok(None);
        };
        match serde_json::from_slice(params) {
            Ok(params) => Ok(Some((client, params))),
            Err(e) => {
                self.bridge
                    .done(token, Outcome::Value(format!("params are not JSON: {e}")));
                Ok(None)
            }
        }
    }
}
