//! A server whose handlers run in the binding's loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clamator_over_memory::MemoryRpcServer;
use clamator_over_nats::NatsRpcServer;
use clamator_over_redis::RedisRpcServer;
use clamator_protocol::{AnyServer, HandlerError, RpcError, RpcService};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::events::{Event, Outcome, Sink};
use crate::settings::{Settings, Wire};

/// A method a binding serves.
#[derive(Debug, Clone)]
pub struct MethodSpec {
    /// Its wire name.
    pub name: String,
    /// A notification (no answer).
    pub notification: bool,
}

type Answer = Result<Value, RpcError>;

/// Calls waiting for their handler in the loop, by token.
#[derive(Debug, Default)]
struct Waiting {
    next: AtomicU64,
    open: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
}

impl Waiting {
    fn open(&self) -> (u64, oneshot::Receiver<Answer>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(token, tx);
        (token, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Answer>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forgets a waiting call whose Rust side was dropped before the loop answered (the server
/// abandoned it after its stop grace), and has the loop cancel the handler.
struct Forget(Arc<Waiting>, Arc<dyn Sink>, u64);

impl Drop for Forget {
    fn drop(&mut self) {
        if self.0.lock().remove(&self.2).is_some() {
            self.1.push(Event::Cancel { token: self.2 });
        }
    }
}

/// The server `settings` describe, on its transport.
fn build(s: &Settings, services: Vec<RpcService>) -> Result<AnyServer, String> {
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

/// A server whose handlers run in the binding's loop: `register_service` declares each
/// service's methods, `start` builds and starts the Rust server; requests reach the loop as
/// [`Event::Request`] and [`EngineServer::complete`] answers them.
#[derive(Debug)]
pub struct EngineServer {
    sink: Arc<dyn Sink>,
    settings: Settings,
    waiting: Arc<Waiting>,
    services: Mutex<Vec<RpcService>>,
    server: Mutex<Option<AnyServer>>,
}

impl EngineServer {
    /// A server reporting to `sink`.
    pub fn new(sink: Arc<dyn Sink>, settings: Settings) -> Self {
        Self {
            sink,
            settings,
            waiting: Arc::default(),
            services: Mutex::new(Vec::new()),
            server: Mutex::new(None),
        }
    }

    /// Whether `start` has built the server (services can no longer be registered).
    pub fn is_built(&self) -> bool {
        self.lock_server().is_some()
    }

    fn lock_server(&self) -> std::sync::MutexGuard<'_, Option<AnyServer>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Declares a service and its methods. Before `start` (an error after it, saying so).
    pub fn register_service(&self, name: &str, methods: Vec<MethodSpec>) -> Result<(), String> {
        if self.lock_server().is_some() {
            return Err(format!(
                "service \"{name}\" registered after start: register every service before start()"
            ));
        }
        let service: Arc<str> = Arc::from(name);
        let mut builder = RpcService::builder(name);
        for m in methods {
            let handler = self.handler(&service, &m.name, !m.notification);
            builder = if m.notification {
                builder.raw_notification(m.name, Value::Object(Default::default()), {
                    move |params| {
                        let run = handler(params);
                        async move {
                            let _ = run.await;
                        }
                    }
                })
            } else {
                builder.raw_method(
                    m.name,
                    Value::Object(Default::default()),
                    Value::Object(Default::default()),
                    handler,
                )
            };
        }
        let built = builder.build().map_err(|e| e.to_string())?;
        self.services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(built);
        Ok(())
    }

    /// Answers request `token` with a result or an error object. An unknown token (the call's
    /// deadline passed, or the server stopped) is ignored.
    pub fn complete(&self, token: u64, answer: Result<Value, RpcError>) {
        if let Some(tx) = self.waiting.lock().remove(&token) {
            let _ = tx.send(answer);
        }
    }

    /// Builds (first time) and starts the server; reports [`Event::Done`] with `token`.
    pub fn start(&self, token: u64) -> Result<(), String> {
        let runtime = crate::runtime()?;
        let server = {
            let mut slot = self.lock_server();
            match &*slot {
                Some(server) => server.clone(),
                None => {
                    let services = std::mem::take(
                        &mut *self.services.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    match build(&self.settings, services) {
                        Ok(server) => slot.insert(server).clone(),
                        Err(e) => {
                            self.sink.done(token, Outcome::Value(e));
                            return Ok(());
                        }
                    }
                }
            }
        };
        let sink = Arc::clone(&self.sink);
        runtime.spawn(async move {
            let outcome = match server.start().await {
                Ok(()) => Outcome::Ok(None),
                Err(e) => Outcome::Transport(e.to_string()),
            };
            sink.done(token, outcome);
        });
        Ok(())
    }

    /// Stops within `grace` (default: the configured grace); reports [`Event::Done`].
    pub fn stop(&self, token: u64, grace: Option<Duration>) -> Result<(), String> {
        let Some(server) = self.lock_server().clone() else {
            self.sink.done(token, Outcome::Ok(None));
            return Ok(());
        };
        let grace = grace.unwrap_or(self.settings.grace);
        let sink = Arc::clone(&self.sink);
        crate::runtime()?.spawn(async move {
            server.stop_with_grace(grace).await;
            sink.done(token, Outcome::Ok(None));
        });
        Ok(())
    }

    /// The Rust handler of one method of the binding: hands the call to the loop, waits for
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
        let (sink, waiting) = (Arc::clone(&self.sink), Arc::clone(&self.waiting));
        let (service, method): (Arc<str>, Arc<str>) = (Arc::clone(service), Arc::from(method));
        move |params: Value| {
            let (token, reply) = waiting.open();
            let forget = Forget(Arc::clone(&waiting), Arc::clone(&sink), token);
            sink.push(Event::Request {
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
                        "the binding's side of the server went away before answering",
                    )),
                }
            })
        }
    }
}
