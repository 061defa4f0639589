//! The delivery and safety promises under misuse, faults and hostile input (issue 10): each
//! test reproduces an observation made on an earlier version, on a private `redis-server`.
#![allow(missing_docs)]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator_over_redis::{
    RedisRpcClient, RedisRpcServer, RedisRpcServerBuilder, MIN_CONSUMER_CLAIM_IDLE,
};
use clamator_protocol::{LifecycleState, RpcClient};
use clamator_test_support::RedisServer;
use redis::AsyncCommands;
use serde_json::{json, Value};
use support::*;

const PREFIX: &str = "h";
const CMDS: &str = "h:cmds:svc";

fn server_builder(redis: &RedisServer, id: &str, probe: &Arc<Probe>) -> RedisRpcServerBuilder {
    RedisRpcServer::builder()
        .key_prefix(PREFIX)
        .url(redis.url())
        .instance_id(id)
        .service(service(probe))
}

async fn started(b: RedisRpcServerBuilder) -> RedisRpcServer {
    let s = b.build().unwrap();
    s.start().await.unwrap();
    s
}

async fn client(redis: &RedisServer) -> RedisRpcClient {
    let c = RedisRpcClient::builder()
        .key_prefix(PREFIX)
        .url(redis.url())
        .build()
        .unwrap();
    c.start().await.unwrap();
    c
}

// ---- 1. reply-to is checked -------------------------------------------------------------

#[tokio::test]
async fn reply_to_outside_the_servers_reply_streams_is_poison_and_touches_no_key() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server =
        started(server_builder(&redis, "s", &probe).reply_stream_ttl(Duration::from_secs(30)))
            .await;
    let mut r = raw(&redis).await;
    let _: () = r.set("other:string", "v").await.unwrap();
    let _: String = r.xadd("h:dead:svc", "*", &[("x", "1")]).await.unwrap();
    let long = format!("h:replies:{}", "x".repeat(300));
    let targets = [
        CMDS,            // the service's own command stream
        "h:dead:svc",    // its dead-letter stream
        "other:string",  // a key outside the prefix
        "h:other",       // inside the prefix, not a reply stream
        "h:replies:",    // no client id
        "x:replies:abc", // another prefix's reply stream
        long.as_str(),   // an id over 256 bytes
    ];
    for (i, to) in targets.iter().enumerate() {
        raw_request(
            &r,
            CMDS,
            &request("echo", &format!("p{i}"), json!({})),
            Some(to),
            &[],
        )
        .await;
    }
    // the server keeps serving good calls
    let c = client(&redis).await;
    assert_eq!(
        c.call_value("svc", "echo", json!({"ok": 1}), None)
            .await
            .unwrap(),
        json!({"ok": 1})
    );
    eventually("every forged reply-to counted as poison", || async {
        server.stats().poison == targets.len() as u64
    })
    .await;
    assert_eq!(
        probe.runs(),
        1,
        "no handler runs for a request with a forged reply-to"
    );
    for key in [CMDS, "h:dead:svc", "other:string"] {
        assert_eq!(pttl(&r, key).await, -1, "{key} must not get a TTL");
    }
    assert_eq!(
        xlen(&r, "h:dead:svc").await,
        1,
        "nothing written to the dead-letter stream"
    );
    for key in ["h:other", "h:replies:", "x:replies:abc", long.as_str()] {
        let exists: bool = r.exists(key).await.unwrap();
        assert!(!exists, "{key} must not be created");
    }
    // the command stream and its group are intact, and nothing but requests went into it
    assert_eq!(pending(&r, CMDS, "svc").await, 0);
    let groups = cmd_json(&r, &["XINFO", "GROUPS", CMDS]).await;
    assert_eq!(groups[0][1], "svc");
    c.stop().await;
    server.stop().await;
}

// ---- 3. ack only after the reply is written ----------------------------------------------

#[tokio::test]
async fn an_entry_is_not_acked_while_its_reply_cannot_be_written() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe)).await;
    let c = client(&redis).await;
    let call = tokio::spawn({
        let c = c.clone();
        async move {
            c.call_value(
                "svc",
                "gate",
                json!({"n": 1}),
                Some(Duration::from_secs(20)),
            )
            .await
        }
    });
    probe.started().await;
    let mut r = raw(&redis).await;
    // Redis refuses writes (maxmemory reached, noeviction) while the handler finishes
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut r)
        .await
        .unwrap();
    let rejected_before = command_stat(&r, "xadd", "rejected_calls").await;
    probe.release(1);
    let rr = raw(&redis).await;
    eventually("the reply XADD was refused with OOM", || async {
        command_stat(&rr, "xadd", "rejected_calls").await > rejected_before
    })
    .await;
    // the handler ran but its reply is not written: the entry must still be pending and present
    assert_eq!(pending(&r, CMDS, "svc").await, 1, "acked without its reply");
    assert_eq!(xlen(&r, CMDS).await, 1, "deleted without its reply");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query_async(&mut r)
        .await
        .unwrap();
    // retried within the call's deadline: the caller gets its answer, then the entry is acked
    assert_eq!(call.await.unwrap().unwrap(), json!({"n": 1}));
    eventually("acked after the reply", || async {
        pending(&rr, CMDS, "svc").await == 0
    })
    .await;
    assert_eq!(probe.runs(), 1);
    c.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_reply_that_can_never_be_written_is_dead_lettered_and_its_key_untouched() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe)).await;
    let mut r = raw(&redis).await;
    let _: () = r.hset("h:replies:hash", "f", "v").await.unwrap();
    raw_request(
        &r,
        CMDS,
        &request("echo", "w1", json!({})),
        Some("h:replies:hash"),
        &[],
    )
    .await;
    eventually("dead-lettered with the reason", || async {
        xlen(&r, "h:dead:svc").await == 1
    })
    .await;
    let dead = cmd_json(&r, &["XRANGE", "h:dead:svc", "-", "+"]).await;
    let fields = dead[0][1].as_array().unwrap();
    let reason = fields[fields.iter().position(|f| f == "dead-reason").unwrap() + 1]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("WRONGTYPE") && reason.contains("h:replies:hash"),
        "{reason}"
    );
    assert_eq!(
        pttl(&r, "h:replies:hash").await,
        -1,
        "the TTL must not touch it"
    );
    assert_eq!(pending(&r, CMDS, "svc").await, 0);
    assert_eq!(probe.runs(), 1);
    server.stop().await;
}

// ---- 5. reply-stream TTLs ---------------------------------------------------------------

#[tokio::test]
async fn a_busy_reply_stream_never_expires_and_an_idle_one_expires_after_its_last_reply() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let ttl = Duration::from_millis(1000);
    let server = started(server_builder(&redis, "s", &probe).reply_stream_ttl(ttl)).await;
    let r = raw(&redis).await;
    // a 0.1.9 client: it never refreshes its reply stream and never trims it
    let stream = "h:replies:py";
    for i in 0..6 {
        raw_request(
            &r,
            CMDS,
            &request("echo", &format!("b{i}"), json!({"i": i})),
            Some(stream),
            &[],
        )
        .await;
        eventually("reply written", || async {
            xlen(&r, stream).await == i + 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // 2.4 s of replies, 0.4 s apart, with a 1 s TTL: none was lost to expiry
    let ids: Vec<Value> = replies(&r, stream)
        .await
        .into_iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(
        ids,
        (0..6).map(|i| json!(format!("b{i}"))).collect::<Vec<_>>()
    );
    // idle: it expires about a TTL after its last reply
    let idle_since = Instant::now();
    eventually("the idle stream expired", || async {
        pttl(&r, stream).await == -2
    })
    .await;
    let gone_after = idle_since.elapsed() + Duration::from_millis(400);
    assert!(
        gone_after >= ttl / 2 && gone_after <= ttl * 2,
        "{gone_after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_late_reply_after_the_client_stopped_does_not_leak_its_stream() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server =
        started(server_builder(&redis, "s", &probe).reply_stream_ttl(Duration::from_secs(60)))
            .await;
    let c = client(&redis).await;
    let stream = c.reply_stream().to_owned();
    c.call_value("svc", "echo", json!({}), None).await.unwrap();
    let e = c
        .call_value(
            "svc",
            "slow",
            json!({"ms": 500}),
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    c.stop().await;
    let r = raw(&redis).await;
    assert_eq!(pttl(&r, &stream).await, -2, "deleted on stop");
    // the late reply recreates the stream: it must carry a TTL, not live forever
    eventually("late reply written", || async {
        xlen(&r, &stream).await == 1
    })
    .await;
    let ttl = pttl(&r, &stream).await;
    assert!(ttl > 0, "a reply stream without TTL leaks: PTTL {ttl}");
    server.stop().await;
}

// ---- 6. lifecycle races -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_start_leaves_nothing_running() {
    let redis = RedisServer::start();
    let r = raw(&redis).await;
    let baseline = client_count(&r).await;
    let probe = Probe::new();
    for yields in 0..4 {
        let server = server_builder(&redis, &format!("s{yields}"), &probe)
            .build()
            .unwrap();
        let stopper = server.clone();
        let (_started, ()) = tokio::join!(server.start(), async {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            stopper.stop().await;
        });
        assert_eq!(server.state(), LifecycleState::Stopped);
        // a second stop must not be needed, but must not hurt
        server.stop().await;
    }
    let c = client(&redis).await;
    let e = c
        .call_value("svc", "echo", json!({}), Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "a stopped server answered: {e}");
    assert_eq!(probe.runs(), 0);
    c.stop().await;
    eventually("every connection closed", || async {
        client_count(&r).await == baseline
    })
    .await;

    for yields in 0..4 {
        let c = RedisRpcClient::builder()
            .key_prefix(PREFIX)
            .url(redis.url())
            .build()
            .unwrap();
        let stopper = c.clone();
        let _ = tokio::join!(c.start(), async {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            stopper.stop().await;
        });
        assert_eq!(c.state(), LifecycleState::Stopped);
    }
    eventually("every client connection closed", || async {
        client_count(&r).await == baseline
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stop_caller_returns_after_the_drain() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe)).await;
    let c = client(&redis).await;
    let call = tokio::spawn({
        let c = c.clone();
        async move { c.call_value("svc", "gate", json!({}), None).await }
    });
    probe.started().await;
    let releaser = {
        let probe = probe.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            probe.release(1);
        })
    };
    let (s1, s2) = (server.clone(), server.clone());
    let first = tokio::spawn(async move {
        s1.stop().await;
    });
    while server.state() != LifecycleState::Stopping {
        tokio::task::yield_now().await;
    }
    let second = tokio::spawn({
        let probe = probe.clone();
        async move {
            s2.stop().await;
            probe.finished.load(Ordering::SeqCst)
        }
    });
    let finished_when_second_returned = second.await.unwrap();
    first.await.unwrap();
    releaser.await.unwrap();
    assert_eq!(
        finished_when_second_returned, 1,
        "the second stop returned before the drain"
    );
    assert!(call.await.unwrap().is_ok());
    c.stop().await;
}

// ---- 7. dropping the last handle -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_server_handle_stops_intake_and_closes_its_connections() {
    let redis = RedisServer::start();
    let r = raw(&redis).await;
    let baseline = client_count(&r).await;
    let probe = Probe::new();
    let server =
        started(server_builder(&redis, "s", &probe).consumer_claim_idle(Duration::from_secs(60)))
            .await;
    let server_conns = client_count(&r).await - baseline;
    let c = client(&redis).await;
    let all = client_count(&r).await;
    let call = tokio::spawn({
        let c = c.clone();
        async move {
            c.call_value("svc", "gate", json!({}), Some(Duration::from_secs(2)))
                .await
        }
    });
    probe.started().await;
    drop(server);
    // the handler in flight is abandoned and its entry stays pending for reclaim
    eventually("the running handler was abandoned", || async {
        probe.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(call.await.unwrap().unwrap_err().is_timeout());
    assert_eq!(pending(&r, CMDS, "svc").await, 1);
    // nobody consumes any more
    let e = c
        .call_value("svc", "echo", json!({}), Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "a dropped server answered: {e}");
    eventually("the server's connections closed", || async {
        client_count(&r).await == all - server_conns
    })
    .await;
    drop(c);
    eventually("the client's connections closed", || async {
        client_count(&r).await == baseline
    })
    .await;
}

// ---- 8. the heartbeat outlives the drain -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_running_through_a_graceful_stop_is_not_reclaimed_by_the_pool() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let idle = Duration::from_millis(300);
    let a = started(server_builder(&redis, "a", &probe).consumer_claim_idle(idle)).await;
    let c = client(&redis).await;
    let call = tokio::spawn({
        let c = c.clone();
        async move {
            c.call_value("svc", "gate", json!({}), Some(Duration::from_secs(20)))
                .await
        }
    });
    probe.started().await;
    let b = started(server_builder(&redis, "b", &probe).consumer_claim_idle(idle)).await;
    // a stops gracefully while its handler runs 2.5 s (about 8 claim-idle periods)
    let stopping = tokio::spawn({
        let a = a.clone();
        async move { a.stop_with_grace(Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    probe.release(2);
    assert!(call.await.unwrap().is_ok());
    stopping.await.unwrap();
    assert_eq!(probe.runs(), 1, "the live handler ran on b too");
    b.stop().await;
    c.stop().await;
}

// ---- 9. builder values are checked ------------------------------------------------------

#[test]
fn builders_reject_values_that_cannot_work() {
    let probe = Probe::new();
    let server = |prefix: &str| {
        RedisRpcServer::builder()
            .key_prefix(prefix)
            .service(service(&probe))
    };
    let cases: Vec<(&str, RedisRpcServerBuilder)> = vec![
        (
            "claim idle",
            server("p").consumer_claim_idle(Duration::ZERO),
        ),
        (
            "claim idle",
            server("p").consumer_claim_idle(Duration::from_millis(10)),
        ),
        ("reply_stream_maxlen", server("p").reply_stream_maxlen(0)),
        ("max_deliveries", server("p").max_deliveries(0)),
        ("max_envelope_bytes", server("p").max_envelope_bytes(0)),
        (
            "reply_stream_ttl",
            server("p").reply_stream_ttl(Duration::ZERO),
        ),
        ("key prefix", server("")),
        ("key prefix", server("app*")),
        ("key prefix", server("a[b]")),
        ("instance id", server("p").instance_id("x".repeat(300))),
    ];
    for (what, builder) in cases {
        let e = builder.build().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(what), "expected an error about {what}: {e}");
    }
    // values that work are accepted: a long claim idle stretches the default consumer expiry
    server("p")
        .consumer_claim_idle(Duration::from_secs(3600))
        .build()
        .expect("claim idle of an hour");
    server("a:b-c.d")
        .consumer_claim_idle(MIN_CONSUMER_CLAIM_IDLE)
        .build()
        .expect("the shortest claim idle");
    let client_cases = vec![
        ("key prefix", RedisRpcClient::builder().key_prefix("")),
        ("key prefix", RedisRpcClient::builder().key_prefix("a?")),
        (
            "instance id",
            RedisRpcClient::builder()
                .key_prefix("p")
                .instance_id("x".repeat(300)),
        ),
        (
            "timeout",
            RedisRpcClient::builder()
                .key_prefix("p")
                .default_timeout(Duration::ZERO),
        ),
        (
            "reply_stream_ttl",
            RedisRpcClient::builder()
                .key_prefix("p")
                .reply_stream_ttl(Duration::ZERO),
        ),
    ];
    for (what, builder) in client_cases {
        let e = builder.build().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(what), "expected an error about {what}: {e}");
    }
}

// ---- 10. max_deliveries holds for every pending entry ------------------------------------

#[tokio::test]
async fn max_deliveries_is_enforced_past_the_first_page_of_pending_entries() {
    let redis = RedisServer::start();
    let mut r = raw(&redis).await;
    create_group(&r, CMDS, "svc").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            raw_request(
                &r,
                CMDS,
                &request("echo", &format!("d{i}"), json!({})),
                None,
                &[],
            )
            .await,
        );
    }
    // a consumer that died after 5 deliveries of each
    let _: Value = redis_to_json(
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("svc")
            .arg("svc:ghost")
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(CMDS)
            .arg(">")
            .query_async(&mut r)
            .await
            .unwrap(),
    );
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(CMDS)
        .arg("svc")
        .arg("svc:ghost")
        .arg(0)
        .arg(&ids)
        .arg("IDLE")
        .arg(600_000)
        .arg("RETRYCOUNT")
        .arg(5)
        .arg("JUSTID")
        .query_async(&mut r)
        .await
        .unwrap();
    let probe = Probe::new();
    let server = started(
        server_builder(&redis, "s", &probe)
            .consumer_claim_idle(Duration::from_millis(200))
            .max_deliveries(5),
    )
    .await;
    eventually("all 40 dead-lettered", || async {
        xlen(&r, "h:dead:svc").await == 40
    })
    .await;
    assert_eq!(probe.runs(), 0, "an exhausted entry was delivered again");
    assert_eq!(pending(&r, CMDS, "svc").await, 0);
    server.stop().await;
}

// ---- 11. deadline arithmetic -------------------------------------------------------------

#[tokio::test]
async fn any_timeout_ms_a_producer_writes_is_handled() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe)).await;
    let r = raw(&redis).await;
    let to = "h:replies:raw";
    let cases = [
        "9223372036854775807",  // i64::MAX: overflowed the deadline sum
        "18446744073709551615", // u64::MAX: unparsable as i64
        "-5",
        "0",
        "soon",
        "",
    ];
    for (i, t) in cases.iter().enumerate() {
        raw_request(
            &r,
            CMDS,
            &request("echo", &format!("t{i}"), json!({"i": i})),
            Some(to),
            &[("timeout-ms", t)],
        )
        .await;
    }
    eventually("every request answered", || async {
        xlen(&r, to).await == cases.len() as i64
    })
    .await;
    for reply in replies(&r, to).await {
        assert!(reply.get("result").is_some(), "{reply}");
    }
    assert_eq!(probe.runs(), cases.len());
    assert_eq!(server.stats().expired, 0);
    server.stop().await;
}

// ---- 12. Redis restarted with AOF: LOADING is retried ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_with_aof_does_not_run_a_live_handler_twice() {
    let mut redis = RedisServer::builder().persistent().start();
    redis.fill(20_000);
    let probe = Probe::new();
    let idle = Duration::from_millis(1000);
    let server = started(server_builder(&redis, "s", &probe).consumer_claim_idle(idle)).await;
    let c = client(&redis).await;
    let call = tokio::spawn({
        let c = c.clone();
        async move {
            c.call_value("svc", "gate", json!({}), Some(Duration::from_secs(30)))
                .await
        }
    });
    probe.started().await;
    // restart; loading 20,000 keys at 100 µs each takes about 2 s, answering LOADING
    redis.restart_listening_with(&[
        "--key-load-delay",
        "100",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    probe.release(1);
    call.await.unwrap().unwrap();
    // several claim-idle periods later the handler has still run once
    tokio::time::sleep(idle * 4).await;
    assert_eq!(probe.runs(), 1, "the live handler ran twice");
    let r = raw(&redis).await;
    assert_eq!(pending(&r, CMDS, "svc").await, 0);
    c.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_while_redis_is_loading_waits_for_it() {
    let mut redis = RedisServer::builder().persistent().start();
    redis.fill(20_000);
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe)).await;
    let c = client(&redis).await;
    redis.restart_listening_with(&[
        "--key-load-delay",
        "100",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let out = c
        .call_value(
            "svc",
            "echo",
            json!({"x": 1}),
            Some(Duration::from_secs(20)),
        )
        .await;
    assert_eq!(out.unwrap(), json!({"x": 1}));
    c.stop().await;
    server.stop().await;
}

// ---- 13. least-privilege ACL ----------------------------------------------------------------

fn acl_user(name: &str, rules: &[&str]) -> Vec<String> {
    let mut v = vec![
        "--user".to_owned(),
        name.to_owned(),
        "on".into(),
        ">pw".into(),
        "~acl:*".into(),
        "resetchannels".into(),
        "-@all".into(),
    ];
    v.extend(rules.iter().map(|r| (*r).to_owned()));
    v
}

fn acl_redis() -> RedisServer {
    let without = |drop: &[&str]| -> Vec<&str> {
        SERVER_ACL
            .iter()
            .copied()
            .filter(|r| !drop.contains(r))
            .collect()
    };
    let mut args = Vec::new();
    args.extend(acl_user("srv", SERVER_ACL));
    args.extend(acl_user("cli", CLIENT_ACL));
    args.extend(acl_user("noread", &without(&["+xreadgroup"])));
    let mut minimal = without(&[
        "+pexpire",
        "+client|id",
        "+client|unblock",
        "+time",
        "+eval",
        "+evalsha",
        "+xgroup|delconsumer",
    ]);
    minimal.push("+info"); // earlier versions read the server version with INFO
    args.extend(acl_user("minimal", &minimal));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    RedisServer::start_with(&args)
}

fn acl_url(redis: &RedisServer, user: &str) -> String {
    format!("redis://{user}:pw@127.0.0.1:{}", redis.port())
}

#[tokio::test]
async fn the_documented_least_privilege_acl_is_enough() {
    let redis = acl_redis();
    let probe = Probe::new();
    let server = RedisRpcServer::builder()
        .key_prefix("acl")
        .url(acl_url(&redis, "srv"))
        .reply_stream_ttl(Duration::from_secs(30))
        .service(service(&probe))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let c = RedisRpcClient::builder()
        .key_prefix("acl")
        .url(acl_url(&redis, "cli"))
        .build()
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(
        c.call_value("svc", "echo", json!({"a": 1}), None)
            .await
            .unwrap(),
        json!({"a": 1})
    );
    c.notify_value("svc", "note", json!({})).await.unwrap();
    // a 0.1.9 client's reply stream gets its TTL
    let r = raw(&redis).await;
    raw_request(
        &r,
        "acl:cmds:svc",
        &request("echo", "py", json!({})),
        Some("acl:replies:py"),
        &[],
    )
    .await;
    eventually("reply to the 0.1.9 client", || async {
        xlen(&r, "acl:replies:py").await == 1
    })
    .await;
    assert!(pttl(&r, "acl:replies:py").await > 0);
    eventually("notification handled", || async { probe.runs() == 3 }).await;
    c.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn start_fails_when_the_server_may_not_consume() {
    let redis = acl_redis();
    let probe = Probe::new();
    let server = RedisRpcServer::builder()
        .key_prefix("acl")
        .url(acl_url(&redis, "noread"))
        .service(service(&probe))
        .build()
        .unwrap();
    let e = server.start().await.unwrap_err().to_string();
    assert!(
        e.contains("NOPERM") && e.to_lowercase().contains("xreadgroup"),
        "{e}"
    );
    assert_ne!(server.state(), LifecycleState::Started);
}

#[tokio::test]
async fn optional_commands_denied_degrade_with_one_warning_each() {
    let redis = acl_redis();
    let (logs, _guard) = capture_logs();
    let probe = Probe::new();
    let server = RedisRpcServer::builder()
        .key_prefix("acl")
        .url(acl_url(&redis, "minimal"))
        .service(service(&probe))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let c = RedisRpcClient::builder()
        .key_prefix("acl")
        .url(acl_url(&redis, "cli"))
        .build()
        .unwrap();
    c.start().await.unwrap();
    for i in 0..20 {
        assert_eq!(
            c.call_value("svc", "echo", json!({"i": i}), None)
                .await
                .unwrap(),
            json!({"i": i})
        );
    }
    c.stop().await;
    server.stop().await;
    let text = logs.text();
    assert!(!text.contains("ERROR"), "no error may be logged:\n{text}");
    let warned = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("PEXPIRE"))
        .count();
    assert_eq!(warned, 1, "one warning about PEXPIRE:\n{text}");
}

// ---- 15. consumers of dead servers are removed ----------------------------------------------

#[tokio::test]
async fn consumers_idle_past_the_expiry_with_nothing_pending_are_removed() {
    let redis = RedisServer::start();
    let mut r = raw(&redis).await;
    create_group(&r, CMDS, "svc").await;
    // consumers left behind by 5 servers that crashed
    for i in 0..5 {
        let _: i64 = redis::cmd("XGROUP")
            .arg("CREATECONSUMER")
            .arg(CMDS)
            .arg("svc")
            .arg(format!("svc:crashed-{i}"))
            .query_async(&mut r)
            .await
            .unwrap();
    }
    let probe = Probe::new();
    let server = started(
        server_builder(&redis, "a", &probe)
            .consumer_claim_idle(Duration::from_millis(200))
            .consumer_expiry(Duration::from_millis(1500)),
    )
    .await;
    let consumers = || async {
        let list = cmd_json(&r, &["XINFO", "CONSUMERS", CMDS, "svc"]).await;
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c[1].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = consumers().await;
    assert!(
        (0..5).all(|i| before.contains(&format!("svc:crashed-{i}"))),
        "{before:?}"
    );
    eventually("the crashed servers' consumers removed", || async {
        !consumers()
            .await
            .iter()
            .any(|c| c.starts_with("svc:crashed"))
    })
    .await;
    // the server still serves, and its own consumer is never removed while it runs
    let c = client(&redis).await;
    c.call_value("svc", "echo", json!({}), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(consumers().await, ["svc:a"]);
    c.call_value("svc", "echo", json!({}), None).await.unwrap();
    c.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn replies_to_0_1_9_clients_keep_their_maxlen_cap() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe).reply_stream_maxlen(100)).await;
    let r = raw(&redis).await;
    for i in 0..500 {
        raw_request(
            &r,
            CMDS,
            &request("echo", &format!("m{i}"), json!({})),
            Some("h:replies:py"),
            &[],
        )
        .await;
    }
    eventually("all answered", || async {
        probe.runs() == 500 && pending(&r, CMDS, "svc").await == 0
    })
    .await;
    let len = xlen(&r, "h:replies:py").await;
    assert!(
        (100..=250).contains(&len),
        "MAXLEN ~ 100 keeps about 100 replies, got {len}"
    );
    server.stop().await;
}

// ---- a connection cut after an XADD was sent: the request runs once --------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_xadd_reply_was_lost_is_not_sent_twice() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let server = started(server_builder(&redis, "s", &probe)).await;
    let proxy = CuttingProxy::start(redis.port()).await;
    let c = RedisRpcClient::builder()
        .key_prefix(PREFIX)
        .url(proxy.url())
        .build()
        .unwrap();
    c.start().await.unwrap();
    c.call_value("svc", "echo", json!({"warm": 1}), None)
        .await
        .unwrap();
    for i in 0..3 {
        *proxy.cut_after.lock().unwrap() = Some(b"h:cmds:svc".to_vec());
        let out = c
            .call_value(
                "svc",
                "slow",
                json!({"ms": 300, "i": i}),
                Some(Duration::from_secs(10)),
            )
            .await;
        assert_eq!(out.unwrap(), json!({"ms": 300, "i": i}));
    }
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        3,
        "the proxy cut three XADDs"
    );
    // a second copy would start within the claim idle; none does
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        probe.runs(),
        4,
        "a request ran twice after its XADD reply was lost"
    );
    c.stop().await;
    server.stop().await;
}

// ---- reclaimed work goes before new work ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_server_reclaims_a_dead_servers_entries_before_new_work() {
    let redis = RedisServer::start();
    let probe = Probe::new();
    let idle = Duration::from_millis(300);
    let a = started(
        server_builder(&redis, "a", &probe)
            .consumer_claim_idle(idle)
            .concurrency(std::num::NonZeroUsize::new(12).unwrap()),
    )
    .await;
    let c = client(&redis).await;
    let stuck: Vec<_> = (0..12)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.call_value(
                    "svc",
                    "gate",
                    json!({"stuck": i}),
                    Some(Duration::from_secs(30)),
                )
                .await
            })
        })
        .collect();
    for _ in 0..12 {
        probe.started().await;
    }
    // a dies with 12 entries in hand; b has 2 slots, kept busy by a steady load. Permits for
    // 24 runs: a handler of a that wakes while a is being dropped may take one and finish with
    // its reply never written (a is gone); b then runs that entry again and needs another
    // (with 12, that rerun waited forever: 1 run in 6 on Valkey timed out after 30 s)
    drop(a);
    probe.release(24);
    let b = started(
        server_builder(&redis, "b", &probe)
            .consumer_claim_idle(idle)
            .concurrency(std::num::NonZeroUsize::new(2).unwrap()),
    )
    .await;
    let stop_load = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..6)
        .map(|_| {
            let (c, stop_load) = (c.clone(), stop_load.clone());
            tokio::spawn(async move {
                while !stop_load.load(Ordering::SeqCst) {
                    let _ = c.call_value("svc", "slow", json!({"ms": 100}), None).await;
                }
            })
        })
        .collect();
    let since = Instant::now();
    for call in stuck {
        call.await.unwrap().unwrap();
    }
    let took = since.elapsed();
    stop_load.store(true, Ordering::SeqCst);
    for l in load {
        l.await.unwrap();
    }
    // eligible after claim idle + liveness window (~0.8 s); one per reclaim period (1 s)
    // would take over 10 s
    assert!(
        took < Duration::from_millis(3000),
        "the dead server's 12 entries took {took:?} to be reclaimed and answered"
    );
    b.stop().await;
    c.stop().await;
}
