//! `RedisRpcClient`: XADDs requests to `<prefix>:cmds:<service>` and reads replies from its own
//! `<prefix>:replies:<instance_id>` stream, which it trims itself as it reads.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Connector};
use clamator_protocol::middleware::ClientLayers;
use clamator_protocol::{
    build_notification, build_request, to_json, Call, CallError, Client, ClientTransport,
    LifecycleState, Metadata, Replies, RpcClient, TransportError, DEFAULT_CALL_TIMEOUT,
};
use redis::Value;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{ConnectionSource, RedisConnection};
use crate::entry::parse_read_reply;
use crate::errors::{command_error, describe, is_connection_error, is_transient, was_not_executed};
use crate::keys::{check_instance_id, check_key_prefix, command_stream, reply_stream};
use crate::server::REPLY_TRIM_FIELD;
use crate::settings::{millis, BLOCK, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_REPLY_STREAM_TTL};
use clamator_protocol::transport::Backoff;

/// Replies read per `XREAD` at most.
const REPLY_BATCH: usize = 1024;
/// The client trims the replies it has read once this many accumulated (and when idle).
const TRIM_EVERY: usize = 64;

/// What the client's background tasks use.
struct Shared {
    reply_stream: String,
    reply_ttl: Duration,
    /// Calls waiting for replies (given by the client at start).
    replies: std::sync::OnceLock<Replies>,
    /// Cancelled by `stop` or when the last handle is dropped.
    stopped: CancellationToken,
}

/// The Redis Streams [`ClientTransport`] that [`RedisRpcClient`] is built on.
pub struct RedisClientTransport {
    key_prefix: String,
    instance_id: String,
    max_envelope_bytes: usize,
    durability: Option<crate::settings::Durability>,
    source: ConnectionSource,
    conn: Mutex<Option<Conn>>,
    tasks: TaskTracker,
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisClientTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClientTransport")
            .field("key_prefix", &self.key_prefix)
            .field("instance_id", &self.instance_id)
            .field("connection", &self.source)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisClientTransport {
    /// The last handle is gone without `stop`: the reply loop and the TTL refresh end and
    /// close their connections (the reply stream expires by its TTL).
    fn drop(&mut self) {
        self.shared.stopped.cancel();
    }
}

/// Calls services over Redis Streams, wire-compatible with `clamator-over-redis` 0.1.9.
///
/// All calls share one multiplexed connection for `XADD`s and one dedicated connection for
/// the blocking `XREAD` of replies, however many calls are in flight. The reply stream
/// `<prefix>:replies:<instance_id>` carries a TTL the client refreshes while it runs; the
/// client trims the replies it has read and asks servers (field `reply-trim: client`) not to
/// trim it, so no reply is lost however many calls are in flight or however long the client
/// pauses within a call's timeout.
///
/// Cheap to clone; clones share one client. [`stop`](Self::stop) fails pending calls, deletes
/// the reply stream and closes the connections; dropping the last handle without `stop` ends
/// the background tasks and closes the connections too (the reply stream then expires by its
/// TTL).
#[derive(Clone)]
pub struct RedisRpcClient {
    client: Client<RedisClientTransport>,
}

impl fmt::Debug for RedisRpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.inner();
        f.debug_struct("RedisRpcClient")
            .field("key_prefix", &t.key_prefix)
            .field("instance_id", &t.instance_id)
            .field("default_timeout", &self.client.default_timeout())
            .field("connection", &t.source)
            .field("state", &self.client.state())
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisRpcClient`]; see [`RedisRpcClient::builder`].
#[must_use]
pub struct RedisRpcClientBuilder {
    key_prefix: String,
    instance_id: String,
    default_timeout: Duration,
    max_envelope_bytes: usize,
    reply_ttl: Duration,
    durability: Option<crate::settings::Durability>,
    connection: RedisConnection,
    layers: ClientLayers,
}

impl fmt::Debug for RedisRpcClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRpcClientBuilder")
            .field("key_prefix", &self.key_prefix)
            .field("instance_id", &self.instance_id)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl RedisRpcClientBuilder {
    /// The reply stream suffix (`<prefix>:replies:<instance_id>`), at most 256 bytes (servers
    /// do not reply to longer ones). Default: a random UUID v4. An empty string means the
    /// default.
    pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        let id = instance_id.into();
        if !id.is_empty() {
            self.instance_id = id;
        }
        self
    }

    /// The timeout of calls made without one. Default: 30 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    crate::connection::connection_methods!();

    /// The prefix of every key (`<prefix>:cmds:<service>`, `<prefix>:replies:<id>`): the
    /// servers and clients of one system share it. Not empty, no glob characters. Default:
    /// `clamator`.
    pub fn key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Wait for `replicas` replicas to have each request (`WAIT`, up to `timeout`) before the
    /// call counts as sent; when they do not confirm it in time the call fails with an error
    /// that says so (the request was added and may still run, like a call that timed out).
    /// With asynchronous replication a request Redis acknowledged can otherwise be lost in a
    /// failover. Off by default; `replicas` 0 turns it off.
    pub fn min_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.durability =
            (replicas > 0).then_some(crate::settings::Durability { replicas, timeout });
        self
    }

    /// Requests and notifications larger than this fail with `TransportError::TooLarge`
    /// before anything is sent. Default: 4 MiB (the server default too).
    pub fn max_envelope_bytes(mut self, max: usize) -> Self {
        self.max_envelope_bytes = max;
        self
    }

    /// TTL of the reply stream, refreshed while the client runs, so it expires if the client
    /// dies. Default: 10 minutes.
    pub fn reply_stream_ttl(mut self, ttl: Duration) -> Self {
        self.reply_ttl = ttl;
        self
    }

    /// Middleware around every call (see `clamator::middleware`); metadata they add travels
    /// as extra fields of the request entry.
    pub fn layers(mut self, layers: ClientLayers) -> Self {
        self.layers = layers;
        self
    }

    /// Builds the client (not started). Fails on a setting that cannot work, naming it.
    pub fn build(self) -> Result<RedisRpcClient, TransportError> {
        check_key_prefix(&self.key_prefix)?;
        check_instance_id(&self.instance_id)?;
        if self.reply_ttl < Duration::from_millis(1) {
            return Err(TransportError::Config(
                "reply_stream_ttl must be at least 1 ms".into(),
            ));
        }
        if self.max_envelope_bytes == 0 {
            return Err(TransportError::Config(
                "max_envelope_bytes must be at least 1".into(),
            ));
        }
        let source = self.connection.0;
        let transport = RedisClientTransport {
            shared: Arc::new(Shared {
                reply_stream: reply_stream(&self.key_prefix, &self.instance_id),
                reply_ttl: self.reply_ttl,
                replies: std::sync::OnceLock::new(),
                stopped: CancellationToken::new(),
            }),
            key_prefix: self.key_prefix,
            instance_id: self.instance_id,
            max_envelope_bytes: self.max_envelope_bytes,
            durability: self.durability,
            source,
            conn: Mutex::new(None),
            tasks: TaskTracker::new(),
        };
        Ok(RedisRpcClient {
            client: Client::builder(transport)
                .default_timeout(self.default_timeout)
                .layers(self.layers)
                .build()?,
        })
    }
}

impl RedisRpcClient {
    /// Starts building a client (Redis from [`RedisConnection::from_env`], key prefix
    /// `clamator`).
    pub fn builder() -> RedisRpcClientBuilder {
        RedisRpcClientBuilder {
            key_prefix: crate::settings::DEFAULT_KEY_PREFIX.to_owned(),
            instance_id: uuid::Uuid::new_v4().to_string(),
            default_timeout: DEFAULT_CALL_TIMEOUT,
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            reply_ttl: DEFAULT_REPLY_STREAM_TTL,
            durability: None,
            connection: RedisConnection::default(),
            layers: ClientLayers::new(),
        }
    }

    fn inner(&self) -> &RedisClientTransport {
        self.client.transport()
    }

    /// The generic client it is built on.
    pub fn client(&self) -> &Client<RedisClientTransport> {
        &self.client
    }

    /// The instance id (reply stream suffix).
    pub fn instance_id(&self) -> &str {
        &self.inner().instance_id
    }

    /// The reply stream key.
    pub fn reply_stream(&self) -> &str {
        &self.inner().shared.reply_stream
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.client.state()
    }

    /// Connects and starts reading replies. Idempotent (concurrent calls start once); an
    /// error after `stop` or when Redis cannot be reached (then nothing runs, and `start` can
    /// be called again).
    pub async fn start(&self) -> Result<(), TransportError> {
        self.client.start().await
    }

    /// Stops: pending calls fail with "transport stopped", the reply stream is deleted (best
    /// effort) and the connections are closed. Idempotent; a stop during `start` waits for it.
    pub async fn stop(&self) {
        self.client.stop().await;
    }
}

impl RedisClientTransport {
    fn connection(&self) -> Result<Conn, TransportError> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(TransportError::NotStarted {
                state: LifecycleState::Stopped,
            })
    }

    /// `XADD <prefix>:cmds:<service> * type rpc envelope <envelope>` (fields may follow).
    fn entry(&self, service: &str, envelope: &str) -> redis::Cmd {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(command_stream(&self.key_prefix, service))
            .arg("*")
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(envelope);
        xadd
    }

    fn check_size(&self, envelope: &str) -> Result<(), TransportError> {
        if envelope.len() > self.max_envelope_bytes {
            return Err(TransportError::TooLarge {
                size: envelope.len(),
                limit: self.max_envelope_bytes,
            });
        }
        Ok(())
    }
}

/// Entries looked at per `XRANGE` page, and pages at most, when checking whether a request
/// whose `XADD` was cut off landed.
const LANDED_PAGE: usize = 500;
const LANDED_PAGES: usize = 20;

/// Whether a stream holds, since `since_ms`, an entry whose envelope mentions `id` (a UUID).
async fn stream_mentions(
    conn: &mut Conn,
    stream: &str,
    id: &str,
    since_ms: i64,
) -> redis::RedisResult<bool> {
    let mut start = format!("{}-0", since_ms.max(0));
    for _ in 0..LANDED_PAGES {
        let page: Value = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(LANDED_PAGE)
            .query_async(conn)
            .await?;
        let entries = crate::entry::parse_entries(page);
        if entries.iter().any(|e| {
            e.field("envelope")
                .is_some_and(|v| v.windows(id.len()).any(|w| w == id.as_bytes()))
        }) {
            return Ok(true);
        }
        match entries.last() {
            Some(last) if entries.len() == LANDED_PAGE => start = format!("({}", last.id),
            _ => break,
        }
    }
    Ok(false)
}

/// What `XADD` is sent for, and how to tell whether an earlier attempt landed.
struct Send<'a> {
    cmd: &'a redis::Cmd,
    /// The command stream, and the request id (`None` for notifications).
    request: Option<(&'a str, &'a str)>,
    give_up_at: Instant,
}

impl RedisClientTransport {
    /// Whether the call with this key was answered (its reply taken by the reply loop).
    fn answered(&self, key: &str) -> bool {
        !self
            .shared
            .replies
            .get()
            .is_some_and(|replies| replies.is_pending(key))
    }

    /// Whether a request whose `XADD` was cut off is in its command stream or answered in the
    /// reply stream.
    async fn landed(
        &self,
        conn: &mut Conn,
        stream: &str,
        id: &str,
        since_ms: i64,
    ) -> redis::RedisResult<bool> {
        Ok(self.answered(id)
            || stream_mentions(conn, stream, id, since_ms).await?
            || stream_mentions(conn, &self.shared.reply_stream, id, since_ms).await?
            || self.answered(id))
    }

    /// One `XADD`; with `min_replicas`, followed by `WAIT` on the same node: fewer replicas
    /// than asked for is a `NOTREPLICATED` error (the entry was added: it is not sent again).
    async fn send_xadd(&self, conn: &mut Conn, cmd: &redis::Cmd) -> redis::RedisResult<()> {
        let Some(durability) = self.durability else {
            return cmd.query_async::<Value>(conn).await.map(drop);
        };
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone()).ignore();
        pipe.add_command(durability.wait_cmd());
        let (reached,): (i64,) = pipe.query_async(conn).await?;
        durability.check(reached)
    }

    /// Runs `XADD`, retrying what can pass (Redis restarting or loading, out of memory,
    /// failing over) until `give_up_at`; then fails with what went wrong. When the connection
    /// broke after the command was sent, a request is looked for (in the command stream, and
    /// its reply in the reply stream) before it is sent again, so a connection loss never makes
    /// it run twice; a notification is not sent again (it may or may not have been added).
    async fn xadd(&self, conn: &mut Conn, send: Send<'_>) -> Result<(), TransportError> {
        let since_ms = crate::settings::local_now_ms() - 10_000;
        let mut backoff = Backoff::new();
        // the last attempt may have been added: look before sending again
        let mut unsure = false;
        loop {
            if let (true, Some((stream, id))) = (unsure, send.request) {
                match self.landed(conn, stream, id, since_ms).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => unsure = false,
                    Err(e) if is_transient(&e) => {}
                    // cannot look (e.g. XRANGE not permitted): send again (at-least-once)
                    Err(_) => unsure = false,
                }
            }
            let last_error = if unsure {
                "the connection broke while sending and Redis did not answer again".to_owned()
            } else {
                match self.send_xadd(conn, send.cmd).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.code() == Some(crate::settings::NOT_REPLICATED) => {
                        return Err(TransportError::connection(
                            "the request was added but not replicated in time (it may still run)",
                            describe(&e),
                        ));
                    }
                    Err(e) if was_not_executed(&e) => describe(&e),
                    Err(e) if is_connection_error(&e) && send.request.is_some() => {
                        unsure = true;
                        describe(&e)
                    }
                    Err(e) if is_connection_error(&e) => {
                        return Err(command_error(
                            "xadd failed (the notification may or may not have been added)",
                            &e,
                        ));
                    }
                    Err(e) => return Err(command_error("xadd failed", &e)),
                }
            };
            let wait = backoff.next_delay();
            if Instant::now() + wait >= send.give_up_at {
                return Err(TransportError::connection(
                    "xadd failed (retried until the call's timeout)",
                    last_error,
                ));
            }
            tracing::debug!(error = %last_error, "xadd failed; retrying within the call's timeout");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Appends the call's metadata as extra entry fields (refusing the wire's own names).
fn add_metadata(xadd: &mut redis::Cmd, metadata: &Metadata) -> Result<(), TransportError> {
    for (name, value) in metadata.iter() {
        if !Metadata::is_valid_name(name) || crate::RESERVED_FIELDS.contains(&name) {
            return Err(TransportError::Config(format!(
                "metadata field {name:?} cannot travel over Redis: names are 1 to 64 of [a-z0-9-] and not one of {:?}",
                crate::RESERVED_FIELDS
            )));
        }
        xadd.arg(name).arg(value);
    }
    Ok(())
}

impl ClientTransport for RedisClientTransport {
    async fn start(&self, replies: &Replies) -> Result<(), TransportError> {
        let client = self.source.connector()?;
        let mut conn = client.commands().await?;
        let reader = client.blocking().await?;
        let shared = &self.shared;
        touch_reply_stream(&mut conn, &shared.reply_stream, shared.reply_ttl)
            .await
            .map_err(|e| command_error("creating the reply stream failed", &e))?;
        let _ = shared.replies.set(replies.clone());
        self.tasks
            .spawn(keep_reply_stream(Arc::clone(shared), conn.clone()));
        self.tasks
            .spawn(reply_loop(Arc::clone(shared), client, reader, conn.clone()));
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        Ok(())
    }

    async fn request<'a>(
        &'a self,
        call: Call<'a>,
        replies: &'a Replies,
    ) -> Result<Json, CallError> {
        let mut conn = self.connection()?;
        let request = build_request(call.service, call.method, call.params)?;
        let key = request.id.to_string();
        let envelope = to_json(&request);
        self.check_size(&envelope)?;
        let give_up_at = Instant::now() + call.timeout;
        let waiter = replies.expect(key);
        let mut xadd = self.entry(call.service, &envelope);
        xadd.arg("reply-to")
            .arg(&self.shared.reply_stream)
            .arg("timeout-ms")
            .arg(millis(call.timeout))
            .arg(REPLY_TRIM_FIELD)
            .arg("client");
        add_metadata(&mut xadd, call.metadata)?;
        let stream = command_stream(&self.key_prefix, call.service);
        self.xadd(
            &mut conn,
            Send {
                cmd: &xadd,
                request: Some((&stream, waiter.id())),
                give_up_at,
            },
        )
        .await?;
        waiter.reply().await
    }

    async fn notify<'a>(&'a self, call: Call<'a>) -> Result<(), CallError> {
        let mut conn = self.connection()?;
        let notification = to_json(&build_notification(call.service, call.method, call.params)?);
        self.check_size(&notification)?;
        let mut xadd = self.entry(call.service, &notification);
        add_metadata(&mut xadd, call.metadata)?;
        let send = Send {
            cmd: &xadd,
            request: None,
            give_up_at: Instant::now() + call.timeout,
        };
        Ok(self.xadd(&mut conn, send).await?)
    }

    async fn stop(&self) {
        self.shared.stopped.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(BLOCK * 3, self.tasks.wait()).await;
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut conn) = conn {
            let deleted: Result<redis::RedisResult<i64>, _> = tokio::time::timeout(
                Duration::from_secs(2),
                redis::cmd("DEL")
                    .arg(&self.shared.reply_stream)
                    .query_async(&mut conn),
            )
            .await;
            if !matches!(deleted, Ok(Ok(_))) {
                tracing::debug!(reply_stream = %self.shared.reply_stream, "could not delete the reply stream");
            }
        }
    }

    fn server_address(&self) -> Option<String> {
        self.source.server_address()
    }
}

impl RpcClient for RedisRpcClient {
    fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Json,
        timeout: Option<Duration>,
    ) -> impl std::future::Future<Output = Result<Json, CallError>> + std::marker::Send {
        self.client.call_value(service, method, params, timeout)
    }

    fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Json,
    ) -> impl std::future::Future<Output = Result<(), CallError>> + std::marker::Send {
        self.client.notify_value(service, method, params)
    }
}

/// The stream id just after `id` (`ms-seq` → `ms-(seq+1)`), for an exclusive `MINID`.
fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

/// Removes the replies up to `last_read` (`XTRIM MINID ~`: whole nodes only, never an unread
/// entry).
async fn trim_read(shared: &Shared, conn: &mut Conn, last_read: &str) {
    let Some(min) = next_id(last_read) else {
        return;
    };
    let trimmed: redis::RedisResult<i64> = redis::cmd("XTRIM")
        .arg(&shared.reply_stream)
        .arg("MINID")
        .arg("~")
        .arg(min)
        .query_async(conn)
        .await;
    if let Err(error) = trimmed {
        tracing::debug!(%error, reply_stream = %shared.reply_stream, "could not trim the replies read");
    }
}

/// Reads the reply stream and completes pending calls; trims what it read; survives Redis
/// outages.
async fn reply_loop(shared: Arc<Shared>, client: Connector, reader: Conn, mut conn: Conn) {
    let mut reader: Option<Conn> = Some(reader);
    let mut last_id = "0".to_owned();
    let mut untrimmed = 0usize;
    let mut backoff = Backoff::new();
    while !shared.stopped.is_cancelled() {
        let reading = match reader.as_mut() {
            Some(reading) => reading,
            None => match client.blocking().await {
                Ok(reading) => reader.insert(reading),
                Err(error) => {
                    tracing::warn!(%error, reply_stream = %shared.reply_stream, "redis reply loop reconnect failed; retrying with backoff (replies wait in the reply stream; calls time out if it lasts; check that Redis is reachable)");
                    if shared
                        .stopped
                        .run_until_cancelled(tokio::time::sleep(backoff.next_delay()))
                        .await
                        .is_none()
                    {
                        break;
                    }
                    continue;
                }
            },
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(REPLY_BATCH)
            .arg("BLOCK")
            .arg(millis(BLOCK))
            .arg("STREAMS")
            .arg(&shared.reply_stream)
            .arg(&last_id);
        let read = tokio::select! {
            read = cmd.query_async::<Value>(reading) => read,
            () = shared.stopped.cancelled() => break,
        };
        match read {
            Ok(reply) => {
                backoff.reset();
                let entries = parse_read_reply(reply);
                if entries.is_empty() && untrimmed > 0 {
                    trim_read(&shared, &mut conn, &last_id).await;
                    untrimmed = 0;
                }
                untrimmed += entries.len();
                for entry in entries {
                    last_id.clone_from(&entry.id);
                    deliver(&shared, &entry);
                }
                if untrimmed >= TRIM_EVERY {
                    trim_read(&shared, &mut conn, &last_id).await;
                    untrimmed = 0;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reply_stream = %shared.reply_stream, "redis reply loop error; retrying with backoff (replies wait in the reply stream; check the connection and the user's XREAD permission)");
                if crate::errors::reconnect_reader(&e) {
                    reader = None;
                }
                if shared
                    .stopped
                    .run_until_cancelled(tokio::time::sleep(backoff.next_delay()))
                    .await
                    .is_none()
                {
                    break;
                }
            }
        }
    }
}

/// Completes the pending call a reply answers (late and duplicate replies are dropped).
fn deliver(shared: &Shared, entry: &crate::entry::Entry) {
    let (Some(raw), Some(replies)) = (entry.field("envelope"), shared.replies.get()) else {
        return;
    };
    if let Err(error) = replies.deliver_slice(raw) {
        tracing::warn!(entry_id = %entry.id, reply_stream = %shared.reply_stream, %error,
            "redis reply parse failed: the reply is dropped and its call will time out; the server that wrote it does not speak this wire");
    }
}

/// Makes sure the reply stream exists (empty) and carries the TTL. Returns whether it existed.
async fn touch_reply_stream(conn: &mut Conn, key: &str, ttl: Duration) -> redis::RedisResult<bool> {
    let refreshed: i64 = redis::cmd("PEXPIRE")
        .arg(key)
        .arg(millis(ttl))
        .query_async(conn)
        .await?;
    if refreshed == 1 {
        return Ok(true);
    }
    // XADD with MAXLEN 0 creates the stream and trims the entry away at once: an empty stream
    // that can carry a TTL before any reply arrives.
    redis::pipe()
        .cmd("XADD")
        .arg(key)
        .arg("MAXLEN")
        .arg("0")
        .arg("*")
        .arg("type")
        .arg("rpc")
        .ignore()
        .cmd("PEXPIRE")
        .arg(key)
        .arg(millis(ttl))
        .ignore()
        .query_async::<()>(conn)
        .await?;
    Ok(false)
}

/// Refreshes the reply stream's TTL every third of it while the client runs.
async fn keep_reply_stream(shared: Arc<Shared>, mut conn: Conn) {
    let every = (shared.reply_ttl / 3).max(Duration::from_millis(100));
    while shared
        .stopped
        .run_until_cancelled(tokio::time::sleep(every))
        .await
        .is_some()
    {
        if let Err(error) =
            touch_reply_stream(&mut conn, &shared.reply_stream, shared.reply_ttl).await
        {
            tracing::debug!(%error, "could not refresh the reply stream TTL");
        }
    }
}

impl From<RedisRpcClient> for clamator_protocol::AnyClient {
    /// The same client behind the handle every transport shares.
    fn from(value: RedisRpcClient) -> Self {
        Self::new(value.client)
    }
}

#[cfg(test)]
mod tests {
    use super::next_id;

    #[test]
    fn next_ids() {
        assert_eq!(next_id("5-0").as_deref(), Some("5-1"));
        assert_eq!(next_id("5-18446744073709551615").as_deref(), Some("6-0"));
        assert_eq!(next_id("x"), None);
    }
}
