//! `RedisRpcServer`: consumes `<prefix>:cmds:<service>` in consumer group `<service>`.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clamator_protocol::{
    parse_envelope_slice, to_json, IntoService, LifecycleState, Response, ServerCore, ServerError,
    Service, Services, StartAction, TransportError, DEFAULT_SHUTDOWN_GRACE,
};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{
    blocking_connection, command_connection, is_connection_error, local_now_ms, millis,
    redis_clock_offset_ms, server_version, sleep_or_cancel, Backoff, ConnectionChoice,
    ConnectionSource, BLOCK, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_REPLY_STREAM_TTL,
};
use crate::entry::{parse_autoclaim_reply, parse_read_reply, Entry};
use crate::keys::{command_stream, consumer_group_name, consumer_name, dead_letter_stream};

/// The default number of handlers a server runs at once per service.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The default idle time after which another consumer reclaims a pending entry: 60 s.
pub const DEFAULT_CONSUMER_CLAIM_IDLE: Duration = Duration::from_secs(60);
/// The default `MAXLEN ~` of reply streams: 1024.
pub const DEFAULT_REPLY_STREAM_MAXLEN: usize = 1024;

/// The default number of deliveries after which an entry is dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// Counters of a server, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Requests and notifications given to a handler.
    pub dispatched: u64,
    /// Requests skipped because their deadline had passed before a handler started.
    pub expired: u64,
    /// Entries that could not be used (no envelope, not JSON, invalid, too large).
    pub poison: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

#[derive(Debug, Default)]
struct Shared {
    dispatched: AtomicU64,
    expired: AtomicU64,
    poison: AtomicU64,
    dead_lettered: AtomicU64,
    /// Redis clock minus local clock, ms (deadlines are computed on Redis's clock).
    clock_offset_ms: AtomicI64,
    /// Redis ≥ 7: `EXPIRE … NX` is available.
    expire_nx: AtomicBool,
    /// Reply streams given a TTL recently: `EXPIRE … NX` is sent at most once per stream per
    /// tenth of the TTL, not with every reply.
    ttl_set: Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// Entries read per `XREADGROUP` at most (fewer when fewer handler slots are free).
const MAX_READ_BATCH: usize = 128;
/// Entries reclaimed per `XAUTOCLAIM` at most (as the originals). Reclaim runs in the
/// consumer loop, with the slots it holds, every `max(1 s, claim_idle / 4)`.
const MAX_CLAIM_BATCH: usize = 32;
/// Reply/ack attempts before leaving an entry pending for reclaim.
const FINISH_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone)]
struct Settings {
    key_prefix: String,
    instance_id: String,
    claim_idle: Duration,
    reply_maxlen: usize,
    grace: Duration,
    concurrency: NonZeroUsize,
    max_deliveries: u32,
    max_envelope_bytes: usize,
    reply_ttl: Duration,
}

/// Builds a [`RedisRpcServer`]; see [`RedisRpcServer::builder`].
#[must_use]
pub struct RedisRpcServerBuilder {
    settings: Settings,
    connection: ConnectionChoice,
    services: Services,
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
    /// Adds a service (a macro-generated `<Name>Server` or a hand-built `Service`).
    pub fn service(mut self, service: impl IntoService) -> Self {
        self.services = self.services.with(service);
        self
    }

    /// The consumer name suffix (`<service>:<instance_id>`). Default: a random UUID v4.
    /// An empty string means the default, as in the Python package.
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        let id = instance_id.into();
        if !id.is_empty() {
            self.settings.instance_id = id;
        }
        self
    }

    /// Connect to this URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS).
    /// Default: `$REDIS_URL`, else `redis://localhost:6379`. The server owns the connections
    /// it opens and closes them on `stop`.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.connection.url(url.into());
        self
    }

    /// Use a `redis::Client` you configured (injected). Its connections are opened by the
    /// server; the client itself stays yours. Giving both this and `redis_url` is an error.
    pub fn redis_client(mut self, client: redis::Client) -> Self {
        self.connection.client(client);
        self
    }

    /// Entries pending longer than this are reclaimed (XAUTOCLAIM) from dead consumers.
    /// Default: 60 s. The reclaim loop runs every `max(1 s, claim_idle / 4)`.
    pub fn consumer_claim_idle(mut self, idle: Duration) -> Self {
        self.settings.claim_idle = idle;
        self
    }

    /// `MAXLEN ~` of reply XADDs. Default: 1024.
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
    /// Default: 5.
    pub fn max_deliveries(mut self, max: u32) -> Self {
        self.settings.max_deliveries = max.max(1);
        self
    }

    /// Envelopes larger than this are answered with `-32600` and acked without parsing them.
    /// Default: 4 MiB.
    pub fn max_envelope_bytes(mut self, max: usize) -> Self {
        self.settings.max_envelope_bytes = max;
        self
    }

    /// The TTL set on reply streams that have none (`EXPIRE … NX`, Redis ≥ 7), so the reply
    /// streams of dead clients expire. Default: 10 minutes; live Rust clients refresh theirs.
    pub fn reply_stream_ttl(mut self, ttl: Duration) -> Self {
        self.settings.reply_ttl = ttl;
        self
    }

    /// Builds the server (not started).
    pub fn build(self) -> Result<RedisRpcServer, ServerError> {
        let source = self.connection.finish()?;
        let core = Arc::new(self.services.into_core()?);
        Ok(RedisRpcServer {
            inner: Arc::new(Inner {
                settings: self.settings,
                source,
                core,
                intake: CancellationToken::new(),
                loops: TaskTracker::new(),
                conn: Mutex::new(None),
                contexts: Mutex::new(Vec::new()),
                shared: Arc::default(),
                starting: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

struct Inner {
    settings: Settings,
    source: ConnectionSource,
    core: Arc<ServerCore>,
    intake: CancellationToken,
    loops: TaskTracker,
    conn: Mutex<Option<ConnectionManager>>,
    contexts: Mutex<Vec<Arc<ServiceCtx>>>,
    shared: Arc<Shared>,
    starting: tokio::sync::Mutex<()>,
}

/// Serves services over Redis Streams, wire-compatible with `clamator-over-redis` 0.1.9.
///
/// Servers with the same key prefix form a worker pool per service: they share the consumer
/// group `<service>` and each entry is processed by one of them. Entries of a server that died
/// are reclaimed by the others after `consumer_claim_idle` (at-least-once). Cheap to clone.
#[derive(Clone)]
pub struct RedisRpcServer {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisRpcServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRpcServer")
            .field("settings", &self.inner.settings)
            .field("connection", &self.inner.source)
            .field("state", &self.inner.core.state())
            .finish_non_exhaustive()
    }
}

impl RedisRpcServer {
    /// Starts building a server with the given key prefix (used literally).
    pub fn builder(key_prefix: impl Into<String>) -> RedisRpcServerBuilder {
        RedisRpcServerBuilder {
            settings: Settings {
                key_prefix: key_prefix.into(),
                instance_id: uuid::Uuid::new_v4().to_string(),
                claim_idle: DEFAULT_CONSUMER_CLAIM_IDLE,
                reply_maxlen: DEFAULT_REPLY_STREAM_MAXLEN,
                grace: DEFAULT_SHUTDOWN_GRACE,
                concurrency: NonZeroUsize::new(DEFAULT_CONCURRENCY).unwrap_or(NonZeroUsize::MIN),
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
                reply_ttl: DEFAULT_REPLY_STREAM_TTL,
            },
            connection: ConnectionChoice::default(),
            services: Services::new(),
        }
    }

    /// The instance id (consumer name suffix).
    pub fn instance_id(&self) -> &str {
        &self.inner.settings.instance_id
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.inner.core.state()
    }

    /// Counters: dispatched, expired, poison, dead-lettered entries.
    pub fn stats(&self) -> ServerStats {
        let s = &self.inner.shared;
        ServerStats {
            dispatched: s.dispatched.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
            poison: s.poison.load(Ordering::Relaxed),
            dead_lettered: s.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// Connects, creates the consumer groups (`XGROUP CREATE <stream> <service> $ MKSTREAM`,
    /// an existing group is kept) and starts consuming. Idempotent; an error after `stop` or
    /// when Redis cannot be reached (then nothing runs).
    pub async fn start(&self) -> Result<(), ServerError> {
        let inner = &self.inner;
        // Concurrent starts: one connects, the others wait and then see it started.
        let _starting = inner.starting.lock().await;
        if inner.core.begin_start()? == StartAction::AlreadyStarted {
            return Ok(());
        }
        let client = inner.source.client()?;
        let mut conn = command_connection(&client).await?;
        let (major, _) = server_version(&mut conn).await;
        inner.shared.expire_nx.store(major >= 7, Ordering::Relaxed);
        if let Some(offset) = redis_clock_offset_ms(&mut conn).await {
            inner
                .shared
                .clock_offset_ms
                .store(offset, Ordering::Relaxed);
        }
        let mut contexts = Vec::new();
        for service in inner.core.services() {
            let ctx = Arc::new(ServiceCtx::new(
                &inner.settings,
                service.clone(),
                conn.clone(),
                Arc::clone(&inner.core),
                Arc::clone(&inner.shared),
            ));
            ctx.create_group(&mut conn, "$")
                .await
                .map_err(|e| TransportError::connection("xgroup create failed", e))?;
            let mut reader = blocking_connection(&client).await?;
            ctx.register_reader(&mut reader).await;
            contexts.push((ctx, reader));
        }
        for (ctx, reader) in contexts {
            inner
                .contexts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(&ctx));
            inner.loops.spawn(consume(
                Arc::clone(&ctx),
                client.clone(),
                reader,
                inner.intake.clone(),
            ));
            inner.loops.spawn(heartbeat(ctx, inner.intake.clone()));
        }
        *inner.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        inner.core.finish_start();
        tracing::info!(
            key_prefix = %inner.settings.key_prefix,
            instance_id = %inner.settings.instance_id,
            services = ?inner.core.services().iter().map(Service::name).collect::<Vec<_>>(),
            "redis server started"
        );
        Ok(())
    }

    /// Stops with the configured grace. See [`RedisRpcServer::stop_with_grace`].
    pub async fn stop(&self) {
        self.stop_with_grace(self.inner.settings.grace).await;
    }

    /// Stops reading (the read in progress completes and its entries are handled), waits up to
    /// `grace` for running handlers (they reply and ack), cancels the rest — their entries
    /// stay pending for another server to reclaim: nothing accepted is lost — and closes the
    /// connections. Idempotent.
    pub async fn stop_with_grace(&self, grace: Duration) {
        let inner = &self.inner;
        if inner.core.mark_stopped() != LifecycleState::Started {
            return;
        }
        inner.intake.cancel();
        // Wake the blocked XREADGROUPs at once (they return no entries) instead of waiting
        // out their BLOCK.
        // Taken, not cloned: the contexts hold the command connection, closed when dropped.
        let contexts = std::mem::take(
            &mut *inner
                .contexts
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for ctx in contexts {
            ctx.unblock_reader().await;
        }
        inner.loops.close();
        if tokio::time::timeout(BLOCK * 3, inner.loops.wait())
            .await
            .is_err()
        {
            tracing::warn!("redis server loops did not stop in time");
        }
        let all_done = inner.core.drain(grace).await;
        inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        tracing::info!(all_done, instance_id = %inner.settings.instance_id, "redis server stopped");
    }
}

/// Per-service state shared by its loops and handler tasks.
struct ServiceCtx {
    service: Service,
    stream: String,
    group: String,
    consumer: String,
    settings: Settings,
    conn: ConnectionManager,
    core: Arc<ServerCore>,
    slots: Arc<Semaphore>,
    inflight: Mutex<HashSet<String>>,
    /// `CLIENT ID` of the reader connection, for `CLIENT UNBLOCK` on stop.
    reader_id: AtomicI64,
    shared: Arc<Shared>,
    dead_stream: String,
}

fn is_nogroup(e: &redis::RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

impl ServiceCtx {
    fn new(
        settings: &Settings,
        service: Service,
        conn: ConnectionManager,
        core: Arc<ServerCore>,
        shared: Arc<Shared>,
    ) -> Self {
        let name = service.name().to_owned();
        Self {
            dead_stream: dead_letter_stream(&settings.key_prefix, &name),
            shared,
            stream: command_stream(&settings.key_prefix, &name),
            group: consumer_group_name(&name),
            consumer: consumer_name(&name, &settings.instance_id),
            slots: Arc::new(Semaphore::new(settings.concurrency.get())),
            inflight: Mutex::new(HashSet::new()),
            reader_id: AtomicI64::new(0),
            settings: settings.clone(),
            service,
            conn,
            core,
        }
    }

    fn name(&self) -> &str {
        self.service.name()
    }

    /// Records the reader connection's `CLIENT ID`.
    async fn register_reader(&self, reader: &mut MultiplexedConnection) {
        let id: redis::RedisResult<i64> = redis::cmd("CLIENT").arg("ID").query_async(reader).await;
        match id {
            Ok(id) => self.reader_id.store(id, Ordering::SeqCst),
            Err(error) => tracing::debug!(service = self.name(), %error, "CLIENT ID failed"),
        }
    }

    /// `CLIENT UNBLOCK <reader>`: its blocking read returns at once, with no entries.
    async fn unblock_reader(&self) {
        let id = self.reader_id.load(Ordering::SeqCst);
        if id == 0 {
            return;
        }
        let mut conn = self.conn.clone();
        let unblocked: redis::RedisResult<i64> = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .query_async(&mut conn)
            .await;
        match unblocked {
            Ok(n) => tracing::debug!(
                service = self.name(),
                reader = id,
                unblocked = n,
                "reader unblocked"
            ),
            Err(error) => {
                tracing::debug!(service = self.name(), %error, "could not unblock the reader")
            }
        }
    }

    /// `XGROUP CREATE <stream> <group> <start> MKSTREAM`, ignoring BUSYGROUP.
    async fn create_group(
        &self,
        conn: &mut ConnectionManager,
        start: &str,
    ) -> redis::RedisResult<()> {
        let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e),
            _ => Ok(()),
        }
    }

    /// Up to `max` free handler slots without waiting.
    fn try_slots(&self, max: usize) -> Vec<OwnedSemaphorePermit> {
        std::iter::from_fn(|| Arc::clone(&self.slots).try_acquire_owned().ok())
            .take(max)
            .collect()
    }

    fn inflight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one entry on the server's handler tracker, holding one slot.
    fn spawn_entry(self: &Arc<Self>, entry: Entry, slot: OwnedSemaphorePermit) {
        self.inflight().insert(entry.id.clone());
        let ctx = Arc::clone(self);
        let shutdown = self.core.shutdown_token().clone();
        self.core.tracker().spawn(async move {
            tokio::select! {
                () = ctx.handle_entry(&entry) => {}
                () = shutdown.cancelled() => {
                    tracing::debug!(service = ctx.name(), entry_id = %entry.id, "handler abandoned at shutdown; entry stays pending");
                }
            }
            ctx.inflight().remove(&entry.id);
            drop(slot);
        });
    }

    /// Reclaims entries idle longer than `claim_idle` (dead consumers' work) with
    /// `XAUTOCLAIM`, following its cursor, into the given free slots; returns the slots left.
    async fn reclaim(
        self: &Arc<Self>,
        mut slots: Vec<OwnedSemaphorePermit>,
        cursor: &mut String,
    ) -> Vec<OwnedSemaphorePermit> {
        let mut conn = self.conn.clone();
        while !slots.is_empty() {
            let claimed: redis::RedisResult<Value> = redis::cmd("XAUTOCLAIM")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(millis(self.settings.claim_idle))
                .arg(cursor.as_str())
                .arg("COUNT")
                .arg(slots.len().min(MAX_CLAIM_BATCH))
                .query_async(&mut conn)
                .await;
            let (next, entries) = match claimed {
                Ok(reply) => parse_autoclaim_reply(&reply),
                Err(e) => {
                    if !is_nogroup(&e) {
                        tracing::error!(service = self.name(), error = %e, "redis reclaim loop error: service={}", self.name());
                    }
                    break;
                }
            };
            for entry in entries {
                if self.inflight().contains(&entry.id) {
                    continue;
                }
                let Some(slot) = slots.pop() else { break };
                tracing::info!(service = self.name(), entry_id = %entry.id, "reclaimed a pending entry");
                self.spawn_entry(entry, slot);
            }
            *cursor = next;
            if cursor == "0-0" {
                break;
            }
        }
        slots
    }

    /// Spec §2.4, with error replies for poison entries whose id and reply-to are known, a
    /// size limit, and deadlines (`timeout-ms` field) checked before the handler starts.
    async fn handle_entry(&self, entry: &Entry) {
        let reply_to = reply_to(entry);
        let Some(raw) = entry.field("envelope").filter(|v| !v.is_empty()) else {
            self.shared.poison.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(service = self.name(), entry_id = %entry.id, "redis entry without envelope: service={} entry={}", self.name(), entry.id);
            self.finish(entry, None).await;
            return;
        };
        if raw.len() > self.settings.max_envelope_bytes {
            self.shared.poison.fetch_add(1, Ordering::Relaxed);
            let reason = format!(
                "envelope too large: {} bytes exceeds the limit of {} bytes",
                raw.len(),
                self.settings.max_envelope_bytes
            );
            tracing::warn!(service = self.name(), entry_id = %entry.id, "redis poison envelope: service={} entry={}: {reason}", self.name(), entry.id);
            let error = clamator_protocol::RpcError::invalid_request(
                serde_json::json!({ "reason": reason }),
            );
            let reply = reply_to
                .zip(recover_id(raw))
                .map(|(to, id)| (to, Response::error(id, error)));
            self.finish(entry, reply).await;
            return;
        }
        let envelope = match parse_envelope_slice(raw) {
            Ok(envelope) => envelope,
            Err(error) => {
                self.shared.poison.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(service = self.name(), entry_id = %entry.id, %error, "redis poison envelope: service={} entry={}", self.name(), entry.id);
                let reply = reply_to
                    .zip(recover_id(raw))
                    .map(|(to, id)| (to, Response::error(id, error.to_rpc_error())));
                self.finish(entry, reply).await;
                return;
            }
        };
        let deadline = match self.remaining(entry) {
            Some(remaining) if remaining <= 0 => {
                self.shared.expired.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(service = self.name(), entry_id = %entry.id, expired_ms = -remaining, "skipping a request whose deadline passed before it started");
                self.finish(entry, None).await;
                return;
            }
            Some(remaining) => std::time::Instant::now()
                .checked_add(Duration::from_millis(u64::try_from(remaining).unwrap_or(0))),
            None => None,
        };
        self.shared.dispatched.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .service
            .dispatch_with_deadline(envelope, deadline)
            .await;
        self.finish(entry, reply_to.zip(reply)).await;
    }

    /// Milliseconds left until the request's deadline (entry id time + `timeout-ms`, on
    /// Redis's clock), if it carries one.
    fn remaining(&self, entry: &Entry) -> Option<i64> {
        let timeout: i64 = std::str::from_utf8(entry.field("timeout-ms")?)
            .ok()?
            .parse()
            .ok()?;
        let created: i64 = entry.id.split('-').next()?.parse().ok()?;
        let redis_now = local_now_ms() + self.shared.clock_offset_ms.load(Ordering::Relaxed);
        Some(created + timeout - redis_now)
    }

    /// Replies (`XADD <reply-to> MAXLEN ~ N *`, then `EXPIRE <reply-to> <ttl> NX`), acks and
    /// deletes the entry, in one pipelined round trip, retrying on connection errors. If it
    /// cannot, the entry stays pending for reclaim.
    async fn finish(&self, entry: &Entry, reply: Option<(String, Response)>) {
        let mut pipe = redis::pipe();
        if let Some((reply_to, response)) = &reply {
            self.push_reply(&mut pipe, reply_to, response);
        }
        pipe.cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&entry.id)
            .ignore();
        pipe.cmd("XDEL").arg(&self.stream).arg(&entry.id).ignore();
        self.run_pipeline(&pipe, entry).await;
    }

    fn push_reply(&self, pipe: &mut redis::Pipeline, reply_to: &str, response: &Response) {
        pipe.cmd("XADD")
            .arg(reply_to)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.settings.reply_maxlen)
            .arg("*")
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(to_json(response))
            .ignore();
        if self.shared.expire_nx.load(Ordering::Relaxed) && self.ttl_due(reply_to) {
            pipe.cmd("EXPIRE")
                .arg(reply_to)
                .arg(self.settings.reply_ttl.as_secs().max(1))
                .arg("NX")
                .ignore();
        }
    }

    /// Whether the reply stream should get `EXPIRE … NX` now (not done in the last tenth of the
    /// TTL, so a stream recreated by a late reply after expiring gets its TTL again soon).
    fn ttl_due(&self, reply_to: &str) -> bool {
        let now = std::time::Instant::now();
        let fresh = self.settings.reply_ttl / 10;
        let mut seen = self
            .shared
            .ttl_set
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen
            .get(reply_to)
            .is_some_and(|at| now.duration_since(*at) < fresh)
        {
            return false;
        }
        if seen.len() >= 10_000 {
            seen.retain(|_, at| now.duration_since(*at) < fresh);
        }
        seen.insert(reply_to.to_owned(), now);
        true
    }

    async fn run_pipeline(&self, pipe: &redis::Pipeline, entry: &Entry) {
        let mut backoff = Backoff::new();
        for attempt in 1..=FINISH_ATTEMPTS {
            let mut conn = self.conn.clone();
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => return,
                Err(e) if is_connection_error(&e) && attempt < FINISH_ATTEMPTS => {
                    tracing::warn!(service = self.name(), entry_id = %entry.id, error = %e, attempt, "reply/ack failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    tracing::error!(service = self.name(), entry_id = %entry.id, error = %e, "reply/ack failed; entry stays pending for reclaim");
                    return;
                }
            }
        }
    }

    /// Moves entries that were delivered `max_deliveries` times and sit idle again to the
    /// dead-letter stream (reason and original fields), answers their callers with an error,
    /// and acks them.
    async fn dead_letter_exhausted(&self, max: usize) {
        let mut conn = self.conn.clone();
        let idle = millis(self.settings.claim_idle);
        let pending: redis::RedisResult<Vec<(String, String, u64, u64)>> = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("IDLE")
            .arg(idle)
            .arg("-")
            .arg("+")
            .arg(max)
            .query_async(&mut conn)
            .await;
        let Ok(pending) = pending else { return };
        for (id, consumer, _idle, deliveries) in pending {
            if deliveries < u64::from(self.settings.max_deliveries) || self.inflight().contains(&id)
            {
                continue;
            }
            // Take it (only if still idle), with its fields.
            let claimed: redis::RedisResult<Value> = redis::cmd("XCLAIM")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(idle)
                .arg(&id)
                .query_async(&mut conn)
                .await;
            let Ok(claimed) = claimed else { continue };
            for entry in crate::entry::parse_entries(&claimed) {
                self.dead_letter(&entry, deliveries, &consumer).await;
            }
        }
    }

    async fn dead_letter(&self, entry: &Entry, deliveries: u64, last_consumer: &str) {
        let reason = format!(
            "delivered {deliveries} times without being acked (max_deliveries {})",
            self.settings.max_deliveries
        );
        tracing::error!(service = self.name(), entry_id = %entry.id, %reason, dead_letter_stream = %self.dead_stream, "moving an entry to the dead-letter stream");
        let mut pipe = redis::pipe();
        let add = pipe.cmd("XADD").arg(&self.dead_stream).arg("*");
        add.arg("dead-reason")
            .arg(&reason)
            .arg("dead-entry-id")
            .arg(&entry.id);
        add.arg("dead-deliveries")
            .arg(deliveries)
            .arg("dead-last-consumer")
            .arg(last_consumer);
        for (k, v) in &entry.fields {
            add.arg(k.as_slice()).arg(v.as_slice());
        }
        add.ignore();
        let id = entry.field("envelope").and_then(recover_id);
        if let Some((reply_to, id)) = reply_to(entry).zip(id) {
            let data = serde_json::json!({
                "name": "DeadLettered",
                "message": format!("{reason}; moved to {}", self.dead_stream),
            });
            self.push_reply(
                &mut pipe,
                &reply_to,
                &Response::error(id, clamator_protocol::RpcError::internal(data)),
            );
        }
        pipe.cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&entry.id)
            .ignore();
        pipe.cmd("XDEL").arg(&self.stream).arg(&entry.id).ignore();
        self.shared.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.run_pipeline(&pipe, entry).await;
    }
}

fn reply_to(entry: &Entry) -> Option<String> {
    entry
        .field("reply-to")
        .filter(|v| !v.is_empty())
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

/// The request id of an envelope that failed validation, if it has a usable one.
/// Only the `id` is kept; everything else is skipped without being built.
fn recover_id(raw: &[u8]) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: serde_json::Value,
    }
    let IdOnly { id } = serde_json::from_slice(raw).ok()?;
    clamator_protocol::Id::from_value(&id).map(|id| id.to_value())
}

/// The consumer loop of one service: reads as many entries as it has free handler slots.
async fn consume(
    ctx: Arc<ServiceCtx>,
    client: redis::Client,
    reader: MultiplexedConnection,
    intake: CancellationToken,
) {
    let mut reader = Some(reader);
    let mut backoff = Backoff::new();
    let batch_cap = ctx.settings.concurrency.get().min(MAX_READ_BATCH);
    let claim_interval = (ctx.settings.claim_idle / 4).max(Duration::from_secs(1));
    let mut next_claim = tokio::time::Instant::now() + claim_interval;
    let mut cursor = "0-0".to_owned();
    loop {
        let first = tokio::select! {
            biased;
            () = intake.cancelled() => break,
            slot = Arc::clone(&ctx.slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let mut slots = vec![first];
        slots.extend(ctx.try_slots(batch_cap - 1));
        if tokio::time::Instant::now() >= next_claim {
            next_claim = tokio::time::Instant::now() + claim_interval;
            ctx.dead_letter_exhausted(MAX_CLAIM_BATCH).await;
            slots = ctx.reclaim(slots, &mut cursor).await;
            if slots.is_empty() {
                continue;
            }
        }
        let conn = match reader.as_mut() {
            Some(conn) => conn,
            None => match blocking_connection(&client).await {
                Ok(mut conn) => {
                    ctx.register_reader(&mut conn).await;
                    reader.insert(conn)
                }
                Err(error) => {
                    tracing::warn!(service = ctx.name(), %error, "redis consumer reconnect failed");
                    drop(slots);
                    if !sleep_or_cancel(backoff.next_delay(), &intake).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let read: redis::RedisResult<Value> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&ctx.group)
            .arg(&ctx.consumer)
            .arg("COUNT")
            .arg(slots.len())
            .arg("BLOCK")
            .arg(millis(BLOCK))
            .arg("STREAMS")
            .arg(&ctx.stream)
            .arg(">")
            .query_async(conn)
            .await;
        match read {
            Ok(reply) => {
                backoff.reset();
                for (entry, slot) in parse_read_reply(&reply).into_iter().zip(slots) {
                    ctx.spawn_entry(entry, slot);
                }
            }
            Err(e) if is_nogroup(&e) => {
                drop(slots);
                tracing::warn!(service = ctx.name(), stream = %ctx.stream, "consumer group lost (NOGROUP); recreating it");
                let mut conn = ctx.conn.clone();
                // The stream was lost with its data: whatever is in it now is new work.
                if let Err(error) = ctx.create_group(&mut conn, "0").await {
                    tracing::error!(service = ctx.name(), %error, "could not recreate the consumer group");
                    if !sleep_or_cancel(backoff.next_delay(), &intake).await {
                        break;
                    }
                }
            }
            Err(e) => {
                drop(slots);
                tracing::error!(service = ctx.name(), error = %e, "redis consumer loop error: service={}", ctx.name());
                if is_connection_error(&e) {
                    reader = None;
                }
                if !sleep_or_cancel(backoff.next_delay(), &intake).await {
                    break;
                }
            }
        }
    }
}

/// Keeps the idle time of entries this server is still running fresh (`XCLAIM … JUSTID`,
/// every `claim_idle / 3`), so other servers of the pool never reclaim live work.
async fn heartbeat(ctx: Arc<ServiceCtx>, intake: CancellationToken) {
    let tick = (ctx.settings.claim_idle / 3).max(Duration::from_millis(20));
    let mut conn = ctx.conn.clone();
    let mut clock_checked = tokio::time::Instant::now();
    while sleep_or_cancel(tick, &intake).await {
        if clock_checked.elapsed() > Duration::from_secs(30) {
            clock_checked = tokio::time::Instant::now();
            if let Some(offset) = redis_clock_offset_ms(&mut conn).await {
                ctx.shared.clock_offset_ms.store(offset, Ordering::Relaxed);
            }
        }
        let live: Vec<String> = ctx.inflight().iter().cloned().collect();
        if live.is_empty() {
            continue;
        }
        let refreshed: redis::RedisResult<Value> = redis::cmd("XCLAIM")
            .arg(&ctx.stream)
            .arg(&ctx.group)
            .arg(&ctx.consumer)
            .arg(0)
            .arg(&live)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await;
        if let Err(error) = refreshed {
            tracing::debug!(service = ctx.name(), %error, "could not refresh in-flight entries");
        }
    }
}
