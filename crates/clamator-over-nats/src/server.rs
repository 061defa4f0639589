//! `NatsRpcServer`: one durable pull consumer per service, shared by every server of that
//! service (competing consumers), pulling only as many requests as it has free handler slots.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, message::AckKind};
use clamator_protocol::middleware::ServerLayers;
use clamator_protocol::{
    parse_envelope_slice, to_json, Delivery, Id, Intake, IntoRpcService, LifecycleState, Metadata,
    Response, RpcError, RpcService, Server, ServerError, ServerTransport, Services, TransportError,
};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{connection_methods, sleep_or_cancel, Backoff, Connection};
use crate::names::{
    consumer_name, dead_letter_subject, is_metadata_header, is_reply_subject_of,
    HEADER_DEAD_DELIVERIES, HEADER_DEAD_REASON, HEADER_DEAD_SEQUENCE, HEADER_MSG_ID,
    HEADER_REPLY_TO, HEADER_TIMEOUT_MS,
};

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
/// Requests pulled per pull request at most (fewer when fewer handler slots are free).
const MAX_BATCH: usize = 256;
/// How long a pull request waits at the NATS server for requests to arrive.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// How long the server retries a dead letter's publish before leaving the request to be
/// delivered again.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a server has done since it started (for tests, metrics and `inspect`).
#[derive(Debug, Default)]
struct Counters {
    dispatched: AtomicU64,
    poison: AtomicU64,
    expired: AtomicU64,
    dead_lettered: AtomicU64,
    redelivered: AtomicU64,
}

/// A snapshot of a server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Requests and notifications handed to a handler.
    pub dispatched: u64,
    /// Messages acked without a handler (malformed, too large, a forged reply subject).
    pub poison: u64,
    /// Requests skipped because their caller had stopped waiting.
    pub expired: u64,
    /// Requests moved to the dead-letter stream.
    pub dead_lettered: u64,
    /// Requests received that had been delivered before (to this or another server).
    pub redelivered: u64,
}

#[derive(Debug)]
struct Settings {
    conn: Connection,
    instance_id: String,
    concurrency: NonZeroUsize,
    ack_wait: Duration,
    max_deliveries: u32,
}

/// The NATS JetStream [`ServerTransport`] that [`NatsRpcServer`] is built on.
pub struct NatsServerTransport {
    settings: Arc<Settings>,
    client: Mutex<Option<async_nats::Client>>,
    intake_stop: CancellationToken,
    loops: TaskTracker,
    counters: Arc<Counters>,
}

impl fmt::Debug for NatsServerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsServerTransport")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Per-service state shared by its pull loop and handler tasks.
struct ServiceCtx {
    service: RpcService,
    settings: Arc<Settings>,
    client: async_nats::Client,
    js: jetstream::Context,
    consumer: jetstream::consumer::PullConsumer,
    intake: Intake,
    slots: Arc<Semaphore>,
    counters: Arc<Counters>,
    /// How often running handlers send in-progress acks (a third of the consumer's ack wait).
    progress_every: Duration,
}

fn transport_error(context: &'static str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Transport(TransportError::connection(context, e.to_string()))
}

impl NatsServerTransport {
    /// Creates (or finds) the command stream, dead-letter stream and durable consumer of
    /// `service`.
    async fn prepare(
        &self,
        js: &jetstream::Context,
        name: &str,
    ) -> Result<(jetstream::consumer::PullConsumer, Duration), ServerError> {
        let conn = &self.settings.conn;
        let wanted = conn.command_stream_config(name);
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
        let dead = conn.dead_letter_stream_config(name);
        js.get_or_create_stream(dead.clone()).await.map_err(|e| {
            transport_error("nats stream create failed", format!("{}: {e}", dead.name))
        })?;
        let durable = consumer_name(name);
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    description: Some(format!("clamator servers of service {name}")),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
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
        if ack_wait != self.settings.ack_wait {
            tracing::warn!(service = name, consumer_ack_wait = ?ack_wait, configured = ?self.settings.ack_wait,
                "the service's consumer exists with another ack wait (the first server's); it is kept, and in-progress acks follow it");
        }
        Ok((consumer, ack_wait))
    }
}

impl ServerTransport for NatsServerTransport {
    async fn start(&self, intake: &Intake) -> Result<(), ServerError> {
        let settings = &self.settings;
        let client = settings
            .conn
            .connect(&format!("clamator-server-{}", settings.instance_id))
            .await?;
        let js = jetstream::new(client.clone());
        let mut ctxs = Vec::new();
        for service in intake.services() {
            let (consumer, ack_wait) = match self.prepare(&js, service.name()).await {
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
                consumer,
                intake: intake.clone(),
                slots: Arc::new(Semaphore::new(settings.concurrency.get())),
                counters: Arc::clone(&self.counters),
                progress_every: (ack_wait / 3).max(Duration::from_millis(50)),
            }));
        }
        for ctx in ctxs {
            let stop = self.intake_stop.clone();
            self.loops.spawn(pull_loop(ctx, stop));
        }
        tracing::info!(instance = %settings.instance_id, prefix = %settings.conn.prefix,
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
    }
}

/// Pulls as many requests as there are free handler slots, and hands each to a handler.
async fn pull_loop(ctx: Arc<ServiceCtx>, stop: CancellationToken) {
    let name = ctx.service.name().to_owned();
    let mut backoff = Backoff::new();
    let mut failing = false;
    loop {
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            permit = Arc::clone(&ctx.slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let mut permits = vec![first];
        permits.extend(
            std::iter::from_fn(|| Arc::clone(&ctx.slots).try_acquire_owned().ok())
                .take(MAX_BATCH - 1),
        );
        let batch = ctx
            .consumer
            .batch()
            .max_messages(permits.len())
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(error) => {
                drop(permits);
                if !failing {
                    tracing::warn!(service = %name, %error, "nats pull failed; retrying with backoff");
                    failing = true;
                }
                if sleep_or_cancel(backoff.next(), &stop).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                () = stop.cancelled() => {
                    // Requests already on their way to this server: given back at once
                    // (nak) instead of waiting out the ack wait.
                    let drain = async {
                        while let Some(Ok(m)) = batch.next().await {
                            let _ = m.ack_with(AckKind::Nak(None)).await;
                        }
                    };
                    let _ = tokio::time::timeout(PULL_EXPIRES + Duration::from_millis(500), drain).await;
                    return;
                }
                next = batch.next() => next,
            };
            match next {
                None => break,
                Some(Ok(message)) => {
                    if failing {
                        tracing::info!(service = %name, "nats pull works again");
                        failing = false;
                    }
                    backoff.reset();
                    match permits.pop() {
                        Some(permit) => spawn_handler(&ctx, message, permit),
                        None => {
                            // More than was asked for (not expected from JetStream): given
                            // back for later rather than run without a slot.
                            let _ = message.ack_with(AckKind::Nak(None)).await;
                        }
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(service = %name, %error, "pull request ended with an error");
                    break;
                }
            }
        }
    }
}

fn spawn_handler(ctx: &Arc<ServiceCtx>, message: jetstream::Message, permit: OwnedSemaphorePermit) {
    let ctx = Arc::clone(ctx);
    let shutdown = ctx.intake.shutdown_token().clone();
    ctx.intake.tracker().clone().spawn(async move {
        let _permit = permit;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                // Abandoned at shutdown: given back now, another server runs it.
                let _ = message.ack_with(AckKind::Nak(None)).await;
                tracing::debug!(service = ctx.service.name(), "handler abandoned at shutdown; its request was given back (nak)");
            }
            () = ctx.handle(&message) => {}
        }
    });
}

/// The request id of an envelope too broken to parse, when it still has one.
fn recover_id(raw: &[u8]) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: serde_json::Value,
    }
    let IdOnly { id } = serde_json::from_slice(raw).ok()?;
    Id::from_value(&id).map(|id| id.to_value())
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

fn metadata(headers: Option<&HeaderMap>) -> Metadata {
    let mut m = Metadata::new();
    for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
        let name: &str = name.as_ref();
        let lower = name.to_ascii_lowercase();
        if is_metadata_header(&lower) && Metadata::is_valid_name(&lower) {
            if let Some(v) = values.first() {
                m.insert(lower, v.as_str());
            }
        }
    }
    m
}

/// What the message's ack subject says about it (parsed once per delivery).
#[derive(Debug, Clone, Copy)]
struct Delivered {
    /// Deliveries so far, this one included.
    count: u64,
    /// Its sequence in the command stream (0: unknown).
    sequence: u64,
    /// When the stream stored it, Unix ns.
    stored_ns: Option<i128>,
}

impl Delivered {
    fn of(message: &jetstream::Message) -> Self {
        match message.info() {
            Ok(i) => Self {
                count: i.delivered.max(1) as u64,
                sequence: i.stream_sequence,
                stored_ns: Some(i.published.unix_timestamp_nanos()),
            },
            Err(_) => Self {
                count: 1,
                sequence: 0,
                stored_ns: None,
            },
        }
    }
}

enum Deadline {
    None,
    At(Instant),
    Expired(u128),
}

impl ServiceCtx {
    fn name(&self) -> &str {
        self.service.name()
    }

    fn poison(&self, delivered: Delivered, why: &dyn fmt::Display) {
        self.counters.poison.fetch_add(1, Ordering::Relaxed);
        let seq = delivered.sequence;
        tracing::warn!(service = self.name(), sequence = seq, reason = %why,
            "nats poison message: service={} sequence={seq}; acked without running a handler (a request with a known id and reply subject was answered with an error; fix the producer that published it)", self.name());
    }

    /// The request's deadline: the time the stream stored it + `Clamator-Timeout-Ms`.
    fn deadline(&self, message: &jetstream::Message, delivered: Delivered) -> Deadline {
        let Some(timeout_ms) = header(message.headers.as_ref(), HEADER_TIMEOUT_MS)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|t| *t > 0)
        else {
            return Deadline::None;
        };
        let Some(stored_ns) = delivered.stored_ns else {
            return Deadline::None;
        };
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let left_ns = stored_ns + i128::from(timeout_ms) * 1_000_000 - now_ns;
        if left_ns <= 0 {
            Deadline::Expired((-left_ns / 1_000_000) as u128)
        } else {
            Deadline::At(
                Instant::now() + Duration::from_nanos(left_ns.min(u64::MAX as i128) as u64),
            )
        }
    }

    /// The reply subject: `Ok(None)` when absent, an error when it is not a reply subject of
    /// this prefix (a server publishes nowhere else).
    fn reply_to(&self, message: &jetstream::Message) -> Result<Option<String>, String> {
        match header(message.headers.as_ref(), HEADER_REPLY_TO).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(to) if is_reply_subject_of(&self.settings.conn.prefix, to) => {
                Ok(Some(to.to_owned()))
            }
            Some(to) => {
                let shown: String = to.chars().take(80).collect();
                Err(format!(
                    "{HEADER_REPLY_TO} {shown:?} is not a reply subject of this prefix ({}.replies.<client-id>)",
                    self.settings.conn.prefix
                ))
            }
        }
    }

    async fn send_reply(&self, to: &str, response: &Response) -> bool {
        match self
            .client
            .publish(to.to_owned(), to_json(response).into())
            .await
        {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(service = self.name(), %error, "reply not sent; the request is left to be delivered again");
                false
            }
        }
    }

    async fn ack(&self, message: &jetstream::Message) {
        if let Err(error) = message.ack().await {
            tracing::debug!(service = self.name(), %error, "ack not sent; the request will be delivered again after the ack wait");
        }
    }

    /// One delivered request: dead-letter it, refuse it, skip it, or run it; then reply and
    /// ack (in that order, on one connection: an acked request's reply left first).
    async fn handle(&self, message: &jetstream::Message) {
        let delivered = Delivered::of(message);
        if delivered.count > 1 {
            self.counters.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        if delivered.count > u64::from(self.settings.max_deliveries) {
            self.dead_letter(message, delivered).await;
            return;
        }
        let reply_to = match self.reply_to(message) {
            Ok(to) => to,
            Err(why) => {
                self.poison(delivered, &why);
                self.ack(message).await;
                return;
            }
        };
        let raw = &message.payload[..];
        let limit = self.settings.conn.max_envelope_bytes;
        let error = if raw.len() > limit {
            let reason = format!(
                "envelope too large: {} bytes exceeds the limit of {limit} bytes",
                raw.len()
            );
            self.poison(delivered, &reason);
            RpcError::invalid_request(serde_json::json!({ "reason": reason }))
        } else {
            match parse_envelope_slice(raw) {
                Ok(envelope) => {
                    let deadline = match self.deadline(message, delivered) {
                        Deadline::Expired(late_ms) => {
                            self.counters.expired.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(
                                service = self.name(),
                                late_ms,
                                "skipping a request whose deadline passed before it started"
                            );
                            self.ack(message).await;
                            return;
                        }
                        Deadline::At(at) => Some(at),
                        Deadline::None => None,
                    };
                    self.counters.dispatched.fetch_add(1, Ordering::Relaxed);
                    let delivery = Delivery::new()
                        .with_deadline(deadline)
                        .with_metadata(metadata(message.headers.as_ref()))
                        .with_message_id(delivered.sequence.to_string());
                    let handling = self.intake.handle(&self.service, envelope, delivery);
                    let response = self.with_progress(message, handling).await;
                    if let (Some(to), Some(response)) = (reply_to, response) {
                        if !self.send_reply(&to, &response).await {
                            return;
                        }
                    }
                    self.ack(message).await;
                    return;
                }
                Err(error) => {
                    self.poison(delivered, &error);
                    error.to_rpc_error()
                }
            }
        };
        if let (Some(to), Some(id)) = (reply_to, recover_id(raw)) {
            self.send_reply(&to, &Response::error(id, error)).await;
        }
        self.ack(message).await;
    }

    /// Runs `work`, telling JetStream every third of the ack wait that the request is still
    /// being handled (so a long handler is not delivered again to another server).
    async fn with_progress<F: std::future::Future>(
        &self,
        message: &jetstream::Message,
        work: F,
    ) -> F::Output {
        let mut work = std::pin::pin!(work);
        let start = tokio::time::Instant::now() + self.progress_every;
        let mut tick = tokio::time::interval_at(start, self.progress_every);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = tick.tick() => {
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(service = self.name(), %error, "in-progress ack not sent");
                    }
                }
            }
        }
    }

    /// Moves a request delivered too often to `<prefix>.dead.<service>` (headers kept, reason
    /// added), answers its caller with an error, and acks it. If the dead letter cannot be
    /// stored the request is left to be delivered again: nothing is dropped.
    async fn dead_letter(&self, message: &jetstream::Message, delivered: Delivered) {
        let deliveries = delivered.count - 1;
        let reason = format!(
            "delivered {deliveries} times without being acked (max_deliveries {})",
            self.settings.max_deliveries
        );
        let subject = dead_letter_subject(&self.settings.conn.prefix, self.name());
        // Dedup within the dead-letter stream is not wanted (a replayed and again failing
        // request is a new dead letter): every header but `Nats-Msg-Id` is kept.
        let mut headers = HeaderMap::new();
        for (name, values) in message.headers.iter().flat_map(HeaderMap::iter) {
            let name: &str = name.as_ref();
            if !name.eq_ignore_ascii_case(HEADER_MSG_ID) {
                for v in values {
                    headers.append(name, v.as_str());
                }
            }
        }
        headers.insert(HEADER_DEAD_REASON, reason.as_str());
        headers.insert(HEADER_DEAD_DELIVERIES, deliveries.to_string().as_str());
        headers.insert(
            HEADER_DEAD_SEQUENCE,
            delivered.sequence.to_string().as_str(),
        );
        let stored = tokio::time::timeout(DEAD_LETTER_TIMEOUT, async {
            self.js
                .publish_with_headers(subject.clone(), headers, message.payload.clone())
                .await?
                .await
        })
        .await;
        match stored {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(service = self.name(), %subject, %error, "dead letter not stored; the request is left to be delivered again");
                return;
            }
            Err(_) => {
                tracing::error!(service = self.name(), %subject, "dead letter not stored in time; the request is left to be delivered again");
                return;
            }
        }
        self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(service = self.name(), %subject, %reason, "request dead-lettered");
        if let (Ok(Some(to)), Some(id)) = (self.reply_to(message), recover_id(&message.payload)) {
            let data = serde_json::json!({
                "name": "DeadLettered",
                "message": format!("{reason}; moved to {subject}"),
            });
            self.send_reply(&to, &Response::error(id, RpcError::internal(data)))
                .await;
        }
        self.ack(message).await;
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
    conn: Connection,
    instance_id: String,
    concurrency: usize,
    ack_wait: Duration,
    max_deliveries: u32,
    grace: Option<Duration>,
    services: Services,
    layers: ServerLayers,
}

impl fmt::Debug for NatsRpcServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsRpcServerBuilder")
            .field("connection", &self.conn)
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

    /// Handlers run at once per service (default 64; `1` runs one request at a time).
    pub fn concurrency(mut self, n: usize) -> Self {
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
        self.conn.replicas = replicas;
        self
    }

    /// Keep the streams this server creates in memory instead of on disk (faster; lost when
    /// the NATS server restarts, unless replicated).
    pub fn memory_storage(mut self, memory: bool) -> Self {
        self.conn.memory_storage = memory;
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
        self.conn.check()?;
        let concurrency = NonZeroUsize::new(self.concurrency)
            .ok_or_else(|| TransportError::Config("concurrency must be at least 1".into()))?;
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
                conn: self.conn,
                instance_id: self.instance_id,
                concurrency,
                ack_wait: self.ack_wait,
                max_deliveries: self.max_deliveries,
            }),
            client: Mutex::new(None),
            intake_stop: CancellationToken::new(),
            loops: TaskTracker::new(),
            counters: Arc::default(),
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
            conn: Connection::default(),
            instance_id: uuid::Uuid::new_v4().to_string(),
            concurrency: DEFAULT_CONCURRENCY,
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
        let c = &self.server.transport().counters;
        ServerStats {
            dispatched: c.dispatched.load(Ordering::Relaxed),
            poison: c.poison.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            redelivered: c.redelivered.load(Ordering::Relaxed),
        }
    }
}
