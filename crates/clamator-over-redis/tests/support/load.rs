//! A load of calls spread over many services, and what it looked like under a fault.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clamator_over_redis::RedisRpcClient;
use clamator_protocol::{RpcClient, RpcError, RpcService};
use serde_json::{json, Value};

/// How many times each `(service, n)` ran.
pub type Runs = Arc<Mutex<HashMap<(String, u64), u32>>>;

pub fn services(count: usize, runs: &Runs) -> Vec<RpcService> {
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

/// One call of the load: when it started, against which service, and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub at: Instant,
    pub ok: bool,
    pub error: Option<String>,
}

/// Calls every service in turn, `inflight` calls at a time, until `stop`.
pub async fn load(
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
pub struct Report {
    pub calls: usize,
    pub failed: usize,
    /// From the first failed call's start to the last failed call's start (printed).
    #[allow(dead_code)]
    pub failure_window: Duration,
    /// Calls whose handler ran more than once.
    pub ran_twice: usize,
    /// The first distinct errors (printed).
    #[allow(dead_code)]
    pub first_errors: Vec<String>,
}

pub fn report(outcomes: &[Outcome], runs: &Runs) -> Report {
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

/// A server serving `count` echo services and a client, both connected by `connect` (a URL, a
/// cluster, Sentinels), started.
pub struct Pool {
    pub server: clamator_over_redis::RedisRpcServer,
    pub client: RedisRpcClient,
    pub runs: Runs,
    pub names: Vec<String>,
}

/// How a test connects its server and client.
pub trait Connect {
    fn server(
        &self,
        b: clamator_over_redis::RedisRpcServerBuilder,
    ) -> clamator_over_redis::RedisRpcServerBuilder;
    fn client(
        &self,
        b: clamator_over_redis::RedisRpcClientBuilder,
    ) -> clamator_over_redis::RedisRpcClientBuilder;
}

impl Pool {
    pub async fn start(prefix: &str, count: usize, connect: &impl Connect) -> Self {
        let runs = Runs::default();
        let mut builder = connect.server(
            clamator_over_redis::RedisRpcServer::builder()
                .key_prefix(prefix)
                .concurrency(std::num::NonZeroUsize::new(64).unwrap())
                .consumer_claim_idle(Duration::from_secs(3))
                .shutdown_grace(Duration::from_secs(2)),
        );
        let svcs = services(count, &runs);
        let names = svcs.iter().map(|s| s.name().to_owned()).collect();
        for s in svcs {
            builder = builder.service(s);
        }
        let server = builder.build().unwrap();
        server.start().await.unwrap();
        let client = connect
            .client(
                RedisRpcClient::builder()
                    .key_prefix(prefix)
                    .default_timeout(Duration::from_secs(5)),
            )
            .build()
            .unwrap();
        client.start().await.unwrap();
        Self {
            server,
            client,
            runs,
            names,
        }
    }

    /// Loads the pool (32 calls in flight) while `fault` runs on a blocking thread; returns
    /// the outcomes and when the fault was over (then the load goes on for `after`).
    pub async fn under_load<F>(&self, fault: F, after: Duration) -> (Vec<Outcome>, Instant)
    where
        F: FnOnce(),
    {
        let stop = Arc::new(AtomicBool::new(false));
        let loader = tokio::spawn(load(
            self.client.clone(),
            self.names.clone(),
            32,
            Arc::clone(&stop),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        tokio::task::block_in_place(fault);
        let over = Instant::now();
        tokio::time::sleep(after).await;
        stop.store(true, Ordering::Relaxed);
        (loader.await.unwrap(), over)
    }

    pub async fn stop(self) {
        self.client.stop().await;
        self.server.stop().await;
    }
}
