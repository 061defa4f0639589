//! The fault cases: what a transport with a broker must survive. A transport's harness
//! implements [`Faults`] on top of [`Harness`] and expands [`fault_suite!`](crate::fault_suite)
//! with the cases that apply to it.
//!
//! * broker-side state deleted under running servers (the consumer, the stream, or everything:
//!   a broker restarted with an empty store) is recreated and the servers serve again within
//!   a few seconds;
//! * a reply over the transport's size limit is answered once with an error naming the limit
//!   (not written, not retried, the handler not run again);
//! * graceful stops under load dead-letter nothing that never ran, and every call is answered;
//! * a handler that finishes while the broker is down is answered after the outage, within its
//!   call's timeout, and runs once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clamator_protocol::middleware::ClientLayers;
use clamator_protocol::{codes, AnyServer, CallError, RpcClient, RpcError, RpcService};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::Harness;

/// What a broker keeps for a service, deleted under running servers by a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerState {
    /// The consumer group (Redis) or durable consumer (NATS) of the service.
    Consumer,
    /// The service's command stream, with its consumers.
    Stream,
    /// Everything the broker stored: a restart with an empty store (a lost disk, memory
    /// storage) or a flush.
    Everything,
}

/// What the fault cases need from a transport that moves envelopes as bytes.
pub trait Faults: Harness {
    /// A started server serving `services` with short fault settings: a request delivered
    /// twice without an ack is dead-lettered at its next delivery, and a dead server's work is
    /// taken over after about a second (claim idle / ack wait of 1 s).
    fn fault_server(&self, services: Vec<RpcService>) -> impl Future<Output = AnyServer> + Send;
    /// How many dead letters `service` has.
    fn dead_letters(&self, service: &str) -> impl Future<Output = usize> + Send;
    /// The largest reply envelope a server of this harness sends, in bytes.
    fn max_reply_bytes(&self) -> usize;
}

/// What the broker cases need besides [`Faults`]: a broker that can lose state and restart.
pub trait BrokerFaults: Faults {
    /// Deletes `what` of `service` on the broker while servers run.
    fn delete_broker_state(
        &self,
        service: &str,
        what: BrokerState,
    ) -> impl Future<Output = ()> + Send;
    /// Kills the broker (SIGKILL), keeps it down for `down`, and starts it again with what it
    /// had stored.
    fn restart_broker(&self, down: Duration) -> impl Future<Output = ()> + Send;
    /// Whether a client sends the calls it waits for again after its own reconnect (NATS:
    /// replies travel once, so one may have been lost): a call in flight across a broker
    /// restart may then run twice. Default: false (exactly once expected).
    const RESENDS_AFTER_RECONNECT: bool = false;
}

/// Expands to one `#[tokio::test]` per fault case named (all of them without a list: the
/// harness implements [`BrokerFaults`]).
///
/// ```ignore
/// clamator_conformance::fault_suite!(MyHarness::new());
/// clamator_conformance::fault_suite!(@cases MyHarness::new(); reply_over_limit_answered_once);
/// ```
#[macro_export]
macro_rules! fault_suite {
    ($make:expr) => {
        $crate::fault_suite!(@cases $make;
            consumer_deleted_under_running_servers, stream_deleted_under_running_servers,
            broker_emptied_under_running_servers, reply_over_limit_answered_once,
            graceful_stops_under_load_dead_letter_nothing_unrun,
            handler_finishing_during_an_outage_is_answered_after_it);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::faults::$case(&$make).await;
            }
        )*
    };
}

/// Executions per request number, and "started" events.
#[derive(Clone, Default)]
struct Runs {
    by_n: Arc<Mutex<HashMap<u64, usize>>>,
    started: Option<mpsc::UnboundedSender<u64>>,
}

impl Runs {
    fn of(&self, n: u64) -> usize {
        self.by_n.lock().unwrap().get(&n).copied().unwrap_or(0)
    }
}

/// `work.echo {n, ms}` sleeps `ms` and answers `{n}`; `work.big {bytes}` answers a string of
/// that many bytes. Both count their executions.
fn work(runs: &Runs) -> RpcService {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct EchoParams {
        n: u64,
        ms: u64,
    }
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct BigParams {
        n: u64,
        bytes: usize,
    }
    let (echo_runs, big_runs) = (runs.clone(), runs.clone());
    RpcService::builder("work")
        .method("echo", move |p: EchoParams| {
            *echo_runs.by_n.lock().unwrap().entry(p.n).or_default() += 1;
            if let Some(started) = &echo_runs.started {
                let _ = started.send(p.n);
            }
            async move {
                tokio::time::sleep(Duration::from_millis(p.ms)).await;
                Ok::<_, RpcError>(json!({ "n": p.n }))
            }
        })
        .method("big", move |p: BigParams| {
            *big_runs.by_n.lock().unwrap().entry(p.n).or_default() += 1;
            async move { Ok::<_, RpcError>(json!({ "n": p.n, "pad": "x".repeat(p.bytes) })) }
        })
        .build()
        .expect("the fault cases' service is valid")
}

async fn echo(
    client: &impl RpcClient,
    n: u64,
    ms: u64,
    timeout: Duration,
) -> Result<Value, CallError> {
    client
        .call_value("work", "echo", json!({ "n": n, "ms": ms }), Some(timeout))
        .await
}

/// Deletes `what` under a running server and calls until one is answered: within 10 s.
async fn serves_again_after<H: BrokerFaults>(h: &H, what: BrokerState) {
    let runs = Runs::default();
    let server = h.fault_server(vec![work(&runs)]).await;
    let client = h.client(Duration::from_secs(10), ClientLayers::new()).await;
    let out = echo(&client, 0, 0, Duration::from_secs(10)).await;
    assert_eq!(out.unwrap(), json!({"n": 0}));
    h.delete_broker_state("work", what).await;
    let deleted = Instant::now();
    let mut n = 1;
    let mut last_error = String::new();
    loop {
        match echo(&client, n, 0, Duration::from_secs(1)).await {
            Ok(v) => {
                assert_eq!(v, json!({ "n": n }));
                break;
            }
            Err(e) => last_error = e.to_string(),
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(10),
            "not serving 10 s after {what:?} was deleted under a running server; last error: {last_error}"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{what:?} deleted: served again after {:?} ({} calls failed meanwhile, the last with: {last_error})",
        deleted.elapsed(),
        n - 1
    );
    // And it keeps serving, each call once.
    for n in 1000..1020 {
        let out = echo(&client, n, 0, Duration::from_secs(5)).await;
        assert_eq!(out.unwrap(), json!({ "n": n }));
        assert_eq!(runs.of(n), 1, "call {n} ran {} times", runs.of(n));
    }
    client.stop().await;
    server.stop_with_grace(Duration::from_secs(5)).await;
}

/// The service's consumer (group) is deleted under a running server.
pub async fn consumer_deleted_under_running_servers<H: BrokerFaults>(h: &H) {
    serves_again_after(h, BrokerState::Consumer).await;
}

/// The service's stream is deleted under a running server.
pub async fn stream_deleted_under_running_servers<H: BrokerFaults>(h: &H) {
    serves_again_after(h, BrokerState::Stream).await;
}

/// Everything the broker stored is gone (restart with an empty store, or a flush).
pub async fn broker_emptied_under_running_servers<H: BrokerFaults>(h: &H) {
    serves_again_after(h, BrokerState::Everything).await;
}

/// A result whose reply is over the limit: the caller is told at once, naming the limit; the
/// handler runs once; the server keeps serving.
pub async fn reply_over_limit_answered_once<H: Faults>(h: &H) {
    let runs = Runs::default();
    let server = h.fault_server(vec![work(&runs)]).await;
    let client = h.client(Duration::from_secs(20), ClientLayers::new()).await;
    let limit = h.max_reply_bytes();
    let started = Instant::now();
    let out = client
        .call_value(
            "work",
            "big",
            json!({"n": 1, "bytes": limit + limit / 2}),
            None,
        )
        .await;
    let answered = started.elapsed();
    let err = match out {
        Err(CallError::Rpc(e)) => e,
        other => {
            let shown: String = format!("{other:?}").chars().take(200).collect();
            panic!("expected an error reply naming the limit, got {shown}…")
        }
    };
    assert_eq!(err.code, codes::INTERNAL_ERROR, "{err:?}");
    assert_eq!(err.data["name"], "ReplyTooLarge", "{}", err.data);
    let message = err.data["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&limit.to_string()),
        "the limit is named: {message}"
    );
    assert!(
        answered < Duration::from_secs(5),
        "answered after {answered:?}"
    );
    // Longer than the fault settings' claim idle / ack wait: a request left unacked would
    // have run again by now.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(runs.of(1), 1, "the handler ran {} times", runs.of(1));
    assert_eq!(h.dead_letters("work").await, 0);
    let out = client
        .call_value("work", "big", json!({"n": 2, "bytes": 10}), None)
        .await
        .unwrap();
    assert_eq!(out["n"], 2);
    client.stop().await;
    server.stop_with_grace(Duration::from_secs(5)).await;
}

/// Two servers under load (64 calls in flight); one is stopped gracefully and replaced, three
/// times. Every call is answered with its result, nothing is dead-lettered, and every answered
/// call ran.
pub async fn graceful_stops_under_load_dead_letter_nothing_unrun<H: Faults>(h: &H) {
    let runs = Runs::default();
    let steady = h.fault_server(vec![work(&runs)]).await;
    let mut stopping = h.fault_server(vec![work(&runs)]).await;
    let client = h.client(Duration::from_secs(30), ClientLayers::new()).await;
    let stop_load = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, stop_load, next) = (client.clone(), stop_load.clone(), next.clone());
        load.spawn(async move {
            let mut failures = Vec::new();
            while !stop_load.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst) as u64;
                match echo(&client, n, n % 20, Duration::from_secs(30)).await {
                    Ok(v) if v == json!({ "n": n }) => {}
                    Ok(v) => failures.push(format!("call {n} answered {v}")),
                    Err(e) => failures.push(format!("call {n}: {e}")),
                }
            }
            failures
        });
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        stopping.stop_with_grace(Duration::from_secs(5)).await;
        stopping = h.fault_server(vec![work(&runs)]).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_load.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    while let Some(done) = load.join_next().await {
        failures.extend(done.unwrap());
    }
    let calls = next.load(Ordering::SeqCst);
    let dead = h.dead_letters("work").await;
    eprintln!(
        "3 graceful stops under load: {calls} calls, {} failed, {dead} dead-lettered",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(dead, 0, "requests were dead-lettered by graceful stops");
    for n in 0..calls as u64 {
        assert!(runs.of(n) >= 1, "call {n} was answered without running");
    }
    client.stop().await;
    stopping.stop_with_grace(Duration::from_secs(5)).await;
    steady.stop_with_grace(Duration::from_secs(5)).await;
}

/// 16 handlers finish while the broker is down (they started before it was killed): every
/// call is answered after the outage, within its timeout, and each ran once.
pub async fn handler_finishing_during_an_outage_is_answered_after_it<H: BrokerFaults>(h: &H) {
    let (tx, mut started) = mpsc::unbounded_channel();
    let runs = Runs {
        started: Some(tx),
        ..Runs::default()
    };
    let server = h.fault_server(vec![work(&runs)]).await;
    let client = h.client(Duration::from_secs(20), ClientLayers::new()).await;
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..16 {
        let client = client.clone();
        calls.spawn(async move { (n, echo(&client, n, 600, Duration::from_secs(20)).await) });
    }
    for _ in 0..16 {
        tokio::time::timeout(Duration::from_secs(10), started.recv())
            .await
            .expect("16 handlers started within 10 s")
            .expect("probe open");
    }
    // Down from now until well after the handlers finish (600 ms).
    h.restart_broker(Duration::from_millis(1500)).await;
    let back = Instant::now();
    while let Some(done) = calls.join_next().await {
        let (n, out) = done.unwrap();
        match out {
            Ok(v) => assert_eq!(v, json!({ "n": n })),
            Err(e) => panic!("call {n}, whose handler finished during the outage, failed: {e}"),
        }
    }
    eprintln!(
        "16 replies of handlers that finished during the outage arrived {:?} after it",
        back.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for n in 0..16 {
        let ran = runs.of(n);
        if H::RESENDS_AFTER_RECONNECT {
            assert!(
                (1..=2).contains(&ran),
                "call {n} ran {ran} times (once, or twice when its client sent it again)"
            );
        } else {
            assert_eq!(ran, 1, "call {n} ran {ran} times");
        }
    }
    client.stop().await;
    server.stop_with_grace(Duration::from_secs(5)).await;
}
