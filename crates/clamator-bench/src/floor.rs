//! The floor: a minimal hand-written request/reply pair on the clamator wire, with the raw
//! `redis` crate and no clamator code, to measure how close clamator comes to what Redis
//! allows. Same streams, fields and envelopes; no validation, no timeouts, no deadlines, no
//! heartbeat, no reclaim, no TTLs.
//!
//! * server: `XREADGROUP COUNT 256 BLOCK 1000`, then per read batch one pipeline — a reply
//!   `XADD` per entry, one `XACK` and one `XDEL` carrying all ids — sent without waiting for it
//!   before the next read;
//! * client: `XADD` per call (`type`, `envelope`, `reply-to`), one reader `XREAD COUNT 1024
//!   BLOCK 1000` completing the waiting calls; the reply stream is deleted at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clamator::redis::redis;
use clamator_cli::bench::BenchReport;
use redis::streams::{StreamReadOptions, StreamReadReply};
use serde_json::{json, Value};
use tokio::sync::oneshot;

fn field(map: &HashMap<String, redis::Value>, name: &str) -> Option<Vec<u8>> {
    match map.get(name)? {
        redis::Value::BulkString(b) => Some(b.clone()),
        redis::Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

/// The floor server for `arith.add` and `arith.echoText` under `<prefix>:cmds:arith`.
pub(crate) async fn server(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut reader = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let writer = client.get_multiplexed_async_connection().await?;
    let stream = format!("{prefix}:cmds:arith");
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("arith")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut reader)
        .await;
    if let Err(e) = created {
        if e.code() != Some("BUSYGROUP") {
            return Err(e);
        }
    }
    println!("READY");
    let opts = StreamReadOptions::default()
        .group("arith", "arith:floor")
        .count(256)
        .block(1000);
    loop {
        let read: StreamReadReply =
            redis::AsyncCommands::xread_options(&mut reader, &[stream.as_str()], &[">"], &opts)
                .await?;
        let entries: Vec<_> = read.keys.into_iter().flat_map(|k| k.ids).collect();
        if entries.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        let mut ids = Vec::with_capacity(entries.len());
        for entry in &entries {
            ids.push(entry.id.as_str());
            let (Some(raw), Some(reply_to)) =
                (field(&entry.map, "envelope"), field(&entry.map, "reply-to"))
            else {
                continue;
            };
            let Ok(request) = serde_json::from_slice::<Value>(&raw) else {
                continue;
            };
            let params = &request["params"];
            let result = match request["method"].as_str() {
                Some("arith.add") => json!({
                    "sum": params["a"].as_f64().unwrap_or(0.0) + params["b"].as_f64().unwrap_or(0.0)
                }),
                _ => json!({"text": params["text"]}),
            };
            let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
            pipe.cmd("XADD")
                .arg(reply_to)
                .arg("*")
                .arg("type")
                .arg("rpc")
                .arg("envelope")
                .arg(reply.to_string())
                .ignore();
        }
        pipe.cmd("XACK")
            .arg(&stream)
            .arg("arith")
            .arg(&ids)
            .ignore();
        pipe.cmd("XDEL").arg(&stream).arg(&ids).ignore();
        let mut writer = writer.clone();
        tokio::spawn(async move {
            let _: redis::RedisResult<()> = pipe.query_async(&mut writer).await;
        });
    }
}

type Waiters = Mutex<HashMap<String, oneshot::Sender<()>>>;

/// The floor client: `calls` calls of `method` with `params`, `in_flight` at a time.
pub(crate) async fn client(
    url: &str,
    prefix: &str,
    method: &str,
    params: &Value,
    calls: usize,
    in_flight: usize,
) -> redis::RedisResult<BenchReport> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut reader = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let conn = client.get_multiplexed_async_connection().await?;
    let stream = format!(
        "{prefix}:cmds:{}",
        method.split('.').next().unwrap_or("arith")
    );
    let replies = format!("{prefix}:replies:floor-{}", std::process::id());
    let waiters: Arc<Waiters> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_task = {
        let (waiters, replies, done) = (waiters.clone(), replies.clone(), done.clone());
        tokio::spawn(async move {
            let mut last = "0".to_owned();
            let opts = StreamReadOptions::default().count(1024).block(200);
            while !done.load(Ordering::Relaxed) {
                let read: redis::RedisResult<StreamReadReply> =
                    redis::AsyncCommands::xread_options(
                        &mut reader,
                        &[replies.as_str()],
                        &[last.as_str()],
                        &opts,
                    )
                    .await;
                let Ok(read) = read else { continue };
                for entry in read.keys.into_iter().flat_map(|k| k.ids) {
                    last = entry.id.clone();
                    let Some(raw) = field(&entry.map, "envelope") else {
                        continue;
                    };
                    let Ok(reply) = serde_json::from_slice::<Value>(&raw) else {
                        continue;
                    };
                    let id = reply["id"].as_str().unwrap_or_default().to_owned();
                    if let Some(w) = waiters.lock().expect("waiters").remove(&id) {
                        let _ = w.send(());
                    }
                }
            }
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (conn, waiters, next) = (conn.clone(), waiters.clone(), next.clone());
            let (stream, replies, method, params) = (
                stream.clone(),
                replies.clone(),
                method.to_owned(),
                params.clone(),
            );
            tokio::spawn(async move {
                let mut conn = conn;
                let mut latencies = Vec::new();
                let mut failed = 0usize;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= calls as u64 {
                        break;
                    }
                    let id = format!("f{n}");
                    let envelope =
                        json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
                    let (tx, rx) = oneshot::channel();
                    waiters.lock().expect("waiters").insert(id, tx);
                    let t = Instant::now();
                    let added: redis::RedisResult<String> = redis::cmd("XADD")
                        .arg(&stream)
                        .arg("*")
                        .arg("type")
                        .arg("rpc")
                        .arg("envelope")
                        .arg(envelope.to_string())
                        .arg("reply-to")
                        .arg(&replies)
                        .query_async(&mut conn)
                        .await;
                    let answered = match added {
                        Ok(_) => tokio::time::timeout(Duration::from_secs(30), rx)
                            .await
                            .is_ok(),
                        Err(_) => false,
                    };
                    if answered {
                        latencies.push(t.elapsed());
                    } else {
                        failed += 1;
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for w in workers {
        if let Ok((l, f)) = w.await {
            latencies.extend(l);
            failed += f;
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = reader_task.await;
    let mut conn = conn;
    let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&replies).query_async(&mut conn).await;
    let errors = std::iter::once(("timeout".to_owned(), failed))
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(BenchReport::from_latencies(
        latencies, errors, elapsed, in_flight,
    ))
}
