//! One served service: its consumer loop, the handling of an entry, and the heartbeat that
//! keeps the entries it runs from being reclaimed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Connector};
use clamator_protocol::{
    parse_envelope_slice, to_json, Delivery, Id, Intake, Metadata, Response, RpcError, RpcService,
};
use redis::Value;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::settings::Settings;
use super::shared::{Counters, Shared};
use super::writer::{DeadLetter, Done, Hold, Reply};
use crate::config::{millis, reconnect_reader, sleep_or_cancel, Backoff, BLOCK};
use crate::entry::{parse_read_reply, Entry};
use crate::keys::{
    command_stream, consumer_group_name, consumer_name, dead_letter_stream, is_reply_stream_of,
};

/// Entries read per `XREADGROUP` at most (fewer when fewer handler slots are free).
pub(crate) const MAX_READ_BATCH: usize = 256;
/// How long the writer retries a reply for a request that carries no deadline (a 0.1.9
/// client's): the originals' default call timeout.
const RETRY_WITHOUT_DEADLINE: Duration = Duration::from_secs(30);
/// The request field a Rust client sets when it trims its own reply stream.
pub(crate) const REPLY_TRIM_FIELD: &str = "reply-trim";

/// The entry fields of the 0.1.9 wire (plus ours, `reply-trim`); every other field is
/// metadata.
pub const RESERVED_FIELDS: [&str; 5] = [
    "type",
    "envelope",
    "reply-to",
    "timeout-ms",
    REPLY_TRIM_FIELD,
];

/// The ids of the entries this server holds (running, or waiting for the writer); the
/// heartbeat keeps them fresh.
#[derive(Debug, Default)]
pub(crate) struct Inflight(Mutex<HashSet<String, rustc_hash::FxBuildHasher>>);

impl Inflight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String, rustc_hash::FxBuildHasher>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `id`; it leaves the set when the guard drops, however the entry ends
    /// (written, given up, abandoned, or a panic).
    pub(crate) fn enter(self: &Arc<Self>, id: &str) -> InflightGuard {
        self.lock().insert(id.to_owned());
        InflightGuard {
            set: Arc::clone(self),
            id: id.to_owned(),
        }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }
}

/// See [`Inflight::enter`].
#[derive(Debug)]
pub(crate) struct InflightGuard {
    set: Arc<Inflight>,
    id: String,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.set.lock().remove(&self.id);
    }
}

/// Per-service state shared by its loops and handler tasks.
pub(crate) struct ServiceCtx {
    pub(crate) service: RpcService,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
    pub(crate) dead_stream: String,
    pub(crate) settings: Arc<Settings>,
    pub(crate) conn: Conn,
    pub(crate) intake: Intake,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) inflight: Arc<Inflight>,
    /// `CLIENT ID` of the reader connection, for `CLIENT UNBLOCK` on stop (0: unknown).
    pub(crate) reader_id: AtomicI64,
    pub(crate) shared: Arc<Shared>,
    pub(crate) writer: mpsc::UnboundedSender<Done>,
    /// `(stream, group)` of every service of this server: the liveness snapshot reads them all.
    pub(crate) all_streams: Arc<[(String, String)]>,
}

pub(crate) fn is_nogroup(e: &redis::RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

impl ServiceCtx {
    pub(crate) fn new(
        settings: &Arc<Settings>,
        service: RpcService,
        conn: Conn,
        intake: Intake,
        shared: Arc<Shared>,
        writer: mpsc::UnboundedSender<Done>,
        all_streams: Arc<[(String, String)]>,
    ) -> Self {
        let name = service.name().to_owned();
        Self {
            dead_stream: dead_letter_stream(&settings.key_prefix, &name),
            stream: command_stream(&settings.key_prefix, &name),
            group: consumer_group_name(&name),
            consumer: consumer_name(&name, &settings.instance_id),
            slots: Arc::new(Semaphore::new(settings.concurrency.get())),
            inflight: Arc::default(),
            reader_id: AtomicI64::new(0),
            settings: Arc::clone(settings),
            shared,
            service,
            conn,
            intake,
            writer,
            all_streams,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.service.name()
    }

    /// Records the reader connection's `CLIENT ID` (optional: without it `stop` waits for the
    /// blocked read to time out, at most a second).
    pub(crate) async fn register_reader(&self, reader: &mut Conn) {
        let id: redis::RedisResult<i64> = reader
            .at_key(&self.stream, redis::cmd("CLIENT").arg("ID"))
            .await;
        match id {
            Ok(id) => self.reader_id.store(id, Ordering::SeqCst),
            Err(error) => {
                tracing::debug!(service = self.name(), %error, "CLIENT ID failed; stop will wait for the blocked read to time out")
            }
        }
    }

    /// `CLIENT UNBLOCK <reader>`: its blocking read returns at once, with no entries.
    pub(crate) async fn unblock_reader(&self) {
        let id = self.reader_id.load(Ordering::SeqCst);
        if id == 0 {
            return;
        }
        let mut conn = self.conn.clone();
        let unblocked: redis::RedisResult<i64> = conn
            .at_key(&self.stream, redis::cmd("CLIENT").arg("UNBLOCK").arg(id))
            .await;
        if let Err(error) = unblocked {
            tracing::debug!(service = self.name(), %error, "could not unblock the reader");
        }
    }

    /// `XGROUP CREATE <stream> <group> <start> MKSTREAM`, ignoring BUSYGROUP.
    pub(crate) async fn create_group(
        &self,
        conn: &mut Conn,
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

    /// `XREADGROUP … COUNT <n> [BLOCK 1000] STREAMS <stream> >`.
    pub(crate) async fn read(
        &self,
        reader: &mut Conn,
        count: usize,
        block: bool,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if block {
            cmd.arg("BLOCK").arg(millis(BLOCK));
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(">");
        let reply: Value = cmd.query_async(reader).await?;
        Ok(parse_read_reply(reply))
    }

    /// Up to `max` free handler slots without waiting.
    pub(crate) fn try_slots(&self, max: usize) -> Vec<OwnedSemaphorePermit> {
        std::iter::from_fn(|| Arc::clone(&self.slots).try_acquire_owned().ok())
            .take(max)
            .collect()
    }

    fn hold(&self, id: &str, slot: Option<OwnedSemaphorePermit>) -> Hold {
        Hold {
            _slot: slot,
            _inflight: self.inflight.enter(id),
            _token: self.intake.tracker().token(),
        }
    }

    /// Hands a finished entry to the writer (if the writer is gone the server is, too: the
    /// entry stays pending).
    pub(crate) fn finish(&self, done: Done) {
        let _ = self.writer.send(done);
    }

    /// Runs one entry on the server's handler tracker, holding one slot. If the server
    /// abandons it (drain window over, or dropped), the entry stays pending for reclaim.
    pub(crate) fn spawn_entry(self: &Arc<Self>, entry: Entry, slot: OwnedSemaphorePermit) {
        let hold = self.hold(&entry.id, Some(slot));
        let ctx = Arc::clone(self);
        let shutdown = self.intake.shutdown_token().clone();
        self.intake.tracker().spawn(async move {
            // `biased`, shutdown first: once the server abandons its handlers, none of them
            // takes another step (a handler woken at that moment is not polled again).
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    tracing::debug!(service = ctx.name(), "handler abandoned at shutdown; its entry stays pending");
                }
                done = ctx.handle(entry, hold) => ctx.finish(done),
            }
        });
    }

    /// Sends an entry straight to the dead-letter stream (it was delivered too often).
    pub(crate) fn dead_letter(
        self: &Arc<Self>,
        entry: Entry,
        deliveries: u64,
        last_consumer: String,
    ) {
        let reason = format!(
            "delivered {deliveries} times without being acked (max_deliveries {})",
            self.settings.max_deliveries
        );
        let hold = self.hold(&entry.id, None);
        let reply = self.reply_to(&entry).ok().flatten().and_then(|to| {
            let id = entry.field("envelope").and_then(recover_id)?;
            let data = serde_json::json!({
                "name": "DeadLettered",
                "message": format!("{reason}; moved to {}", self.dead_stream),
            });
            Some(self.reply(&entry, to, &Response::error(id, RpcError::internal(data))))
        });
        self.finish(Done {
            retry_until: Instant::now() + RETRY_WITHOUT_DEADLINE,
            reply,
            dead: Some(DeadLetter {
                reason,
                deliveries: Some(deliveries),
                last_consumer,
            }),
            entry,
            _hold: hold,
        });
    }

    /// The entry's `reply-to`: `Ok(None)` when absent (no reply wanted), an error when it
    /// names anything but a reply stream of this prefix.
    fn reply_to(&self, entry: &Entry) -> Result<Option<String>, String> {
        let Some(to) = entry.field("reply-to").filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match std::str::from_utf8(to) {
            Ok(to) if is_reply_stream_of(&self.settings.key_prefix, to.as_bytes()) => {
                Ok(Some(to.to_owned()))
            }
            _ => {
                let shown: String = String::from_utf8_lossy(to).chars().take(80).collect();
                Err(format!(
                    "reply-to {shown:?} is not a reply stream of this prefix ({}:replies:<id>, id of 1 to 256 bytes)",
                    self.settings.key_prefix
                ))
            }
        }
    }

    fn reply(&self, entry: &Entry, to: String, response: &Response) -> Reply {
        Reply {
            to,
            envelope: to_json(response),
            client_trims: entry.field(REPLY_TRIM_FIELD) == Some(b"client"),
            written: false,
        }
    }

    fn poison(&self, entry: &Entry, why: &dyn std::fmt::Display) {
        Counters::bump(&self.shared.counters.poison);
        metrics::counter!("clamator_redis_poison_total", "service" => self.name().to_owned())
            .increment(1);
        tracing::warn!(service = self.name(), entry_id = %entry.id, reason = %why,
            "redis poison entry: service={} entry={}; acked without running a handler (a request with a known id and reply-to was answered with an error; fix the producer that wrote it)", self.name(), entry.id);
    }

    /// Spec §2.4, with a checked `reply-to`, error replies for poison entries whose id and
    /// reply-to are known, a size limit, and deadlines (`timeout-ms`) checked before the
    /// handler starts.
    async fn handle(&self, entry: Entry, hold: Hold) -> Done {
        let mut done = Done {
            retry_until: Instant::now() + RETRY_WITHOUT_DEADLINE,
            reply: None,
            dead: None,
            entry,
            _hold: hold,
        };
        let entry = &done.entry;
        let reply_to = match self.reply_to(entry) {
            Ok(to) => to,
            Err(why) => {
                self.poison(entry, &why);
                return done;
            }
        };
        let Some(raw) = entry.field("envelope").filter(|v| !v.is_empty()) else {
            self.poison(entry, &"no envelope field");
            return done;
        };
        let error = if raw.len() > self.settings.max_envelope_bytes {
            let reason = format!(
                "envelope too large: {} bytes exceeds the limit of {} bytes",
                raw.len(),
                self.settings.max_envelope_bytes
            );
            self.poison(entry, &reason);
            Some(RpcError::invalid_request(
                serde_json::json!({ "reason": reason }),
            ))
        } else {
            match parse_envelope_slice(raw) {
                Ok(envelope) => {
                    let deadline = match self.deadline(entry) {
                        Deadline::Expired(late_ms) => {
                            Counters::bump(&self.shared.counters.expired);
                            metrics::counter!("clamator_redis_expired_total", "service" => self.name().to_owned()).increment(1);
                            tracing::debug!(service = self.name(), entry_id = %entry.id, late_ms, "skipping a request whose deadline passed before it started");
                            return done;
                        }
                        Deadline::At(at) => Some(at),
                        Deadline::None => None,
                    };
                    if let Some(at) = deadline {
                        done.retry_until = at;
                    }
                    Counters::bump(&self.shared.counters.dispatched);
                    let response = self
                        .intake
                        .handle(
                            &self.service,
                            envelope,
                            Delivery::new()
                                .with_deadline(deadline)
                                .with_metadata(metadata(entry))
                                .with_message_id(entry.id.clone()),
                        )
                        .await;
                    done.reply = reply_to
                        .zip(response)
                        .map(|(to, response)| self.reply(&done.entry, to, &response));
                    return done;
                }
                Err(error) => {
                    self.poison(entry, &error);
                    Some(error.to_rpc_error())
                }
            }
        };
        done.reply = error.and_then(|error| {
            let to = reply_to?;
            let id = recover_id(raw)?;
            Some(self.reply(entry, to, &Response::error(id, error)))
        });
        done
    }

    /// The request's deadline: entry id time + `timeout-ms`, on Redis's clock. A missing,
    /// unparsable, zero or negative `timeout-ms` means no deadline.
    fn deadline(&self, entry: &Entry) -> Deadline {
        let Some(timeout_ms) = entry
            .field("timeout-ms")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|t| *t > 0)
        else {
            return Deadline::None;
        };
        let Some(created_ms) = entry
            .id
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<i64>().ok())
        else {
            return Deadline::None;
        };
        let remaining = created_ms
            .saturating_add(timeout_ms)
            .saturating_sub(self.shared.redis_now_ms());
        if remaining <= 0 {
            return Deadline::Expired(remaining.unsigned_abs());
        }
        Instant::now()
            .checked_add(Duration::from_millis(remaining.unsigned_abs()))
            .map_or(Deadline::None, Deadline::At)
    }
}

enum Deadline {
    None,
    At(Instant),
    Expired(u64),
}

/// The entry fields that are not part of the 0.1.9 wire (auth tokens, trace context),
/// handed to middleware as metadata. Names that are not valid metadata names are ignored.
fn metadata(entry: &Entry) -> Metadata {
    entry
        .fields
        .iter()
        .filter(|(k, _)| !RESERVED_FIELDS.iter().any(|r| r.as_bytes() == k.as_slice()))
        .filter_map(|(k, v)| {
            let k = std::str::from_utf8(k)
                .ok()
                .filter(|k| Metadata::is_valid_name(k))?;
            Some((k.to_owned(), String::from_utf8_lossy(v).into_owned()))
        })
        .collect()
}

/// The request id of an envelope that failed validation, if it has a usable one.
/// Only the `id` is kept; everything else is skipped without being built.
pub(crate) fn recover_id(raw: &[u8]) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: serde_json::Value,
    }
    let IdOnly { id } = serde_json::from_slice(raw).ok()?;
    Id::from_value(&id).map(|id| id.to_value())
}

/// The consumer loop of one service: reads as many entries as it has free handler slots, and
/// every reclaim period looks for entries to reclaim or dead-letter first.
pub(crate) async fn consume(
    ctx: Arc<ServiceCtx>,
    client: Connector,
    reader: Conn,
    initial: Vec<Entry>,
    intake: CancellationToken,
    abandon: CancellationToken,
) {
    for entry in initial {
        match Arc::clone(&ctx.slots).try_acquire_owned() {
            Ok(slot) => ctx.spawn_entry(entry, slot),
            Err(_) => break, // cannot happen: the first read asks for free slots only
        }
    }
    let mut reader = Some(reader);
    let mut backoff = Backoff::new();
    let batch_cap = ctx.settings.concurrency.get().min(MAX_READ_BATCH);
    let claim_period = ctx.settings.reclaim_period();
    let mut next_claim = tokio::time::Instant::now() + claim_period;
    let mut cursor = super::reclaim::Cursor::default();
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
            let round = super::reclaim::round(&ctx, slots, &mut cursor).await;
            next_claim = tokio::time::Instant::now()
                + if round.backlog {
                    Duration::ZERO
                } else {
                    claim_period
                };
            slots = round.slots;
            if slots.is_empty() {
                continue;
            }
        }
        let conn = match reader.as_mut() {
            Some(conn) => conn,
            None => match client.blocking().await {
                Ok(mut conn) => {
                    ctx.register_reader(&mut conn).await;
                    reader.insert(conn)
                }
                Err(error) => {
                    tracing::warn!(service = ctx.name(), %error, "redis consumer reconnect failed; retrying with backoff (no new entries are read meanwhile; check that Redis is reachable)");
                    drop(slots);
                    if !sleep_or_cancel(backoff.next_delay(), &intake).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let read = tokio::select! {
            read = ctx.read(conn, slots.len(), true) => read,
            // dropped without stop: give up the read (what it returns stays pending)
            () = abandon.cancelled() => break,
        };
        match read {
            Ok(entries) => {
                backoff.reset();
                for (entry, slot) in entries.into_iter().zip(slots) {
                    ctx.spawn_entry(entry, slot);
                }
            }
            Err(e) if is_nogroup(&e) => {
                drop(slots);
                tracing::warn!(service = ctx.name(), stream = %ctx.stream, "consumer group lost (NOGROUP); recreating it");
                let mut conn = ctx.conn.clone();
                // The stream was lost with its data: whatever is in it now is new work.
                if let Err(error) = ctx.create_group(&mut conn, "0").await {
                    tracing::error!(service = ctx.name(), %error, "could not recreate the consumer group; retrying with backoff (allow XGROUP CREATE for the Redis user)");
                    if !sleep_or_cancel(backoff.next_delay(), &intake).await {
                        break;
                    }
                }
            }
            Err(e) => {
                drop(slots);
                tracing::error!(service = ctx.name(), error = %e, "redis consumer loop error: service={}; retrying with backoff (entries wait in the stream meanwhile; check the Redis connection and the user's XREADGROUP permission)", ctx.name());
                if reconnect_reader(&e) {
                    reader = None;
                }
                if !sleep_or_cancel(backoff.next_delay(), &intake).await {
                    break;
                }
            }
        }
    }
}

/// Keeps the idle time of the entries this server holds fresh (`XCLAIM … JUSTID`, every
/// `claim_idle / 3`), so other servers of the pool never reclaim live work. It runs until the
/// server's drain is over, and keeps the Redis clock offset current.
pub(crate) async fn heartbeat(ctx: Arc<ServiceCtx>, background: CancellationToken, clock: bool) {
    let tick = ctx.settings.claim_idle / 3;
    let mut conn = ctx.conn.clone();
    let mut clock_checked = tokio::time::Instant::now();
    while sleep_or_cancel(tick, &background).await {
        if clock && clock_checked.elapsed() > Duration::from_secs(30) {
            clock_checked = tokio::time::Instant::now();
            ctx.shared.sync_clock(&mut conn).await;
        }
        let live = ctx.inflight.ids();
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
