//! The Redis transport on a real Redis Cluster: 3 masters with a replica each, on free loopback
//! ports, started by the test support. Services are spread over every master; calls go on
//! through a graceful failover, a SIGKILLed master and a slot moved to another master under
//! load.
#![allow(missing_docs)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator_over_redis::{command_stream, RedisRpcClientBuilder, RedisRpcServerBuilder};
use clamator_protocol::RpcClient;
use clamator_test_support::RedisCluster;
use serde_json::json;
use support::load::{load, report, Connect, Outcome, Pool};

struct Setup {
    cluster: RedisCluster,
    prefix: String,
    pool: Pool,
}

struct ClusterSeeds(Vec<String>);

impl Connect for ClusterSeeds {
    fn server(&self, b: RedisRpcServerBuilder) -> RedisRpcServerBuilder {
        b.connection(clamator_over_redis::RedisConnection::cluster(
            self.0.clone(),
        ))
    }
    fn client(&self, b: RedisRpcClientBuilder) -> RedisRpcClientBuilder {
        b.connection(clamator_over_redis::RedisConnection::cluster(
            self.0.clone(),
        ))
    }
}

async fn setup(service_count: usize) -> Setup {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3, 1))
        .await
        .unwrap();
    let prefix = format!("cl{}", uuid::Uuid::new_v4().simple());
    let pool = Pool::start(&prefix, service_count, &ClusterSeeds(cluster.seeds())).await;
    Setup {
        cluster,
        prefix,
        pool,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_spread_over_every_master_and_every_call_is_answered_once() {
    let s = setup(24).await;
    let calls: Vec<_> = (0..2400u64)
        .map(|n| {
            let svc = s.pool.names[usize::try_from(n).unwrap() % s.pool.names.len()].clone();
            let client = s.pool.client.clone();
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
        s.pool.runs.lock().unwrap().values().all(|c| *c == 1),
        "a call ran twice"
    );

    // every key is on the master its slot says, and the services use every master
    let mut masters = std::collections::BTreeSet::new();
    for name in &s.pool.names {
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
    let reply = s.pool.client.reply_stream().to_owned();
    let owner = s.cluster.master_of(&reply);
    assert_eq!(
        s.cluster.node(owner.port).cli(&["EXISTS", &reply]).trim(),
        "1"
    );
    // acked and deleted: nothing left pending or in the streams
    for name in &s.pool.names {
        let key = command_stream(&s.prefix, name);
        let node = s.cluster.node(s.cluster.master_of(&key).port);
        assert_eq!(
            node.cli(&["XLEN", &key]).trim(),
            "0",
            "{key} still holds entries"
        );
    }
    s.pool.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_through_a_graceful_failover() {
    let s = setup(12).await;
    let key = command_stream(&s.prefix, &s.pool.names[0]);
    let (outcomes, over) = s
        .pool
        .under_load(
            || {
                let (old, new) = s.cluster.failover(&key);
                eprintln!("graceful failover of {key}'s master: {old} -> {new}");
            },
            Duration::from_secs(4),
        )
        .await;
    let r = report(&outcomes, &s.pool.runs);
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
    s.pool.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_when_a_master_is_killed() {
    let mut s = setup(12).await;
    let key = command_stream(&s.prefix, &s.pool.names[0]);
    let victim = s.cluster.master_of(&key);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(
        s.pool.client.clone(),
        s.pool.names.clone(),
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
    let r = report(&outcomes, &s.pool.runs);
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
    s.pool.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_while_a_busy_stream_moves_to_another_master() {
    let s = setup(6).await;
    let key = command_stream(&s.prefix, &s.pool.names[0]);
    let from = s.cluster.master_of(&key);
    let to = s
        .cluster
        .topology()
        .into_iter()
        .find(|n| n.master && n.id != from.id)
        .unwrap();
    let slot = s.cluster.slot(&key);
    let (outcomes, _) = s
        .pool
        .under_load(|| s.cluster.move_slot(slot, &to), Duration::from_secs(4))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.cluster.master_of(&key).port != to.port {
        assert!(Instant::now() < deadline, "the slot did not move");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = report(&outcomes, &s.pool.runs);
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
        groups.contains(&s.pool.names[0]),
        "group on the new master: {groups}"
    );
    s.pool.stop().await;
}

struct AclSeeds {
    server: Vec<String>,
    client: Vec<String>,
}

impl Connect for AclSeeds {
    fn server(&self, b: RedisRpcServerBuilder) -> RedisRpcServerBuilder {
        b.connection(clamator_over_redis::RedisConnection::cluster(
            self.server.clone(),
        ))
    }
    fn client(&self, b: RedisRpcClientBuilder) -> RedisRpcClientBuilder {
        b.connection(clamator_over_redis::RedisConnection::cluster(
            self.client.clone(),
        ))
    }
}

/// The least-privilege users of the README (plus `+cluster|slots`, which finding the
/// topology needs) serve and call on a cluster, and every connection the transport opened is
/// one of theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_privilege_acl_users_serve_and_call_on_a_cluster() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3, 0))
        .await
        .unwrap();
    let prefix = format!("acl{}", uuid::Uuid::new_v4().simple());
    let keys = format!("~{prefix}:*");
    for node in cluster.nodes() {
        for (user, rules) in [("srv", support::SERVER_ACL), ("cli", support::CLIENT_ACL)] {
            let mut args = vec![
                "ACL",
                "SETUSER",
                user,
                "on",
                ">pw",
                &keys,
                "resetchannels",
                "-@all",
                "+cluster|slots",
            ];
            args.extend(rules);
            assert_eq!(node.cli(&args).trim(), "OK");
        }
    }
    let seeds = |user: &str| -> Vec<String> {
        cluster
            .nodes()
            .iter()
            .map(|n| format!("redis://{user}:pw@127.0.0.1:{}", n.port()))
            .collect()
    };
    let connect = AclSeeds {
        server: seeds("srv"),
        client: seeds("cli"),
    };
    let pool = Pool::start(&prefix, 9, &connect).await;
    let masters: std::collections::BTreeSet<u16> = pool
        .names
        .iter()
        .map(|name| cluster.master_of(&command_stream(&prefix, name)).port)
        .collect();
    assert_eq!(masters.len(), 3, "9 services use all 3 masters");
    for (i, name) in pool.names.iter().enumerate() {
        assert_eq!(
            pool.client
                .call_value(name, "echo", json!({"n": i}), None)
                .await
                .unwrap(),
            json!({"n": i, "svc": name})
        );
    }
    // the connections on every master are the two users' (and the test's own redis-cli)
    for node in cluster.nodes() {
        let list = node.cli(&["CLIENT", "LIST"]);
        let users: std::collections::BTreeSet<&str> = list
            .lines()
            .filter(|l| !l.contains("cmd=client|list"))
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("user=")))
            .collect();
        assert_eq!(
            users,
            ["cli", "srv"].into_iter().collect(),
            "connections on {}: {list}",
            node.port()
        );
    }
    pool.stop().await;
}

/// TLS on a cluster: nodes with `tls-cluster yes` give TLS clients their TLS ports, so every
/// connection the transport opens (seeds, discovered masters, blocking readers) is TLS; a
/// certificate the system does not trust is refused unless the seed URLs say `#insecure`
/// (with native-tls a cluster client takes no custom CA: trust it system-wide).
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_on_a_cluster() {
    let dir = std::env::temp_dir().join(format!(
        "clamator-cluster-tls-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    support::generate_certs(&dir);
    let file = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (crt, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    // the machine's redis-server: the pinned Valkey wheel is built without TLS
    let cluster = tokio::task::spawn_blocking(move || {
        RedisCluster::start_with(
            3,
            0,
            clamator_test_support::Engine::Redis,
            &[
                "--tls-port",
                "{tls-port}",
                "--tls-cluster",
                "yes",
                "--tls-replication",
                "yes",
                "--tls-cert-file",
                &crt,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-auth-clients",
                "no",
            ],
        )
    })
    .await
    .unwrap();
    let tls_port = |n: &clamator_test_support::RedisServer| -> u16 {
        n.cli(&["CONFIG", "GET", "tls-port"])
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    let seeds = |fragment: &str| -> Vec<String> {
        cluster
            .nodes()
            .iter()
            .map(|n| format!("rediss://127.0.0.1:{}{fragment}", tls_port(n)))
            .collect()
    };
    let prefix = format!("tls{}", uuid::Uuid::new_v4().simple());

    let untrusted = clamator_over_redis::RedisRpcClient::builder()
        .key_prefix(&prefix)
        .connection(clamator_over_redis::RedisConnection::cluster(seeds("")))
        .build()
        .unwrap();
    let e = untrusted.start().await.unwrap_err().to_string();
    assert!(
        e.contains("certificate") || e.contains("TLS") || e.contains("tls"),
        "{e}"
    );

    let pool = Pool::start(&prefix, 9, &ClusterSeeds(seeds("/#insecure"))).await;
    let masters: std::collections::BTreeSet<u16> = pool
        .names
        .iter()
        .map(|name| cluster.master_of(&command_stream(&prefix, name)).port)
        .collect();
    assert_eq!(masters.len(), 3, "9 services use all 3 masters");
    for (i, name) in pool.names.iter().enumerate() {
        assert_eq!(
            pool.client
                .call_value(name, "echo", json!({"n": i}), None)
                .await
                .unwrap(),
            json!({"n": i, "svc": name})
        );
    }
    // every connection but the test's own redis-cli came in on the TLS port
    for node in cluster.nodes() {
        let tls = format!(":{}", tls_port(node));
        let list = node.cli(&["CLIENT", "LIST"]);
        let clients: Vec<&str> = list
            .lines()
            .filter(|l| !l.contains("cmd=client|list"))
            .collect();
        assert!(!clients.is_empty(), "nobody connected to {}", node.port());
        for c in clients {
            let laddr = c.split(' ').find_map(|f| f.strip_prefix("laddr=")).unwrap();
            assert!(laddr.ends_with(&tls), "a connection not over TLS: {c}");
        }
    }
    pool.stop().await;
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
