//! `clamator dlq`: list, replay and drop the dead letters of a service
//! (`<prefix>:dead:<service>`, written by Rust servers for entries delivered `max_deliveries`
//! times without being acked).

use clamator::redis::redis;

use super::conn::RawConn;
use clamator::redis::{command_stream, dead_letter_stream};
use serde::Serialize;

use crate::Done;

/// One dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// Why it was moved there.
    pub reason: String,
    /// The id it had in the command stream.
    pub entry_id: String,
    /// How many times it had been delivered (`None` when it was moved for another reason,
    /// e.g. a reply that can never be written).
    pub deliveries: Option<u64>,
    /// The original fields (`type`, `envelope`, `reply-to`, …).
    pub fields: Vec<(String, String)>,
}

type RawEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn to_letter((id, fields): RawEntry) -> DeadLetter {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f == k.as_bytes())
            .map(|(_, v)| text(v))
            .unwrap_or_default()
    };
    DeadLetter {
        reason: get("dead-reason"),
        entry_id: get("dead-entry-id"),
        deliveries: get("dead-deliveries").parse().ok(),
        fields: fields
            .iter()
            .filter(|(k, _)| !k.starts_with(b"dead-"))
            .map(|(k, v)| (text(k), text(v)))
            .collect(),
        id,
    }
}

async fn read(conn: &mut RawConn, stream: &str) -> redis::RedisResult<Vec<RawEntry>> {
    redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
}

/// The dead letters of `service`, oldest first.
pub async fn list(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
) -> redis::RedisResult<Vec<DeadLetter>> {
    Ok(read(conn, &dead_letter_stream(prefix, service))
        .await?
        .into_iter()
        .map(to_letter)
        .collect())
}

/// The newest `count` dead letters of `service`, newest first (`XREVRANGE … COUNT`: a long
/// dead-letter stream is not read whole).
pub async fn newest(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
    count: usize,
) -> redis::RedisResult<Vec<DeadLetter>> {
    let entries: Vec<RawEntry> = redis::cmd("XREVRANGE")
        .arg(dead_letter_stream(prefix, service))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(entries.into_iter().map(to_letter).collect())
}

/// The dead letters with these ids (all when `ids` is empty), and the ids that are not there.
fn selected(entries: Vec<RawEntry>, ids: &[String]) -> (Vec<RawEntry>, Vec<String>) {
    let unknown = ids
        .iter()
        .filter(|id| !entries.iter().any(|(e, _)| e == *id))
        .cloned()
        .collect();
    let chosen = entries
        .into_iter()
        .filter(|(id, _)| ids.is_empty() || ids.contains(id))
        .collect();
    (chosen, unknown)
}

/// Puts dead letters back on the command stream with their original fields (all of them when
/// `ids` is empty) and removes them from the dead-letter stream.
pub async fn replay(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
    ids: &[String],
) -> redis::RedisResult<Done> {
    let dead = dead_letter_stream(prefix, service);
    let (entries, unknown) = selected(read(conn, &dead).await?, ids);
    for (id, fields) in &entries {
        // two commands, not one pipeline: on a cluster the two streams are on different nodes
        let mut add = redis::cmd("XADD");
        add.arg(command_stream(prefix, service)).arg("*");
        for (k, v) in fields.iter().filter(|(k, _)| !k.starts_with(b"dead-")) {
            add.arg(k.as_slice()).arg(v.as_slice());
        }
        add.query_async::<redis::Value>(conn).await?;
        redis::cmd("XDEL")
            .arg(&dead)
            .arg(id)
            .query_async::<i64>(conn)
            .await?;
    }
    Ok(Done {
        count: entries.len(),
        unknown,
    })
}

/// Deletes dead letters (all of them when `ids` is empty).
pub async fn drop(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
    ids: &[String],
) -> redis::RedisResult<Done> {
    let dead = dead_letter_stream(prefix, service);
    let (entries, unknown) = selected(read(conn, &dead).await?, ids);
    for (id, _) in &entries {
        redis::cmd("XDEL")
            .arg(&dead)
            .arg(id)
            .query_async::<i64>(conn)
            .await?;
    }
    Ok(Done {
        count: entries.len(),
        unknown,
    })
}
