//! State shared by all services of a server: the Redis clock offset, what the ACL
//! allows, and who in the pool is alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use redis::Value;

use crate::entry::string;
use crate::settings::local_now_ms;

/// One consumer of a group, from `XINFO CONSUMERS`.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerInfo {
    pub(crate) name: String,
    pub(crate) pending: u64,
    /// Milliseconds since its last interaction with Redis. Redis ≥ 7.2 (and Valkey) count any
    /// attempt (a blocking read that got nothing, a reclaim that claimed nothing); Redis 7.0
    /// only reads and claims that returned entries.
    pub(crate) idle_ms: u64,
}

/// Parses an `XINFO CONSUMERS` reply (RESP2 flat pairs or RESP3 maps).
pub(crate) fn parse_consumers(v: &Value) -> Vec<ConsumerInfo> {
    let Value::Array(consumers) = v else {
        return Vec::new();
    };
    consumers
        .iter()
        .filter_map(|c| {
            let pairs: Vec<(&Value, &Value)> = match c {
                Value::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|p| Some((p.first()?, p.get(1)?)))
                    .collect(),
                Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
                _ => return None,
            };
            let field = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| string(k).as_deref() == Some(name))
                    .map(|(_, v)| *v)
            };
            let int = |v: Option<&Value>| match v {
                Some(Value::Int(i)) => u64::try_from(*i).ok(),
                Some(other) => string(other).and_then(|s| s.parse().ok()),
                None => None,
            };
            Some(ConsumerInfo {
                name: string(field("name")?)?,
                pending: int(field("pending")).unwrap_or(0),
                idle_ms: int(field("idle")).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

/// The instance part of a consumer name `<service>:<instance>` (service names have no `:`).
pub(crate) fn instance_of(consumer: &str) -> &str {
    consumer
        .split_once(':')
        .map_or(consumer, |(_, instance)| instance)
}

/// Who in the pool is alive, from the consumers of every group this server reads: an
/// instance is alive when any of its consumers (one per service it serves) talked to Redis
/// within the liveness window.
#[derive(Debug)]
pub(crate) struct Liveness {
    taken: Instant,
    idle_by_instance: HashMap<String, u64>,
}

impl Liveness {
    pub(crate) fn new(groups: &[Vec<ConsumerInfo>]) -> Self {
        let mut idle_by_instance: HashMap<String, u64> = HashMap::new();
        for c in groups.iter().flatten() {
            let idle = idle_by_instance
                .entry(instance_of(&c.name).to_owned())
                .or_insert(u64::MAX);
            *idle = (*idle).min(c.idle_ms);
        }
        Self {
            taken: Instant::now(),
            idle_by_instance,
        }
    }

    pub(crate) fn age(&self) -> Duration {
        self.taken.elapsed()
    }

    /// Whether the instance of `consumer` talked to Redis within `window` (as of now).
    pub(crate) fn is_alive(&self, consumer: &str, window: Duration) -> bool {
        let age = u64::try_from(self.age().as_millis()).unwrap_or(u64::MAX);
        self.idle_by_instance
            .get(instance_of(consumer))
            .is_some_and(|idle| {
                idle.saturating_add(age) < u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
            })
    }
}

/// Server-wide state.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Redis clock minus local clock, ms (deadlines are computed on Redis's clock).
    clock_offset_ms: AtomicI64,
    /// `PEXPIRE` allowed.
    pub(crate) reply_ttl: AtomicBool,
    /// Dead consumers can be removed.
    pub(crate) consumer_cleanup: AtomicBool,
    /// The last liveness snapshot of the pool (taken by one service's reclaim round, read by
    /// all of them).
    pub(crate) liveness: tokio::sync::Mutex<Option<std::sync::Arc<Liveness>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            clock_offset_ms: AtomicI64::new(0),
            reply_ttl: AtomicBool::new(true),
            consumer_cleanup: AtomicBool::new(true),
            liveness: tokio::sync::Mutex::new(None),
        }
    }
}

impl Shared {
    /// Milliseconds since the epoch on Redis's clock.
    pub(crate) fn redis_now_ms(&self) -> i64 {
        local_now_ms().saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// Reads Redis's clock (`TIME`); returns whether it is permitted.
    pub(crate) async fn sync_clock(&self, conn: &mut Conn) -> bool {
        match crate::settings::redis_clock_offset_ms(conn).await {
            Ok(offset) => {
                self.clock_offset_ms.store(offset, Ordering::Relaxed);
                true
            }
            Err(e) if crate::errors::is_denied(&e) => false,
            Err(error) => {
                tracing::debug!(%error, "could not read the Redis clock");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn consumers_and_liveness() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bs("name"),
                bs("svc:py1"),
                bs("pending"),
                Value::Int(1),
                bs("idle"),
                Value::Int(5000),
                bs("inactive"),
                Value::Int(9000),
            ]),
            Value::Map(vec![
                (bs("name"), bs("svc:rs:host:1")),
                (bs("pending"), Value::Int(0)),
                (bs("idle"), Value::Int(10)),
            ]),
        ]);
        let consumers = parse_consumers(&reply);
        assert_eq!(consumers.len(), 2);
        assert_eq!(consumers[0].idle_ms, 5000);
        assert_eq!(consumers[1].name, "svc:rs:host:1");
        assert_eq!(instance_of(&consumers[1].name), "rs:host:1");
        // py1 is stale in group svc but alive in group other
        let other = vec![ConsumerInfo {
            name: "other:py1".into(),
            pending: 0,
            idle_ms: 200,
        }];
        let live = Liveness::new(&[consumers, other]);
        let window = Duration::from_secs(2);
        assert!(live.is_alive("svc:py1", window));
        assert!(live.is_alive("svc:rs:host:1", window));
        assert!(!live.is_alive("svc:gone", window));
        let stale = Liveness::new(&[vec![ConsumerInfo {
            name: "svc:old".into(),
            pending: 1,
            idle_ms: 2500,
        }]]);
        assert!(!stale.is_alive("svc:old", window));
    }
}
