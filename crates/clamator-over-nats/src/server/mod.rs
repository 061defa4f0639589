//! `NatsRpcServer`: one durable pull consumer per service, shared by every server of that
//! service (competing consumers), pulling only as many requests as it has free handler slots.
//!
//! Layout: [`pull`] (the pull loop of a service), [`message`] (one request through the shared
//! pipeline, reply and ack, dead letters, recreating a lost stream or consumer); this file holds
//! the settings, the stream and consumer setup, and the transport's lifecycle.

mod message;
mod pull;
mod status;

pub use status::{RunningRequest, ServerStatus, ServiceStatus};

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull as pull_consumer};
use clamator_protocol::middleware::ServerLayers;
use clamator_protocol::transport::Slots;
use clamator_protocol::{
    Intake, IntoRpcService, LifecycleState, RpcService, Server, ServerError, ServerStats,
    ServerTransport, Services, TransportError,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::names::{command_stream, consumer_name, status_subject};
use crate::wire::{connection_methods, Wire};
use message::ServiceCtx;

/// Handlers run at once per service by default.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// How long JetStream waits for a delivered request's ack before it delivers it again (to any
/// server): 30 s. Running handlers keep their requests with in-progress acks every third of
/// it, so only the requests of a dead (or frozen) server are delivered again.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// The shortest ack wait accepted.
pub const MIN_ACK_WAIT: Duration = Duration::from_millis(300);
/// A request delivered this many times without an ack goes to the dead-letter stream at its
/// next delivery instead of to a handler.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

#[derive(Debug)]
struct Settings {
    wire: Wire,
    instance_id: String,
    concurrency: NonZeroUsize,
    ack_wait: Duration,
    max_deliveries: u32,
}

/// The NATS JetStream [`ServerTransport`] that [`NatsRpcServer`] is built on.
pub struct NatsServerTransport {
    settings: Arc<Settings>,
    client: Mutex<Option<async_nats::Client>>,
    /// Cancelled to stop pulling.
    intake_stop: CancellationToken,
    /// The pull loops.
    loops: TaskTracker,
    /// Cancelled when the drain is over (or the server is dropped): the progress tickers end.
    background: CancellationToken,
    background_tasks: TaskTracker,
}

impl fmt::Debug for NatsServerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsServerTransport")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn transport_error(context: &'static str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Transport(TransportError::connection(context, e.to_string()))
}

/// Creates (or finds) the command stream, dead-letter stream and durable consumer of `name`;
/// returns the consumer's ack wait.
async fn prepare(
    js: &jetstream::Context,
    wire: &Wire,
    settings: &Settings,
    name: &str,
) -> Result<Duration, ServerError> {
    let wanted = wire.command_stream_config(name);
    let stream = js.get_or_create_stream(wanted.clone()).await.map_err(|e| {
        transport_error("nats stream create failed", format!("{}: {e}", wanted.name))
    })?;
    let found = &stream.cached_info().config;
    if found.retention != jetstream::stream::RetentionPolicy::WorkQueue
        || found.subjects != wanted.subjects
    {
        return Err(ServerError::Transport(TransportError::Config(format!(
            "stream {} exists but is not clamator's work queue over {} (retention {:?}, subjects {:?}); delete it or use another key prefix",
            wanted.name, wanted.subjects[0], found.retention, found.subjects
        ))));
    }
    if found.num_replicas != wanted.num_replicas {
        tracing::warn!(stream = %wanted.name, found = found.num_replicas, configured = wanted.num_replicas, "the command stream exists with another replica count; it is kept as it is");
    }
    let dead = wire.dead_letter_stream_config(name);
    js.get_or_create_stream(dead.clone())
        .await
        .map_err(|e| transport_error("nats stream create failed", format!("{}: {e}", dead.name)))?;
    let durable = consumer_name(name);
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            pull_consumer::Config {
                durable_name: Some(durable.clone()),
                description: Some(format!("clamator servers of service {name}")),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: settings.ack_wait,
                // Unlimited: the server dead-letters a request itself at delivery
                // `max_deliveries + 1`, so JetStream never strands one.
                max_deliver: -1,
                max_ack_pending: 100_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            transport_error(
                "nats consumer create failed",
                format!("{durable} on {}: {e}", wanted.name),
            )
        })?;
    let ack_wait = consumer.cached_info().config.ack_wait;
    if ack_wait != settings.ack_wait {
        tracing::warn!(service = name, consumer_ack_wait = ?ack_wait, configured = ?settings.ack_wait,
            "the service's consumer exists with another ack wait (the first server's); it is kept, and in-progress acks follow it");
    }
    Ok(ack_wait)
}

impl ServerTransport for NatsServerTransport {
    const NAME: &'static str = "nats";

    async fn start(&self, intake: &Intake) -> Result<(), ServerError> {
        let settings = &self.settings;
        settings.wire.check()?;
        let client = settings
            .wire
            .connection
            .connect(&format!("clamator-server-{}", settings.instance_id))
            .await?;
        let js = jetstream::new(client.clone());
        let mut ctxs = Vec::new();
        for service in intake.services() {
            let ack_wait = match prepare(&js, &settings.wire, settings, service.name()).await {
                Ok(found) => found,
                Err(e) => {
                    let _ = client.drain().await;
                    return Err(e);
                }
            };
            ctxs.push(Arc::new(ServiceCtx {
                service: service.clone(),
                settings: Arc::clone(settings),
                client: client.clone(),
                js: js.clone(),
                stream: command_stream(&settings.wire.prefix, service.name()),
                consumer_name: consumer_name(service.name()),
                intake: intake.clone(),
                slots: Slots::new(settings.concurrency),
                progress_every: (ack_wait / 3).max(Duration::from_millis(50)),
                running: Mutex::default(),
                cleaning: std::sync::atomic::AtomicBool::new(false),
                seen_connects: std::sync::atomic::AtomicU64::new(
                    client
                        .statistics()
                        .connects
                        .load(std::sync::atomic::Ordering::Relaxed),
                ),
                connected_at_ms: std::sync::atomic::AtomicI64::new(message::local_now_ms()),
                max_reply_bytes: std::sync::atomic::AtomicUsize::new(0),
            }));
        }
        let status = client
            .subscribe(status_subject(&settings.wire.prefix))
            .await
            .map_err(|e| transport_error("nats subscribe failed", e))?;
        self.background_tasks.spawn(status::answer(
            client.clone(),
            status,
            settings.instance_id.clone(),
            ctxs.clone(),
            self.background.clone(),
        ));
        for ctx in ctxs {
            ctx.refresh_limits();
            let stop = self.intake_stop.clone();
            self.background_tasks
                .spawn(Arc::clone(&ctx).progress(self.background.clone()));
            self.loops.spawn(pull::Puller::new(ctx).run(stop));
        }
        tracing::info!(instance = %settings.instance_id, prefix = %settings.wire.prefix,
            services = ?intake.services().iter().map(RpcService::name).collect::<Vec<_>>(), "nats server started");
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(client);
        Ok(())
    }

    async fn stop_intake(&self) {
        self.intake_stop.cancel();
        self.loops.close();
        self.loops.wait().await;
    }

    async fn close(&self) {
        self.background.cancel();
        self.background_tasks.close();
        self.background_tasks.wait().await;
        let client = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(client) = client {
            // Replies and acks of the drained handlers leave before the connection closes.
            let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
            let _ = client.drain().await;
        }
    }

    fn abandon(&self) {
        self.intake_stop.cancel();
        self.background.cancel();
    }
}

/// Serves services over NATS JetStream.
///
/// Every service gets a work-queue stream `<prefix>_cmds_<service>` (subject
/// `<prefix>.cmds.<service>`) and one durable pull consumer `<service>` that all its servers
/// share: each request goes to one of them. A server pulls only as many requests as it has
/// free handler slots, keeps running ones with in-progress acks, replies over core NATS to the
/// caller's subject, then acks. A request whose server died is delivered again after the ack
/// wait; one delivered `max_deliveries` times without an ack is dead-lettered.
///
/// Cheap to clone; clones share one server.
#[derive(Clone)]
pub struct NatsRpcServer {
    server: Server<NatsServerTransport>,
}

impl fmt::Debug for NatsRpcServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsRpcServer")
            .field("transport", self.server.transport())
            .field("state", &self.server.state())
            .finish()
    }
}

/// Builds a [`NatsRpcServer`]; see [`NatsRpcServer::builder`].
#[must_use]
pub struct NatsRpcServerBuilder {
    wire: Wire,
    instance_id: String,
    concurrency: NonZeroUsize,
    ack_wait: Duration,
    max_deliveries: u32,
    grace: Option<Duration>,
    services: Services,
    layers: ServerLayers,
}

impl fmt::Debug for NatsRpcServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsRpcServerBuilder")
            .field("connection", &self.wire)
            .field("instance_id", &self.instance_id)
            .field("concurrency", &self.concurrency)
            .field("ack_wait", &self.ack_wait)
            .finish_non_exhaustive()
    }
}

impl NatsRpcServerBuilder {
    connection_methods!();

    /// Names this server in the NATS connection name and logs. Default: a random UUID v4.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() {
            self.instance_id = id;
        }
        self
    }

    /// Handlers run at once per service (default 64; `1` runs one request at a time). A
    /// server never pulls more requests than it has free slots.
    pub fn concurrency(mut self, n: NonZeroUsize) -> Self {
        self.concurrency = n;
        self
    }

    /// How long a delivered request may go without an ack (or in-progress ack) before
    /// JetStream delivers it again: the time to notice a dead server (default 30 s, at
    /// least 300 ms). The first server to create a service's consumer sets it.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Deliveries without an ack before a request is dead-lettered (default 5, at least 1).
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.max_deliveries = n;
        self
    }

    /// How long `stop` waits for running handlers (default 5 s); those still running after
    /// it are given back to the stream (nak) for another server.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Replicas of the streams this server creates (1 to 5, default 1): 3 on a JetStream
    /// cluster keeps every request through the loss of one node.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.wire.replicas = replicas;
        self
    }

    /// Keep the streams this server creates in memory instead of on disk (faster; lost when
    /// the NATS server restarts, unless replicated).
    pub fn memory_storage(mut self, memory: bool) -> Self {
        self.wire.memory_storage = memory;
        self
    }

    /// Adds a service.
    pub fn service(mut self, service: impl IntoRpcService) -> Self {
        self.services = self.services.with(service);
        self
    }

    /// Adds the services collected in `services`.
    pub fn services(mut self, services: Services) -> Self {
        self.services = self.services.extend(services);
        self
    }

    /// Middleware around every call; metadata arrives from message headers.
    pub fn layers(mut self, layers: ServerLayers) -> Self {
        self.layers = layers;
        self
    }

    /// Builds the server (not started). Fails on a setting that cannot work, naming it.
    pub fn build(self) -> Result<NatsRpcServer, ServerError> {
        self.wire.check()?;
        if self.ack_wait < MIN_ACK_WAIT {
            return Err(TransportError::Config(format!(
                "ack_wait must be at least {MIN_ACK_WAIT:?}, not {:?}",
                self.ack_wait
            ))
            .into());
        }
        if self.max_deliveries == 0 {
            return Err(TransportError::Config("max_deliveries must be at least 1".into()).into());
        }
        let transport = NatsServerTransport {
            settings: Arc::new(Settings {
                wire: self.wire,
                instance_id: self.instance_id,
                concurrency: self.concurrency,
                ack_wait: self.ack_wait,
                max_deliveries: self.max_deliveries,
            }),
            client: Mutex::new(None),
            intake_stop: CancellationToken::new(),
            loops: TaskTracker::new(),
            background: CancellationToken::new(),
            background_tasks: TaskTracker::new(),
        };
        let mut b = Server::builder(transport)
            .services(self.services)
            .layers(self.layers);
        if let Some(grace) = self.grace {
            b = b.shutdown_grace(grace);
        }
        Ok(NatsRpcServer { server: b.build()? })
    }
}

impl NatsRpcServer {
    /// Starts building a server (NATS at `nats://127.0.0.1:4222`, prefix `clamator`).
    pub fn builder() -> NatsRpcServerBuilder {
        NatsRpcServerBuilder {
            wire: Wire::default(),
            instance_id: uuid::Uuid::new_v4().to_string(),
            concurrency: NonZeroUsize::new(DEFAULT_CONCURRENCY).unwrap_or(NonZeroUsize::MIN),
            ack_wait: DEFAULT_ACK_WAIT,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            grace: None,
            services: Services::new(),
            layers: ServerLayers::new(),
        }
    }

    /// The generic server it is built on.
    pub fn server(&self) -> &Server<NatsServerTransport> {
        &self.server
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.server.state()
    }

    /// Connects, creates the streams and consumers it needs, and starts pulling. An error
    /// (NATS unreachable, JetStream off, a stream of that name that is not ours) leaves
    /// nothing running; `start` can be called again.
    pub async fn start(&self) -> Result<(), ServerError> {
        self.server.start().await
    }

    /// Stops pulling, waits up to the shutdown grace for running handlers (they are answered
    /// and acked), gives the rest back, and closes the connection. Idempotent.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// [`stop`](Self::stop) with another grace.
    pub async fn stop_with_grace(&self, grace: Duration) {
        self.server.stop_with_grace(grace).await;
    }

    /// What this server has done since it started.
    pub fn stats(&self) -> ServerStats {
        self.server.stats()
    }
}

impl From<NatsRpcServer> for clamator_protocol::AnyServer {
    /// The same server behind the handle every transport shares.
    fn from(value: NatsRpcServer) -> Self {
        Self::new(value.server)
    }
}
