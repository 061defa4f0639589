//! # clamator-conformance
//!
//! The behaviour every clamator transport must show, as a test suite any transport runs:
//! implement [`Harness`] (build and start a server and a client on your transport) and
//! expand [`conformance_suite!`] in a test file. The memory, Redis (and Valkey) and NATS transports run
//! it, and so does a test transport over tokio channels written on the public traits alone
//! (`tests/mpsc_transport.rs`). Transports with a broker also expand [`fault_suite!`].
//!
//! The cases: round trip, params validation (`-32602` with paths), unknown method
//! (`-32601`), handler errors verbatim and panics as `-32603`, a request to a notification
//! (`-32600`), timeouts (and the deadline the handler sees), notifications, metadata through
//! middleware (shared-token auth), many calls in flight, stop semantics (a server drains
//! running handlers; a stopped client fails waiting calls and refuses new ones), and timeouts
//! too long for a clock. The fault cases ([`faults`]) are what a transport with a broker must
//! survive.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator_protocol::middleware::{
    AuthTokenLayer, ClientLayers, RequireAuthTokenLayer, ServerLayers, UNAUTHORIZED,
};
use clamator_protocol::{codes, AnyClient, AnyServer, CallError, RpcClient, RpcError, RpcService};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub mod faults;
pub use faults::{BrokerFaults, BrokerState, Faults};

/// Builds and starts servers and clients on one transport, sharing whatever the transport
/// needs (a bus, a broker, a key prefix).
pub trait Harness: Send + Sync + Sized + 'static {
    /// A started server serving `services` behind `layers` (any transport's server converts:
    /// `AnyServer::from(server)`); the cases stop it with `stop_with_grace`.
    fn server(
        &self,
        services: Vec<RpcService>,
        layers: ServerLayers,
    ) -> impl Future<Output = AnyServer> + Send;
    /// A started client (`AnyClient::from(client)`); the cases stop it.
    fn client(
        &self,
        default_timeout: Duration,
        layers: ClientLayers,
    ) -> impl Future<Output = AnyClient> + Send;
}

/// Expands to one `#[tokio::test]` per conformance case, each building its harness with
/// `$make` (an expression evaluated inside the test).
///
/// ```ignore
/// clamator_conformance::conformance_suite!(MyHarness::new());
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases $make;
            round_trip, invalid_params, method_not_found, handler_errors,
            notification_as_request, timeout_and_deadline, notifications, auth_metadata,
            many_in_flight, server_stop_drains, client_stop_fails_waiting_calls,
            huge_timeouts_saturate);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::cases::$case(&$make).await;
            }
        )*
    };
}

/// Events the suite's services report (started, notified), in order.
#[derive(Debug, Clone)]
struct Probe {
    tx: mpsc::UnboundedSender<String>,
    handled: Arc<AtomicUsize>,
}

/// The service every case uses: `calc` with `add`, `fail`, `panic`, `slow`, `deadline`,
/// `whoami` and the notification `note`.
fn calc(probe: &Probe) -> RpcService {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct AddParams {
        a: f64,
        b: f64,
    }
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct SlowParams {
        ms: u64,
    }
    let slow_probe = probe.clone();
    let note_probe = probe.clone();
    let handled = Arc::clone(&probe.handled);
    let any = json!({"type": "object"});
    RpcService::builder("calc")
        .method("add", move |p: AddParams| {
            handled.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, RpcError>(json!({"sum": p.a + p.b})) }
        })
        .raw_method("fail", any.clone(), any.clone(), |_| async {
            Err::<Value, _>(RpcError::new(-32042, "nope").with_data(json!({"why": "asked to"})))
        })
        .raw_method("panic", any.clone(), any.clone(), |_| async {
            if true {
                panic!("boom");
            }
            Ok::<Value, RpcError>(Value::Null)
        })
        .method("slow", move |p: SlowParams| {
            let _ = slow_probe.tx.send("slow started".into());
            async move {
                tokio::time::sleep(Duration::from_millis(p.ms)).await;
                Ok::<_, RpcError>(json!({"slept": p.ms}))
            }
        })
        .raw_method("deadline", any.clone(), any.clone(), |_| async {
            let left = clamator_protocol::remaining().map(|d| d.as_millis() as u64);
            Ok::<_, RpcError>(json!({ "remaining_ms": left }))
        })
        .raw_notification("note", any, move |p| {
            let _ = note_probe.tx.send(format!("note {p}"));
            async {}
        })
        .build()
        .expect("the suite's service is valid")
}

fn probe() -> (Probe, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Probe {
            tx,
            handled: Arc::default(),
        },
        rx,
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the service reported within 10 s")
        .expect("probe open")
}

const T: Duration = Duration::from_secs(10);

fn code(outcome: Result<Value, CallError>) -> (i64, Value) {
    match outcome {
        Err(CallError::Rpc(e)) => (e.code, e.data),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// The cases (each takes a fresh harness).
pub mod cases {
    use super::*;

    async fn setup<H: Harness>(
        h: &H,
    ) -> (AnyServer, AnyClient, Probe, mpsc::UnboundedReceiver<String>) {
        let (probe, rx) = probe();
        let server = h.server(vec![calc(&probe)], ServerLayers::new()).await;
        let client = h.client(T, ClientLayers::new()).await;
        (server, client, probe, rx)
    }

    /// A typed call is answered with the handler's result.
    pub async fn round_trip<H: Harness>(h: &H) {
        let (server, client, probe, _rx) = setup(h).await;
        let out = client
            .call_value("calc", "add", json!({"a": 2, "b": 3.5}), None)
            .await;
        assert_eq!(out.unwrap(), json!({"sum": 5.5}));
        assert_eq!(probe.handled.load(Ordering::SeqCst), 1);
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// Wrong params: `-32602` naming the field; the handler does not run.
    pub async fn invalid_params<H: Harness>(h: &H) {
        let (server, client, probe, _rx) = setup(h).await;
        let (c, data) = code(
            client
                .call_value("calc", "add", json!({"a": "x", "b": 1}), None)
                .await,
        );
        assert_eq!(c, codes::INVALID_PARAMS);
        assert_eq!(data["errors"][0]["loc"], json!(["a"]), "{data}");
        let (c, _) = code(client.call_value("calc", "add", json!([1, 2]), None).await);
        assert_eq!(c, codes::INVALID_PARAMS);
        assert_eq!(probe.handled.load(Ordering::SeqCst), 0);
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// An unknown method of a served service: `-32601`.
    pub async fn method_not_found<H: Harness>(h: &H) {
        let (server, client, _probe, _rx) = setup(h).await;
        let (c, _) = code(client.call_value("calc", "nosuch", json!({}), None).await);
        assert_eq!(c, codes::METHOD_NOT_FOUND);
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// A handler's `RpcError` arrives verbatim; a panic becomes `-32603` and the server keeps
    /// serving.
    pub async fn handler_errors<H: Harness>(h: &H) {
        let (server, client, _probe, _rx) = setup(h).await;
        let err = client
            .call_value("calc", "fail", json!({}), None)
            .await
            .unwrap_err();
        let rpc = err.as_rpc().expect("error reply");
        assert_eq!((rpc.code, rpc.message.as_str()), (-32042, "nope"));
        assert_eq!(rpc.data, json!({"why": "asked to"}));
        let (c, data) = code(client.call_value("calc", "panic", json!({}), None).await);
        assert_eq!(c, codes::INTERNAL_ERROR);
        assert_eq!(data["message"], json!("boom"));
        let out = client
            .call_value("calc", "add", json!({"a": 1, "b": 1}), None)
            .await;
        assert_eq!(out.unwrap(), json!({"sum": 2.0}));
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// A request to a notification method: `-32600`, the handler does not run.
    pub async fn notification_as_request<H: Harness>(h: &H) {
        let (server, client, _probe, mut rx) = setup(h).await;
        let (c, _) = code(client.call_value("calc", "note", json!({}), None).await);
        assert_eq!(c, codes::INVALID_REQUEST);
        client
            .notify_value("calc", "note", json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(
            next(&mut rx).await,
            r#"note {"n":1}"#,
            "only the notification ran"
        );
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// A call times out after its timeout; the handler sees a deadline within it.
    pub async fn timeout_and_deadline<H: Harness>(h: &H) {
        let (server, client, _probe, _rx) = setup(h).await;
        let started = std::time::Instant::now();
        let err = client
            .call_value(
                "calc",
                "slow",
                json!({"ms": 3000}),
                Some(Duration::from_millis(300)),
            )
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        let out = client
            .call_value("calc", "deadline", json!({}), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        let left = out["remaining_ms"]
            .as_u64()
            .expect("the handler sees a deadline");
        assert!(left > 3000 && left <= 5000, "{out}");
        client.stop().await;
        server.stop_with_grace(Duration::from_millis(100)).await;
    }

    /// Notifications run their handler and produce no reply.
    pub async fn notifications<H: Harness>(h: &H) {
        let (server, client, _probe, mut rx) = setup(h).await;
        for i in 0..3 {
            client
                .notify_value("calc", "note", json!({"i": i}))
                .await
                .unwrap();
        }
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..3 {
            seen.push(next(&mut rx).await);
        }
        seen.sort();
        assert_eq!(
            seen,
            [r#"note {"i":0}"#, r#"note {"i":1}"#, r#"note {"i":2}"#]
        );
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// Metadata added by client middleware reaches server middleware: shared-token auth
    /// admits the right token and refuses a missing or wrong one with `-32001`.
    pub async fn auth_metadata<H: Harness>(h: &H) {
        let (probe, _rx) = probe();
        let server = h
            .server(
                vec![calc(&probe)],
                ServerLayers::new().layer(RequireAuthTokenLayer::new("s3cret")),
            )
            .await;
        let good = h
            .client(T, ClientLayers::new().layer(AuthTokenLayer::new("s3cret")))
            .await;
        let wrong = h
            .client(T, ClientLayers::new().layer(AuthTokenLayer::new("guess")))
            .await;
        let none = h.client(T, ClientLayers::new()).await;
        let add = json!({"a": 1, "b": 2});
        assert_eq!(
            good.call_value("calc", "add", add.clone(), None)
                .await
                .unwrap(),
            json!({"sum": 3.0})
        );
        let (c, data) = code(wrong.call_value("calc", "add", add.clone(), None).await);
        assert_eq!(c, UNAUTHORIZED);
        assert!(data["reason"]
            .as_str()
            .unwrap()
            .contains("wrong auth-token"));
        let (c, data) = code(none.call_value("calc", "add", add, None).await);
        assert_eq!(c, UNAUTHORIZED);
        assert!(data["reason"].as_str().unwrap().contains("no auth-token"));
        assert_eq!(
            probe.handled.load(Ordering::SeqCst),
            1,
            "refused calls never reach the handler"
        );
        for c in [&good, &wrong, &none] {
            c.stop().await;
        }
        server.stop_with_grace(T).await;
    }

    /// 500 calls in flight at once are all answered with their own result.
    pub async fn many_in_flight<H: Harness>(h: &H) {
        let (server, client, _probe, _rx) = setup(h).await;
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..500 {
            let client = client.clone();
            calls.spawn(async move {
                let out = client
                    .call_value("calc", "add", json!({"a": i, "b": 1}), None)
                    .await;
                (i, out)
            });
        }
        while let Some(done) = calls.join_next().await {
            let (i, out) = done.unwrap();
            assert_eq!(out.unwrap(), json!({"sum": f64::from(i) + 1.0}));
        }
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// Stopping a server lets a running handler finish and answer (within the grace).
    pub async fn server_stop_drains<H: Harness>(h: &H) {
        let (server, client, _probe, mut rx) = setup(h).await;
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call_value("calc", "slow", json!({"ms": 500}), None)
                    .await
            })
        };
        assert_eq!(next(&mut rx).await, "slow started");
        server.stop_with_grace(Duration::from_secs(5)).await;
        assert_eq!(call.await.unwrap().unwrap(), json!({"slept": 500}));
        client.stop().await;
    }

    /// A timeout too long for a clock (`Duration::MAX`, as a default or per call) waits as
    /// long as it can instead of overflowing: calls and notifications work.
    pub async fn huge_timeouts_saturate<H: Harness>(h: &H) {
        let (probe, mut rx) = probe();
        let server = h.server(vec![calc(&probe)], ServerLayers::new()).await;
        let client = h.client(Duration::MAX, ClientLayers::new()).await;
        let add = json!({"a": 1, "b": 2});
        let out = client.call_value("calc", "add", add.clone(), None).await;
        assert_eq!(out.unwrap(), json!({"sum": 3.0}));
        let out = client
            .call_value("calc", "add", add, Some(Duration::MAX))
            .await;
        assert_eq!(out.unwrap(), json!({"sum": 3.0}));
        client
            .notify_value("calc", "note", json!({}))
            .await
            .unwrap();
        assert_eq!(next(&mut rx).await, "note {}");
        client.stop().await;
        server.stop_with_grace(T).await;
    }

    /// Stopping a client fails the calls waiting for replies with "transport stopped" and
    /// refuses new calls.
    pub async fn client_stop_fails_waiting_calls<H: Harness>(h: &H) {
        let (server, client, _probe, mut rx) = setup(h).await;
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call_value("calc", "slow", json!({"ms": 2000}), None)
                    .await
            })
        };
        assert_eq!(next(&mut rx).await, "slow started");
        client.stop().await;
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, CallError::Transport(t) if t.is_stopped()),
            "{err:?}"
        );
        let err = client
            .call_value("calc", "add", json!({"a": 1, "b": 1}), None)
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Transport(_)), "{err:?}");
        server.stop_with_grace(Duration::from_millis(100)).await;
    }
}
