//! What the dashboard shows, whichever broker holds it: the overview of every service under a
//! prefix (sampled once a second; rates from a counter of every request ever stored) and one
//! service's consumers, pending requests and dead letters. The reads are the broker's
//! ([`crate::redis::overview`], [`crate::nats::overview`]); the rates and history are here.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

/// Envelopes longer than this are cut in the service page (the API says so).
pub const ENVELOPE_CAP: usize = 16 * 1024;
/// Pending entries listed per service (most delivered first).
pub const PENDING_LIMIT: usize = 200;
/// Dead letters listed per service (newest first).
pub const DEAD_LETTER_LIMIT: usize = 500;

/// One service in the overview.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    /// Service name.
    pub service: String,
    /// Requests stored in its command stream (Redis `XLEN`; NATS: messages in the work queue).
    pub length: u64,
    /// Every request and notification ever stored (Redis `entries-added`; NATS: the stream's
    /// last sequence).
    pub entries_added: Option<u64>,
    /// Entries added per second over the last sample.
    pub rate: f64,
    /// Delivered and not acked.
    pub pending: u64,
    /// Stored and not yet delivered (the backlog), when the broker reports it.
    pub lag: Option<u64>,
    /// Age of the oldest pending entry (NATS: of the oldest stored request), ms.
    pub oldest_pending_age_ms: Option<u64>,
    /// Consumers idle for less than the alive window (NATS: servers that answered the status
    /// request).
    pub consumers_alive: usize,
    /// Consumers idle for longer (a server that died or stopped; removed by live servers
    /// after `consumer_expiry`). NATS cannot tell: `null`.
    pub consumers_dead: Option<usize>,
    /// Entries in the service's dead-letter stream.
    pub dead_letters: u64,
    /// `rate` of the last samples, oldest first.
    pub history: Vec<f64>,
}

/// One client reply stream in the overview (Redis; NATS replies are not stored).
#[derive(Debug, Clone, Serialize)]
pub struct ReplyRow {
    /// The key.
    pub stream: String,
    /// `XLEN`.
    pub length: u64,
    /// Time since its last reply was written, ms.
    pub age_ms: Option<u64>,
}

/// Everything under the prefix, as of `at_ms`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Overview {
    /// `redis` or `nats`.
    pub broker: &'static str,
    /// The key prefix.
    pub prefix: String,
    /// When it was read (ms since the epoch).
    pub at_ms: u64,
    /// Seconds between samples.
    pub interval_s: f64,
    /// Services, by name.
    pub services: Vec<ServiceRow>,
    /// Client reply streams.
    pub reply_streams: Vec<ReplyRow>,
    /// Why the last sample failed (the broker unreachable, …); the rest is the previous sample.
    pub error: Option<String>,
}

/// What a broker read of one service in the overview: a [`ServiceRow`] without the rate.
#[derive(Debug, Clone)]
pub(crate) struct Counts {
    pub(crate) service: String,
    pub(crate) length: u64,
    pub(crate) added: Option<u64>,
    pub(crate) pending: u64,
    pub(crate) lag: Option<u64>,
    pub(crate) oldest_pending_age_ms: Option<u64>,
    pub(crate) consumers_alive: usize,
    pub(crate) consumers_dead: Option<usize>,
    pub(crate) dead_letters: u64,
}

/// How often, by default, the overview walks the keyspace for new services and reply streams
/// (one `SCAN` pass, `COUNT 1000 TYPE stream`: about half a second of Redis CPU per million
/// keys); in between, the streams it knows are sampled every interval, at a cost that does not
/// depend on how many unrelated keys Redis holds. A service page asked for a service not yet
/// known makes the next sample walk again.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// Keeps the counters between samples to turn them into rates, and (Redis) the streams found by
/// the last discovery.
#[derive(Debug)]
pub struct Sampler {
    pub(crate) prefix: String,
    pub(crate) alive_within: Duration,
    history_len: usize,
    last: HashMap<String, (u64, u64)>,
    history: HashMap<String, VecDeque<f64>>,
    pub(crate) services: Vec<String>,
    pub(crate) reply_streams: Vec<String>,
    pub(crate) discovered_at: Option<std::time::Instant>,
    pub(crate) discover_every: Duration,
}

impl Sampler {
    /// A sampler for `prefix`; consumers idle for less than `alive_within` count as alive.
    pub fn new(prefix: &str, alive_within: Duration, history_len: usize) -> Self {
        Self {
            prefix: prefix.to_owned(),
            alive_within,
            history_len,
            last: HashMap::new(),
            history: HashMap::new(),
            services: Vec::new(),
            reply_streams: Vec::new(),
            discovered_at: None,
            discover_every: DISCOVERY_INTERVAL,
        }
    }

    /// Walks the keyspace every `every` instead of [`DISCOVERY_INTERVAL`] (Redis).
    #[must_use]
    pub fn discover_every(mut self, every: Duration) -> Self {
        self.discover_every = every;
        self
    }

    /// Makes the next sample walk the keyspace again.
    pub fn rediscover(&mut self) {
        self.discovered_at = None;
    }

    /// Whether a discovery is due.
    pub(crate) fn discovery_due(&self) -> bool {
        self.discovered_at
            .is_none_or(|at| at.elapsed() >= self.discover_every)
    }

    /// The rows of this sample: rates from the counters of the previous one, history kept for
    /// the services still there.
    pub(crate) fn rows(&mut self, counts: Vec<Counts>, now: u64) -> Vec<ServiceRow> {
        let mut rows = Vec::with_capacity(counts.len());
        for c in counts {
            let rate = match (c.added, self.last.get(&c.service)) {
                (Some(added), Some(&(before, at))) if now > at && added >= before => {
                    (added - before) as f64 * 1000.0 / (now - at) as f64
                }
                _ => 0.0,
            };
            if let Some(added) = c.added {
                self.last.insert(c.service.clone(), (added, now));
            }
            let history = self.history.entry(c.service.clone()).or_default();
            history.push_back(rate);
            while history.len() > self.history_len {
                history.pop_front();
            }
            rows.push(ServiceRow {
                length: c.length,
                entries_added: c.added,
                rate,
                pending: c.pending,
                lag: c.lag,
                oldest_pending_age_ms: c.oldest_pending_age_ms,
                consumers_alive: c.consumers_alive,
                consumers_dead: c.consumers_dead,
                dead_letters: c.dead_letters,
                history: history.iter().copied().collect(),
                service: c.service,
            });
        }
        let names: Vec<&str> = rows.iter().map(|s| s.service.as_str()).collect();
        self.history.retain(|k, _| names.contains(&k.as_str()));
        self.last.retain(|k, _| names.contains(&k.as_str()));
        rows
    }
}

/// A consumer on the service page.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerRow {
    /// `<service>:<instance_id>` (NATS: the server's instance id).
    pub name: String,
    /// Its group.
    pub group: String,
    /// Entries delivered to it and not acked.
    pub pending: u64,
    /// Since its last interaction with Redis, ms (NATS: 0, it answered just now).
    pub idle_ms: u64,
    /// Since its last delivery (read or claim that returned entries), ms; Redis ≥ 7.2 / Valkey.
    pub last_delivery_ms: Option<u64>,
    /// Idle for less than the alive window.
    pub alive: bool,
}

/// A pending entry.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRow {
    /// Entry id (NATS: the stream sequence).
    pub id: String,
    /// Its group.
    pub group: String,
    /// The consumer it was delivered to.
    pub consumer: String,
    /// Since its last delivery, ms.
    pub idle_ms: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
}

/// A dead letter on the service page.
#[derive(Debug, Clone, Serialize)]
pub struct DeadRow {
    /// Id in the dead-letter stream.
    pub id: String,
    /// Why it was moved there.
    pub reason: String,
    /// The id it had in the command stream.
    pub entry_id: String,
    /// Deliveries before it was moved, when that was the reason.
    pub deliveries: Option<u64>,
    /// The envelope as written (cut at [`ENVELOPE_CAP`] bytes).
    pub envelope: String,
    /// Whether `envelope` was cut.
    pub truncated: bool,
    /// The other fields (`type`, `reply-to`, …).
    pub fields: Vec<(String, String)>,
}

/// A method from the contract documents given with `--docs`.
#[derive(Debug, Clone, Serialize)]
pub struct MethodRow {
    /// Wire name without the service.
    pub name: String,
    /// A notification (no reply).
    pub notification: bool,
    /// Params JSON Schema.
    pub params: serde_json::Value,
    /// Result JSON Schema.
    pub result: Option<serde_json::Value>,
    /// Its description.
    pub description: Option<String>,
}

/// One service in detail.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDetail {
    /// Service name.
    pub service: String,
    /// Its command stream.
    pub stream: String,
    /// `XLEN`.
    pub length: u64,
    /// Delivered and not acked.
    pub pending_total: u64,
    /// Consumers of every group.
    pub consumers: Vec<ConsumerRow>,
    /// Pending entries, most delivered first (the next to be dead-lettered), at most
    /// [`PENDING_LIMIT`].
    pub pending: Vec<PendingRow>,
    /// Entries in the dead-letter stream.
    pub dead_total: u64,
    /// What the page should say besides the tables (NATS: requests held by no server that
    /// answered).
    pub note: Option<String>,
    /// Dead letters, newest first, at most [`DEAD_LETTER_LIMIT`]; in the service's event stream
    /// `None` (`null`) when they are the same as in the previous event.
    pub dead_letters: Option<Vec<DeadRow>>,
    /// The methods, when a contract document for the service was given.
    pub methods: Option<Vec<MethodRow>>,
}

pub(crate) fn cap(text: &str) -> (String, bool) {
    if text.len() <= ENVELOPE_CAP {
        return (text.to_owned(), false);
    }
    let mut end = ENVELOPE_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::{cap, ENVELOPE_CAP};

    #[test]
    fn envelopes_are_cut_on_a_char_boundary() {
        let text = "é".repeat(ENVELOPE_CAP);
        let (cut, truncated) = cap(&text);
        assert!(truncated);
        assert!(cut.len() <= ENVELOPE_CAP && cut.len() >= ENVELOPE_CAP - 1);
        assert_eq!(cap("{}"), ("{}".to_owned(), false));
    }
}
