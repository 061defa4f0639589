//! One delivered request: the facts of this wire (headers, stream time, delivery count) handed
//! to the shared pipeline, then the reply and the ack; dead letters; and recreating the
//! service's stream and consumer when they are gone.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::header::HeaderMap;
use async_nats::jetstream::stream::{DeleteMessageErrorKind, RawMessageErrorKind};
use async_nats::jetstream::{self, message::AckKind};
use async_nats::{client::Request, RequestErrorKind};
use clamator_protocol::transport::pipeline::{
    self, Admission, Deadline, Finished, Limits, Received, Reply,
};
use clamator_protocol::transport::{Backoff, Slot, Slots};
use clamator_protocol::{to_json, Intake, Metadata, RpcService};

use super::Settings;
use crate::names::{
    command_subject, dead_letter_subject, is_metadata_header, is_reply_subject_of,
    HEADER_DEAD_DELIVERIES, HEADER_DEAD_REASON, HEADER_DEAD_SEQUENCE, HEADER_MSG_ID,
    HEADER_REPLY_TO, HEADER_TIMEOUT_MS,
};

/// How long the server retries a dead letter's publish before leaving the request to be
/// delivered again.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply is retried when its request carries no deadline.
const RETRY_WITHOUT_DEADLINE: Duration = Duration::from_secs(30);
/// How long a confirmed reply waits for its client's confirmation before sending it again.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests stored before this server's connection was made (plus this margin) get confirmed
/// replies: see [`ServiceCtx::steady`]. The stored time is the NATS server's clock, the
/// connection time this machine's, so on hosts whose clocks differ by more than a few
/// milliseconds the rule is as exact as their skew. No margin: every request it adds costs a
/// confirmation, and a confirmed ack holds its handler slot until JetStream answers it (at a
/// server's start that stalled the first second of a benchmark: 1 s of margin halved its
/// throughput, 100 ms still did).
const CONFIRM_MARGIN_MS: i64 = 0;

/// Per-service state shared by its pull loop and handler tasks.
pub(super) struct ServiceCtx {
    pub(super) service: RpcService,
    pub(super) settings: Arc<Settings>,
    pub(super) client: async_nats::Client,
    pub(super) js: jetstream::Context,
    /// `<prefix>_cmds_<service>`.
    pub(super) stream: String,
    /// The durable consumer's name.
    pub(super) consumer_name: String,
    pub(super) intake: Intake,
    pub(super) slots: Slots,
    /// How often running handlers send in-progress acks (a third of the consumer's ack wait).
    pub(super) progress_every: Duration,
    /// The requests this server is handling now, by stream sequence: the progress ticker sends
    /// their in-progress acks (one task per service, not a timer per request), and a second
    /// delivery of one of them is not run again (the NATS server re-sends a request it has not
    /// seen acked within the ack wait; after a restart, the in-progress acks of the outage are
    /// missing).
    pub(super) running: Mutex<HashMap<u64, Running>>,
    /// The largest reply sent: `max_envelope_bytes`, or the NATS server's `max_payload` if
    /// lower (read again after each reconnect, [`ServiceCtx::refresh_limits`]).
    pub(super) max_reply_bytes: AtomicUsize,
    /// A check for requests acked but not deleted is under way.
    pub(super) cleaning: std::sync::atomic::AtomicBool,
    /// The connection count last seen, and when (Unix ms, this machine's clock) it was seen
    /// to change (or the server started).
    pub(super) seen_connects: std::sync::atomic::AtomicU64,
    pub(super) connected_at_ms: std::sync::atomic::AtomicI64,
}

/// A request being handled: where its in-progress acks go, and when the last one went.
pub(super) struct Running {
    ack_subject: async_nats::Subject,
    last_progress: Instant,
    /// Deliveries so far (for [`super::status`]).
    pub(super) deliveries: u64,
    /// When it arrived here.
    pub(super) since: Instant,
}

/// A stream sequence in [`ServiceCtx::running`] until dropped.
struct RunningGuard<'a> {
    ctx: &'a ServiceCtx,
    sequence: u64,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.ctx
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.sequence);
    }
}

/// What the message's ack subject says about it.
#[derive(Debug, Clone, Copy)]
struct Delivered {
    /// Deliveries so far, this one included.
    count: u64,
    /// Its sequence in the command stream (0: unknown).
    sequence: u64,
    /// When the stream stored it, Unix ms on the NATS server's clock.
    stored_ms: Option<i64>,
}

impl Delivered {
    fn of(message: &jetstream::Message) -> Self {
        match message.info() {
            Ok(i) => Self {
                count: i.delivered.max(1) as u64,
                sequence: i.stream_sequence,
                stored_ms: i64::try_from(i.published.unix_timestamp_nanos() / 1_000_000).ok(),
            },
            Err(_) => Self {
                count: 1,
                sequence: 0,
                stored_ms: None,
            },
        }
    }
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// Every header but `Nats-*` and `Clamator-*`, as metadata.
fn metadata(headers: Option<&HeaderMap>) -> Metadata {
    let mut m = Metadata::new();
    for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
        let name: &str = name.as_ref();
        if !is_metadata_header(name) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if Metadata::is_valid_name(&lower) {
            if let Some(v) = values.first() {
                m.insert(lower, v.as_str());
            }
        }
    }
    m
}

pub(super) fn local_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ServiceCtx {
    fn name(&self) -> &str {
        self.service.name()
    }

    /// How many times this server's connection has been established (a reconnect changes
    /// it); a change is noted with its time ([`ServiceCtx::steady`]).
    pub(super) fn connects(&self) -> u64 {
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        if self.seen_connects.swap(connects, Ordering::Relaxed) != connects {
            self.connected_at_ms
                .store(local_now_ms(), Ordering::Relaxed);
        }
        connects
    }

    /// Whether a plain reply and ack will do for a request the stream stored at `stored_ms`
    /// and this server received when its connection count was `connects`: the connection
    /// stayed up since, and the request was stored after this server's connection (or last
    /// reconnect) was made, with a margin for clocks. A request stored before may come
    /// from a client that lost its connection with this server's (a NATS server restart) and
    /// has not subscribed again yet: a plain reply published before it does is lost. Such
    /// replies, and their acks, are confirmed.
    fn steady(&self, connects: u64, stored_ms: Option<i64>) -> bool {
        self.connects() == connects
            && self.client.connection_state() == async_nats::connection::State::Connected
            && stored_ms.is_some_and(|stored| {
                stored > self.connected_at_ms.load(Ordering::Relaxed) + CONFIRM_MARGIN_MS
            })
    }

    /// Marks `message` (stream `sequence`) as running here; `None` when it already is (a
    /// second delivery). A message without a sequence or ack subject (not expected) is not
    /// tracked.
    fn enter(
        &self,
        delivered: Delivered,
        message: &jetstream::Message,
    ) -> Option<RunningGuard<'_>> {
        let sequence = delivered.sequence;
        let guard = RunningGuard {
            ctx: self,
            sequence,
        };
        let Some(ack_subject) = message.reply.clone().filter(|_| sequence != 0) else {
            return Some(guard);
        };
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        match running.entry(sequence) {
            std::collections::hash_map::Entry::Occupied(_) => None,
            std::collections::hash_map::Entry::Vacant(v) => {
                let now = Instant::now();
                v.insert(Running {
                    ack_subject,
                    last_progress: now,
                    deliveries: delivered.count,
                    since: now,
                });
                Some(guard)
            }
        }
    }

    /// Reads the NATS server's `max_payload` again (at start and after a reconnect).
    pub(super) fn refresh_limits(&self) {
        let limit = match self.client.server_info().max_payload {
            0 => self.settings.wire.max_envelope_bytes,
            n => self.settings.wire.max_envelope_bytes.min(n),
        };
        self.max_reply_bytes.store(limit, Ordering::Relaxed);
    }

    /// Sends the in-progress acks of the requests running longer than `progress_every` since
    /// their last one, every half of it, until `stop`: JetStream does not deliver a
    /// long-running request to another server.
    pub(super) async fn progress(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let tick = (self.progress_every / 2).max(Duration::from_millis(25));
        while stop
            .run_until_cancelled(tokio::time::sleep(tick))
            .await
            .is_some()
        {
            let due: Vec<async_nats::Subject> = {
                let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                running
                    .values_mut()
                    .filter(|r| now.duration_since(r.last_progress) >= self.progress_every)
                    .map(|r| {
                        r.last_progress = now;
                        r.ack_subject.clone()
                    })
                    .collect()
            };
            for subject in due {
                let sent = self
                    .client
                    .publish(subject, bytes::Bytes::from_static(b"+WPI"))
                    .await;
                if let Err(error) = sent {
                    tracing::debug!(service = self.name(), %error, "in-progress ack not sent");
                }
            }
        }
    }

    /// Runs a delivered request on the server's tracker, holding `slot`. Abandoned at
    /// shutdown, it is given back (nak) for another server.
    pub(super) fn spawn(self: &Arc<Self>, message: jetstream::Message, slot: Slot) {
        let ctx = Arc::clone(self);
        let (message, abandoned) = (Arc::new(message), Arc::clone(self));
        let held = Arc::clone(&message);
        let work = async move {
            ctx.handle(&held).await;
            drop(slot);
        };
        self.intake.spawn(work, move || async move {
            let _ = message.ack_with(AckKind::Nak(None)).await;
            tracing::debug!(
                service = abandoned.name(),
                "handler abandoned at shutdown; its request was given back (nak)"
            );
        });
    }

    /// The reply subject: `Ok(None)` when absent, an error when it is not a reply subject of
    /// this prefix (a server publishes nowhere else).
    fn reply_to(&self, message: &jetstream::Message) -> Result<Option<String>, String> {
        let prefix = &self.settings.wire.prefix;
        match header(message.headers.as_ref(), HEADER_REPLY_TO).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(to) if is_reply_subject_of(prefix, to) => Ok(Some(to.to_owned())),
            Some(to) => {
                let shown: String = to.chars().take(80).collect();
                Err(format!(
                    "{HEADER_REPLY_TO} {shown:?} is not a reply subject of this prefix ({prefix}.replies.<client-id>)"
                ))
            }
        }
    }

    /// One delivered request: dead-letter it, or through the shared pipeline; then reply and
    /// ack, in that order.
    async fn handle(&self, message: &jetstream::Message) {
        let delivered = Delivered::of(message);
        let Some(_running) = self.enter(delivered, message) else {
            // Its first delivery is still being handled here: that one replies and acks (an
            // ack by any delivery acks the request).
            tracing::debug!(
                service = self.name(),
                sequence = delivered.sequence,
                deliveries = delivered.count,
                "a request this server is running was delivered again; not run twice"
            );
            return;
        };
        if delivered.count > 1 {
            self.intake.counters().redelivered(self.name());
        }
        if delivered.count > u64::from(self.settings.max_deliveries) {
            Box::pin(self.dead_letter(message, delivered)).await;
            return;
        }
        let connects = self.connects();
        let headers = message.headers.as_ref();
        let deadline = delivered.stored_ms.map_or(Deadline::None, |stored_ms| {
            let timeout = header(headers, HEADER_TIMEOUT_MS).map(str::as_bytes);
            Deadline::from_broker_clock(stored_ms, timeout, local_now_ms())
        });
        let sequence = delivered.sequence.to_string();
        let received = Received {
            body: Some(&message.payload),
            reply_to: self.reply_to(message),
            deadline,
            message_id: &sequence,
        };
        let limits = Limits {
            max_request_bytes: self.settings.wire.max_envelope_bytes,
            max_reply_bytes: self.max_reply_bytes.load(Ordering::Relaxed),
        };
        let (finished, deadline): (Finished<String>, _) =
            match self.intake.admit(&self.service, received, limits) {
                Admission::Done(finished) => (finished, deadline.at()),
                Admission::Run(admitted) => {
                    let deadline = admitted.deadline();
                    let run = admitted.run(metadata(headers), sequence).await;
                    (run, deadline)
                }
            };
        if self.steady(connects, delivered.stored_ms) {
            // The usual case, with nothing in the way: reply (at most once, like any core NATS
            // message), then ack, on one connection.
            if let Some(Reply { to, envelope }) = finished.reply {
                if let Err(error) = self.client.publish(to, envelope.into()).await {
                    tracing::warn!(service = self.name(), %error, "reply not sent; the request is left to be delivered again");
                    return;
                }
            }
            if let Err(error) = message.ack().await {
                tracing::debug!(service = self.name(), %error, "ack not sent; the request will be delivered again after the ack wait");
            }
            return;
        }
        let until = deadline.unwrap_or_else(|| Instant::now() + RETRY_WITHOUT_DEADLINE);
        Box::pin(self.confirmed(message, finished.reply, until)).await;
    }

    /// Reply and ack of a request handled across a reconnect, both confirmed.
    async fn confirmed(
        &self,
        message: &jetstream::Message,
        reply: Option<Reply<String>>,
        until: Instant,
    ) {
        if let Some(reply) = reply {
            self.confirm_reply(reply, until).await;
        }
        self.confirm_ack(message).await;
    }

    /// Sends a reply after a reconnect since its request arrived: the handler may have finished
    /// while NATS was down, and a buffered reply flushed before the client subscribed again
    /// would be lost. So it is sent as a request that the client answers, again with backoff
    /// while nobody listens on its subject (the client is reconnecting), until the caller's
    /// deadline.
    async fn confirm_reply(&self, reply: Reply<String>, until: Instant) {
        let Reply { to, envelope } = reply;
        let payload = bytes::Bytes::from(envelope);
        let mut backoff = Backoff::new();
        loop {
            let request = Request::new()
                .payload(payload.clone())
                .timeout(Some(CONFIRM_TIMEOUT));
            let error = match self.client.send_request(to.clone(), request).await {
                Ok(_) => return,
                Err(e) => e,
            };
            if Instant::now() + backoff.peek() >= until {
                tracing::warn!(service = self.name(), reply_to = %to, %error,
                    "the reply of a request that finished while the connection to NATS was down could not be delivered before its caller stopped waiting; acked anyway");
                return;
            }
            if !matches!(
                error.kind(),
                RequestErrorKind::NoResponders | RequestErrorKind::TimedOut
            ) {
                tracing::debug!(service = self.name(), %error, "confirmed reply failed; retrying");
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Acks a request after a reconnect since it arrived: confirmed (an ack sent while the NATS
    /// server is still restoring its streams is dropped), sent again until JetStream answers it
    /// or for 30 s.
    async fn confirm_ack(&self, message: &jetstream::Message) {
        let Some(ack_subject) = message.reply.clone() else {
            return;
        };
        let until = Instant::now() + RETRY_WITHOUT_DEADLINE;
        let mut backoff = Backoff::new();
        loop {
            let request = Request::new()
                .payload(bytes::Bytes::from_static(b"+ACK"))
                .timeout(Some(CONFIRM_TIMEOUT));
            let error = match self.client.send_request(ack_subject.clone(), request).await {
                Ok(_) => {
                    // A restarted NATS server that lost its delivery state may have sent this
                    // request again before it took the ack: that copy is still on its way here,
                    // and is not run while the sequence is marked running.
                    tokio::time::sleep(CONFIRM_TIMEOUT).await;
                    return;
                }
                Err(e) => e,
            };
            if Instant::now() + backoff.peek() >= until {
                tracing::warn!(service = self.name(), %error, "the ack of a request handled across a reconnect was not confirmed within 30 s; it may be delivered again");
                return;
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Moves a request delivered too often to `<prefix>.dead.<service>` (headers kept, reason
    /// added), answers its caller with an error, and acks it. If the dead letter cannot be
    /// stored the request is left to be delivered again: nothing is dropped.
    async fn dead_letter(&self, message: &jetstream::Message, delivered: Delivered) {
        let connects = self.connects();
        let subject = dead_letter_subject(&self.settings.wire.prefix, self.name());
        let (reason, response) = pipeline::dead_letter(
            Some(&message.payload),
            delivered.count - 1,
            self.settings.max_deliveries,
            &subject,
        );
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
        headers.insert(
            HEADER_DEAD_DELIVERIES,
            (delivered.count - 1).to_string().as_str(),
        );
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
        let error: Box<dyn fmt::Display> = match stored {
            Ok(Ok(_)) => {
                self.intake.counters().dead_lettered(self.name());
                tracing::warn!(service = self.name(), %subject, %reason, "request dead-lettered");
                if let (Ok(Some(to)), Some(response)) = (self.reply_to(message), response) {
                    let reply = Reply {
                        to,
                        envelope: to_json(&response),
                    };
                    let until = Instant::now() + RETRY_WITHOUT_DEADLINE;
                    if self.steady(connects, delivered.stored_ms) {
                        let _ = self.client.publish(reply.to, reply.envelope.into()).await;
                    } else {
                        self.confirm_reply(reply, until).await;
                    }
                }
                if self.steady(connects, delivered.stored_ms) {
                    let _ = message.ack().await;
                } else {
                    self.confirm_ack(message).await;
                }
                return;
            }
            Ok(Err(error)) => Box::new(error),
            Err(_) => Box::new("not stored in time"),
        };
        tracing::error!(service = self.name(), %subject, %error, "dead letter not stored; the request is left to be delivered again");
    }

    /// After this server reconnected (a NATS server restart): removes requests its consumer has
    /// acked (below its ack floor) that the stream still holds. A restarted nats-server can
    /// keep work-queue messages whose deletion it had not written when it died, while the
    /// consumer's ack floor, which it had written, has moved past them: nobody would ever
    /// deliver or delete them (seen with nats-server 2.9 in `scripts/chaos.sh --nats`).
    ///
    /// Each is found (`STREAM.MSG.GET` next by subject) and deleted (`STREAM.MSG.DELETE`) on
    /// its own, never with a stream purge: nats-server 2.9 (2.9.10 as Debian 12 ships it)
    /// clears the pending deliveries of every consumer of a purged stream, so a request then
    /// running on a server that dies before its ack is never delivered again. That lost 13–27
    /// calls in half of the chaos runs (issue 35;
    /// `faults::nats_a_server_killed_while_another_cleans_the_stream_loses_no_call`).
    /// `Ok(n)`: how many were removed.
    pub(super) async fn remove_acked(&self) -> Result<u64, String> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| e.to_string())?;
        let mut consumer = stream
            .get_consumer::<jetstream::consumer::pull::Config>(&self.consumer_name)
            .await
            .map_err(|e| e.to_string())?;
        let floor = consumer
            .info()
            .await
            .map_err(|e| e.to_string())?
            .ack_floor
            .stream_sequence;
        let first = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .first_sequence;
        tracing::debug!(
            service = self.name(),
            first_sequence = first,
            ack_floor = floor,
            "checked the stream for acked requests not deleted"
        );
        if floor == 0 || first > floor {
            return Ok(0);
        }
        // Everything up to the ack floor was acked (the floor only moves up): what is stored
        // there is removed one by one, nothing above it.
        let subject = command_subject(&self.settings.wire.prefix, self.name());
        let (mut next, mut removed) = (first, 0);
        while next <= floor {
            let found = stream
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(subject.as_str())
                .send()
                .await;
            let sequence = match found {
                Ok(m) => m.sequence,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(e.to_string()),
            };
            if sequence > floor {
                break;
            }
            match stream.delete_message(sequence).await {
                Ok(true) => removed += 1,
                // Removed meanwhile (another server's check, or the NATS server itself).
                Ok(false) => {}
                Err(e) => {
                    if !matches!(e.kind(), DeleteMessageErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::SEQUENCE_NOT_FOUND)
                    {
                        return Err(e.to_string());
                    }
                }
            }
            next = sequence + 1;
        }
        if removed > 0 {
            tracing::info!(service = self.name(), stream = %self.stream, removed, ack_floor = floor,
                "removed requests the NATS server kept after they were acked (it lost their deletion in a restart)");
        }
        Ok(removed)
    }

    /// Checks the service's stream and consumer after a pull found them missing (`why`), and
    /// creates what is gone (said once at warn, counted). `Ok` when both exist now.
    pub(super) async fn ensure_broker_state(&self, why: &str) -> Result<(), String> {
        let wire = &self.settings.wire;
        let stream_missing = match self.js.get_stream(&self.stream).await {
            Ok(_) => false,
            Err(e) if is_not_found(&e) => true,
            Err(e) => return Err(format!("stream {}: {e}", self.stream)),
        };
        let consumer_missing = stream_missing
            || match self
                .js
                .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                    &self.consumer_name,
                    &self.stream,
                )
                .await
            {
                Ok(_) => false,
                Err(e) if consumer_not_found(&e) => true,
                Err(e) => return Err(format!("consumer {}: {e}", self.consumer_name)),
            };
        if !consumer_missing {
            tracing::debug!(service = self.name(), %why, "a pull found no consumer, but the stream and consumer exist (JetStream was starting)");
            return Ok(());
        }
        super::prepare(&self.js, wire, &self.settings, self.name())
            .await
            .map_err(|e| e.to_string())?;
        let what = if stream_missing {
            format!(
                "stream {} (with its consumer {})",
                self.stream, self.consumer_name
            )
        } else {
            format!("consumer {} of stream {}", self.consumer_name, self.stream)
        };
        self.intake.counters().recovered(self.name(), &what);
        Ok(())
    }
}

fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

fn consumer_not_found(e: &jetstream::stream::ConsumerError) -> bool {
    matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(j)
        if j.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND || j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}
