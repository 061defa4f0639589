//! The Redis transport through Redis Sentinel: a master, a replica and three Sentinels on free
//! loopback ports. Calls go on through a Sentinel failover and a SIGKILLed master.
#![allow(missing_docs)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator_over_redis::{RedisRpcClientBuilder, RedisRpcServerBuilder};
use clamator_test_support::RedisSentinels;
use support::load::{load, report, Connect, Outcome, Pool};

struct Sentinels(Vec<String>);

impl Connect for Sentinels {
    fn server(&self, b: RedisRpcServerBuilder) -> RedisRpcServerBuilder {
        b.connection(clamator_over_redis::RedisConnection::sentinel(
            RedisSentinels::MASTER,
            self.0.clone(),
        ))
    }
    fn client(&self, b: RedisRpcClientBuilder) -> RedisRpcClientBuilder {
        b.connection(clamator_over_redis::RedisConnection::sentinel(
            RedisSentinels::MASTER,
            self.0.clone(),
        ))
    }
}

async fn setup() -> (RedisSentinels, Pool) {
    let set = tokio::task::spawn_blocking(|| RedisSentinels::start(1))
        .await
        .unwrap();
    let prefix = format!("se{}", uuid::Uuid::new_v4().simple());
    let pool = Pool::start(&prefix, 4, &Sentinels(set.sentinel_urls())).await;
    (set, pool)
}

fn late(outcomes: &[Outcome], after: Instant) -> (usize, Vec<String>) {
    let late: Vec<&Outcome> = outcomes.iter().filter(|o| o.at > after).collect();
    let failed = late
        .iter()
        .filter(|o| !o.ok)
        .filter_map(|o| o.error.clone())
        .collect();
    (late.len(), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_through_a_sentinel_failover() {
    let (set, pool) = setup().await;
    let (outcomes, over) = pool
        .under_load(
            || {
                let (old, new) = set.failover();
                eprintln!("sentinel failover {old} -> {new}");
            },
            Duration::from_secs(5),
        )
        .await;
    let r = report(&outcomes, &pool.runs);
    eprintln!("sentinel failover under load: {r:?}");
    let (n, failed) = late(&outcomes, over + Duration::from_secs(2));
    assert!(n > 100, "calls went on after the failover ({n} calls)");
    assert!(
        failed.is_empty(),
        "calls after the failover failed: {failed:?}; {r:?}"
    );
    pool.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_go_on_when_the_master_is_killed() {
    let (mut set, pool) = setup().await;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(
        pool.client.clone(),
        pool.names.clone(),
        32,
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let old = set.master_port();
    let killed = Instant::now();
    set.node_mut(old).kill();
    let new = tokio::task::block_in_place(|| set.wait_new_master(old, Duration::from_secs(30)));
    let promoted = Instant::now();
    eprintln!(
        "master {old} SIGKILLed; Sentinel promoted {new} after {:?}",
        promoted - killed
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = loader.await.unwrap();
    let r = report(&outcomes, &pool.runs);
    eprintln!("SIGKILLed master under load (Sentinel): {r:?}");
    let (n, failed) = late(&outcomes, promoted + Duration::from_secs(3));
    assert!(n > 100, "calls went on after the failover ({n} calls)");
    assert!(
        failed.is_empty(),
        "calls after the failover window failed: {failed:?}; {r:?}"
    );
    pool.stop().await;
}
