//! Mixed worker pools (issue 18): a Rust server next to the released Python 0.1.9 server must
//! not reclaim (or dead-letter) the live work of the Python server, and must reclaim the work
//! of one that died.
//!
//! The liveness signal is `XINFO CONSUMERS`' `idle` of any consumer of the Python server's
//! instance. Redis >= 7.2 and Valkey count every attempted interaction there (the 0.1.9
//! server's blocking reads and reclaim calls refresh it every second); Redis 7.0 counts only
//! reads and claims that returned entries, so there a Python server is known alive only while
//! it keeps receiving entries (README, "Mixed pools").

mod common;

use std::time::{Duration, Instant};

use clamator::redis::{redis, RedisRpcClient};
use clamator::RpcClient;
use clamator_test_support::{Engine, RedisServer};
use common::{setup_python, setup_valkey, spawn_server, Lang};
use serde_json::{json, Value};

const CLAIM_IDLE_MS: u64 = 1000;

fn conn(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// `(consumer, deliveries)` of the pending entries of a group.
fn pending(c: &mut redis::Connection, stream: &str, group: &str) -> Vec<(String, i64)> {
    let rows: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(10)
        .query(c)
        .unwrap_or_default();
    rows.into_iter()
        .map(|(_, consumer, _, n)| (consumer, n))
        .collect()
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < within, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

async fn client(redis: &RedisServer, prefix: &str) -> RedisRpcClient {
    let c = RedisRpcClient::builder()
        .key_prefix(prefix)
        .url(redis.url())
        .build()
        .unwrap();
    c.start().await.unwrap();
    c
}

fn slow_add(c: &RedisRpcClient, sleep_ms: u64) -> tokio::task::JoinHandle<Value> {
    let c = c.clone();
    tokio::spawn(async move {
        c.call_value(
            "arith",
            "slowAdd",
            json!({"a": 1, "b": 2, "sleepMs": sleep_ms}),
            Some(Duration::from_secs(30)),
        )
        .await
        .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_python_servers_long_handler_is_neither_run_nor_dead_lettered_by_a_rust_server() {
    setup_valkey();
    let python = setup_python();
    let redis = RedisServer::builder().engine(Engine::Valkey).start();
    let py = spawn_server(
        Lang::Py,
        &python,
        &redis.url(),
        "mix",
        "py1",
        CLAIM_IDLE_MS,
        &[],
    );
    let c = client(&redis, "mix").await;
    let call = slow_add(&c, 6000);
    let mut r = conn(&redis);
    tokio::task::block_in_place(|| {
        wait_for(
            "the Python server holds the call",
            Duration::from_secs(10),
            || pending(&mut r, "mix:cmds:arith", "arith") == [("arith:py1".to_owned(), 1)],
        )
    });
    // a Rust server joins the pool; it would dead-letter at the second delivery
    let rs = spawn_server(
        Lang::Rust,
        &python,
        &redis.url(),
        "mix",
        "rs1",
        CLAIM_IDLE_MS,
        &["--max-deliveries", "2"],
    );
    assert_eq!(call.await.unwrap(), json!({"sum": 3.0}));
    let dead: i64 = redis::cmd("XLEN")
        .arg("mix:dead:arith")
        .query(&mut r)
        .unwrap();
    let rs_handled = rs.terminate();
    let py_handled = py.terminate();
    assert_eq!(
        rs_handled,
        Some(0),
        "the Rust server ran the live Python handler"
    );
    assert_eq!(dead, 0, "the Rust server dead-lettered live work");
    // 0.1.9 re-runs its own long handlers (its reclaim loop claims its own entry): say so
    eprintln!("the Python server ran the handler {py_handled:?} times");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_7_0_a_python_server_that_keeps_receiving_entries_is_known_alive() {
    let python = setup_python();
    let redis = RedisServer::builder().engine(Engine::Redis).start();
    let py = spawn_server(
        Lang::Py,
        &python,
        &redis.url(),
        "drip",
        "py1",
        CLAIM_IDLE_MS,
        &[],
    );
    let c = client(&redis, "drip").await;
    let call = slow_add(&c, 5000);
    let mut r = conn(&redis);
    tokio::task::block_in_place(|| {
        wait_for(
            "the Python server holds the call",
            Duration::from_secs(10),
            || pending(&mut r, "drip:cmds:arith", "arith") == [("arith:py1".to_owned(), 1)],
        )
    });
    let rs = spawn_server(
        Lang::Rust,
        &python,
        &redis.url(),
        "drip",
        "rs1",
        CLAIM_IDLE_MS,
        &[],
    );
    // the Python server's notifications consumer keeps receiving entries (a busy server)
    let drip = tokio::spawn({
        let c = c.clone();
        async move {
            loop {
                c.notify_value("notifications", "ping", json!({"tag": "drip"}))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    });
    let mut owners = Vec::new();
    while !call.is_finished() {
        owners.extend(pending(&mut r, "drip:cmds:arith", "arith"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drip.abort();
    assert_eq!(call.await.unwrap(), json!({"sum": 3.0}));
    assert!(
        owners.iter().all(|(consumer, _)| consumer == "arith:py1"),
        "the Rust server took the live entry: {owners:?}"
    );
    drop(rs);
    drop(py);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_python_servers_entry_is_reclaimed_within_about_two_claim_idle_periods() {
    let python = setup_python();
    let redis = RedisServer::start();
    let py = spawn_server(
        Lang::Py,
        &python,
        &redis.url(),
        "kill",
        "py1",
        CLAIM_IDLE_MS,
        &[],
    );
    let c = client(&redis, "kill").await;
    let call = slow_add(&c, 1500);
    let mut r = conn(&redis);
    tokio::task::block_in_place(|| {
        wait_for(
            "the Python server holds the call",
            Duration::from_secs(10),
            || pending(&mut r, "kill:cmds:arith", "arith") == [("arith:py1".to_owned(), 1)],
        )
    });
    let rs = spawn_server(
        Lang::Rust,
        &python,
        &redis.url(),
        "kill",
        "rs1",
        CLAIM_IDLE_MS,
        &[],
    );
    py.kill9();
    let took = tokio::task::block_in_place(|| {
        wait_for(
            "the Rust server reclaims the dead server's entry",
            Duration::from_secs(10),
            || {
                pending(&mut r, "kill:cmds:arith", "arith")
                    .iter()
                    .any(|(consumer, _)| consumer == "arith:rs1")
            },
        )
    });
    eprintln!("reclaimed {took:?} after the SIGKILL (claim idle {CLAIM_IDLE_MS} ms)");
    assert!(
        took <= Duration::from_millis(3 * CLAIM_IDLE_MS + 500),
        "reclaimed only after {took:?}"
    );
    assert_eq!(call.await.unwrap(), json!({"sum": 3.0}));
    assert_eq!(rs.terminate(), Some(1));
    c.stop().await;
}
