//! One served service: its consumer loop, the handling of an entry, and the heartbeat that
//! keeps the entries it runs from being reclaimed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Connector};
use clamator_protocol::transport::pipeline::{self, Admission, Limits, Received};
use clamator_protocol::transport::{Backoff, Slot, Slots};
use clamator_protocol::{to_json, Intake, Metadata, RpcService};
use redis::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::settings::Settings;
use super::shared::Shared;
use super::writer::{DeadLetter, Done, Hold, Reply};
use crate::entry::{parse_read_reply, Entry};
use crate::errors::reconnect_reader;
use crate::keys::{
    command_stream, consumer_group_name, consumer_name, dead_letter_stream, is_reply_stream_of,
};
use crate::settings::{millis, BLOCK};

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
    pub(crate) slots: Slots,
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
            slots: Slots::new(settings.concurrency),
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

    fn hold(&self, id: &str, slot: Option<Slot>) -> Hold {
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
    pub(crate) fn spawn_entry(self: &Arc<Self>, entry: Entry, slot: Slot) {
        let hold = self.hold(&entry.id, Some(slot));
        let ctx = Arc::clone(self);
        let name = self.name().to_owned();
        self.intake.spawn(
            async move {
                let done = ctx.handle(entry, hold).await;
                ctx.finish(done);
            },
            move || async move {
                tracing::debug!(service = %name, "handler abandoned at shutdown; its entry stays pending");
            },
        );
    }

    /// Sends an entry straight to the dead-letter stream (it was delivered too often).
    pub(crate) fn dead_letter(
        self: &Arc<Self>,
        entry: Entry,
        deliveries: u64,
        last_consumer: String,
    ) {
        let (reason, response) = pipeline::dead_letter(
            entry.field("envelope"),
            deliveries,
            self.settings.max_deliveries,
            &self.dead_stream,
        );
        let hold = self.hold(&entry.id, None);
        let reply = self
            .reply_to(&entry)
            .ok()
            .flatten()
            .zip(response)
            .map(|(to, response)| self.reply(&entry, to, to_json(&response)));
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

    fn reply(&self, entry: &Entry, to: String, envelope: String) -> Reply {
        Reply {
            to,
            envelope,
            client_trims: entry.field(REPLY_TRIM_FIELD) == Some(b"client"),
            written: false,
        }
    }

    /// The shared pipeline (`clamator_protocol::transport::pipeline`) with this wire's facts:
    /// `envelope` and `reply-to` fields, deadline = entry id time + `timeout-ms` on Redis's
    /// clock, the envelope limit both ways.
    async fn handle(&self, entry: Entry, hold: Hold) -> Done {
        let mut done = Done {
            retry_until: Instant::now() + RETRY_WITHOUT_DEADLINE,
            reply: None,
            dead: None,
            entry,
            _hold: hold,
        };
        let entry = &done.entry;
        let created_ms = entry.id.split('-').next().and_then(|ms| ms.parse().ok());
        let deadline = created_ms.map_or(pipeline::Deadline::None, |created_ms| {
            pipeline::Deadline::from_broker_clock(
                created_ms,
                entry.field("timeout-ms"),
                self.shared.redis_now_ms(),
            )
        });
        let received = Received {
            body: entry.field("envelope"),
            reply_to: self.reply_to(entry),
            deadline,
            message_id: &entry.id,
        };
        let limits = Limits::both(self.settings.max_envelope_bytes);
        let finished = match self.intake.admit(&self.service, received, limits) {
            Admission::Done(finished) => finished,
            Admission::Run(admitted) => {
                if let Some(at) = admitted.deadline() {
                    done.retry_until = at;
                }
                admitted.run(metadata(entry), entry.id.clone()).await
            }
        };
        done.reply = finished
            .reply
            .map(|r| self.reply(&done.entry, r.to, r.envelope));
        done
    }
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
    // The first read asked for free slots only.
    for (entry, slot) in initial.into_iter().zip(ctx.slots.take(usize::MAX)) {
        ctx.spawn_entry(entry, slot);
    }
    let mut reader = Some(reader);
    let mut backoff = Backoff::new();
    let batch_cap = ctx.settings.concurrency.get().min(MAX_READ_BATCH);
    let claim_period = ctx.settings.reclaim_period();
    let mut next_claim = tokio::time::Instant::now() + claim_period;
    let mut cursor = super::reclaim::Cursor::default();
    loop {
        let Some(mut slots) = intake.run_until_cancelled(ctx.slots.batch(batch_cap)).await else {
            break;
        };
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
                    if intake
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
                let mut conn = ctx.conn.clone();
                // The stream was lost with its data: whatever is in it now is new work.
                match ctx.create_group(&mut conn, "0").await {
                    Ok(()) => ctx.intake.counters().recovered(
                        ctx.name(),
                        &format_args!("consumer group {} of stream {}", ctx.group, ctx.stream),
                    ),
                    Err(error) => {
                        tracing::error!(service = ctx.name(), %error, "the consumer group is missing (NOGROUP) and could not be created again; retrying with backoff (allow XGROUP CREATE for the Redis user)");
                        if intake
                            .run_until_cancelled(tokio::time::sleep(backoff.next_delay()))
                            .await
                            .is_none()
                        {
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                drop(slots);
                tracing::error!(service = ctx.name(), error = %e, "redis consumer loop error: service={}; retrying with backoff (entries wait in the stream meanwhile; check the Redis connection and the user's XREADGROUP permission)", ctx.name());
                if reconnect_reader(&e) {
                    reader = None;
                }
                if intake
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

/// Keeps the idle time of the entries this server holds fresh (`XCLAIM … JUSTID`, every
/// `claim_idle / 3`), so other servers of the pool never reclaim live work. It runs until the
/// server's drain is over, and keeps the Redis clock offset current.
pub(crate) async fn heartbeat(ctx: Arc<ServiceCtx>, background: CancellationToken, clock: bool) {
    let tick = ctx.settings.claim_idle / 3;
    let mut conn = ctx.conn.clone();
    let mut clock_checked = tokio::time::Instant::now();
    while background
        .run_until_cancelled(tokio::time::sleep(tick))
        .await
        .is_some()
    {
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
