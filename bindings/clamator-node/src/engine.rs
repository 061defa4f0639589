//! The engines JavaScript drives (`clamator_engine`, shared with the Python binding): a server
//! whose handlers are JavaScript functions and a client whose calls are awaited in JavaScript.
//! Every operation is started by a synchronous call with a token and reports back through the
//! bridge (an event of kind 2 with that token).

use std::num::NonZeroUsize;

use clamator_engine::{ms, MethodSpec, Settings, Wire};
use clamator_protocol::RpcError;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

use crate::bridge::Bridge;

fn value_error(e: impl std::fmt::Display) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

fn runtime_error(e: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

/// TLS material taken over from the user's ioredis options (PEM).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// CA certificates to trust instead of the system's.
    pub ca: Option<String>,
    /// A client certificate.
    pub cert: Option<String>,
    /// Its key.
    pub key: Option<String>,
}

/// Where an engine connects and how it serves.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `redis` (a URL), `redis-cluster` (seed URLs, comma-separated) or `nats` (URLs,
    /// comma-separated).
    pub transport: String,
    /// The URL or URLs.
    pub url: String,
    /// The key (subject) prefix.
    pub key_prefix: Option<String>,
    /// The instance id.
    pub instance_id: Option<String>,
    /// Redis: the consumer claim idle; NATS: the ack wait (ms).
    pub claim_idle_ms: Option<f64>,
    /// `MAXLEN ~` of the reply streams (Redis).
    pub reply_stream_max_len: Option<u32>,
    /// How long a stop waits for running handlers (ms).
    pub shutdown_grace_ms: Option<f64>,
    /// Handlers at once per service (default 64).
    pub concurrency: Option<u32>,
    /// Deliveries before a request is dead-lettered.
    pub max_deliveries: Option<u32>,
    /// A client's call timeout when a call names none (ms).
    pub default_timeout_ms: Option<f64>,
    /// TLS material (Redis).
    pub tls: Option<TlsOptions>,
}

fn settings(o: EngineOptions) -> Result<Settings> {
    let tls = o.tls.map(|t| clamator_engine::Tls {
        ca: t.ca.map(String::into_bytes),
        cert: t.cert.map(String::into_bytes),
        key: t.key.map(String::into_bytes),
    });
    let wire = Wire::new(&o.transport, Some(o.url), None, tls).map_err(value_error)?;
    let mut s = Settings::new(wire);
    s.key_prefix = o.key_prefix;
    s.instance_id = o.instance_id;
    s.claim_idle = o.claim_idle_ms.map(|v| ms(v as u64));
    s.reply_stream_maxlen = o.reply_stream_max_len.map(|n| n as usize);
    if let Some(g) = o.shutdown_grace_ms {
        s.grace = ms(g as u64);
    }
    if let Some(c) = o.concurrency {
        s.concurrency = NonZeroUsize::new(c as usize)
            .ok_or_else(|| value_error("concurrency must be at least 1"))?;
    }
    s.max_deliveries = o.max_deliveries;
    if let Some(t) = o.default_timeout_ms {
        s.default_timeout = ms(t as u64);
    }
    Ok(s)
}

/// A method of a service the JavaScript side serves.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct MethodDecl {
    /// Its wire name.
    pub name: String,
    /// A notification (no answer).
    pub notification: bool,
}

/// A server whose handlers run in JavaScript: `registerService` declares each service's
/// methods, `start` builds and starts it; requests arrive as bridge events of kind 0 and
/// `complete` / `fail` answer them.
#[napi]
pub struct EngineServer {
    engine: clamator_engine::EngineServer,
}

impl std::fmt::Debug for EngineServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.engine.fmt(f)
    }
}

#[napi]
impl EngineServer {
    /// A server reporting to `bridge`.
    #[napi(constructor)]
    pub fn new(bridge: &Bridge, options: EngineOptions) -> Result<Self> {
        Ok(Self {
            engine: clamator_engine::EngineServer::new(bridge.sink(), settings(options)?),
        })
    }

    /// Declares a service. Before `start`.
    #[napi]
    pub fn register_service(&self, name: String, methods: Vec<MethodDecl>) -> Result<()> {
        if self.engine.is_built() {
            return Err(runtime_error(format!(
                "service \"{name}\" registered after start: register every service before start()"
            )));
        }
        let methods = methods
            .into_iter()
            .map(|m| MethodSpec {
                name: m.name,
                notification: m.notification,
            })
            .collect();
        self.engine
            .register_service(&name, methods)
            .map_err(value_error)
    }

    /// Answers request `token` with a result (JSON; none for a notification).
    #[napi]
    pub fn complete(&self, token: f64, result: Option<String>) {
        let answer = match result {
            None => Ok(Value::Null),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                RpcError::internal(serde_json::json!({
                    "name": "ResultEncoding",
                    "message": format!("the handler's result is not JSON: {e}"),
                }))
            }),
        };
        self.engine.complete(token as u64, answer);
    }

    /// Answers request `token` with an error object (`data` as JSON).
    #[napi]
    pub fn fail(&self, token: f64, code: i64, message: String, data: Option<String>) {
        let data = data
            .and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .unwrap_or(Value::Null);
        self.engine.complete(
            token as u64,
            Err(RpcError::new(code, message).with_data(data)),
        );
    }

    /// Builds (first time) and starts the server.
    #[napi]
    pub fn start(&self, token: f64) -> Result<()> {
        self.engine.start(token as u64).map_err(runtime_error)
    }

    /// Stops within `graceMs` (default: the configured grace).
    #[napi]
    pub fn stop(&self, token: f64, grace_ms: Option<f64>) -> Result<()> {
        self.engine
            .stop(token as u64, grace_ms.map(|g| ms(g as u64)))
            .map_err(runtime_error)
    }
}

/// A client whose calls are awaited in JavaScript: `call` / `notify` start one and report its
/// end as a bridge event of kind 2.
#[napi]
pub struct EngineClient {
    engine: clamator_engine::EngineClient,
}

impl std::fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.engine.fmt(f)
    }
}

#[napi]
impl EngineClient {
    /// A client reporting to `bridge`.
    #[napi(constructor)]
    pub fn new(bridge: &Bridge, options: EngineOptions) -> Result<Self> {
        Ok(Self {
            engine: clamator_engine::EngineClient::new(bridge.sink(), settings(options)?),
        })
    }

    /// Builds (first time) and starts the client.
    #[napi]
    pub fn start(&self, token: f64) -> Result<()> {
        self.engine.start(token as u64).map_err(runtime_error)
    }

    /// Stops the client (waiting calls fail with "transport stopped").
    #[napi]
    pub fn stop(&self, token: f64) -> Result<()> {
        self.engine.stop(token as u64).map_err(runtime_error)
    }

    /// Calls `service.method` with `params` (JSON).
    #[napi]
    pub fn call(
        &self,
        token: f64,
        service: String,
        method: String,
        params: String,
        timeout_ms: Option<f64>,
    ) -> Result<()> {
        self.engine
            .call(
                token as u64,
                service,
                method,
                params.as_bytes(),
                timeout_ms.map(|t| ms(t as u64)),
            )
            .map_err(runtime_error)
    }

    /// Sends the notification `service.method` with `params` (JSON).
    #[napi]
    pub fn notify(
        &self,
        token: f64,
        service: String,
        method: String,
        params: String,
    ) -> Result<()> {
        self.engine
            .notify(token as u64, service, method, params.as_bytes())
            .map_err(runtime_error)
    }
}
