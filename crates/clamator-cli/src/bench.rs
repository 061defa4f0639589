//! A closed-loop load generator over any clamator client: `concurrency` workers each call,
//! wait for the reply and call again, until `calls` are done or `duration` has passed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator::{CallError, RpcClient};
use serde::Serialize;
use serde_json::Value;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Service name.
    pub service: String,
    /// Method name.
    pub method: String,
    /// Params of every call.
    pub params: Value,
    /// How many calls at most.
    pub calls: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Stop after this long, even if fewer than `calls` ran.
    pub duration: Option<Duration>,
    /// Per-call timeout (`None`: the client's default).
    pub timeout: Option<Duration>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Calls made.
    pub calls: usize,
    /// Calls that returned a result.
    pub ok: usize,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Completed calls (ok or not) per second.
    pub calls_per_s: f64,
    /// Median latency of successful calls, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Failed calls by kind (`timeout`, `transport`, `protocol`, `rpc <code>`).
    pub errors: BTreeMap<String, usize>,
    /// Calls in flight.
    pub concurrency: usize,
}

fn error_kind(e: &CallError) -> String {
    match e {
        CallError::Rpc(r) => format!("rpc {}", r.code),
        e if e.is_timeout() => "timeout".into(),
        CallError::Transport(_) => "transport".into(),
        _ => "protocol".into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Runs the load; `progress` is bumped after every call (for a progress bar).
pub async fn run<C: RpcClient>(
    client: &C,
    spec: &BenchSpec,
    progress: Arc<AtomicUsize>,
) -> BenchReport {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = spec.duration.map(|d| started + d);
    let workers = (0..spec.concurrency.max(1)).map(|_| {
        let (client, next, progress) = (client.clone(), Arc::clone(&next), Arc::clone(&progress));
        let spec = spec.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            while next.fetch_add(1, Ordering::Relaxed) < spec.calls {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let t = Instant::now();
                match client
                    .call_value(
                        &spec.service,
                        &spec.method,
                        spec.params.clone(),
                        spec.timeout,
                    )
                    .await
                {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(e) => *errors.entry(error_kind(&e)).or_default() += 1,
                }
                progress.fetch_add(1, Ordering::Relaxed);
            }
            (latencies, errors)
        })
    });
    let mut latencies: Vec<Duration> = Vec::with_capacity(spec.calls.min(1 << 24));
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for joined in futures::future::join_all(workers).await {
        let Ok((l, e)) = joined else { continue };
        latencies.extend(l);
        for (k, v) in e {
            *errors.entry(k).or_default() += v;
        }
    }
    BenchReport::from_latencies(latencies, errors, started.elapsed(), spec.concurrency)
}

impl BenchReport {
    /// A report from the latencies of the successful calls and the failures by kind.
    pub fn from_latencies(
        mut latencies: Vec<Duration>,
        errors: BTreeMap<String, usize>,
        elapsed: Duration,
        concurrency: usize,
    ) -> Self {
        let elapsed = elapsed.as_secs_f64();
        latencies.sort_unstable();
        let ok = latencies.len();
        let calls = ok + errors.values().sum::<usize>();
        Self {
            calls,
            ok,
            elapsed_s: elapsed,
            calls_per_s: if elapsed > 0.0 {
                calls as f64 / elapsed
            } else {
                0.0
            },
            p50_ms: percentile(&latencies, 50.0),
            p90_ms: percentile(&latencies, 90.0),
            p99_ms: percentile(&latencies, 99.0),
            max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            errors,
            concurrency,
        }
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "calls:       {} ({} ok) in {:.2} s, {} in flight",
            self.calls, self.ok, self.elapsed_s, self.concurrency
        )?;
        writeln!(f, "throughput:  {:.0} calls/s", self.calls_per_s)?;
        writeln!(
            f,
            "latency ms:  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )?;
        if self.errors.is_empty() {
            write!(f, "errors:      none")
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, "errors:      {}", list.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
