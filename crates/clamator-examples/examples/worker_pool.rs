//! A worker pool over Redis: several server processes serve one service with the same key
//! prefix, so they share its consumer group and each request goes to one of them. This process
//! starts the workers (copies of itself with `--worker N`), sends calls, and prints how many
//! each worker handled. Then it stops them: each drains (finishes what it runs) and exits.
//!
//! ```text
//! cargo run --example worker_pool                          # Redis at $REDIS_URL or localhost
//! cargo run --example worker_pool -- --redis URL --workers 4 --calls 400
//! ```
//!
//! Redis only: on the in-process bus one server owns a service, so there is no pool to show.
//! Start a Redis first if none runs (`redis-server`).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator::redis::{RedisRpcClient, RedisRpcServer};
use clamator::RpcError;
use clamator_examples::Args;
use tokio::io::AsyncBufReadExt;

/// A job: work for `ms` milliseconds.
#[clamator::model]
#[derive(Debug)]
pub struct Job {
    /// How long the job takes.
    pub ms: u64,
}

/// Who did a job.
#[clamator::model]
#[derive(Debug)]
pub struct Done {
    /// The worker's number.
    pub worker: u32,
}

/// Jobs, served by a pool of workers.
#[clamator::contract(service = "jobs")]
pub trait Jobs {
    /// Does a job.
    async fn work(&self, params: Job) -> Result<Done, RpcError>;
}

struct Worker(u32);

impl Jobs for Worker {
    async fn work(&self, job: Job) -> Result<Done, RpcError> {
        tokio::time::sleep(Duration::from_millis(job.ms)).await;
        Ok(Done { worker: self.0 })
    }
}

/// `--worker N`: serve `jobs` until stdin closes (the parent holds it), then drain and exit.
async fn worker(n: u32, url: &str, prefix: &str) -> Result<(), Box<dyn std::error::Error>> {
    let server = RedisRpcServer::builder()
        .key_prefix(prefix)
        .url(url)
        .instance_id(format!("worker-{n}"))
        .concurrency(std::num::NonZeroUsize::new(4).expect("4 > 0"))
        .service(JobsServer::new(Worker(n)))
        .build()?;
    server.start().await?;
    println!("ready");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while lines.next_line().await?.is_some() {}
    server.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    clamator_examples::init_logs();
    let args = Args::parse();
    let url = args.redis_url();
    if let Some(n) = args.rest.iter().position(|a| a == "--worker") {
        let n: u32 = args
            .rest
            .get(n + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let prefix = args.value("--prefix", String::new());
        return worker(n, &url, &prefix).await;
    }
    let workers: u32 = args.value("--workers", 3);
    let calls: usize = args.value("--calls", 300);
    let prefix = clamator_examples::run_prefix("worker-pool");
    println!(
        "redis {} (prefix {prefix}): {workers} worker processes, {calls} calls of 5 ms, 32 in flight",
        clamator::redis::redact_url(&url)
    );

    let me = std::env::current_exe()?;
    let mut children = Vec::new();
    for n in 1..=workers {
        let mut child = tokio::process::Command::new(&me)
            .args([
                "--redis",
                &url,
                "--worker",
                &n.to_string(),
                "--prefix",
                &prefix,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        match tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await {
            Ok(Ok(Some(line))) if line == "ready" => {}
            _ => {
                return Err(format!(
                    "worker {n} did not start (is Redis running at {}? `redis-server` starts one)",
                    clamator::redis::redact_url(&url)
                )
                .into())
            }
        }
        children.push(child);
    }

    let client = RedisRpcClient::builder()
        .key_prefix(&prefix)
        .url(&url)
        .build()?;
    client.start().await?;
    let jobs = Arc::new(JobsClient::new(client.clone()));
    let started = Instant::now();
    let per_task = calls.div_ceil(32);
    let mut tasks = Vec::new();
    for t in 0..32 {
        let jobs = Arc::clone(&jobs);
        let count = per_task.min(calls.saturating_sub(t * per_task));
        tasks.push(tokio::spawn(async move {
            let mut handled = Vec::new();
            for _ in 0..count {
                handled.push(jobs.work(Job { ms: 5 }).await.map(|d| d.worker));
            }
            handled
        }));
    }
    let mut by_worker: BTreeMap<u32, usize> = BTreeMap::new();
    for task in tasks {
        for done in task.await? {
            *by_worker.entry(done?).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();
    for (worker, n) in &by_worker {
        println!("worker {worker}: {n:>4} calls {}", "#".repeat(n / 5));
    }
    println!(
        "{calls} calls in {:.2} s ({:.0} calls/s; one worker alone would need at least {:.2} s)",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        calls as f64 * 0.005 / 4.0
    );
    client.stop().await;
    for mut child in children {
        drop(child.stdin.take()); // EOF: the worker drains and exits
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
    clamator_examples::cleanup(&url, &prefix).await;
    Ok(())
}
