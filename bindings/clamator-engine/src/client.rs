//! A client whose calls are awaited in the binding's loop.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clamator_over_memory::MemoryRpcClient;
use clamator_over_nats::NatsRpcClient;
use clamator_over_redis::RedisRpcClient;
use clamator_protocol::{AnyClient, CallError, RpcClient};
use serde_json::Value;

use crate::events::{Outcome, Sink};
use crate::settings::{Settings, Wire};

/// The client `s` describes, on its transport.
fn build(s: &Settings) -> Result<AnyClient, String> {
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

/// How a failed call is reported.
fn call_outcome(error: CallError) -> Outcome {
    match error {
        CallError::Rpc(e) => Outcome::Rpc {
            code: e.code,
            message: e.message,
            data: serde_json::to_vec(&e.data).unwrap_or_default(),
        },
        CallError::Protocol(e) => Outcome::Protocol(e.to_string()),
        other => Outcome::Transport(other.to_string()),
    }
}

/// A client whose calls are awaited in the binding's loop: each `call`/`notify` starts the
/// call on the runtime and reports [`crate::Event::Done`] when it is over.
#[derive(Debug)]
pub struct EngineClient {
    sink: Arc<dyn Sink>,
    settings: Settings,
    client: Mutex<Option<AnyClient>>,
}

impl EngineClient {
    /// A client reporting to `sink`.
    pub fn new(sink: Arc<dyn Sink>, settings: Settings) -> Self {
        Self {
            sink,
            settings,
            client: Mutex::new(None),
        }
    }

    fn lock_client(&self) -> std::sync::MutexGuard<'_, Option<AnyClient>> {
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds (first time) and starts the client; reports [`crate::Event::Done`].
    pub fn start(&self, token: u64) -> Result<(), String> {
        let runtime = crate::runtime()?;
        let client = {
            let mut slot = self.lock_client();
            match &*slot {
                Some(client) => client.clone(),
                None => {
                    let built = {
                        let _entered = runtime.enter();
                        build(&self.settings)
                    };
                    match built {
                        Ok(client) => slot.insert(client).clone(),
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
            let outcome = match client.start().await {
                Ok(()) => Outcome::Ok(None),
                Err(e) => Outcome::Transport(e.to_string()),
            };
            sink.done(token, outcome);
        });
        Ok(())
    }

    /// Stops the client (waiting calls fail with "transport stopped").
    pub fn stop(&self, token: u64) -> Result<(), String> {
        let Some(client) = self.lock_client().clone() else {
            self.sink.done(token, Outcome::Ok(None));
            return Ok(());
        };
        let sink = Arc::clone(&self.sink);
        crate::runtime()?.spawn(async move {
            client.stop().await;
            sink.done(token, Outcome::Ok(None));
        });
        Ok(())
    }

    /// The started client, or `None` after reporting why not.
    fn started(&self, token: u64) -> Option<AnyClient> {
        let client = self.lock_client().clone();
        if client.is_none() {
            self.sink.done(
                token,
                Outcome::Transport("transport not started (state=idle)".into()),
            );
        }
        client
    }

    /// Calls `service.method` with `params` (JSON); reports the result's JSON or the error.
    pub fn call(
        &self,
        token: u64,
        service: String,
        method: String,
        params: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), String> {
        let params = match serde_json::from_slice::<Value>(params) {
            Ok(p) => p,
            Err(e) => {
                self.sink
                    .done(token, Outcome::Value(format!("params are not JSON: {e}")));
                return Ok(());
            }
        };
        let Some(client) = self.started(token) else {
            return Ok(());
        };
        let sink = Arc::clone(&self.sink);
        crate::runtime()?.spawn(async move {
            let outcome = match client.call_value(&service, &method, params, timeout).await {
                Ok(value) => Outcome::Ok(Some(serde_json::to_vec(&value).unwrap_or_default())),
                Err(e) => call_outcome(e),
            };
            sink.done(token, outcome);
        });
        Ok(())
    }

    /// Sends the notification `service.method` with `params` (JSON).
    pub fn notify(
        &self,
        token: u64,
        service: String,
        method: String,
        params: &[u8],
    ) -> Result<(), String> {
        let params = match serde_json::from_slice::<Value>(params) {
            Ok(p) => p,
            Err(e) => {
                self.sink
                    .done(token, Outcome::Value(format!("params are not JSON: {e}")));
                return Ok(());
            }
        };
        let Some(client) = self.started(token) else {
            return Ok(());
        };
        let sink = Arc::clone(&self.sink);
        crate::runtime()?.spawn(async move {
            let outcome = match client.notify_value(&service, &method, params).await {
                Ok(()) => Outcome::Ok(None),
                Err(e) => call_outcome(e),
            };
            sink.done(token, outcome);
        });
        Ok(())
    }
}
