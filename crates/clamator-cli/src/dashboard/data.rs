//! What the dashboard shows, read from Redis: the overview of every service under a prefix
//! (sampled once a second, with rates from each stream's `entries-added` counter) and one
//! service's consumers, pending entries and dead letters (read when asked).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use clamator::redis::redis::{self, Value};
use serde::Serialize;

use crate::conn::RawConn;
use crate::inspect::{self, as_map, as_string, as_u64, field, list, ConsumerInfo};

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
    /// `XLEN` of its command stream.
    pub length: u64,
    /// The stream's `entries-added` counter (every request and notification ever written).
    pub entries_added: Option<u64>,
    /// Entries added per second over the last sample.
    pub rate: f64,
    /// Delivered and not acked (all groups).
    pub pending: u64,
    /// Entries not yet delivered to any group (the backlog), when Redis reports it.
    pub lag: Option<u64>,
    /// Age of the oldest pending entry, ms.
    pub oldest_pending_age_ms: Option<u64>,
    /// Consumers idle for less than the alive window.
    pub consumers_alive: usize,
    /// Consumers idle for longer (a server that died or stopped; removed by live servers
    /// after `consumer_expiry`).
    pub consumers_dead: usize,
    /// Entries in `<prefix>:dead:<service>`.
    pub dead_letters: u64,
    /// `rate` of the last samples, oldest first.
    pub history: Vec<f64>,
}

/// One client reply stream in the overview.
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
    /// Why the last sample failed (Redis unreachable, …); the rest is the previous sample.
    pub error: Option<String>,
}

/// `entries-added` and the time of the last entry of a stream (`XINFO STREAM`).
async fn stream_counters(conn: &mut RawConn, key: &str) -> (Option<u64>, Option<u64>) {
    let info: Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap_or(Value::Nil);
    let info = as_map(&info);
    let last_ms = as_string(field(&info, "last-generated-id"))
        .split('-')
        .next()
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    (as_u64(field(&info, "entries-added")), last_ms)
}

/// How often, by default, the overview walks the keyspace for new services and reply streams
/// (one `SCAN` pass, `COUNT 1000 TYPE stream`: about half a second of Redis CPU per million
/// keys); in between, the streams it knows are sampled every interval, at a cost that does not
/// depend on how many unrelated keys Redis holds. A service page asked for a service not yet
/// known makes the next sample walk again.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// Keeps the counters between samples to turn them into rates, and the streams found by the
/// last discovery.
#[derive(Debug)]
pub struct Sampler {
    prefix: String,
    alive_within: Duration,
    history_len: usize,
    last: HashMap<String, (u64, u64)>,
    history: HashMap<String, VecDeque<f64>>,
    services: Vec<String>,
    reply_streams: Vec<String>,
    discovered_at: Option<std::time::Instant>,
    discover_every: Duration,
}

/// `XINFO STREAM` counters of `keys`, in order, read [`inspect::CONCURRENT_READS`] at a time.
async fn counters_of(conn: &RawConn, keys: Vec<String>) -> Vec<(Option<u64>, Option<u64>)> {
    inspect::read_each(conn, keys, |mut conn, key| async move {
        stream_counters(&mut conn, &key).await
    })
    .await
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

    /// Walks the keyspace every `every` instead of [`DISCOVERY_INTERVAL`].
    #[must_use]
    pub fn discover_every(mut self, every: Duration) -> Self {
        self.discover_every = every;
        self
    }

    /// Makes the next sample walk the keyspace again.
    pub fn rediscover(&mut self) {
        self.discovered_at = None;
    }

    /// Reads one sample: discovery when it is due, then every known stream.
    pub async fn sample(&mut self, conn: &mut RawConn) -> redis::RedisResult<Overview> {
        if self
            .discovered_at
            .is_none_or(|at| at.elapsed() >= self.discover_every)
        {
            let (services, reply_streams) = inspect::discover(conn, &self.prefix).await?;
            self.services = services;
            self.reply_streams = reply_streams;
            self.discovered_at = Some(std::time::Instant::now());
        }
        let infos = inspect::inspect_services(conn, &self.prefix, &self.services).await?;
        let counters = counters_of(conn, infos.iter().map(|s| s.stream.clone()).collect()).await;
        let now = inspect::now_ms();
        let alive_ms = self.alive_within.as_millis() as u64;
        let mut services = Vec::with_capacity(infos.len());
        for (s, (added, _)) in infos.into_iter().zip(counters) {
            let rate = match (added, self.last.get(&s.service)) {
                (Some(added), Some(&(before, at))) if now > at && added >= before => {
                    (added - before) as f64 * 1000.0 / (now - at) as f64
                }
                _ => 0.0,
            };
            if let Some(added) = added {
                self.last.insert(s.service.clone(), (added, now));
            }
            let history = self.history.entry(s.service.clone()).or_default();
            history.push_back(rate);
            while history.len() > self.history_len {
                history.pop_front();
            }
            let consumers: Vec<&ConsumerInfo> =
                s.groups.iter().flat_map(|g| g.consumers.iter()).collect();
            let alive = consumers.iter().filter(|c| c.idle_ms < alive_ms).count();
            services.push(ServiceRow {
                length: s.length,
                entries_added: added,
                rate,
                pending: s.groups.iter().map(|g| g.pending).sum(),
                lag: s.groups.iter().filter_map(|g| g.lag).max(),
                oldest_pending_age_ms: s
                    .groups
                    .iter()
                    .filter_map(|g| g.oldest_pending_age_ms)
                    .max(),
                consumers_alive: alive,
                consumers_dead: consumers.len() - alive,
                dead_letters: s.dead_letters,
                history: history.iter().copied().collect(),
                service: s.service,
            });
        }
        let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
        self.history.retain(|k, _| names.contains(&k.as_str()));
        self.last.retain(|k, _| names.contains(&k.as_str()));
        let lengths = inspect::read_each(
            conn,
            self.reply_streams.clone(),
            |mut conn, key| async move {
                redis::AsyncCommands::xlen::<_, u64>(&mut conn, &key)
                    .await
                    .ok()
            },
        )
        .await;
        let last = counters_of(conn, self.reply_streams.clone()).await;
        let mut reply_streams = Vec::with_capacity(self.reply_streams.len());
        for ((stream, length), (_, last_ms)) in self.reply_streams.iter().zip(lengths).zip(last) {
            // A reply stream that is gone (its client stopped) leaves the list at once.
            if length.unwrap_or(0) == 0 && last_ms.is_none() {
                continue;
            }
            reply_streams.push(ReplyRow {
                age_ms: last_ms.map(|ms| now.saturating_sub(ms)),
                stream: stream.clone(),
                length: length.unwrap_or(0),
            });
        }
        Ok(Overview {
            prefix: self.prefix.clone(),
            at_ms: now,
            interval_s: 0.0,
            services,
            reply_streams,
            error: None,
        })
    }
}

/// A consumer on the service page.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerRow {
    /// `<service>:<instance_id>`.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Entries delivered to it and not acked.
    pub pending: u64,
    /// Since its last interaction with Redis, ms.
    pub idle_ms: u64,
    /// Since its last delivery (read or claim that returned entries), ms; Redis ≥ 7.2 / Valkey.
    pub last_delivery_ms: Option<u64>,
    /// Idle for less than the alive window.
    pub alive: bool,
}

/// A pending entry.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRow {
    /// Entry id.
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
    /// Dead letters, newest first, at most [`DEAD_LETTER_LIMIT`]; in the service's event stream
    /// `None` (`null`) when they are the same as in the previous event.
    pub dead_letters: Option<Vec<DeadRow>>,
    /// The methods, when a contract document for the service was given.
    pub methods: Option<Vec<MethodRow>>,
}

fn cap(text: &str) -> (String, bool) {
    if text.len() <= ENVELOPE_CAP {
        return (text.to_owned(), false);
    }
    let mut end = ENVELOPE_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

/// Reads one service in detail.
pub async fn service_detail(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
    alive_within: Duration,
    methods: Option<Vec<MethodRow>>,
) -> redis::RedisResult<ServiceDetail> {
    let info = inspect::inspect_service(conn, prefix, service).await?;
    let alive_ms = alive_within.as_millis() as u64;
    let mut consumers = Vec::new();
    let mut pending = Vec::new();
    for g in &info.groups {
        for c in &g.consumers {
            consumers.push(ConsumerRow {
                name: c.name.clone(),
                group: g.name.clone(),
                pending: c.pending,
                idle_ms: c.idle_ms,
                last_delivery_ms: c.inactive_ms,
                alive: c.idle_ms < alive_ms,
            });
        }
        let raw: Value = redis::cmd("XPENDING")
            .arg(&info.stream)
            .arg(&g.name)
            .arg("-")
            .arg("+")
            .arg(10_000)
            .query_async(conn)
            .await
            .unwrap_or(Value::Nil);
        for row in list(&raw) {
            let row = list(&row);
            if row.len() < 4 {
                continue;
            }
            pending.push(PendingRow {
                id: as_string(row.first()),
                group: g.name.clone(),
                consumer: as_string(row.get(1)),
                idle_ms: as_u64(row.get(2)).unwrap_or(0),
                deliveries: as_u64(row.get(3)).unwrap_or(0),
            });
        }
    }
    pending.sort_by(|a, b| {
        b.deliveries
            .cmp(&a.deliveries)
            .then(b.idle_ms.cmp(&a.idle_ms))
    });
    pending.truncate(PENDING_LIMIT);
    let dead_letters: Vec<DeadRow> = crate::dlq::newest(conn, prefix, service, DEAD_LETTER_LIMIT)
        .await?
        .into_iter()
        .map(|l| {
            let envelope = l
                .fields
                .iter()
                .find(|(k, _)| k == "envelope")
                .map_or("", |(_, v)| v.as_str());
            let (envelope, truncated) = cap(envelope);
            DeadRow {
                id: l.id,
                reason: l.reason,
                entry_id: l.entry_id,
                deliveries: l.deliveries,
                envelope,
                truncated,
                fields: l
                    .fields
                    .into_iter()
                    .filter(|(k, _)| k != "envelope")
                    .collect(),
            }
        })
        .collect();
    Ok(ServiceDetail {
        service: info.service,
        stream: info.stream,
        length: info.length,
        pending_total: info.groups.iter().map(|g| g.pending).sum(),
        consumers,
        pending,
        dead_total: info.dead_letters,
        dead_letters: Some(dead_letters),
        methods,
    })
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
