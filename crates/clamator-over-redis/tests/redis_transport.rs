//! The Redis transport against a real `redis-server` started on a free port per test.
#![allow(missing_docs)]

mod support;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator_over_redis::{RedisRpcClient, RedisRpcServer};
use clamator_protocol::{CallError, HandlerError, RpcClient, RpcError, RpcService, TransportError};
use clamator_test_support::RedisServer;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::{cmd_json, create_group, raw};
use tokio::sync::{mpsc, Notify};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddParams {
    a: f64,
    b: f64,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct SlowParams {
    sleep_ms: u64,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct PingParams {
    tag: Option<String>,
}

/// The arith service; `who` tags results with the serving instance.
fn arith(
    who: &'static str,
    calls: Arc<AtomicUsize>,
    pings: mpsc::UnboundedSender<String>,
) -> RpcService {
    let c1 = calls;
    RpcService::builder("arith")
        .method("add", move |p: AddParams| {
            c1.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, RpcError>(json!({"sum": p.a + p.b, "by": who})) }
        })
        .method("slowAdd", move |p: SlowParams| async move {
            tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
            Ok::<_, RpcError>(json!({"slept": p.sleep_ms, "by": who}))
        })
        .raw_method("deny", json!({}), json!({}), |_| async {
            Err::<Value, _>(RpcError::new(-32000, "denied").with_data(json!({"why": "x"})))
        })
        .raw_method("explode", json!({}), json!({}), |_| async {
            if true {
                panic!("kaboom");
            }
            Ok::<Value, HandlerError>(Value::Null)
        })
        .notification("ping", move |p: PingParams| {
            let pings = pings.clone();
            async move {
                let _ = pings.send(p.tag.unwrap_or_default());
            }
        })
        .build()
        .unwrap()
}

struct Setup {
    redis: RedisServer,
    prefix: String,
    server: RedisRpcServer,
    client: RedisRpcClient,
    calls: Arc<AtomicUsize>,
    pings: mpsc::UnboundedReceiver<String>,
}

async fn setup() -> Setup {
    let redis = RedisServer::start();
    let prefix = "t".to_owned();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, pings) = mpsc::unbounded_channel();
    let server = RedisRpcServer::builder()
        .key_prefix(&prefix)
        .url(redis.url())
        .instance_id("srv1")
        .service(arith("srv1", calls.clone(), tx))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = client(&redis, &prefix, "cli1").await;
    Setup {
        redis,
        prefix,
        server,
        client,
        calls,
        pings,
    }
}

async fn client(redis: &RedisServer, prefix: &str, id: &str) -> RedisRpcClient {
    let client = RedisRpcClient::builder()
        .key_prefix(prefix)
        .url(redis.url())
        .instance_id(id)
        .build()
        .unwrap();
    client.start().await.unwrap();
    client
}

fn rpc(e: CallError) -> RpcError {
    match e {
        CallError::Rpc(e) => e,
        other => panic!("expected an rpc error, got {other:?}"),
    }
}

#[tokio::test]
async fn round_trip_and_wire_layout() {
    let s = setup().await;
    let out = s
        .client
        .call_value("arith", "add", json!({"a": 2, "b": 3}), None)
        .await
        .unwrap();
    assert_eq!(out, json!({"sum": 5.0, "by": "srv1"}));

    let mut r = raw(&s.redis).await;
    // key names
    let mut keys: Vec<String> = r.keys("t:*").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["t:cmds:arith", "t:replies:cli1"]);
    // served entries are acked and deleted: the command stream holds only what is pending
    let len: u64 = r.xlen("t:cmds:arith").await.unwrap();
    assert_eq!(len, 0);
    // the request entry (kept by a stream nobody serves): type, envelope, reply-to, and the
    // Rust extension timeout-ms, which the 0.1.9 readers ignore
    let e = s
        .client
        .call_value(
            "arith2",
            "add",
            json!({"a": 2, "b": 3}),
            Some(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    let entries: Value = cmd_json(&r, &["XRANGE", "t:cmds:arith2", "-", "+"]).await;
    let fields = &entries[0][1];
    assert_eq!(fields[0], "type");
    assert_eq!(fields[1], "rpc");
    assert_eq!(fields[2], "envelope");
    assert_eq!(fields[4], "reply-to");
    assert_eq!(fields[5], "t:replies:cli1");
    assert_eq!(fields[6], "timeout-ms");
    assert_eq!(fields[7], "50");
    let envelope: Value = serde_json::from_str(fields[3].as_str().unwrap()).unwrap();
    assert_eq!(envelope["jsonrpc"], "2.0");
    assert_eq!(envelope["method"], "arith2.add");
    assert_eq!(envelope["params"], json!({"a": 2, "b": 3}));
    assert_eq!(envelope["id"].as_str().unwrap().len(), 36);
    let raw_text = fields[3].as_str().unwrap();
    assert!(
        raw_text.starts_with(r#"{"jsonrpc":"2.0","method":"arith2.add","params":"#),
        "{raw_text}"
    );
    // the reply entry: type, envelope
    let replies: Value = cmd_json(&r, &["XRANGE", "t:replies:cli1", "-", "+"]).await;
    let reply = &replies[0][1];
    assert_eq!(reply[0], "type");
    assert_eq!(reply[1], "rpc");
    assert_eq!(reply[2], "envelope");
    assert_eq!(reply.as_array().unwrap().len(), 4);
    let reply_env: Value = serde_json::from_str(reply[3].as_str().unwrap()).unwrap();
    assert_eq!(reply_env["id"].as_str().unwrap().len(), 36);
    assert_eq!(reply_env["result"], json!({"sum": 5.0, "by": "srv1"}));
    // group and consumer names; acked
    let groups = cmd_json(&r, &["XINFO", "GROUPS", "t:cmds:arith"]).await;
    assert_eq!(groups[0][1], "arith");
    let pending = cmd_json(&r, &["XPENDING", "t:cmds:arith", "arith"]).await;
    assert_eq!(pending[0], 0, "acked");
    let consumers = cmd_json(&r, &["XINFO", "CONSUMERS", "t:cmds:arith", "arith"]).await;
    assert_eq!(consumers[0][1], "arith:srv1");

    // the client deletes its reply stream on stop
    s.client.stop().await;
    let exists: bool = r.exists("t:replies:cli1").await.unwrap();
    assert!(!exists);
    s.server.stop().await;
    // the server deletes nothing
    let exists: bool = r.exists("t:cmds:arith").await.unwrap();
    assert!(exists);
}

/// Runs a command and returns its reply as JSON.
/// Turns a RESP value into JSON for easy assertions (bulk strings as strings).
#[tokio::test]
async fn notification_reaches_its_handler_without_a_reply() {
    let mut s = setup().await;
    s.client
        .notify_value("arith", "ping", json!({"tag": "x"}))
        .await
        .unwrap();
    let tag = tokio::time::timeout(Duration::from_secs(5), s.pings.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tag, "x");
    let mut r = raw(&s.redis).await;
    // acked and deleted (right after the handler ran)
    let deadline = Instant::now() + Duration::from_secs(5);
    while r.xlen::<_, u64>("t:cmds:arith").await.unwrap() != 0 {
        assert!(
            Instant::now() < deadline,
            "notification entry not acked and deleted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // the entry layout, kept by a stream nobody serves: no reply-to on notifications
    s.client
        .notify_value("quiet", "ping", json!({"tag": "x"}))
        .await
        .unwrap();
    let entries = cmd_json(&r, &["XRANGE", "t:cmds:quiet", "-", "+"]).await;
    assert_eq!(
        entries[0][1],
        json!([
            "type",
            "rpc",
            "envelope",
            r#"{"jsonrpc":"2.0","method":"quiet.ping","params":{"tag":"x"}}"#
        ])
    );
    let replies: u64 = r.xlen(format!("{}:replies:cli1", s.prefix)).await.unwrap();
    assert_eq!(replies, 0, "no reply written");
}

#[tokio::test]
async fn errors_are_mapped_over_redis() {
    let s = setup().await;
    let e = rpc(s
        .client
        .call_value("arith", "deny", json!({}), None)
        .await
        .unwrap_err());
    assert_eq!(
        e,
        RpcError::new(-32000, "denied").with_data(json!({"why": "x"}))
    );
    let e = rpc(s
        .client
        .call_value("arith", "explode", json!({}), None)
        .await
        .unwrap_err());
    assert_eq!(
        (e.code, e.data.clone()),
        (-32603, json!({"name": "panic", "message": "kaboom"}))
    );
    let e = rpc(s
        .client
        .call_value("arith", "add", json!({"a": "two", "b": 3}), None)
        .await
        .unwrap_err());
    assert_eq!(e.code, -32602);
    assert_eq!(e.data["errors"][0]["loc"], json!(["a"]));
    let e = rpc(s
        .client
        .call_value("arith", "nope", json!({}), None)
        .await
        .unwrap_err());
    assert_eq!(e.code, -32601);
    let e = rpc(s
        .client
        .call_value("arith", "ping", json!({}), None)
        .await
        .unwrap_err());
    assert_eq!(e.code, -32600);
    // still serving
    assert!(s
        .client
        .call_value("arith", "add", json!({"a": 1, "b": 1}), None)
        .await
        .is_ok());
}

#[tokio::test]
async fn timeout_fires() {
    let s = setup().await;
    let started = Instant::now();
    let e = s
        .client
        .call_value(
            "arith",
            "slowAdd",
            json!({"sleepMs": 800}),
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(600));
    // an unknown service nobody consumes times out too (as in the originals)
    let e = s
        .client
        .call_value("nobody", "x", json!({}), Some(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(e.is_timeout());
}

#[tokio::test]
async fn five_hundred_concurrent_calls_are_correlated() {
    let s = setup().await;
    let calls = (0..500).map(|i| {
        let client = s.client.clone();
        async move {
            let out = client
                .call_value("arith", "add", json!({"a": i, "b": 1000}), None)
                .await
                .unwrap();
            assert_eq!(out["sum"], json!(f64::from(i) + 1000.0));
        }
    });
    tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(calls))
        .await
        .unwrap();
    assert_eq!(s.calls.load(Ordering::SeqCst), 500);
    // on a fixed number of connections
    let mut r = raw(&s.redis).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(list.lines().count() <= 8, "{list}");
}

#[tokio::test]
async fn concurrency_is_bounded_and_one_keeps_order() {
    let redis = RedisServer::start();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r2, p2) = (running.clone(), peak.clone());
    let svc = RpcService::builder("work")
        .raw_method("go", json!({}), json!({}), move |p: Value| {
            let (running, peak) = (r2.clone(), p2.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, RpcError>(p)
            }
        })
        .build()
        .unwrap();
    let server = RedisRpcServer::builder()
        .key_prefix("c")
        .url(redis.url())
        .concurrency(NonZeroUsize::new(4).unwrap())
        .service(svc)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = client(&redis, "c", "cli").await;
    let calls = (0..40).map(|i| client.call_value("work", "go", json!({"i": i}), None));
    let out = futures::future::join_all(calls).await;
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "at most `concurrency` handlers at once, and it is used"
    );
    server.stop().await;
}

#[tokio::test]
async fn two_servers_share_sequential_calls() {
    let redis = RedisServer::start();
    let (tx, _rx) = mpsc::unbounded_channel();
    let (a_calls, b_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut servers = Vec::new();
    for (who, calls) in [("srv-a", a_calls.clone()), ("srv-b", b_calls.clone())] {
        let server = RedisRpcServer::builder()
            .key_prefix("pool")
            .url(redis.url())
            .instance_id(who)
            .service(arith(who, calls, tx.clone()))
            .build()
            .unwrap();
        server.start().await.unwrap();
        servers.push(server);
    }
    let client = client(&redis, "pool", "cli").await;
    for _ in 0..50 {
        client
            .call_value("arith", "add", json!({"a": 1, "b": 1}), None)
            .await
            .unwrap();
    }
    let (a, b) = (
        a_calls.load(Ordering::SeqCst),
        b_calls.load(Ordering::SeqCst),
    );
    assert_eq!(a + b, 50, "each call processed exactly once");
    assert!(a >= 5 && b >= 5, "both servers worked: {a} / {b}");
}

#[tokio::test]
async fn crashed_server_work_is_reclaimed() {
    let redis = RedisServer::start();
    let hang = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let (h, st) = (hang.clone(), started.clone());
    // srv-a accepts the call and hangs mid-handler
    let stuck = RpcService::builder("arith")
        .method("add", move |p: AddParams| {
            let (h, st) = (h.clone(), st.clone());
            async move {
                st.notify_one();
                h.notified().await;
                Ok::<_, RpcError>(json!({"sum": p.a + p.b, "by": "srv-a"}))
            }
        })
        .build()
        .unwrap();
    let idle = Duration::from_millis(300);
    let srv_a = RedisRpcServer::builder()
        .key_prefix("crash")
        .url(redis.url())
        .instance_id("srv-a")
        .consumer_claim_idle(idle)
        .service(stuck)
        .build()
        .unwrap();
    srv_a.start().await.unwrap();
    let client = client(&redis, "crash", "cli").await;
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_value(
                    "arith",
                    "add",
                    json!({"a": 1, "b": 2}),
                    Some(Duration::from_secs(10)),
                )
                .await
        }
    });
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .unwrap();
    // crash: srv-a dies mid-handler without acking
    srv_a.stop_with_grace(Duration::ZERO).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let srv_b = RedisRpcServer::builder()
        .key_prefix("crash")
        .url(redis.url())
        .instance_id("srv-b")
        .consumer_claim_idle(idle)
        .service(arith("srv-b", Arc::default(), tx))
        .build()
        .unwrap();
    srv_b.start().await.unwrap();
    let out = call.await.unwrap().unwrap();
    assert_eq!(out, json!({"sum": 3.0, "by": "srv-b"}));
    srv_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_long_handlers_are_not_reclaimed() {
    // A handler running 10x claim_idle (3 s: three reclaim rounds of the other server) in a
    // pool of two runs exactly once, and its entry never looks idle while it runs.
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let idle = Duration::from_millis(300);
    let mut servers = Vec::new();
    for who in ["a", "b"] {
        let (runs, release) = (runs.clone(), release.clone());
        let svc = RpcService::builder("long")
            .raw_method("run", json!({}), json!({}), move |_p: Value| {
                let (runs, release) = (runs.clone(), release.clone());
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    release.acquire().await.unwrap().forget();
                    Ok::<_, RpcError>(json!(who))
                }
            })
            .build()
            .unwrap();
        let server = RedisRpcServer::builder()
            .key_prefix("long")
            .url(redis.url())
            .instance_id(who)
            .consumer_claim_idle(idle)
            .service(svc)
            .build()
            .unwrap();
        server.start().await.unwrap();
        servers.push(server);
    }
    let client = client(&redis, "long", "cli").await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call_value("long", "run", json!({}), None).await }
    });
    let r = raw(&redis).await;
    let started = Instant::now();
    let mut samples = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let pending = cmd_json(&r, &["XPENDING", "long:cmds:long", "long", "-", "+", "10"]).await;
        if let Some(entry) = pending.as_array().and_then(|p| p.first()) {
            let entry_idle = entry[2].as_i64().unwrap();
            assert!(
                entry_idle < idle.as_millis() as i64,
                "the live entry looked idle for {entry_idle} ms (claim idle {idle:?})"
            );
            samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        samples > 40,
        "the entry was pending while the handler ran ({samples} samples)"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the live handler ran twice");
    release.add_permits(2);
    call.await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn concurrency_one_keeps_the_order_of_the_stream() {
    let redis = RedisServer::start();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (o2, r2, p2) = (order.clone(), running.clone(), peak.clone());
    let svc = RpcService::builder("seq")
        .raw_method("go", json!({}), json!({}), move |p: Value| {
            let (order, running, peak) = (o2.clone(), r2.clone(), p2.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                order.lock().unwrap().push(p["i"].as_u64().unwrap());
                tokio::time::sleep(Duration::from_millis(3)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, RpcError>(p)
            }
        })
        .build()
        .unwrap();
    // the entries are queued before the server starts, in stream order
    let mut r = raw(&redis).await;
    create_group(&r, "seq:cmds:seq", "seq").await;
    for i in 0..30 {
        let env = json!({"jsonrpc": "2.0", "method": "seq.go", "params": {"i": i}, "id": i});
        let _: String = r
            .xadd(
                "seq:cmds:seq",
                "*",
                &[
                    ("type", "rpc".to_owned()),
                    ("envelope", env.to_string()),
                    ("reply-to", "seq:replies:x".to_owned()),
                ],
            )
            .await
            .unwrap();
    }
    let server = RedisRpcServer::builder()
        .key_prefix("seq")
        .url(redis.url())
        .concurrency(NonZeroUsize::new(1).unwrap())
        .service(svc)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while order.lock().unwrap().len() < 30 {
        assert!(Instant::now() < deadline, "not all handled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*order.lock().unwrap(), (0..30).collect::<Vec<u64>>());
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "concurrency(1) ran two handlers at once"
    );
    server.stop().await;
}

#[tokio::test]
async fn redis_restarted_mid_test() {
    let mut s = setup().await;
    assert!(s
        .client
        .call_value("arith", "add", json!({"a": 1, "b": 1}), None)
        .await
        .is_ok());
    s.redis.kill();
    // calls during the outage fail with a clear transport error, within their timeout
    let started = Instant::now();
    let e = s
        .client
        .call_value(
            "arith",
            "add",
            json!({"a": 1, "b": 1}),
            Some(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Transport(_)), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    s.redis.restart(); // empty: streams and the consumer group are gone
                       // calls succeed again without restarting anything (group recreated, connections redone)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match s
            .client
            .call_value(
                "arith",
                "add",
                json!({"a": 2, "b": 2}),
                Some(Duration::from_secs(2)),
            )
            .await
        {
            Ok(out) => {
                assert_eq!(out["sum"], 4.0);
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "still failing after restart: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn owned_connections_are_closed_injected_client_stays_usable() {
    let redis = RedisServer::start();
    let mut r = raw(&redis).await;
    let count = |list: String| list.lines().count();
    let baseline = count(
        redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut r)
            .await
            .unwrap(),
    );
    let (tx, _rx) = mpsc::unbounded_channel();

    // owned
    let server = RedisRpcServer::builder()
        .key_prefix("own")
        .url(redis.url())
        .service(arith("x", Arc::default(), tx.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = client(&redis, "own", "c").await;
    let during = count(
        redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut r)
            .await
            .unwrap(),
    );
    assert!(during > baseline);
    client.stop().await;
    server.stop().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = count(
            redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut r)
                .await
                .unwrap(),
        );
        if now == baseline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "owned connections still open: {now} > {baseline}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // injected: the user's client works after our stop
    let injected = redis::Client::open(redis.url()).unwrap();
    let server = RedisRpcServer::builder()
        .key_prefix("inj")
        .connection(clamator_over_redis::RedisConnection::client(
            injected.clone(),
        ))
        .service(arith("y", Arc::default(), tx.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = RedisRpcClient::builder()
        .key_prefix("inj")
        .connection(clamator_over_redis::RedisConnection::client(
            injected.clone(),
        ))
        .build()
        .unwrap();
    client.start().await.unwrap();
    assert!(client
        .call_value("arith", "add", json!({"a": 1, "b": 1}), None)
        .await
        .is_ok());
    client.stop().await;
    server.stop().await;
    let mut mine = injected.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut mine).await.unwrap();
    assert_eq!(pong, "PONG");

    // A builder holds one RedisConnection: a URL and an injected client cannot both be
    // given (the last `connection`/`url` wins), so there is no "several" error left to test.
}

#[tokio::test]
async fn lifecycle_errors() {
    let redis = RedisServer::start();
    let client = RedisRpcClient::builder()
        .key_prefix("l")
        .url(redis.url())
        .build()
        .unwrap();
    let e = client
        .call_value("a", "b", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "transport not started (state=idle)");
    client.start().await.unwrap();
    client.start().await.unwrap();
    client.stop().await;
    client.stop().await;
    assert!(matches!(
        client.start().await,
        Err(TransportError::AlreadyStopped)
    ));
    // unreachable Redis is a clear error at start
    let port = clamator_test_support::free_port();
    let client = RedisRpcClient::builder()
        .key_prefix("l")
        .url(format!("redis://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let e = client.start().await.unwrap_err();
    assert!(e.is_connection_lost(), "{e:?}");
    assert!(e.to_string().starts_with("redis connect failed"), "{e}");
    // issue 30: it names where it tried to connect
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn stop_drains_running_handlers_and_acks_them() {
    let s = setup().await;
    let client = s.client.clone();
    let call = tokio::spawn(async move {
        client
            .call_value("arith", "slowAdd", json!({"sleepMs": 300}), None)
            .await
    });
    // wait until the server holds the call (delivered, not acked), then stop it
    let r = raw(&s.redis).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pending = cmd_json(&r, &["XPENDING", "t:cmds:arith", "arith"]).await;
        if pending[0] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the call never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.server.stop().await;
    assert_eq!(call.await.unwrap().unwrap()["slept"], 300);
    let pending = cmd_json(&r, &["XPENDING", "t:cmds:arith", "arith"]).await;
    assert_eq!(pending[0], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_load() {
    let mut s = setup().await;
    let timeout = Duration::from_millis(1500);
    let stop_at = Instant::now() + Duration::from_secs(6);
    let worst = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let (oks, errs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (client, worst, oks, errs) =
                (s.client.clone(), worst.clone(), oks.clone(), errs.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < stop_at {
                    i += 1;
                    let t = Instant::now();
                    match client
                        .call_value("arith", "add", json!({"a": w, "b": i}), Some(timeout))
                        .await
                    {
                        Ok(v) => {
                            assert_eq!(v["sum"], json!(f64::from(w) + f64::from(i)));
                            oks.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert!(matches!(e, CallError::Transport(_)), "{e:?}");
                            errs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    let took = t.elapsed();
                    let mut w = worst.lock().unwrap();
                    *w = (*w).max(took);
                }
            })
        })
        .collect();
    // let the load run before the restart
    while s.calls.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = s.calls.load(Ordering::SeqCst);
    tokio::task::block_in_place(|| s.redis.restart());
    for w in workers {
        w.await.unwrap();
    }
    // no call waited past its timeout (plus scheduling slack)
    let worst = *worst.lock().unwrap();
    assert!(
        worst < timeout + Duration::from_millis(1000),
        "a call took {worst:?}"
    );
    // calls succeeded after the restart, without restarting any process
    let after = s.calls.load(Ordering::SeqCst);
    assert!(after > before + 50, "before {before}, after {after}");
    // the outage happened under load: calls failed (their entries were lost with Redis) or
    // waited for Redis to come back (the client retries within the call's timeout)
    assert!(
        errs.load(Ordering::SeqCst) > 0 || worst >= Duration::from_millis(20),
        "no call saw the outage (worst {worst:?})"
    );
    let out = s
        .client
        .call_value("arith", "add", json!({"a": 1, "b": 1}), None)
        .await
        .unwrap();
    assert_eq!(out["sum"], 2.0);
}

#[tokio::test]
async fn concurrent_starts_start_once() {
    let redis = RedisServer::start();
    let (tx, _rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = RedisRpcServer::builder()
        .key_prefix("cs")
        .url(redis.url())
        .service(arith("x", calls.clone(), tx))
        .build()
        .unwrap();
    let client = RedisRpcClient::builder()
        .key_prefix("cs")
        .url(redis.url())
        .build()
        .unwrap();
    let (a, b, c, d) = tokio::join!(
        server.start(),
        server.start(),
        client.start(),
        client.start()
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    d.unwrap();
    client
        .call_value("arith", "add", json!({"a": 1, "b": 1}), None)
        .await
        .unwrap();
    // one consumer loop: one consumer in the group, one reader connection per service
    let mut r = raw(&redis).await;
    let consumers = cmd_json(&r, &["XINFO", "CONSUMERS", "cs:cmds:arith", "arith"]).await;
    assert_eq!(consumers.as_array().unwrap().len(), 1);
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(
        list.lines().count(),
        5,
        "server: command + reader; client: command + reader; this one:\n{list}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
