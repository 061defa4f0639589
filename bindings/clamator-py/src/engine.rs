//! The engines Python drives (`clamator_engine`, shared with the Node binding), as Python
//! classes: a server whose handlers are Python coroutines and a client whose calls are awaited
//! in Python, over memory, Redis Streams or NATS JetStream. Every operation is started by a
//! synchronous call from the loop thread and reports back through the bridge.

use std::num::NonZeroUsize;
use std::time::Duration;

use clamator_engine::{ms, MethodSpec, Settings, Wire};
use clamator_over_memory::MemoryBus;
use clamator_protocol::RpcError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;

use crate::bridge::Bridge;

/// The process's tokio runtime (see [`clamator_engine::runtime`]).
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    clamator_engine::runtime().map_err(PyRuntimeError::new_err)
}

fn runtime_error(e: String) -> PyErr {
    PyRuntimeError::new_err(e)
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

/// The TLS material a `redis=` client object named (PEM bytes).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Tls {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

fn wire(
    transport: &str,
    url: Option<String>,
    bus: Option<&Bus>,
    tls: Option<Tls>,
) -> PyResult<Wire> {
    let tls = tls.map(|t| clamator_engine::Tls {
        ca: t.ca,
        cert: t.cert,
        key: t.key,
    });
    Wire::new(transport, url, bus.map(|b| b.bus.clone()), tls).map_err(PyValueError::new_err)
}

/// A server whose handlers run in Python: `register_service` declares each service's methods,
/// `start` builds and starts the Rust server; requests reach Python through the bridge
/// (`("q", token, …)`) and `complete(token, …)` answers them.
#[pyclass(frozen, module = "clamator_rs._native")]
#[derive(Debug)]
pub(crate) struct EngineServer {
    engine: clamator_engine::EngineServer,
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
        let mut settings = Settings::new(wire(transport, url, bus.as_deref(), tls)?);
        settings.key_prefix = key_prefix;
        settings.instance_id = instance_id;
        settings.claim_idle = consumer_claim_idle_ms.map(ms);
        settings.reply_stream_maxlen = reply_stream_maxlen;
        settings.grace = ms(shutdown_grace_ms);
        settings.concurrency = concurrency;
        settings.max_deliveries = max_deliveries;
        Ok(Self {
            engine: clamator_engine::EngineServer::new(bridge.sink(), settings),
        })
    }

    /// Declares a service: `methods` is `[(name, is_notification), …]`. Before `start`.
    fn register_service(&self, name: &str, methods: Vec<(String, bool)>) -> PyResult<()> {
        if self.engine.is_built() {
            return Err(PyRuntimeError::new_err(format!(
                "service \"{name}\" registered after start: register every service before start()"
            )));
        }
        let methods = methods
            .into_iter()
            .map(|(name, notification)| MethodSpec { name, notification })
            .collect();
        self.engine
            .register_service(name, methods)
            .map_err(PyValueError::new_err)
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
        let answer = match kind {
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
        self.engine.complete(token, answer);
        Ok(())
    }

    /// Builds (first time) and starts the server; reports `("d", token, …)`.
    fn start(&self, token: u64) -> PyResult<()> {
        self.engine.start(token).map_err(runtime_error)
    }

    /// Stops within `grace_ms` (default: the configured grace); reports `("d", token, …)`.
    #[pyo3(signature = (token, grace_ms=None))]
    fn stop(&self, token: u64, grace_ms: Option<u64>) -> PyResult<()> {
        self.engine
            .stop(token, grace_ms.map(ms))
            .map_err(runtime_error)
    }
}

/// A client whose calls are awaited in Python: each `call`/`notify` starts the call on tokio
/// and reports `("d", token, …)` when it is over.
#[pyclass(frozen, module = "clamator_rs._native")]
#[derive(Debug)]
pub(crate) struct EngineClient {
    engine: clamator_engine::EngineClient,
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
        let mut settings = Settings::new(wire(transport, url, bus.as_deref(), tls)?);
        settings.key_prefix = key_prefix;
        settings.instance_id = instance_id;
        settings.grace = Duration::ZERO;
        settings.default_timeout = ms(default_timeout_ms);
        Ok(Self {
            engine: clamator_engine::EngineClient::new(bridge.sink(), settings),
        })
    }

    /// Builds (first time) and starts the client; reports `("d", token, …)`.
    fn start(&self, token: u64) -> PyResult<()> {
        self.engine.start(token).map_err(runtime_error)
    }

    /// Stops the client (waiting calls fail with "transport stopped").
    fn stop(&self, token: u64) -> PyResult<()> {
        self.engine.stop(token).map_err(runtime_error)
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
        self.engine
            .call(token, service, method, params, timeout_ms.map(ms))
            .map_err(runtime_error)
    }

    /// Sends the notification `service.method` with `params` (JSON bytes).
    fn notify(&self, token: u64, service: String, method: String, params: &[u8]) -> PyResult<()> {
        self.engine
            .notify(token, service, method, params)
            .map_err(runtime_error)
    }
}
