//! `RedisRpcServer`: consumes `<prefix>:cmds:<service>` in consumer group `<service>`.
//!
//! Layout: [`settings`] (defaults and checks), [`probe`] (what the ACL allows, at start),
//! [`service`] (consumer loop, entry handling, heartbeat), [`reclaim`] (dead consumers' work,
//! dead letters), [`writer`] (replies before acks), [`shared`] (clock, ACL, liveness).

mod probe;
mod reclaim;
mod service;
mod settings;
mod shared;
mod writer;

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::conn::Conn;
use clamator_protocol::middleware::ServerLayers;
use clamator_protocol::{
    Intake, IntoRpcService, LifecycleState, RpcService, Server, ServerError, ServerStats,
    ServerTransport, Services,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{ConnectionSource, RedisConnection};
use crate::errors::command_error;
use crate::keys::{command_stream, consumer_group_name};
use crate::settings::BLOCK;
pub(crate) use service::REPLY_TRIM_FIELD;
pub use service::RESERVED_FIELDS;
use service::{consume, heartbeat, ServiceCtx};
use settings::Settings;
pub use settings::{
    DEFAULT_CONCURRENCY, DEFAULT_CONSUMER_CLAIM_IDLE, DEFAULT_CONSUMER_EXPIRY,
    DEFAULT_MAX_DELIVERIES, DEFAULT_REPLY_STREAM_MAXLEN, MIN_CONSUMER_CLAIM_IDLE,
};
use shared::Shared;
use writer::Writer;

/// Builds a [`RedisRpcServer`]; see [`RedisRpcServer::builder`].
#[must_use]
pub struct RedisRpcServerBuilder {
    settings: Settings,
    connection: RedisConnection,
    services: Services,
    layers: ServerLayers,
}

impl fmt::Debug for RedisRpcServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRpcServerBuilder")
            .field("settings", &self.settings)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl RedisRpcServerBuilder {
    /// Adds a service (a macro-generated `<Name>Server` or a hand-built `RpcService`).
    pub fn service(mut self, service: impl IntoRpcService) -> Self {
        self.services = self.services.with(service);
        self
    }

    /// Adds the services collected in `services`.
    pub fn services(mut self, services: Services) -> Self {
        self.services = self.services.extend(services);
        self
    }

    /// Middleware around every call (see `clamator::middleware`); the entry's extra fields
    /// reach it as metadata.
    pub fn layers(mut self, layers: ServerLayers) -> Self {
        self.layers = layers;
        self
    }

    /// The consumer name suffix (`<service>:<instance_id>`), at most 256 bytes. Default: a
    /// random UUID v4. An empty string means the default, as in the Python package.
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        let id = instance_id.into();
        if !id.is_empty() {
            self.settings.instance_id = id;
        }
        self
    }

    crate::connection::connection_methods!();

    /// The prefix of every key (`<prefix>:cmds:<service>`, …): the servers and clients of one
    /// system, Python and TypeScript ones included, share it. Not empty, no glob characters.
    /// Default: `clamator`.
    pub fn key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.settings.key_prefix = key_prefix.into();
        self
    }

    /// Wait for `replicas` replicas to have each reply and dead letter (`WAIT`, up to
    /// `timeout`) before the entry is acked; a write they did not confirm in time is written
    /// again (retried until the request's deadline; the entry stays pending meanwhile, and a
    /// client ignores a reply it already had). With asynchronous replication an acked entry's
    /// reply can otherwise be lost in a failover, most of all on a cluster where the reply
    /// stream and the command stream live on different masters. Off by default; `replicas` 0
    /// turns it off. See the README's "Scaling out" for what it costs.
    pub fn min_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.settings.durability =
            (replicas > 0).then_some(crate::settings::Durability { replicas, timeout });
        self
    }

    /// Entries pending longer than this, whose server is gone, are reclaimed by another
    /// server of the pool. Default: 60 s; at least [`MIN_CONSUMER_CLAIM_IDLE`]. Reclaim runs
    /// every `max(1 s, claim_idle / 4)`; a server refreshes the entries it runs every
    /// `claim_idle / 3`.
    pub fn consumer_claim_idle(mut self, idle: Duration) -> Self {
        self.settings.claim_idle = idle;
        self
    }

    /// `MAXLEN ~` of replies to clients that do not trim their own reply stream (the 0.1.9
    /// clients). Default: 1024. Replies to Rust clients are never trimmed by the server.
    pub fn reply_stream_maxlen(mut self, maxlen: usize) -> Self {
        self.settings.reply_maxlen = maxlen;
        self
    }

    /// How long `stop` waits for running handlers. Default: 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.settings.grace = grace;
        self
    }

    /// How many handlers run at once per service. Default: 64. `1` keeps the originals'
    /// strict in-order processing. The server never reads more entries than it has free slots.
    pub fn concurrency(mut self, concurrency: NonZeroUsize) -> Self {
        self.settings.concurrency = concurrency;
        self
    }

    /// An entry delivered this many times (crashing or stalling its servers each time) is moved
    /// to the dead-letter stream `<prefix>:dead:<service>` instead of being delivered again.
    /// Default: 5; at least 1.
    pub fn max_deliveries(mut self, max: u32) -> Self {
        self.settings.max_deliveries = max;
        self
    }

    /// Envelopes larger than this are answered with `-32600` and acked without parsing them.
    /// Default: 4 MiB.
    pub fn max_envelope_bytes(mut self, max: usize) -> Self {
        self.settings.max_envelope_bytes = max;
        self
    }

    /// Every reply sets its reply stream to expire this long after it (`PEXPIRE`), so a
    /// stream nobody writes to any more disappears, and a busy one never does. Default:
    /// 10 minutes.
    pub fn reply_stream_ttl(mut self, ttl: Duration) -> Self {
        self.settings.reply_ttl = ttl;
        self
    }

    /// A consumer of another server that has nothing pending and has not talked to Redis for
    /// this long is removed from its group (it belonged to a server that died or was replaced).
    /// Default: 1 hour (or twice the liveness window, `claim_idle + max(1 s, claim_idle / 4) /
    /// 2`, if longer); at least twice that window.
    pub fn consumer_expiry(mut self, expiry: Duration) -> Self {
        self.settings.consumer_expiry = Some(expiry);
        self
    }

    /// Builds the server (not started). Fails on a setting that cannot work (naming it), or on
    /// duplicate services.
    pub fn build(self) -> Result<RedisRpcServer, ServerError> {
        self.settings.check()?;
        let source = self.connection.0;
        let grace = self.settings.grace;
        let transport = RedisServerTransport {
            settings: Arc::new(self.settings),
            source,
            shared: Arc::default(),
            intake: CancellationToken::new(),
            background: CancellationToken::new(),
            loops: TaskTracker::new(),
            background_tasks: TaskTracker::new(),
            running: Mutex::new(None),
        };
        Ok(RedisRpcServer {
            server: Server::builder(transport)
                .services(self.services)
                .shutdown_grace(grace)
                .layers(self.layers)
                .build()?,
        })
    }
}

/// The Redis Streams [`ServerTransport`] that [`RedisRpcServer`] is built on.
pub struct RedisServerTransport {
    settings: Arc<Settings>,
    source: ConnectionSource,
    shared: Arc<Shared>,
    /// Cancelled to stop reading new entries.
    intake: CancellationToken,
    /// Cancelled when the drain is over (or the server is dropped): heartbeats and writers end.
    background: CancellationToken,
    /// The consumer loops.
    loops: TaskTracker,
    /// Heartbeats and writers.
    background_tasks: TaskTracker,
    running: Mutex<Option<Running>>,
}

/// What a started server holds.
struct Running {
    _conn: Conn,
    contexts: Vec<Arc<ServiceCtx>>,
}

impl fmt::Debug for RedisServerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServerTransport")
            .field("settings", &self.settings)
            .field("connection", &self.source)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisServerTransport {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl ServerTransport for RedisServerTransport {
    const NAME: &'static str = "redis";

    async fn start(&self, intake: &Intake) -> Result<(), ServerError> {
        self.start_intake(intake).await?;
        tracing::info!(
            key_prefix = %self.settings.key_prefix,
            instance_id = %self.settings.instance_id,
            services = ?intake.services().iter().map(RpcService::name).collect::<Vec<_>>(),
            "redis server started"
        );
        Ok(())
    }

    async fn stop_intake(&self) {
        self.intake.cancel();
        // Wake the blocked XREADGROUPs at once (they return no entries) instead of waiting
        // out their BLOCK.
        let contexts: Vec<Arc<ServiceCtx>> = self
            .running()
            .as_ref()
            .map(|r| r.contexts.clone())
            .unwrap_or_default();
        for ctx in &contexts {
            ctx.unblock_reader().await;
        }
        drop(contexts);
        self.loops.close();
        if tokio::time::timeout(BLOCK * 3, self.loops.wait())
            .await
            .is_err()
        {
            tracing::warn!(instance_id = %self.settings.instance_id, "redis server consumer loops did not stop within 3 BLOCK periods; stopping anyway (entries of a read in progress stay pending for reclaim)");
        }
    }

    async fn close(&self) {
        // Handlers finished (or were abandoned); their replies are written and acked before
        // the writers end. The heartbeat kept their entries claimed by this server meanwhile.
        self.background.cancel();
        self.background_tasks.close();
        if tokio::time::timeout(BLOCK * 3, self.background_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(instance_id = %self.settings.instance_id, "redis server writers did not stop within 3 BLOCK periods; replies not yet written stay unacked and their entries pending for reclaim");
        }
        self.running().take();
        tracing::info!(instance_id = %self.settings.instance_id, "redis server stopped");
    }

    /// The last handle is gone without `stop`: stop reading, abandon running handlers (their
    /// entries stay pending, for reclaim) and let every task end, closing the connections.
    fn abandon(&self) {
        self.intake.cancel();
        self.background.cancel();
    }
}

/// Serves services over Redis Streams, wire-compatible with `clamator-over-redis` 0.1.9.
///
/// Servers with the same key prefix form a worker pool per service: they share the consumer
/// group `<service>` and each entry is processed by one of them. Entries of a server that died
/// are reclaimed by the others after `consumer_claim_idle` (at-least-once).
///
/// Cheap to clone; clones share one server. [`stop`](Self::stop) is the graceful end: intake
/// stops, running handlers finish (up to the grace) and are answered. Dropping the last handle
/// without `stop` ends it at once: intake stops, running handlers are dropped at their next
/// await point, and their entries stay pending for another server (or the next run of this
/// one) to reclaim; the connections are closed.
#[derive(Clone)]
pub struct RedisRpcServer {
    server: Server<RedisServerTransport>,
}

impl fmt::Debug for RedisRpcServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRpcServer")
            .field("settings", &self.transport().settings)
            .field("connection", &self.transport().source)
            .field("state", &self.server.state())
            .finish_non_exhaustive()
    }
}

impl RedisRpcServer {
    /// Starts building a server (Redis from [`RedisConnection::from_env`], key prefix
    /// `clamator`).
    pub fn builder() -> RedisRpcServerBuilder {
        RedisRpcServerBuilder {
            settings: Settings::new(crate::settings::DEFAULT_KEY_PREFIX.to_owned()),
            connection: RedisConnection::default(),
            services: Services::new(),
            layers: ServerLayers::new(),
        }
    }

    /// The instance id (consumer name suffix).
    pub fn instance_id(&self) -> &str {
        &self.transport().settings.instance_id
    }

    fn transport(&self) -> &RedisServerTransport {
        self.server.transport()
    }

    /// The generic server it is built on.
    pub fn server(&self) -> &Server<RedisServerTransport> {
        &self.server
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.server.state()
    }

    /// What the server has done since it started: dispatched, expired, poison, dead-lettered,
    /// redelivered (reclaimed) entries, write retries, replies too large, groups recreated.
    pub fn stats(&self) -> ServerStats {
        self.server.stats()
    }

    /// Connects, creates the consumer groups (`XGROUP CREATE <stream> <service> $ MKSTREAM`,
    /// an existing group is kept), checks that the Redis user may run what the server needs,
    /// reads once, and starts consuming. Idempotent: concurrent calls start once. An error
    /// after `stop`, when Redis cannot be reached, or when a command the server needs is denied
    /// (with the server's message); then nothing runs and `start` can be called again.
    pub async fn start(&self) -> Result<(), ServerError> {
        self.server.start().await
    }

    /// Stops with the configured grace. See [`RedisRpcServer::stop_with_grace`].
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// Stops reading (the read in progress completes and its entries are handled), waits up to
    /// `grace` for running handlers (they reply and ack; their entries stay claimed by this
    /// server meanwhile), abandons the rest — their entries stay pending for another server to
    /// reclaim: nothing accepted is lost — and closes the connections. Idempotent; a stop
    /// during `start` waits for it; every caller returns once the drain is over.
    pub async fn stop_with_grace(&self, grace: Duration) {
        self.server.stop_with_grace(grace).await;
    }
}

impl RedisServerTransport {
    fn running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything `start` does. Nothing is spawned before the last await, so a start that
    /// fails (or is cancelled) leaves nothing running.
    async fn start_intake(&self, intake: &Intake) -> Result<(), ServerError> {
        let settings = &self.settings;
        let client = self.source.connector()?;
        let mut conn = client.commands().await?;
        let clock = self.shared.sync_clock(&mut conn).await;
        if !clock {
            tracing::warn!("the Redis user may not run TIME: request deadlines are computed on this machine's clock (allow +time)");
        }
        probe::report_version(&mut conn).await;
        let all_streams: Arc<[(String, String)]> = intake
            .services()
            .iter()
            .map(|s| {
                (
                    command_stream(&settings.key_prefix, s.name()),
                    consumer_group_name(s.name()),
                )
            })
            .collect();
        let mut prepared = Vec::new();
        for service in intake.services() {
            let (tx, rx) = mpsc::unbounded_channel();
            let ctx = Arc::new(ServiceCtx::new(
                settings,
                service.clone(),
                conn.clone(),
                intake.clone(),
                Arc::clone(&self.shared),
                tx,
                Arc::clone(&all_streams),
            ));
            ctx.create_group(&mut conn, "$")
                .await
                .map_err(|e| command_error("xgroup create failed", &e))?;
            prepared.push((ctx, rx));
        }
        if let Some((first, _)) = prepared.first() {
            let caps = probe::capabilities(
                &mut conn,
                &settings.key_prefix,
                &first.stream,
                &first.group,
                &first.consumer,
            )
            .await?;
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            self.shared.reply_ttl.store(caps.reply_ttl, relaxed);
            self.shared
                .consumer_cleanup
                .store(caps.consumer_cleanup, relaxed);
        }
        let mut ready = Vec::new();
        for (ctx, rx) in prepared {
            let mut reader = client.blocking().await?;
            ctx.register_reader(&mut reader).await;
            // The first read is not blocking: it proves the user may consume, and what it
            // returns is handled like any other read.
            let batch = settings.concurrency.get().min(service::MAX_READ_BATCH);
            let first = ctx
                .read(&mut reader, batch, false)
                .await
                .map_err(|e| command_error("xreadgroup failed", &e))?;
            ready.push((ctx, rx, reader, first));
        }
        let mut contexts = Vec::new();
        for (ctx, rx, reader, first) in ready {
            self.background_tasks.spawn(
                Writer {
                    service: ctx.name().to_owned(),
                    stream: ctx.stream.clone(),
                    group: ctx.group.clone(),
                    dead_stream: ctx.dead_stream.clone(),
                    reply_maxlen: settings.reply_maxlen,
                    reply_ttl: settings.reply_ttl,
                    durability: settings.durability,
                    conn: conn.clone(),
                    shared: Arc::clone(&self.shared),
                    intake: intake.clone(),
                    rx,
                    background: self.background.clone(),
                    shutdown: intake.shutdown_token().clone(),
                }
                .run(),
            );
            self.loops.spawn(consume(
                Arc::clone(&ctx),
                client.clone(),
                reader,
                first,
                self.intake.clone(),
                self.background.clone(),
            ));
            self.background_tasks.spawn(heartbeat(
                Arc::clone(&ctx),
                self.background.clone(),
                clock,
            ));
            contexts.push(ctx);
        }
        *self.running() = Some(Running {
            _conn: conn,
            contexts,
        });
        Ok(())
    }
}

impl From<RedisRpcServer> for clamator_protocol::AnyServer {
    /// The same server behind the handle every transport shares.
    fn from(value: RedisRpcServer) -> Self {
        Self::new(value.server)
    }
}
