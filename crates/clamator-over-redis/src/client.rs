//! `RedisRpcClient`: XADDs requests to `<prefix>:cmds:<service>` and reads replies from its own
//! `<prefix>:replies:<instance_id>` stream.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clamator_protocol::{
    build_notification, build_request, parse_envelope_slice, to_json, unwrap_response, CallError,
    ClientLifecycle, Envelope, LifecycleState, RpcClient, TransportError, DEFAULT_CALL_TIMEOUT,
};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::Value;
use serde_json::Value as Json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{
    blocking_connection, command_connection, is_connection_error, millis, sleep_or_cancel, Backoff,
    ConnectionChoice, ConnectionSource, BLOCK, DEFAULT_MAX_ENVELOPE_BYTES,
    DEFAULT_REPLY_STREAM_TTL,
};
use crate::entry::parse_read_reply;
use crate::keys::{command_stream, reply_stream};

/// Replies read per `XREAD` at most.
const REPLY_BATCH: usize = 1024;

type Pending = Mutex<HashMap<String, oneshot::Sender<Envelope>>>;

struct Inner {
    key_prefix: String,
    instance_id: String,
    reply_stream: String,
    default_timeout: Duration,
    max_envelope_bytes: usize,
    reply_ttl: Duration,
    source: ConnectionSource,
    lifecycle: ClientLifecycle,
    conn: Mutex<Option<ConnectionManager>>,
    pending: Pending,
    stopped: CancellationToken,
    tasks: TaskTracker,
    starting: tokio::sync::Mutex<()>,
}

/// Calls services over Redis Streams, wire-compatible with `clamator-over-redis` 0.1.9.
///
/// All calls share one multiplexed connection for `XADD`s and one dedicated connection for
/// the blocking `XREAD` of replies, however many calls are in flight. Cheap to clone.
#[derive(Clone)]
pub struct RedisRpcClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisRpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRpcClient")
            .field("key_prefix", &self.inner.key_prefix)
            .field("instance_id", &self.inner.instance_id)
            .field("default_timeout", &self.inner.default_timeout)
            .field("connection", &self.inner.source)
            .field("state", &self.inner.lifecycle.state())
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
    connection: ConnectionChoice,
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
    /// The reply stream suffix (`<prefix>:replies:<instance_id>`). Default: a random UUID v4.
    /// An empty string means the default.
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

    /// Connect to this URL. Default: `$REDIS_URL`, else `redis://localhost:6379`. The client
    /// owns the connections it opens and closes them on `stop`.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.connection.url(url.into());
        self
    }

    /// Use a `redis::Client` you configured (injected); it stays yours. Giving both this and
    /// `redis_url` is an error.
    pub fn redis_client(mut self, client: redis::Client) -> Self {
        self.connection.client(client);
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

    /// Builds the client (not started).
    pub fn build(self) -> Result<RedisRpcClient, TransportError> {
        let source = self.connection.finish()?;
        Ok(RedisRpcClient {
            inner: Arc::new(Inner {
                reply_stream: reply_stream(&self.key_prefix, &self.instance_id),
                key_prefix: self.key_prefix,
                instance_id: self.instance_id,
                default_timeout: self.default_timeout,
                max_envelope_bytes: self.max_envelope_bytes,
                reply_ttl: self.reply_ttl,
                source,
                lifecycle: ClientLifecycle::default(),
                conn: Mutex::new(None),
                pending: Mutex::new(HashMap::new()),
                stopped: CancellationToken::new(),
                tasks: TaskTracker::new(),
                starting: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

impl RedisRpcClient {
    /// Starts building a client with the given key prefix (used literally).
    pub fn builder(key_prefix: impl Into<String>) -> RedisRpcClientBuilder {
        RedisRpcClientBuilder {
            key_prefix: key_prefix.into(),
            instance_id: uuid::Uuid::new_v4().to_string(),
            default_timeout: DEFAULT_CALL_TIMEOUT,
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            reply_ttl: DEFAULT_REPLY_STREAM_TTL,
            connection: ConnectionChoice::default(),
        }
    }

    /// The instance id (reply stream suffix).
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The reply stream key.
    pub fn reply_stream(&self) -> &str {
        &self.inner.reply_stream
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.inner.lifecycle.state()
    }

    /// Connects and starts reading replies. Idempotent; an error after `stop` or when Redis
    /// cannot be reached.
    pub async fn start(&self) -> Result<(), TransportError> {
        let inner = &self.inner;
        // Concurrent starts: one connects, the others wait and then see it started.
        let _starting = inner.starting.lock().await;
        if !inner.lifecycle.begin_start()? {
            return Ok(());
        }
        let client = inner.source.client()?;
        let mut conn = command_connection(&client).await?;
        let reader = blocking_connection(&client).await?;
        touch_reply_stream(&mut conn, &inner.reply_stream, inner.reply_ttl)
            .await
            .map_err(|e| TransportError::connection("creating the reply stream failed", e))?;
        inner
            .tasks
            .spawn(keep_reply_stream(Arc::clone(inner), conn.clone()));
        *inner.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        inner
            .tasks
            .spawn(reply_loop(Arc::clone(inner), client, reader));
        inner.lifecycle.finish_start();
        Ok(())
    }

    /// Stops: pending calls fail with "transport stopped", the reply stream is deleted (best
    /// effort) and the connections are closed. Idempotent.
    pub async fn stop(&self) {
        let inner = &self.inner;
        if inner.lifecycle.mark_stopped() != LifecycleState::Started {
            return;
        }
        inner.stopped.cancel();
        inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        inner.tasks.close();
        let _ = tokio::time::timeout(BLOCK * 3, inner.tasks.wait()).await;
        let conn = inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut conn) = conn {
            let deleted: Result<redis::RedisResult<i64>, _> = tokio::time::timeout(
                Duration::from_secs(2),
                redis::cmd("DEL")
                    .arg(&inner.reply_stream)
                    .query_async(&mut conn),
            )
            .await;
            if !matches!(deleted, Ok(Ok(_))) {
                tracing::debug!(reply_stream = %inner.reply_stream, "could not delete the reply stream");
            }
        }
    }

    fn connection(&self) -> Result<ConnectionManager, TransportError> {
        let state = self.inner.lifecycle.state();
        match self
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(conn) if state == LifecycleState::Started => Ok(conn.clone()),
            _ => Err(TransportError::NotStarted { state }),
        }
    }

    fn forget(&self, key: &str) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// Removes a pending call when its future is dropped or finishes.
struct PendingGuard<'a> {
    client: &'a RedisRpcClient,
    key: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.client.forget(&self.key);
    }
}

impl RpcClient for RedisRpcClient {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Json,
        timeout: Option<Duration>,
    ) -> Result<Json, CallError> {
        let mut conn = self.connection()?;
        let request = build_request(service, method, params)?;
        let key = request.id.to_string();
        let envelope = to_json(&request);
        if envelope.len() > self.inner.max_envelope_bytes {
            return Err(TransportError::TooLarge {
                size: envelope.len(),
                limit: self.inner.max_envelope_bytes,
            }
            .into());
        }
        let timeout = timeout.unwrap_or(self.inner.default_timeout);
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), tx);
        let _guard = PendingGuard { client: self, key };
        let stream = command_stream(&self.inner.key_prefix, service);
        let exchange = async {
            let added: redis::RedisResult<Value> = redis::cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("type")
                .arg("rpc")
                .arg("envelope")
                .arg(envelope)
                .arg("reply-to")
                .arg(&self.inner.reply_stream)
                .arg("timeout-ms")
                .arg(millis(timeout))
                .query_async(&mut conn)
                .await;
            added.map_err(|e| TransportError::connection("xadd failed", e))?;
            rx.await.map_err(|_| TransportError::Stopped)
        };
        // The timer covers the XADD too, so a call's timeout fires even while Redis is
        // unreachable.
        let reply = tokio::select! {
            reply = tokio::time::timeout(timeout, exchange) => {
                reply.map_err(|_| TransportError::Timeout)??
            }
            () = self.inner.stopped.cancelled() => return Err(TransportError::Stopped.into()),
        };
        unwrap_response(reply)
    }

    async fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Json,
    ) -> Result<(), CallError> {
        let mut conn = self.connection()?;
        let notification = to_json(&build_notification(service, method, params)?);
        if notification.len() > self.inner.max_envelope_bytes {
            return Err(TransportError::TooLarge {
                size: notification.len(),
                limit: self.inner.max_envelope_bytes,
            }
            .into());
        }
        let added: redis::RedisResult<Value> = redis::cmd("XADD")
            .arg(command_stream(&self.inner.key_prefix, service))
            .arg("*")
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(notification)
            .query_async(&mut conn)
            .await;
        added.map_err(|e| TransportError::connection("xadd failed", e))?;
        Ok(())
    }
}

/// Reads the reply stream and completes pending calls; survives Redis outages.
async fn reply_loop(inner: Arc<Inner>, client: redis::Client, reader: MultiplexedConnection) {
    let mut reader: Option<MultiplexedConnection> = Some(reader);
    let mut last_id = "0".to_owned();
    let mut backoff = Backoff::new();
    while !inner.stopped.is_cancelled() {
        let conn = match reader.as_mut() {
            Some(conn) => conn,
            None => match blocking_connection(&client).await {
                Ok(conn) => reader.insert(conn),
                Err(error) => {
                    tracing::warn!(%error, "redis reply loop reconnect failed");
                    if !sleep_or_cancel(backoff.next_delay(), &inner.stopped).await {
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
            .arg(&inner.reply_stream)
            .arg(&last_id);
        let read = tokio::select! {
            read = cmd.query_async::<Value>(conn) => read,
            () = inner.stopped.cancelled() => break,
        };
        match read {
            Ok(reply) => {
                backoff.reset();
                for entry in parse_read_reply(&reply) {
                    last_id.clone_from(&entry.id);
                    let Some(raw) = entry.field("envelope") else {
                        continue;
                    };
                    let envelope = match parse_envelope_slice(raw) {
                        Ok(envelope) => envelope,
                        Err(error) => {
                            tracing::warn!(entry_id = %entry.id, %error, "redis reply parse failed");
                            continue;
                        }
                    };
                    let Envelope::Response(response) = &envelope else {
                        continue;
                    };
                    let key = match &response.id {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let waiter = inner
                        .pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&key);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(envelope);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "redis reply loop error");
                if is_connection_error(&e) {
                    reader = None;
                }
                if !sleep_or_cancel(backoff.next_delay(), &inner.stopped).await {
                    break;
                }
            }
        }
    }
}

/// Makes sure the reply stream exists (empty) and carries the TTL. Returns whether it existed.
async fn touch_reply_stream(
    conn: &mut ConnectionManager,
    key: &str,
    ttl: Duration,
) -> redis::RedisResult<bool> {
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
async fn keep_reply_stream(inner: Arc<Inner>, mut conn: ConnectionManager) {
    let every = (inner.reply_ttl / 3).max(Duration::from_millis(100));
    while sleep_or_cancel(every, &inner.stopped).await {
        if let Err(error) =
            touch_reply_stream(&mut conn, &inner.reply_stream, inner.reply_ttl).await
        {
            tracing::debug!(%error, "could not refresh the reply stream TTL");
        }
    }
}
