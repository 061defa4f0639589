//! The dashboard's reads over Redis: the overview (`XINFO` of every known command stream, the
//! keyspace walked for new ones every `discover_every`) and one service in detail.

use std::time::Duration;

use clamator::redis::redis::{self, Value};

use super::conn::RawConn;
use super::inspect::{self, as_map, as_string, as_u64, field, list, ConsumerInfo};
use crate::dashboard::data::{
    cap, ConsumerRow, Counts, DeadRow, MethodRow, Overview, PendingRow, ReplyRow, Sampler,
    ServiceDetail, DEAD_LETTER_LIMIT, PENDING_LIMIT,
};

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

/// `XINFO STREAM` counters of `keys`, in order, read [`inspect::CONCURRENT_READS`] at a time.
async fn counters_of(conn: &RawConn, keys: Vec<String>) -> Vec<(Option<u64>, Option<u64>)> {
    inspect::read_each(conn, keys, |mut conn, key| async move {
        stream_counters(&mut conn, &key).await
    })
    .await
}

/// Reads one sample: discovery when it is due, then every known stream.
pub async fn sample(sampler: &mut Sampler, conn: &mut RawConn) -> redis::RedisResult<Overview> {
    if sampler.discovery_due() {
        let (services, reply_streams) = inspect::discover(conn, &sampler.prefix).await?;
        sampler.services = services;
        sampler.reply_streams = reply_streams;
        sampler.discovered_at = Some(std::time::Instant::now());
    }
    let infos = inspect::inspect_services(conn, &sampler.prefix, &sampler.services).await?;
    let counters = counters_of(conn, infos.iter().map(|s| s.stream.clone()).collect()).await;
    let now = inspect::now_ms();
    let alive_ms = sampler.alive_within.as_millis() as u64;
    let mut counts = Vec::with_capacity(infos.len());
    for (s, (added, _)) in infos.into_iter().zip(counters) {
        let consumers: Vec<&ConsumerInfo> =
            s.groups.iter().flat_map(|g| g.consumers.iter()).collect();
        let alive = consumers.iter().filter(|c| c.idle_ms < alive_ms).count();
        counts.push(Counts {
            length: s.length,
            added,
            pending: s.groups.iter().map(|g| g.pending).sum(),
            lag: s.groups.iter().filter_map(|g| g.lag).max(),
            oldest_pending_age_ms: s
                .groups
                .iter()
                .filter_map(|g| g.oldest_pending_age_ms)
                .max(),
            consumers_alive: alive,
            consumers_dead: Some(consumers.len() - alive),
            dead_letters: s.dead_letters,
            service: s.service,
        });
    }
    let services = sampler.rows(counts, now);
    let lengths = inspect::read_each(
        conn,
        sampler.reply_streams.clone(),
        |mut conn, key| async move {
            redis::AsyncCommands::xlen::<_, u64>(&mut conn, &key)
                .await
                .ok()
        },
    )
    .await;
    let last = counters_of(conn, sampler.reply_streams.clone()).await;
    let mut reply_streams = Vec::with_capacity(sampler.reply_streams.len());
    for ((stream, length), (_, last_ms)) in sampler.reply_streams.iter().zip(lengths).zip(last) {
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
        broker: "redis",
        prefix: sampler.prefix.clone(),
        at_ms: now,
        interval_s: 0.0,
        services,
        reply_streams,
        error: None,
    })
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
    let dead_letters: Vec<DeadRow> = super::dlq::newest(conn, prefix, service, DEAD_LETTER_LIMIT)
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
        note: None,
        dead_letters: Some(dead_letters),
        methods,
    })
}
