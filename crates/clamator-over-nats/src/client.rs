//! `NatsRpcClient`: publishes requests to `<prefix>.cmds.<service>` through JetStream (each
//! one stored before the call counts as sent) and receives replies over core NATS on its own
//! subject `<prefix>.replies.<client-id>`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::header::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::context::{GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use clamator_protocol::middleware::ClientLayers;
use clamator_protocol::{
    build_notification, build_request, to_json, Call, CallError, Client, ClientTransport,
    LifecycleState, Metadata, Replies, RpcClient, TransportError, DEFAULT_CALL_TIMEOUT,
};
use futures::{FutureExt, StreamExt};
use serde_json::Value as Json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::names::{
    command_stream, command_subject, is_metadata_header, is_valid_client_id, reply_subject,
    HEADER_REPLY_TO, HEADER_TIMEOUT_MS,
};
use crate::wire::{connection_methods, Wire};
use clamator_protocol::transport::redact_url;
use clamator_protocol::transport::Backoff;

/// How long one publish waits for JetStream's acknowledgement before it is sent again (with
/// the same `Nats-Msg-Id`, so a stored first attempt is not stored twice).
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the client looks whether its connection was made again (async-nats counts its
/// connects; a change means the reply subscription had a gap).
const RECONNECT_POLL: Duration = Duration::from_millis(50);
/// How long a call waits for its reply after its client's connection was made again before it
/// sends its request again: a server whose own connection broke too (a NATS restart) confirms
/// the replies it could not deliver, which usually arrive within this, and the request then
/// does not run twice. A reply lost while only the client was cut off costs this much more.
const RESEND_AFTER_RECONNECT: Duration = Duration::from_secs(1);

struct Connected {
    client: async_nats::Client,
    js: jetstream::Context,
    /// How many times the connection has been made (async-nats's count, seen every
    /// [`RECONNECT_POLL`]): when it grows, every call waiting for a reply sends its request
    /// again (see [`NatsClientTransport::request`]).
    connects: watch::Receiver<u64>,
}

impl Connected {
    fn connects(&self) -> u64 {
        self.client.statistics().connects.load(Ordering::Relaxed)
    }
}

/// A request JetStream stored.
struct Stored {
    /// The connection it was stored on, when that is known to be one whose reply subscription
    /// was in place before it (so a reply to it is lost only if that connection breaks): the
    /// attempt that stored it (not a duplicate of an earlier one) went out on a connection
    /// that was up when it was sent and still is, or, sent while disconnected, on the next
    /// one, which subscribed again before sending it.
    stored_on: Option<u64>,
}

/// The NATS JetStream [`ClientTransport`] that [`NatsRpcClient`] is built on.
pub struct NatsClientTransport {
    wire: Wire,
    client_id: String,
    reply_subject: String,
    connected: Mutex<Option<Arc<Connected>>>,
    tasks: TaskTracker,
    stopped: CancellationToken,
}

impl fmt::Debug for NatsClientTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsClientTransport")
            .field("connection", &self.wire)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Drop for NatsClientTransport {
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

/// Calls services over NATS JetStream.
///
/// Every request is published to its service's work-queue stream and the call counts as
/// sent only once JetStream has stored it (retried with the same `Nats-Msg-Id` until then, so
/// it is stored once); replies come back over core NATS to the client's own subject. A call
/// to a service no server has ever served on this NATS fails at once, naming the stream that
/// is missing.
///
/// Cheap to clone; clones share one client and one connection.
#[derive(Clone)]
pub struct NatsRpcClient {
    client: Client<NatsClientTransport>,
}

impl fmt::Debug for NatsRpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsRpcClient")
            .field("transport", self.client.transport())
            .field("state", &self.client.state())
            .finish()
    }
}

/// Builds a [`NatsRpcClient`]; see [`NatsRpcClient::builder`].
#[must_use]
pub struct NatsRpcClientBuilder {
    wire: Wire,
    client_id: String,
    default_timeout: Duration,
    layers: ClientLayers,
}

impl fmt::Debug for NatsRpcClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsRpcClientBuilder")
            .field("connection", &self.wire)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl NatsRpcClientBuilder {
    connection_methods!();

    /// The reply subject's last token (`<prefix>.replies.<client-id>`): 1 to 128 ASCII
    /// letters, digits, `_` or `-`. Default: a random UUID v4. Two running clients must not
    /// share one.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() {
            self.client_id = id;
        }
        self
    }

    /// The timeout of calls made without one. Default: 30 s.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Middleware around every call; metadata they add travels as message headers.
    pub fn layers(mut self, layers: ClientLayers) -> Self {
        self.layers = layers;
        self
    }

    /// Builds the client (not started). Fails on a setting that cannot work, naming it.
    pub fn build(self) -> Result<NatsRpcClient, TransportError> {
        self.wire.check()?;
        if !is_valid_client_id(&self.client_id) {
            return Err(TransportError::Config(format!(
                "instance id {:?} is not a subject token: 1 to 128 ASCII letters, digits, '_' or '-'",
                self.client_id
            )));
        }
        let transport = NatsClientTransport {
            reply_subject: reply_subject(&self.wire.prefix, &self.client_id),
            wire: self.wire,
            client_id: self.client_id,
            connected: Mutex::new(None),
            tasks: TaskTracker::new(),
            stopped: CancellationToken::new(),
        };
        Ok(NatsRpcClient {
            client: Client::builder(transport)
                .default_timeout(self.default_timeout)
                .layers(self.layers)
                .build()?,
        })
    }
}

impl NatsRpcClient {
    /// Starts building a client (NATS at `nats://127.0.0.1:4222`, prefix `clamator`).
    pub fn builder() -> NatsRpcClientBuilder {
        NatsRpcClientBuilder {
            wire: Wire::default(),
            client_id: uuid::Uuid::new_v4().to_string(),
            default_timeout: DEFAULT_CALL_TIMEOUT,
            layers: ClientLayers::new(),
        }
    }

    /// The generic client it is built on.
    pub fn client(&self) -> &Client<NatsClientTransport> {
        &self.client
    }

    /// The subject replies come to.
    pub fn reply_subject(&self) -> &str {
        &self.client.transport().reply_subject
    }

    /// The lifecycle state.
    pub fn state(&self) -> LifecycleState {
        self.client.state()
    }

    /// Connects and subscribes to the reply subject. Idempotent; an error when NATS cannot be
    /// reached (then `start` can be called again) or after `stop`.
    pub async fn start(&self) -> Result<(), TransportError> {
        self.client.start().await
    }

    /// Stops: pending calls fail with "transport stopped", the subscription ends and the
    /// connection is flushed and closed. Idempotent.
    pub async fn stop(&self) {
        self.client.stop().await;
    }
}

impl RpcClient for NatsRpcClient {
    fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Json,
        timeout: Option<Duration>,
    ) -> impl std::future::Future<Output = Result<Json, CallError>> + Send {
        self.client.call_value(service, method, params, timeout)
    }

    fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Json,
    ) -> impl std::future::Future<Output = Result<(), CallError>> + Send {
        self.client.notify_value(service, method, params)
    }
}

/// The headers of a call: metadata (checked names), then the transport's own.
pub(crate) fn call_headers(metadata: &Metadata) -> Result<HeaderMap, TransportError> {
    let mut headers = HeaderMap::new();
    for (name, value) in metadata.iter() {
        if !is_metadata_header(name) {
            return Err(TransportError::Config(format!(
                "metadata field {name:?} is reserved by the NATS transport (names starting with nats- or clamator-)"
            )));
        }
        if value.contains(['\r', '\n']) {
            return Err(TransportError::Config(format!(
                "metadata field {name:?} has a line break in its value (NATS headers cannot carry one)"
            )));
        }
        headers.insert(name, value);
    }
    Ok(headers)
}

impl NatsClientTransport {
    fn connected(&self) -> Result<Arc<Connected>, TransportError> {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(TransportError::NotStarted {
                state: LifecycleState::Stopped,
            })
    }

    fn check_size(&self, c: &Connected, envelope: &str) -> Result<(), TransportError> {
        let limit = self.wire.max_envelope_bytes.min(
            c.client
                .server_info()
                .max_payload
                .saturating_sub(4096)
                .max(1),
        );
        if envelope.len() > limit {
            return Err(TransportError::TooLarge {
                size: envelope.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Publishes to the service's stream and waits until JetStream stored it, sending it
    /// again (same `Nats-Msg-Id`) on a timeout or a lost connection until `until`.
    async fn publish(
        &self,
        c: &Connected,
        service: &str,
        msg_id: &str,
        payload: bytes::Bytes,
        headers: &HeaderMap,
        until: Instant,
    ) -> Result<Stored, TransportError> {
        let subject = command_subject(&self.wire.prefix, service);
        let mut backoff = Backoff::new();
        let mut checked_stream = false;
        loop {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(msg_id);
            let offline = c.client.connection_state() != async_nats::connection::State::Connected;
            let connects = c.connects();
            let outcome = match c.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            let error = match outcome {
                Ok(ack) => {
                    let on = if offline { connects + 1 } else { connects };
                    return Ok(Stored {
                        stored_on: (!ack.duplicate && c.connects() == on).then_some(on),
                    });
                }
                Err(e) => e,
            };
            match error.kind() {
                PublishErrorKind::MaxPayloadExceeded => {
                    return Err(TransportError::rejected("nats publish refused", error));
                }
                PublishErrorKind::StreamNotFound if !checked_stream => {
                    // Nobody answered the publish: either no server ever created the stream
                    // (say so now) or it is electing a leader (retry).
                    checked_stream = true;
                    let stream = command_stream(&self.wire.prefix, service);
                    if let Err(e) = c.js.get_stream(&stream).await {
                        if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
                        {
                            return Err(TransportError::rejected(
                                "nats publish failed",
                                format!(
                                    "no stream {stream} for subject {subject}: no server has served service {service:?} on this NATS with prefix {:?} (servers create the stream when they start)",
                                    self.wire.prefix
                                ),
                            ));
                        }
                    }
                }
                PublishErrorKind::Other
                | PublishErrorKind::WrongLastMessageId
                | PublishErrorKind::WrongLastSequence => {
                    return Err(TransportError::rejected("nats publish refused", error));
                }
                _ => {}
            }
            if Instant::now() + backoff.peek() >= until || self.stopped.is_cancelled() {
                return Err(TransportError::connection(
                    "nats publish failed",
                    format!("{error} (subject {subject}; retried until the call's timeout)"),
                ));
            }
            tracing::debug!(%subject, %error, "publish not acknowledged; sending it again with the same Nats-Msg-Id");
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

impl ClientTransport for NatsClientTransport {
    async fn start(&self, replies: &Replies) -> Result<(), TransportError> {
        let client = self
            .wire
            .connection
            .connect(&format!("clamator-client-{}", self.client_id))
            .await?;
        let mut sub = client
            .subscribe(self.reply_subject.clone())
            .await
            .map_err(|e| TransportError::connection("nats subscribe failed", e))?;
        // The subscription is registered with the server before any request goes out.
        client
            .flush()
            .await
            .map_err(|e| TransportError::connection("nats flush failed", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_ACK_TIMEOUT)
            .build(client.clone());
        let (replies, stopped) = (replies.clone(), self.stopped.clone());
        let subject = self.reply_subject.clone();
        let confirm = client.clone();
        self.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = sub.next() => m,
                    () = stopped.cancelled() => break,
                };
                let Some(message) = message else { break };
                // A reply sent after the server's connection came back asks to be confirmed
                // (it is sent again until it is): confirm every such reply, duplicates too.
                if let Some(confirm_to) = message.reply.clone() {
                    if let Err(error) = confirm.publish(confirm_to, bytes::Bytes::new()).await {
                        tracing::debug!(%subject, %error, "reply confirmation not sent");
                    }
                }
                match replies.deliver_slice(&message.payload) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(%subject, "reply for no waiting call (late, duplicate or unknown); dropped")
                    }
                    Err(error) => {
                        tracing::warn!(%subject, %error, "unparseable reply dropped")
                    }
                }
            }
            let _ = sub.unsubscribe().await;
        });
        let (statistics, stopped) = (client.statistics(), self.stopped.clone());
        let (seen, connects) = watch::channel(statistics.connects.load(Ordering::Relaxed));
        self.tasks.spawn(async move {
            while stopped
                .run_until_cancelled(tokio::time::sleep(RECONNECT_POLL))
                .await
                .is_some()
            {
                seen.send_if_modified(|n| {
                    let now = statistics.connects.load(Ordering::Relaxed);
                    std::mem::replace(n, now) != now
                });
            }
        });
        *self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(Connected {
            client,
            js,
            connects,
        }));
        tracing::debug!(urls = ?self.wire.connection.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(), reply_subject = %self.reply_subject, "nats client started");
        Ok(())
    }

    async fn request<'a>(
        &'a self,
        call: Call<'a>,
        replies: &'a Replies,
    ) -> Result<Json, CallError> {
        let c = self.connected()?;
        let until = Instant::now() + call.timeout;
        let request = build_request(call.service, call.method, call.params)?;
        let envelope = to_json(&request);
        self.check_size(&c, &envelope)?;
        let mut headers = call_headers(call.metadata)?;
        headers.insert(HEADER_REPLY_TO, self.reply_subject.as_str());
        headers.insert(
            HEADER_TIMEOUT_MS,
            call.timeout.as_millis().max(1).to_string().as_str(),
        );
        let id = request.id.to_string();
        let waiter = replies.expect(id.clone());
        let payload = bytes::Bytes::from(envelope);
        let mut connects = c.connects.clone();
        // The connection the request is known to have been stored on with the reply
        // subscription in place; a later one means a reply may have been missed.
        let mut baseline = c.connects();
        let stored = self
            .publish(&c, call.service, &id, payload.clone(), &headers, until)
            .await?;
        baseline = stored.stored_on.unwrap_or(baseline);
        // A reply travels once, over core NATS: one published while this client's connection
        // was down (or lost in a NATS server that died after taking it) is gone, although the
        // request was acked. So after each reconnect the request is stored again, under a new
        // `Nats-Msg-Id` (the first is still in the duplicate window) and with the time left as
        // its timeout, and runs again (at least once); the first reply of either copy answers
        // the call, later ones are dropped.
        let reply = waiter.reply();
        tokio::pin!(reply);
        let resend = futures::future::Fuse::terminated();
        tokio::pin!(resend);
        // Set when the connection was made again: the request is sent again at this time
        // unless the reply came first.
        let mut resend_at: Option<tokio::time::Instant> = None;
        let mut copies = 0u32;
        let mut watching = true;
        loop {
            tokio::select! {
                out = &mut reply => return out,
                now = connects.wait_for(|&n| n > baseline), if watching => {
                    let Ok(now) = now.map(|n| *n) else {
                        watching = false;
                        continue;
                    };
                    baseline = now;
                    resend_at.get_or_insert_with(|| tokio::time::Instant::now() + RESEND_AFTER_RECONNECT);
                }
                () = tokio::time::sleep_until(resend_at.unwrap_or_else(tokio::time::Instant::now)), if resend_at.is_some() => {
                    resend_at = None;
                    copies += 1;
                    let left = until.saturating_duration_since(Instant::now());
                    let mut headers = headers.clone();
                    headers.insert(HEADER_TIMEOUT_MS, left.as_millis().max(1).to_string().as_str());
                    tracing::debug!(id = %id, copy = copies, "no reply since the connection was made again: request sent again");
                    let msg_id = format!("{id}.{copies}");
                    let (c, payload) = (Arc::clone(&c), payload.clone());
                    let publish = async move {
                        self.publish(&c, call.service, &msg_id, payload, &headers, until).await
                    };
                    resend.set(publish.boxed().fuse());
                }
                sent = &mut resend => match sent {
                    Ok(stored) => baseline = stored.stored_on.unwrap_or(baseline).max(baseline),
                    // The first copy may still be answered; the call's timeout bounds the wait.
                    Err(error) => tracing::debug!(id = %id, %error, "request not sent again"),
                },
            }
        }
    }

    async fn notify<'a>(&'a self, call: Call<'a>) -> Result<(), CallError> {
        let c = self.connected()?;
        let notification = build_notification(call.service, call.method, call.params)?;
        let envelope = to_json(&notification);
        self.check_size(&c, &envelope)?;
        let headers = call_headers(call.metadata)?;
        let msg_id = uuid::Uuid::new_v4().to_string();
        let until = Instant::now() + call.timeout;
        self.publish(&c, call.service, &msg_id, envelope.into(), &headers, until)
            .await?;
        Ok(())
    }

    async fn stop(&self) {
        self.stopped.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let connected = self
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(c) = connected {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.client.flush()).await;
            let _ = c.client.drain().await;
        }
    }

    fn server_address(&self) -> Option<String> {
        self.wire.connection.urls.first().map(|u| redact_url(u))
    }
}

impl From<NatsRpcClient> for clamator_protocol::AnyClient {
    /// The same client behind the handle every transport shares.
    fn from(value: NatsRpcClient) -> Self {
        Self::new(value.client)
    }
}
