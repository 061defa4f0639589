//! `clamator inspect`: what a key prefix holds in Redis — command streams with their groups,
//! consumers and pending entries, reply streams, dead-letter streams.

use std::time::{SystemTime, UNIX_EPOCH};

use clamator::redis::redis::{self, AsyncCommands, Value};

use super::conn::RawConn;
use serde::Serialize;

/// One consumer of a group.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerInfo {
    /// `<service>:<instance_id>`.
    pub name: String,
    /// Entries delivered to it and not acked.
    pub pending: u64,
    /// Milliseconds since its last interaction.
    pub idle_ms: u64,
    /// Milliseconds since its last successful read or claim (Redis ≥ 7.2 / Valkey; `None`
    /// on older servers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_ms: Option<u64>,
}

/// One consumer group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupInfo {
    /// Group name (the service).
    pub name: String,
    /// Entries delivered and not acked.
    pub pending: u64,
    /// Entries not yet delivered to the group, if Redis reports it (≥ 7).
    pub lag: Option<u64>,
    /// Age of the oldest pending entry, ms.
    pub oldest_pending_age_ms: Option<u64>,
    /// Its consumers.
    pub consumers: Vec<ConsumerInfo>,
}

/// One service's command stream.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceInfo {
    /// Service name.
    pub service: String,
    /// The stream key.
    pub stream: String,
    /// `XLEN`.
    pub length: u64,
    /// Consumer groups.
    pub groups: Vec<GroupInfo>,
    /// Entries in `<prefix>:dead:<service>`.
    pub dead_letters: u64,
}

/// One client reply stream.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyStreamInfo {
    /// The key.
    pub stream: String,
    /// `XLEN`.
    pub length: u64,
}

/// Everything under a prefix.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The key prefix.
    pub prefix: String,
    /// Services (command streams), by name.
    pub services: Vec<ServiceInfo>,
    /// Reply streams.
    pub reply_streams: Vec<ReplyStreamInfo>,
}

pub(crate) fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| {
            matches!(k, Value::BulkString(b) if b == name.as_bytes())
                || matches!(k, Value::SimpleString(s) if s == name)
        })
        .map(|(_, v)| v)
}

pub(crate) fn as_map(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m.clone(),
        Value::Array(a) => a
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

pub(crate) fn as_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        _ => String::new(),
    }
}

pub(crate) fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads one service's command stream: length, groups with their consumers and pending
/// entries, dead letters.
pub async fn inspect_service(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
) -> redis::RedisResult<ServiceInfo> {
    let now_ms = now_ms();
    let stream = clamator::redis::command_stream(prefix, service);
    let length: u64 = conn.xlen(&stream).await.unwrap_or(0);
    let groups_raw: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&stream)
        .query_async(conn)
        .await
        .unwrap_or(Value::Nil);
    let mut groups = Vec::new();
    for g in list(&groups_raw) {
        let g = as_map(&g);
        let name = as_string(field(&g, "name"));
        let consumers_raw: Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&stream)
            .arg(&name)
            .query_async(conn)
            .await
            .unwrap_or(Value::Nil);
        let consumers = list(&consumers_raw)
            .iter()
            .map(|c| {
                let c = as_map(c);
                ConsumerInfo {
                    name: as_string(field(&c, "name")),
                    pending: as_u64(field(&c, "pending")).unwrap_or(0),
                    idle_ms: as_u64(field(&c, "idle")).unwrap_or(0),
                    inactive_ms: as_u64(field(&c, "inactive")),
                }
            })
            .collect();
        let summary: Value = redis::cmd("XPENDING")
            .arg(&stream)
            .arg(&name)
            .query_async(conn)
            .await
            .unwrap_or(Value::Nil);
        let oldest = list(&summary).get(1).map(|v| as_string(Some(v)));
        let oldest_pending_age_ms = oldest
            .and_then(|id| id.split('-').next().and_then(|ms| ms.parse::<u64>().ok()))
            .map(|ms| now_ms.saturating_sub(ms));
        groups.push(GroupInfo {
            pending: as_u64(field(&g, "pending")).unwrap_or(0),
            lag: as_u64(field(&g, "lag")),
            oldest_pending_age_ms,
            consumers,
            name,
        });
    }
    let dead_letters: u64 = conn
        .xlen(clamator::redis::dead_letter_stream(prefix, service))
        .await
        .unwrap_or(0);
    Ok(ServiceInfo {
        service: service.to_owned(),
        stream,
        length,
        groups,
        dead_letters,
    })
}

/// Services read at once by [`inspect`] and the dashboard (their commands share round trips on
/// the multiplexed connection).
pub const CONCURRENT_READS: usize = 32;

/// `read(conn, item)` for every item, [`CONCURRENT_READS`] at a time, results in order.
pub async fn read_each<T, R, F, Fut>(conn: &RawConn, items: Vec<T>, read: F) -> Vec<R>
where
    F: Fn(RawConn, T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    use futures::StreamExt;
    let reads: Vec<Fut> = items
        .into_iter()
        .map(|item| read(conn.clone(), item))
        .collect();
    futures::stream::iter(reads)
        .buffered(CONCURRENT_READS)
        .collect()
        .await
}

/// The services under `prefix`: the names of its command streams, sorted.
pub async fn services(conn: &mut RawConn, prefix: &str) -> redis::RedisResult<Vec<String>> {
    Ok(discover(conn, prefix).await?.0)
}

/// One walk of the keyspace for the streams under `prefix`: the services (names of their
/// command streams) and the client reply streams, each sorted.
pub async fn discover(
    conn: &mut RawConn,
    prefix: &str,
) -> redis::RedisResult<(Vec<String>, Vec<String>)> {
    let (cmds, replies) = (format!("{prefix}:cmds:"), format!("{prefix}:replies:"));
    let mut services = Vec::new();
    let mut reply_streams = Vec::new();
    for key in conn.scan_streams(&format!("{prefix}:*")).await? {
        if let Some(service) = key.strip_prefix(&cmds) {
            services.push(service.to_owned());
        } else if key.starts_with(&replies) {
            reply_streams.push(key);
        }
    }
    Ok((services, reply_streams))
}

/// Reads `services` (in that order), [`CONCURRENT_READS`] at a time.
pub async fn inspect_services(
    conn: &RawConn,
    prefix: &str,
    services: &[String],
) -> redis::RedisResult<Vec<ServiceInfo>> {
    read_each(conn, services.to_vec(), |mut conn, service| {
        let prefix = prefix.to_owned();
        async move { inspect_service(&mut conn, &prefix, &service).await }
    })
    .await
    .into_iter()
    .collect()
}

/// Reads the layout of `prefix` from Redis.
pub async fn inspect(conn: &mut RawConn, prefix: &str) -> redis::RedisResult<Report> {
    let (services, replies) = discover(conn, prefix).await?;
    let services = inspect_services(conn, prefix, &services).await?;
    let reply_streams = read_each(conn, replies, |mut conn, stream| async move {
        let length: u64 = conn.xlen(&stream).await.unwrap_or(0);
        ReplyStreamInfo { stream, length }
    })
    .await;
    Ok(Report {
        prefix: prefix.to_owned(),
        services,
        reply_streams,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "prefix {}", self.prefix)?;
        if self.services.is_empty() {
            writeln!(f, "  no command streams")?;
        }
        for s in &self.services {
            writeln!(
                f,
                "\nservice {:<24} stream {}  length {}  dead letters {}",
                s.service, s.stream, s.length, s.dead_letters
            )?;
            for g in &s.groups {
                let oldest = g
                    .oldest_pending_age_ms
                    .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
                let lag = g.lag.map_or("-".into(), |l| l.to_string());
                writeln!(
                    f,
                    "  group {:<20} pending {:<6} lag {:<6} oldest pending {oldest}",
                    g.name, g.pending, lag
                )?;
                writeln!(f, "    {:<48} {:>8} {:>12}", "consumer", "pending", "idle")?;
                for c in &g.consumers {
                    writeln!(
                        f,
                        "    {:<48} {:>8} {:>10.1} s",
                        c.name,
                        c.pending,
                        c.idle_ms as f64 / 1000.0
                    )?;
                }
            }
        }
        writeln!(f, "\nreply streams: {}", self.reply_streams.len())?;
        for r in &self.reply_streams {
            writeln!(f, "  {:<60} length {}", r.stream, r.length)?;
        }
        Ok(())
    }
}
