//! Reclaiming the work of dead consumers, dead-lettering entries delivered too often, and
//! removing consumers that died long ago.
//!
//! A round walks the group's pending entries idle longer than `claim_idle` (`XPENDING … IDLE`,
//! following a cursor across rounds, so every pending entry is looked at) and, for each:
//! * held by this server (running, or waiting for its reply to be written): left alone;
//! * owned by a consumer whose server is alive — any of its consumers (one per service it
//!   serves) talked to Redis within the liveness window (`XINFO CONSUMERS`, one snapshot per
//!   round for the whole server): left alone, also when its delivery count is high (a live
//!   0.1.9 server re-claims its own long-running entries);
//! * delivered `max_deliveries` times: claimed and moved to the dead-letter stream;
//! * otherwise: claimed (`XCLAIM` with the same min-idle, so two servers never both take it)
//!   into a free handler slot and run.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use clamator_protocol::transport::Slot;
use redis::Value;

use super::service::{is_nogroup, ServiceCtx};
use super::shared::{parse_consumers, ConsumerInfo, Liveness};
use crate::entry::{parse_entries, string};
use crate::errors::is_denied;
use crate::settings::millis;

/// Pending entries looked at per `XPENDING` page.
const PAGE: usize = 128;

/// Where the next round continues in the pending entries list.
#[derive(Debug, Default)]
pub(crate) struct Cursor(Option<String>);

/// Removes a consumer only if it has nothing pending — atomically, so an entry it reads in the
/// meantime is never lost with it.
const DELETE_IDLE_CONSUMER: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
";

/// One pending entry, from `XPENDING … IDLE`.
struct PendingEntry {
    id: String,
    consumer: String,
    deliveries: u64,
}

fn parse_pending(v: &Value) -> Vec<PendingEntry> {
    let Value::Array(rows) = v else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|row| {
            let Value::Array(f) = row else { return None };
            let deliveries = match f.get(3)? {
                Value::Int(n) => u64::try_from(*n).ok()?,
                other => string(other)?.parse().ok()?,
            };
            Some(PendingEntry {
                id: string(f.first()?)?,
                consumer: string(f.get(1)?)?,
                deliveries,
            })
        })
        .collect()
}

/// What a reclaim round leaves to the consumer loop.
pub(crate) struct Round {
    /// The slots it did not use.
    pub(crate) slots: Vec<Slot>,
    /// More entries are waiting to be reclaimed than there were free slots: reclaim again at
    /// the next free slot, before reading new entries (their callers have waited longer).
    pub(crate) backlog: bool,
}

/// One reclaim round of a service with the free slots the consumer loop holds.
pub(crate) async fn round(
    ctx: &Arc<ServiceCtx>,
    mut slots: Vec<Slot>,
    cursor: &mut Cursor,
) -> Round {
    let mut backlog = false;
    let mut conn = ctx.conn.clone();
    let idle = millis(ctx.settings.claim_idle);
    let window = ctx.settings.liveness_window();
    let live = {
        let mut liveness = ctx.shared.liveness.lock().await;
        if liveness
            .as_ref()
            .is_none_or(|l| l.age() > ctx.settings.reclaim_period() / 2)
        {
            *liveness = snapshot(ctx).await.map(Arc::new);
        }
        liveness.clone()
    };
    let Some(live) = live else {
        return Round { slots, backlog };
    };
    loop {
        let start = cursor
            .0
            .as_deref()
            .map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let page: redis::RedisResult<Value> = redis::cmd("XPENDING")
            .arg(&ctx.stream)
            .arg(&ctx.group)
            .arg("IDLE")
            .arg(idle)
            .arg(&start)
            .arg("+")
            .arg(PAGE)
            .query_async(&mut conn)
            .await;
        let page = match page {
            Ok(page) => parse_pending(&page),
            Err(e) => {
                if !is_nogroup(&e) {
                    tracing::error!(service = ctx.name(), error = %e, "redis reclaim error: service={}; retried next reclaim period (entries of dead servers wait meanwhile; check the Redis connection and that the user may run XPENDING)", ctx.name());
                }
                return Round { slots, backlog };
            }
        };
        let last = page.last().map(|p| p.id.clone());
        let mut take = Vec::new();
        let mut exhausted = Vec::new();
        for p in &page {
            let ours = p.consumer == ctx.consumer;
            if (ours && ctx.inflight.contains(&p.id))
                || (!ours && live.is_alive(&p.consumer, window))
            {
                continue;
            }
            if p.deliveries >= u64::from(ctx.settings.max_deliveries) {
                exhausted.push(p);
            } else if take.len() < slots.len() {
                take.push(p);
            } else {
                backlog = true;
            }
        }
        tracing::debug!(
            service = ctx.name(),
            idle_entries = page.len(),
            to_reclaim = take.len(),
            to_dead_letter = exhausted.len(),
            free_slots = slots.len(),
            "reclaim round"
        );
        claim(ctx, &mut conn, idle, &take, &exhausted, &mut slots).await;
        if page.len() < PAGE {
            cursor.0 = None;
            break;
        }
        cursor.0 = last;
        if slots.is_empty() {
            backlog = true;
            break;
        }
    }
    Round { slots, backlog }
}

/// `XCLAIM`s the chosen entries (only if still idle) and runs or dead-letters them.
async fn claim(
    ctx: &Arc<ServiceCtx>,
    conn: &mut crate::conn::Conn,
    idle: u64,
    take: &[&PendingEntry],
    exhausted: &[&PendingEntry],
    slots: &mut Vec<Slot>,
) {
    if take.is_empty() && exhausted.is_empty() {
        return;
    }
    let ids: Vec<&str> = take
        .iter()
        .chain(exhausted)
        .map(|p| p.id.as_str())
        .collect();
    let claimed: redis::RedisResult<Value> = redis::cmd("XCLAIM")
        .arg(&ctx.stream)
        .arg(&ctx.group)
        .arg(&ctx.consumer)
        .arg(idle)
        .arg(&ids)
        .query_async(conn)
        .await;
    let claimed = match claimed {
        Ok(claimed) => parse_entries(claimed),
        Err(error) => {
            tracing::error!(service = ctx.name(), %error, "redis reclaim error (XCLAIM): service={}; retried next reclaim period (check that the user may run XCLAIM)", ctx.name());
            return;
        }
    };
    for entry in claimed {
        if let Some(p) = exhausted.iter().find(|p| p.id == entry.id) {
            ctx.dead_letter(entry, p.deliveries, p.consumer.clone());
        } else if let Some(slot) = slots.pop() {
            let from = take
                .iter()
                .find(|p| p.id == entry.id)
                .map_or("", |p| p.consumer.as_str());
            tracing::info!(service = ctx.name(), entry_id = %entry.id, from, "reclaimed a pending entry of a consumer that is gone");
            ctx.intake.counters().redelivered(ctx.name());
            ctx.spawn_entry(entry, slot);
        }
    }
}

/// Reads the consumers of every group this server reads (one round trip), removes consumers
/// that died long ago, and returns who is alive.
async fn snapshot(ctx: &Arc<ServiceCtx>) -> Option<Liveness> {
    let mut conn = ctx.conn.clone();
    let streams = Arc::clone(&ctx.all_streams);
    let cmds: Vec<redis::Cmd> = streams
        .iter()
        .map(|(stream, group)| {
            let mut cmd = redis::cmd("XINFO");
            cmd.arg("CONSUMERS").arg(stream).arg(group);
            cmd
        })
        .collect();
    let results: Vec<redis::RedisResult<Value>> = match conn.each(&cmds).await {
        Ok(results) => results,
        Err(error) => {
            tracing::warn!(service = ctx.name(), %error, "could not read the consumers of the pool (XINFO CONSUMERS); reclaim waits for the next period (allow +xinfo for the Redis user)");
            return None;
        }
    };
    let groups: Vec<Vec<ConsumerInfo>> = results
        .iter()
        .map(|r| r.as_ref().map(parse_consumers).unwrap_or_default())
        .collect();
    if ctx.shared.consumer_cleanup.load(Ordering::Relaxed) {
        for ((stream, group), consumers) in streams.iter().zip(&groups) {
            for c in consumers {
                if c.pending == 0
                    && c.idle_ms >= millis(ctx.settings.consumer_expiry())
                    && !c.name.ends_with(&format!(":{}", ctx.settings.instance_id))
                {
                    remove_consumer(ctx, &mut conn, stream, group, c).await;
                }
            }
        }
    }
    Some(Liveness::new(&groups))
}

async fn remove_consumer(
    ctx: &ServiceCtx,
    conn: &mut crate::conn::Conn,
    stream: &str,
    group: &str,
    c: &ConsumerInfo,
) {
    // EVALSHA, and EVAL when the script is not cached yet (EVAL caches it)
    let script = redis::Script::new(DELETE_IDLE_CONSUMER);
    let invoke = |cmd: &str, body: &str| {
        let mut invoke = redis::cmd(cmd);
        invoke.arg(body).arg(1).arg(stream).arg(group).arg(&c.name);
        invoke
    };
    let removed: redis::RedisResult<i64> =
        match invoke("EVALSHA", script.get_hash()).query_async(conn).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                invoke("EVAL", DELETE_IDLE_CONSUMER).query_async(conn).await
            }
            other => other,
        };
    match removed {
        Ok(0) => {
            tracing::info!(service = ctx.name(), consumer = %c.name, idle_ms = c.idle_ms, "removed a consumer that has been idle with nothing pending")
        }
        Ok(_) => {}
        Err(e) if is_denied(&e) => {
            ctx.shared.consumer_cleanup.store(false, Ordering::Relaxed);
            tracing::warn!(service = ctx.name(), error = %e, "dead consumers are not removed: the Redis user may not run the removal script (allow EVALSHA/EVAL or XGROUP DELCONSUMER)");
        }
        Err(error) => {
            tracing::debug!(service = ctx.name(), %error, consumer = %c.name, "could not remove an idle consumer")
        }
    }
}
