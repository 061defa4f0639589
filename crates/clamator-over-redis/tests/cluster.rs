//! The Redis transport on a real Redis Cluster: 3 masters with a replica each, on free loopback
//! ports, started by the test support. Services are spread over every master; calls go on
//! through a graceful failover, a SIGKILLed master and a slot moved to another master under
//! load.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clamator_over_redis::{command_stream, RedisRpcClient, RedisRpcServer};
use clamator_protocol::{RpcClient, RpcError, RpcService};
use clamator_test_support::RedisCluster;
use serde_json::{json, Value};

/// How many times each `(service, n)` ran.
type Runs = Arc<Mutex<HashMap<(String, u64), u32>>>;

fn services(count: usize, runs: &Runs) -> Vec<RpcService> {
    (0..count)
        .map(|i| {
            let name = format!("svc{i:02}");
            let runs = Arc::clone(runs);
            let me = name.clone();
            RpcService::builder(name)
                .raw_method("echo", json!({}), json!({}), move |p: Value| {
                    let n = p["n"].as_u64().unwrap_or(u64::MAX);
                    *runs.lock().unwrap().entry((me.clone(), n)).or_default() += 1;
                    let me = me.clone();
                    async move { Ok::<_, RpcError>(json!({"n": n, "svc": me})) }
                })
                .build()
                .unwrap()
        })
        .collect()
}

struct Setup {
    cluster: RedisCluster,
    prefix: String,
    server: RedisRpcServer,
    client: RedisRpcClient,
    runs: Runs,
    names: Vec<String>,
}

async fn setup(service_count: usize) -> Setup {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3, 1))
        .await
        .unwrap();
    let prefix = format!("cl{}", uuid::Uuid::new_v4().simple());
    let runs = Runs::default();
    let mut builder = RedisRpcServer::builder(&prefix)
        .redis_cluster(cluster.seeds())
        .concurrency(NonZeroUsize::new(64).unwrap())
        .consumer_claim_idle(Duration::from_secs(3))
        .shutdown_grace(Duration::from_secs(2));
    let svcs = services(service_count, &runs);
    let names = svcs.iter().map(|s| s.name().to_owned()).collect();
    for s in svcs {
        builder = builder.service(s);
    }
    let server = builder.build().unwrap();
    server.start().await.unwrap();
    let client = RedisRpcClient::builder(&prefix)
        .redis_cluster(cluster.seeds())
        .default_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    client.start().await.unwrap();
    Setup {
        cluster,
        prefix,
        server,
        client,
        runs,
        names,
    }
}

/// One call of the load: when it started, against which service, and how it ended.
#[derive(Debug)]
struct Outcome {
    at: Instant,
    ok: bool,
    error: Option<String>,
}

/// Calls every service in turn, `inflight` calls at a time, until `stop`.
async fn load(
    client: RedisRpcClient,
    names: Vec<String>,
    inflight: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers = (0..inflight).map(|_| {
        let (client, names, stop, next) = (
            client.clone(),
            names.clone(),
            Arc::clone(&stop),
            Arc::clone(&next),
        );
        tokio::spawn(async move {
            let mut out = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let svc = &names[usize::try_from(n).unwrap() % names.len()];
                let at = Instant::now();
                let result = client.call_value(svc, "echo", json!({"n": n}), None).await;
                let (ok, error) = match result {
                    Ok(v) if v == json!({"n": n, "svc": svc}) => (true, None),
                    Ok(v) => (false, Some(format!("wrong answer {v}"))),
                    Err(e) => (false, Some(e.to_string())),
                };
                out.push(Outcome { at, ok, error });
            }
            out
        })
    });
    let mut all = Vec::new();
    for w in futures::future::join_all(workers).await {
        all.extend(w.unwrap());
    }
    all
}

/// What a run under a fault looked like.
#[derive(Debug)]
struct Report {
    calls: usize,
    failed: usize,
    /// From the first failed call's start to the last failed call's start (printed).
    #[allow(dead_code)]
    failure_window: Duration,
    /// Calls whose handler ran more than once.
    ran_twice: usize,
    /// The first distinct errors (printed).
    #[allow(dead_code)]
    first_errors: Vec<String>,
}

fn report(outcomes: &[Outcome], runs: &Runs) -> Report {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok).collect();
    let failure_window = match (failed.first(), failed.last()) {
        (Some(a), Some(b)) => {
            let first = failed.iter().map(|o| o.at).min().unwrap_or(a.at);
            let last = failed.iter().map(|o| o.at).max().unwrap_or(b.at);
            last - first
        }
        _ => Duration::ZERO,
    };
    let mut first_errors: Vec<String> = failed.iter().filter_map(|o| o.error.clone()).collect();
    first_errors.dedup();
    first_errors.truncate(5);
    Report {
        calls: outcomes.len(),
        failed: failed.len(),
        failure_window,
        ran_twice: runs.lock().unwrap().values().filter(|c| **c > 1).count(),
        first_errors,
    }
}

/// Runs `fault` (on a blocking thread) while calls go on; returns the outcomes and when the
/// fault was over.
async fn under_load<F>(s: &Setup, fault: F, after: Duration) -> (Vec<Outcome>, Instant)
where
    F: FnOnce(&RedisCluster) + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(
        s.client.clone(),
        s.names.clone(),
        32,
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| fault(&s.cluster));
    let over = Instant::now();
    tokio::time::sleep(after).await;
    stop.store(true, Ordering::Relaxed);
    (loader.await.unwrap(), over)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_spread_over_every_master_and_every_call_is_answered_once() {
    let s = setup(24).await;
    let calls: Vec<_> = (0..2400u64)
        .map(|n| {
            let svc = s.names[usize::try_from(n).unwrap() % s.names.len()].clone();
            let client = s.client.clone();
            async move {
                let v = client.call_value(&svc, "echo", json!({"n": n}), None).await;
                (svc, n, v)
            }
        })
        .collect();
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(128)
        .collect()
        .await;
    for (svc, n, v) in &results {
        assert_eq!(v.as_ref().unwrap(), &json!({"n": n, "svc": svc}));
    }
    assert_eq!(results.len(), 2400);
    assert!(
        s.runs.lock().unwrap().values().all(|c| *c == 1),
        "a call ran twice"
    );

    // every key is on the master its slot says, and the services use every master
    let mut masters = std::collections::BTreeSet::new();
    for name in &s.names {
        let key = command_stream(&s.prefix, name);
        let owner = s.cluster.master_of(&key);
        assert_eq!(
            s.cluster.node(owner.port).cli(&["EXISTS", &key]).trim(),
            "1",
            "{key} is not on the master of its slot"
        );
        masters.insert(owner.port);
    }
    assert_eq!(masters.len(), 3, "24 services use all 3 masters");
    let reply = s.client.reply_stream().to_owned();
    let owner = s.cluster.master_of(&reply);
    assert_eq!(
        s.cluster.node(owner.port).cli(&["EXISTS", &reply]).trim(),
        "1"
    );
    // acked and deleted: nothing left pending or in the streams
    for name in &s.names {
        let key = command_stream(&s.prefix, name);
        let node = s.cluster.node(s.cluster.master_of(&key).port);
        assert_eq!(
            node.cli(&["XLEN", &key]).trim(),
            "0",
            "{key} still holds entries"
        );
    }
    s.client.stop().await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_through_a_graceful_failover() {
    let s = setup(12).await;
    let key = command_stream(&s.prefix, &s.names[0]);
    let (outcomes, over) = under_load(
        &s,
        |cluster| {
            let (old, new) = cluster.failover(&key);
            eprintln!("graceful failover of {key}'s master: {old} -> {new}");
        },
        Duration::from_secs(4),
    )
    .await;
    let r = report(&outcomes, &s.runs);
    eprintln!("graceful failover under load: {r:?}");
    let late: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.at > over + Duration::from_secs(1))
        .collect();
    assert!(
        late.len() > 100,
        "calls went on after the failover ({} calls)",
        late.len()
    );
    assert!(
        late.iter().all(|o| o.ok),
        "every call a second after the failover succeeds: {r:?}"
    );
    // a graceful failover loses no write: nothing ran twice, nothing was lost
    assert_eq!(r.ran_twice, 0, "{r:?}");
    assert_eq!(r.failed, 0, "a graceful failover fails no call: {r:?}");
    s.client.stop().await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_when_a_master_is_killed() {
    let mut s = setup(12).await;
    let key = command_stream(&s.prefix, &s.names[0]);
    let victim = s.cluster.master_of(&key);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(
        s.client.clone(),
        s.names.clone(),
        32,
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = Instant::now();
    s.cluster.node_mut(victim.port).kill();
    let promoted = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = s.cluster.try_master_of(&key);
            if now.is_some_and(|n| n.port != victim.port) {
                s.cluster.wait_ok(Duration::from_secs(30));
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "no replica was promoted");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    eprintln!(
        "master {} SIGKILLed; replica promoted after {:?}",
        victim.port,
        promoted - killed_at
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = loader.await.unwrap();
    let r = report(&outcomes, &s.runs);
    eprintln!("SIGKILLed master under load: {r:?}");
    // calls started once the cluster is ok again (plus the client's reconnect) succeed
    let late: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.at > promoted + Duration::from_secs(3))
        .collect();
    assert!(
        late.len() > 100,
        "calls went on after the failover ({} calls)",
        late.len()
    );
    let late_failed: Vec<_> = late
        .iter()
        .filter(|o| !o.ok)
        .filter_map(|o| o.error.clone())
        .collect();
    assert!(
        late_failed.is_empty(),
        "calls after the failover window failed: {late_failed:?}; {r:?}"
    );
    // every failure was seen by its caller (a timeout or an error), none was silent: each call
    // has an outcome
    assert_eq!(r.calls, outcomes.len());
    s.client.stop().await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_while_a_busy_stream_moves_to_another_master() {
    let s = setup(6).await;
    let key = command_stream(&s.prefix, &s.names[0]);
    let from = s.cluster.master_of(&key);
    let to = s
        .cluster
        .topology()
        .into_iter()
        .find(|n| n.master && n.id != from.id)
        .unwrap();
    let slot = s.cluster.slot(&key);
    let (outcomes, _) = under_load(
        &s,
        |cluster| cluster.move_slot(slot, &to),
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(s.cluster.master_of(&key).port, to.port, "the slot moved");
    let r = report(&outcomes, &s.runs);
    eprintln!(
        "slot {slot} of {key} moved {} -> {} under load: {r:?}",
        from.port, to.port
    );
    assert!(r.calls > 500, "{r:?}");
    assert_eq!(r.failed, 0, "moving a slot fails no call: {r:?}");
    assert_eq!(r.ran_twice, 0, "{r:?}");
    // the consumer group moved with the stream
    let groups = s.cluster.node(to.port).cli(&["XINFO", "GROUPS", &key]);
    assert!(
        groups.contains(&s.names[0]),
        "group on the new master: {groups}"
    );
    s.client.stop().await;
    s.server.stop().await;
}
