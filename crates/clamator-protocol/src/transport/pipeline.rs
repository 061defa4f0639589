//! What every wire transport's server does with one delivered message, written once: the
//! reply-destination check, the size limits, parsing, answering a broken envelope whose id can
//! be recovered, the deadline, the handler, the reply's own size limit, dead-letter replies,
//! and the counters, metrics and logs of all of it. A transport reads messages and writes
//! replies and acks; everything in between is [`Intake::admit`] and [`Admitted::run`].
//!
//! ```text
//!  transport reads ─► Received ─► Intake::admit ─┬─► Admission::Done(Finished)   (poison, expired)
//!                                                └─► Admission::Run(Admitted) ─► run ─► Finished
//!  transport writes Finished::reply (if any), then acks
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Delivery, Intake, Metadata};
use crate::envelope::{parse_envelope_slice, to_json, Envelope, Id, Response};
use crate::error::RpcError;
use crate::service::RpcService;

/// The size limits a server applies: to the envelopes it accepts and to the replies it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Larger request envelopes are refused (`-32600`) without being parsed.
    pub max_request_bytes: usize,
    /// A larger reply is not sent: its caller gets a `-32603` `ReplyTooLarge` error instead.
    pub max_reply_bytes: usize,
}

impl Limits {
    /// The same limit both ways.
    pub const fn both(max_envelope_bytes: usize) -> Self {
        Self {
            max_request_bytes: max_envelope_bytes,
            max_reply_bytes: max_envelope_bytes,
        }
    }
}

/// When the caller of a delivered request stops waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The request carries none (a 0.1.9 client's, or a notification).
    None,
    /// It is still waiting until then.
    At(Instant),
    /// It stopped waiting this long ago: the request is acked without running.
    Expired(Duration),
}

impl Deadline {
    /// From the time the broker stored the request and the caller's timeout, both in
    /// milliseconds on the broker's clock: `created_ms + timeout_ms` against `now_ms`. A
    /// missing, unparsable, zero or negative timeout means no deadline.
    pub fn from_broker_clock(created_ms: i64, timeout_ms: Option<&[u8]>, now_ms: i64) -> Self {
        let Some(timeout_ms) = timeout_ms
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|t| *t > 0)
        else {
            return Self::None;
        };
        let left = created_ms.saturating_add(timeout_ms).saturating_sub(now_ms);
        if left <= 0 {
            return Self::Expired(Duration::from_millis(left.unsigned_abs()));
        }
        Instant::now()
            .checked_add(Duration::from_millis(left.unsigned_abs()))
            .map_or(Self::None, Self::At)
    }

    /// The instant, if the caller is still waiting.
    pub fn at(self) -> Option<Instant> {
        match self {
            Self::At(at) => Some(at),
            _ => None,
        }
    }
}

/// A delivered message as a transport read it, before anything is decided.
#[derive(Debug)]
pub struct Received<'a, D> {
    /// The envelope bytes (`None`: the message has none).
    pub body: Option<&'a [u8]>,
    /// The checked reply destination: `Ok(None)` when none is wanted, `Err(why)` when the one
    /// given is not a reply destination of this server's prefix (then nothing is sent to it).
    pub reply_to: Result<Option<D>, String>,
    /// When the caller stops waiting.
    pub deadline: Deadline,
    /// The transport's id of the message, for logs (stream entry id, stream sequence).
    pub message_id: &'a str,
}

/// A reply to send, then ack the message.
#[derive(Debug)]
pub struct Reply<D> {
    /// Where to (a checked reply destination).
    pub to: D,
    /// The response envelope, within the reply limit.
    pub envelope: String,
}

/// What is left to do for a message: send the reply, if any, then ack it.
#[derive(Debug)]
#[must_use]
pub struct Finished<D> {
    /// The reply to send before the ack.
    pub reply: Option<Reply<D>>,
}

impl<D> Finished<D> {
    const fn ack_only() -> Self {
        Self { reply: None }
    }
}

/// The outcome of [`Intake::admit`].
#[derive(Debug)]
#[must_use]
pub enum Admission<D> {
    /// Run it ([`Admitted::run`]).
    Run(Admitted<D>),
    /// Not run (poison, expired): send the reply, if any, and ack.
    Done(Finished<D>),
}

/// A request or notification that passed every check, ready to run.
#[derive(Debug)]
#[must_use]
pub struct Admitted<D> {
    intake: Intake,
    service: RpcService,
    envelope: Envelope,
    deadline: Option<Instant>,
    reply_to: Option<D>,
    max_reply_bytes: usize,
}

impl<D> Admitted<D> {
    /// When its caller stops waiting, if it said.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Runs it through the server's middleware and dispatch pipeline; a request's response
    /// becomes the reply (an error naming the limit when it is too large to send).
    pub async fn run(self, metadata: Metadata, message_id: String) -> Finished<D> {
        let Self {
            intake,
            service,
            envelope,
            deadline,
            reply_to,
            max_reply_bytes,
        } = self;
        let method = match &envelope {
            Envelope::Request(r) => Some(r.method.clone()),
            _ => None,
        };
        let delivery = Delivery::new()
            .with_deadline(deadline)
            .with_metadata(metadata)
            .with_message_id(message_id);
        let response = intake.handle(&service, envelope, delivery).await;
        let (Some(to), Some(response)) = (reply_to, response) else {
            return Finished::ack_only();
        };
        let mut envelope = to_json(&response);
        if envelope.len() > max_reply_bytes {
            let size = envelope.len();
            let method = method.unwrap_or_default();
            intake
                .counters()
                .reply_too_large(service.name(), &method, size, max_reply_bytes);
            let data = json!({
                "name": "ReplyTooLarge",
                "message": format!(
                    "the reply of {}.{method} is {size} bytes, over the largest reply this server sends ({max_reply_bytes} bytes); return less, or raise max_envelope_bytes on the server and its clients",
                    service.name()
                ),
            });
            envelope = to_json(&Response::error(response.id, RpcError::internal(data)));
        }
        Finished {
            reply: Some(Reply { to, envelope }),
        }
    }
}

impl Intake {
    /// Decides what to do with a delivered message of `service`: refuse it (a forged reply
    /// destination, no envelope, too large, not a valid envelope: poison, answered with an
    /// error when its id and reply destination are known), skip it (its caller stopped
    /// waiting), or run it.
    pub fn admit<D>(
        &self,
        service: &RpcService,
        received: Received<'_, D>,
        limits: Limits,
    ) -> Admission<D> {
        let counters = self.counters();
        let name = service.name();
        let id = received.message_id;
        let reply_to = match received.reply_to {
            Ok(to) => to,
            Err(why) => {
                counters.poison(name, id, &why);
                return Admission::Done(Finished::ack_only());
            }
        };
        let Some(raw) = received.body.filter(|b| !b.is_empty()) else {
            counters.poison(name, id, &"no envelope");
            return Admission::Done(Finished::ack_only());
        };
        let refusal = if raw.len() > limits.max_request_bytes {
            let reason = format!(
                "envelope too large: {} bytes exceeds the limit of {} bytes",
                raw.len(),
                limits.max_request_bytes
            );
            counters.poison(name, id, &reason);
            RpcError::invalid_request(json!({ "reason": reason }))
        } else {
            match parse_envelope_slice(raw) {
                Ok(envelope) => {
                    let deadline = match received.deadline {
                        Deadline::Expired(late) => {
                            counters.expired(name, id, late);
                            return Admission::Done(Finished::ack_only());
                        }
                        d => d.at(),
                    };
                    counters.dispatched();
                    return Admission::Run(Admitted {
                        intake: self.clone(),
                        service: service.clone(),
                        envelope,
                        deadline,
                        reply_to,
                        max_reply_bytes: limits.max_reply_bytes,
                    });
                }
                Err(error) => {
                    counters.poison(name, id, &error);
                    error.to_rpc_error()
                }
            }
        };
        let reply = reply_to.zip(recover_id(raw)).map(|(to, id)| Reply {
            to,
            envelope: to_json(&Response::error(id, refusal)),
        });
        Admission::Done(Finished { reply })
    }
}

/// The request id of an envelope too broken to run, when it still has a usable one (only the
/// `id` member is read; the rest is skipped without being built).
pub fn recover_id(raw: &[u8]) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: serde_json::Value,
    }
    let IdOnly { id } = serde_json::from_slice(raw).ok()?;
    Id::from_value(&id).map(|id| id.to_value())
}

/// A request delivered more often than a server allows: why it is dead-lettered, and the reply
/// that tells its caller (`-32603`, `{"name": "DeadLettered"}`) when its id is known.
pub fn dead_letter(
    raw: Option<&[u8]>,
    deliveries: u64,
    max_deliveries: u32,
    dead_letter_store: &str,
) -> (String, Option<Response>) {
    let reason = format!(
        "delivered {deliveries} times without being acked (max_deliveries {max_deliveries})"
    );
    let reply = raw.and_then(recover_id).map(|id| {
        let data = json!({
            "name": "DeadLettered",
            "message": format!("{reason}; moved to {dead_letter_store}"),
        });
        Response::error(id, RpcError::internal(data))
    });
    (reason, reply)
}

/// What a server's transport has done since it started; every transport counts the same
/// things ([`Server::stats`](super::Server::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Requests and notifications handed to a handler.
    pub dispatched: u64,
    /// Requests skipped because their caller had stopped waiting before a handler started.
    pub expired: u64,
    /// Messages that could not be used (no envelope, not JSON, invalid, too large, a reply
    /// destination that is not one of this prefix): acked without running a handler.
    pub poison: u64,
    /// Requests moved to the dead-letter store.
    pub dead_lettered: u64,
    /// Requests received that had been delivered before (taken over from a server that died,
    /// or delivered again by the broker).
    pub redelivered: u64,
    /// Reply or ack writes that failed and were made again.
    pub write_retries: u64,
    /// Replies over the reply limit, answered with a `ReplyTooLarge` error instead.
    pub replies_too_large: u64,
    /// Times the broker-side state of a service (stream, consumer or group) was found missing
    /// and created again.
    pub recovered: u64,
}

/// How often a flood of poison messages is summed up in the log (the first is logged at once).
const POISON_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The counters behind [`ServerStats`], the metrics they emit (`clamator_server_*_total`,
/// labelled `transport` and `service`) and the log lines of rare events. One per server,
/// shared by its transport ([`Intake::counters`]).
pub struct ServerCounters {
    transport: &'static str,
    dispatched: AtomicU64,
    expired: AtomicU64,
    poison: AtomicU64,
    dead_lettered: AtomicU64,
    redelivered: AtomicU64,
    write_retries: AtomicU64,
    replies_too_large: AtomicU64,
    recovered: AtomicU64,
    /// When poison was last logged, and how many were not logged since.
    poison_log: Mutex<(Option<Instant>, u64)>,
}

impl fmt::Debug for ServerCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCounters")
            .field("transport", &self.transport)
            .field("stats", &self.snapshot())
            .finish()
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl ServerCounters {
    /// Counters of a server on `transport` (the metrics' `transport` label).
    pub fn new(transport: &'static str) -> Self {
        Self {
            transport,
            dispatched: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            poison: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            write_retries: AtomicU64::new(0),
            replies_too_large: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            poison_log: Mutex::new((None, 0)),
        }
    }

    /// The transport's name.
    pub fn transport(&self) -> &'static str {
        self.transport
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            dispatched: get(&self.dispatched),
            expired: get(&self.expired),
            poison: get(&self.poison),
            dead_lettered: get(&self.dead_lettered),
            redelivered: get(&self.redelivered),
            write_retries: get(&self.write_retries),
            replies_too_large: get(&self.replies_too_large),
            recovered: get(&self.recovered),
        }
    }

    fn emit(&self, metric: &'static str, service: &str) {
        metrics::counter!(metric, "transport" => self.transport, "service" => service.to_owned())
            .increment(1);
    }

    fn dispatched(&self) {
        bump(&self.dispatched);
    }

    /// A message acked without running: logged at warn (the first at once, then one summary
    /// per 10 s during a flood), counted.
    pub fn poison(&self, service: &str, message_id: &str, why: &dyn fmt::Display) {
        bump(&self.poison);
        self.emit("clamator_server_poison_total", service);
        let suppressed = {
            let mut log = self
                .poison_log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match log.0 {
                Some(at) if at.elapsed() < POISON_LOG_INTERVAL => {
                    log.1 += 1;
                    return;
                }
                _ => {
                    let suppressed = log.1;
                    *log = (Some(Instant::now()), 0);
                    suppressed
                }
            }
        };
        let transport = self.transport;
        if suppressed > 0 {
            tracing::warn!(transport, service, message_id, reason = %why, suppressed,
                "{transport} poison message: service={service} message={message_id}; acked without running a handler, and {suppressed} more since the last such line (a request with a known id and reply destination was answered with an error; fix the producer that wrote it)");
        } else {
            tracing::warn!(transport, service, message_id, reason = %why,
                "{transport} poison message: service={service} message={message_id}; acked without running a handler (a request with a known id and reply destination was answered with an error; fix the producer that wrote it)");
        }
    }

    fn expired(&self, service: &str, message_id: &str, late: Duration) {
        bump(&self.expired);
        self.emit("clamator_server_expired_total", service);
        tracing::debug!(
            transport = self.transport,
            service,
            message_id,
            late_ms = late.as_millis() as u64,
            "skipping a request whose deadline passed before it started"
        );
    }

    fn reply_too_large(&self, service: &str, method: &str, size: usize, limit: usize) {
        bump(&self.replies_too_large);
        self.emit("clamator_server_replies_too_large_total", service);
        tracing::warn!(transport = self.transport, service, method, size, limit,
            "a reply of {size} bytes is over the limit of {limit} bytes; its caller gets a ReplyTooLarge error instead (the handler is not run again)");
    }

    /// A request moved to the dead-letter store.
    pub fn dead_lettered(&self, service: &str) {
        bump(&self.dead_lettered);
        self.emit("clamator_server_dead_lettered_total", service);
    }

    /// A request received that had been delivered before.
    pub fn redelivered(&self, service: &str) {
        bump(&self.redelivered);
        self.emit("clamator_server_redeliveries_total", service);
    }

    /// A reply or ack write made again.
    pub fn write_retry(&self, service: &str) {
        bump(&self.write_retries);
        self.emit("clamator_server_write_retries_total", service);
    }

    /// The broker-side state of `service` (`what`) was missing and was created again: logged
    /// at warn, counted.
    pub fn recovered(&self, service: &str, what: &dyn fmt::Display) {
        bump(&self.recovered);
        self.emit("clamator_server_recoveries_total", service);
        tracing::warn!(transport = self.transport, service, %what,
            "{what} of service {service} was missing on the broker (deleted, or the broker lost its data); created it again and serving on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 29: a flood of poison messages logs the first at once, then one line per interval
    /// that counts the rest, not one line each.
    #[test]
    fn a_poison_flood_logs_the_first_then_a_count() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let lines = lines.clone();
                move || lines.clone()
            })
            .with_ansi(false)
            .finish();
        let counters = ServerCounters::new("test");
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1000 {
                counters.poison("svc", &format!("m{i}"), &"not JSON");
            }
            // the interval passes
            counters.poison_log.lock().unwrap().0 =
                Some(Instant::now() - POISON_LOG_INTERVAL - Duration::from_millis(1));
            counters.poison("svc", "m1000", &"not JSON");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logged: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("poison message"))
            .collect();
        assert_eq!(logged.len(), 2, "{text}");
        assert!(logged[0].contains("message=m0"), "{}", logged[0]);
        assert!(
            logged[1].contains("message=m1000") && logged[1].contains("and 999 more"),
            "{}",
            logged[1]
        );
        assert_eq!(counters.snapshot().poison, 1001);
    }

    #[test]
    fn deadlines_on_the_broker_clock() {
        assert_eq!(
            Deadline::from_broker_clock(1000, None, 1000),
            Deadline::None
        );
        for bad in [&b"0"[..], b"-5", b"x", b""] {
            assert_eq!(
                Deadline::from_broker_clock(1000, Some(bad), 1000),
                Deadline::None
            );
        }
        assert_eq!(
            Deadline::from_broker_clock(1000, Some(b"500"), 1700),
            Deadline::Expired(Duration::from_millis(200))
        );
        let at = Deadline::from_broker_clock(1000, Some(b" 500 "), 1100)
            .at()
            .expect("still waiting");
        let left = at - Instant::now();
        assert!(left > Duration::from_millis(350) && left <= Duration::from_millis(400));
        // saturating, not overflowing
        assert!(
            Deadline::from_broker_clock(i64::MAX, Some(b"9223372036854775807"), 0)
                .at()
                .is_some()
        );
    }

    #[test]
    fn ids_are_recovered_from_broken_envelopes() {
        assert_eq!(
            recover_id(br#"{"jsonrpc":"1.0","id":"a"}"#),
            Some(json!("a"))
        );
        assert_eq!(recover_id(br#"{"id":7,"method":3}"#), Some(json!(7)));
        assert_eq!(recover_id(br#"{"id":1.5}"#), None);
        assert_eq!(recover_id(br#"{"id":null}"#), None);
        assert_eq!(recover_id(b"not json"), None);
    }

    #[test]
    fn dead_letters_name_the_reason_and_the_store() {
        let (reason, reply) = dead_letter(Some(br#"{"id":"r1"}"#), 5, 5, "p:dead:s");
        assert_eq!(
            reason,
            "delivered 5 times without being acked (max_deliveries 5)"
        );
        let reply = serde_json::to_value(reply.unwrap()).unwrap();
        assert_eq!(reply["id"], "r1");
        assert_eq!(reply["error"]["data"]["name"], "DeadLettered");
        assert!(reply["error"]["data"]["message"]
            .as_str()
            .unwrap()
            .ends_with("moved to p:dead:s"));
        assert!(dead_letter(Some(b"{"), 5, 5, "x").1.is_none());
    }
}
