//! The protocol rules of spec §3/§4 over the in-process bus, through the contract macro.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::{
    error::{ServerError, TransportError},
    service::{LifecycleState, MethodKind},
    CallError, HandlerError, IntoRpcService, RpcClient, RpcError, RpcService,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddParams {
    pub a: f64,
    pub b: f64,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct AddResult {
    pub sum: f64,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlowParams {
    pub sleep_ms: u64,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Text {
    pub text: String,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PingParams {
    pub tag: Option<String>,
}
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Broken;
impl Serialize for Broken {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialise Broken"))
    }
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Empty {}

#[clamator::contract(service = "arith")]
pub trait Arith {
    async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
    async fn slow(&self, params: SlowParams) -> Result<AddResult, RpcError>;
    async fn echo_text(&self, params: Text) -> Result<Text, RpcError>;
    #[method(name = "shout")]
    async fn upper(&self, params: Text) -> Result<Text, RpcError>;
    async fn deny(&self, params: Empty) -> Result<Empty, RpcError>;
    async fn explode(&self, params: Empty) -> Result<Empty, RpcError>;
    async fn io_fail(&self, params: Empty) -> Result<Empty, HandlerError>;
    async fn broken(&self, params: Empty) -> Result<Broken, RpcError>;
    #[notification]
    async fn ping(&self, params: PingParams);
}

#[derive(Clone)]
struct Impl {
    pings: mpsc::UnboundedSender<Option<String>>,
    calls: Arc<AtomicUsize>,
}

impl Arith for Impl {
    async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(AddResult { sum: p.a + p.b })
    }
    async fn slow(&self, p: SlowParams) -> Result<AddResult, RpcError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
        Ok(AddResult { sum: 0.0 })
    }
    async fn echo_text(&self, p: Text) -> Result<Text, RpcError> {
        Ok(p)
    }
    async fn upper(&self, p: Text) -> Result<Text, RpcError> {
        Ok(Text {
            text: p.text.to_uppercase(),
        })
    }
    async fn deny(&self, _: Empty) -> Result<Empty, RpcError> {
        Err(RpcError::new(-32001, "denied").with_data(json!({"why": "x"})))
    }
    async fn explode(&self, _: Empty) -> Result<Empty, RpcError> {
        panic!("kaboom")
    }
    async fn io_fail(&self, _: Empty) -> Result<Empty, HandlerError> {
        Err(std::io::Error::other("boom"))?
    }
    async fn broken(&self, _: Empty) -> Result<Broken, RpcError> {
        Ok(Broken)
    }
    async fn ping(&self, p: PingParams) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _ = self.pings.send(p.tag);
    }
}

struct Fixture {
    bus: MemoryBus,
    server: MemoryRpcServer,
    client: MemoryRpcClient,
    arith: ArithClient<MemoryRpcClient>,
    pings: mpsc::UnboundedReceiver<Option<String>>,
    calls: Arc<AtomicUsize>,
}

async fn fixture() -> Fixture {
    let (tx, pings) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let bus = MemoryBus::new();
    let server = MemoryRpcServer::builder(&bus)
        .service(ArithServer::new(Impl {
            pings: tx,
            calls: calls.clone(),
        }))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = MemoryRpcClient::new(&bus);
    client.start().await.unwrap();
    let arith = ArithClient::new(client.clone());
    Fixture {
        bus,
        server,
        client,
        arith,
        pings,
        calls,
    }
}

fn rpc(err: CallError) -> RpcError {
    match err {
        CallError::Rpc(e) => e,
        other => panic!("expected an rpc error, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_round_trip_and_wire_names() {
    let f = fixture().await;
    assert_eq!(
        f.arith.add(AddParams { a: 2.0, b: 3.0 }).await.unwrap(),
        AddResult { sum: 5.0 }
    );
    // echo_text is wire echoText; upper is overridden to shout
    let v = f
        .client
        .call_value("arith", "echoText", json!({"text": "héllo ✓"}), None)
        .await
        .unwrap();
    assert_eq!(v, json!({"text": "héllo ✓"}));
    let v = f
        .client
        .call_value("arith", "shout", json!({"text": "hi"}), None)
        .await
        .unwrap();
    assert_eq!(v, json!({"text": "HI"}));
    assert_eq!(
        rpc(f
            .client
            .call_value("arith", "upper", json!({"text": "hi"}), None)
            .await
            .unwrap_err())
        .code,
        -32601
    );
    assert_eq!(
        rpc(f
            .client
            .call_value("arith", "echo_text", json!({}), None)
            .await
            .unwrap_err_or_protocol())
        .code,
        -32601
    );
}

trait ProtocolOrRpc {
    fn unwrap_err_or_protocol(self) -> CallError;
}
impl ProtocolOrRpc for Result<Value, CallError> {
    fn unwrap_err_or_protocol(self) -> CallError {
        match self.unwrap_err() {
            // echo_text fails the method rule before sending
            CallError::Protocol(p) => {
                assert_eq!(p.to_string(), "invalid method \"echo_text\"");
                CallError::Rpc(RpcError::method_not_found())
            }
            other => other,
        }
    }
}

#[tokio::test]
async fn descriptor_has_kinds_and_schemas() {
    let c = ArithContract::descriptor();
    assert_eq!(c.service(), "arith");
    assert_eq!(ArithContract::SERVICE, "arith");
    let names: Vec<&str> = c.methods().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["add", "slow", "echoText", "shout", "deny", "explode", "ioFail", "broken", "ping"]
    );
    let add = c.method("add").unwrap();
    assert_eq!(add.kind, MethodKind::Request);
    assert_eq!(add.params_schema["properties"]["a"]["type"], "number");
    assert_eq!(add.params_schema["required"], json!(["a", "b"]));
    assert_eq!(
        add.result_schema.as_ref().unwrap()["properties"]["sum"]["type"],
        "number"
    );
    let ping = c.method("ping").unwrap();
    assert_eq!(ping.kind, MethodKind::Notification);
    assert!(ping.result_schema.is_none());
    assert_eq!(
        c.method("slow").unwrap().params_schema["properties"]["sleepMs"]["type"],
        "integer"
    );
}

#[tokio::test]
async fn errors_are_mapped() {
    let f = fixture().await;
    let e = rpc(f.arith.deny(Empty {}).await.unwrap_err());
    assert_eq!(
        e,
        RpcError::new(-32001, "denied").with_data(json!({"why": "x"}))
    );

    let e = rpc(f.arith.explode(Empty {}).await.unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (-32603, "Internal error"));
    assert_eq!(e.data, json!({"name": "panic", "message": "kaboom"}));
    // the server keeps serving after a panic
    assert_eq!(
        f.arith.add(AddParams { a: 1.0, b: 1.0 }).await.unwrap().sum,
        2.0
    );

    let e = rpc(f.arith.io_fail(Empty {}).await.unwrap_err());
    assert_eq!(e.data, json!({"name": "Error", "message": "boom"}));

    let e = rpc(f.arith.broken(Empty {}).await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (-32603, "Result validation failed")
    );
    assert_eq!(e.data["errors"][0]["msg"], "cannot serialise Broken");
}

#[tokio::test]
async fn invalid_params_use_the_python_shape() {
    let f = fixture().await;
    let e = rpc(f
        .client
        .call_value("arith", "add", json!({"a": "two", "b": 3}), None)
        .await
        .unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (-32602, "Invalid params"));
    let issue = &e.data["errors"][0];
    assert_eq!(issue["loc"], json!(["a"]));
    assert_eq!(issue["input"], json!("two"));
    assert_eq!(issue["type"], "float_type");
    assert!(issue["msg"].is_string());

    let e = rpc(f
        .client
        .call_value("arith", "add", json!({"a": 1, "b": 2, "c": 3}), None)
        .await
        .unwrap_err());
    assert_eq!(e.data["errors"][0]["type"], "extra_forbidden");
    assert_eq!(e.data["errors"][0]["loc"], json!(["c"]));

    let e = rpc(f
        .client
        .call_value("arith", "add", json!({"b": 2}), None)
        .await
        .unwrap_err());
    assert_eq!(
        e.data["errors"][0],
        json!({"type": "missing", "loc": ["a"], "msg": "Field required", "input": {"b": 2}})
    );

    for params in [Value::Null, json!([1, 2])] {
        let e = rpc(f
            .client
            .call_value("arith", "add", params.clone(), None)
            .await
            .unwrap_err());
        assert_eq!(e.data["errors"][0]["type"], "model_type", "{params}");
        assert_eq!(e.data["errors"][0]["loc"], json!([]));
    }
    assert_eq!(f.calls.load(Ordering::SeqCst), 0, "no handler ran");
}

#[tokio::test]
async fn unknown_service_and_method() {
    let f = fixture().await;
    let e = rpc(f
        .client
        .call_value("nobody", "add", json!({}), None)
        .await
        .unwrap_err());
    assert_eq!(e, RpcError::method_not_found());
    let e = rpc(f
        .client
        .call_value("arith", "nope", json!({}), None)
        .await
        .unwrap_err());
    assert_eq!(e, RpcError::method_not_found());
    let e = f
        .client
        .call_value("Arith", "add", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid service \"Arith\"");
    // a notification to an unknown service is dropped silently
    f.client
        .notify_value("nobody", "ping", json!({}))
        .await
        .unwrap();
}

#[tokio::test]
async fn notifications_fire_and_forget() {
    let mut f = fixture().await;
    f.arith
        .ping(PingParams {
            tag: Some("x".into()),
        })
        .await
        .unwrap();
    assert_eq!(f.pings.recv().await.unwrap(), Some("x".into()));
    // a notification with bad params is dropped (and logged), nothing runs
    f.client
        .notify_value("arith", "ping", json!({"tag": 5}))
        .await
        .unwrap();
    // a notification to a request method runs it and produces no reply
    f.client
        .notify_value("arith", "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    f.arith.ping(PingParams { tag: None }).await.unwrap();
    assert_eq!(f.pings.recv().await.unwrap(), None);
    f.wait_for_calls(3).await;
}

#[tokio::test]
async fn request_to_a_notification_gets_an_error_instead_of_a_timeout() {
    let f = fixture().await;
    let e = rpc(f
        .client
        .call_value("arith", "ping", json!({"tag": "x"}), None)
        .await
        .unwrap_err());
    assert_eq!(e.code, -32600);
    assert_eq!(
        e.data["reason"],
        "arith.ping is a notification: send it without an id"
    );
    assert_eq!(f.calls.load(Ordering::SeqCst), 0, "the handler did not run");
}

#[tokio::test(start_paused = true)]
async fn timeouts() {
    let f = fixture().await;
    let e = f
        .arith
        .with_timeout(Duration::from_millis(30))
        .slow(SlowParams { sleep_ms: 200 })
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(e.to_string(), "call timeout");
    // the default timeout is 30 s
    let started = tokio::time::Instant::now();
    let e = f
        .arith
        .slow(SlowParams { sleep_ms: 31_000 })
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(started.elapsed().as_secs(), 30);
    // a per-client default
    let client = MemoryRpcClient::builder(&f.bus)
        .default_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    client.start().await.unwrap();
    let e = client
        .call_value("arith", "slow", json!({"sleepMs": 100}), None)
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Transport(TransportError::Timeout)));
}

#[tokio::test]
async fn client_lifecycle() {
    let bus = MemoryBus::new();
    let client = MemoryRpcClient::new(&bus);
    let e = client
        .call_value("arith", "add", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "transport not started (state=idle)");
    client.start().await.unwrap();
    client.start().await.unwrap();
    assert_eq!(client.state(), LifecycleState::Started);
    client.stop().await;
    client.stop().await;
    let e = client
        .notify_value("arith", "ping", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "transport not started (state=stopped)");
    assert!(matches!(
        client.start().await,
        Err(TransportError::AlreadyStopped)
    ));
}

#[tokio::test]
async fn client_stop_rejects_pending_calls() {
    let f = fixture().await;
    let arith = f.arith.clone();
    let pending = tokio::spawn(async move { arith.slow(SlowParams { sleep_ms: 10_000 }).await });
    f.wait_for_calls(1).await;
    f.client.stop().await;
    let e = pending.await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "transport stopped");
    f.server.stop_with_grace(Duration::from_millis(10)).await;
}

impl Fixture {
    /// Waits until `n` handlers have started (bounded).
    async fn wait_for_calls(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while self.calls.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("handlers did not start in time");
    }
}

#[tokio::test]
async fn server_lifecycle_and_registration_rules() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let imp = Impl {
        pings: tx,
        calls: Arc::default(),
    };
    let bus = MemoryBus::new();
    // duplicate service in one server
    let dup = MemoryRpcServer::builder(&bus)
        .service(ArithServer::new(imp.clone()))
        .service(ArithServer::new(imp.clone()))
        .build();
    assert_eq!(
        dup.unwrap_err().to_string(),
        "service \"arith\" already registered on this server"
    );
    assert!(matches!(
        MemoryRpcServer::builder(&bus).build(),
        Err(ServerError::NoServices)
    ));

    let s1 = MemoryRpcServer::builder(&bus)
        .service(ArithServer::new(imp.clone()))
        .build()
        .unwrap();
    let s2 = MemoryRpcServer::builder(&bus)
        .service(ArithServer::new(imp.clone()))
        .build()
        .unwrap();
    s1.start().await.unwrap();
    s1.start().await.unwrap();
    let err = s2.start().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "service \"arith\" already registered on this bus"
    );
    assert_eq!(s2.state(), LifecycleState::Idle);
    s1.stop().await;
    s1.stop().await;
    assert!(bus.services().is_empty(), "stop unregisters");
    assert!(matches!(s1.start().await, Err(ServerError::AlreadyStopped)));
    // the name is free again
    s2.start().await.unwrap();
    s2.stop().await;
}

#[tokio::test]
async fn stop_stops_intake_then_drains() {
    let f = fixture().await;
    let arith = f.arith.clone();
    let inflight = tokio::spawn(async move { arith.slow(SlowParams { sleep_ms: 150 }).await });
    f.wait_for_calls(1).await;
    let server = f.server.clone();
    let stopping =
        tokio::spawn(async move { server.stop_with_grace(Duration::from_secs(5)).await });
    while f.server.state() != LifecycleState::Stopping {
        tokio::task::yield_now().await;
    }
    // intake stopped: the service is gone from the bus at once
    let e = rpc(f.arith.add(AddParams { a: 1.0, b: 1.0 }).await.unwrap_err());
    assert_eq!(e.code, -32601);
    // the in-flight call finished within the grace
    assert!(inflight.await.unwrap().is_ok());
    stopping.await.unwrap();
}

#[tokio::test]
async fn handlers_past_the_grace_are_cancelled() {
    let f = fixture().await;
    let arith = f.arith.clone();
    let inflight = tokio::spawn(async move { arith.slow(SlowParams { sleep_ms: 60_000 }).await });
    f.wait_for_calls(1).await;
    f.server.stop_with_grace(Duration::from_millis(50)).await;
    let e = inflight.await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "transport stopped");
}

#[tokio::test]
async fn nested_call_errors() {
    // A service whose handler calls arith: RpcErrors pass through unchanged, transport errors
    // become -32603 {"name": "TransportError", "message": "call timeout"}.
    let f = fixture().await;
    let inner = f.client.clone();
    let proxy = RpcService::builder("proxy")
        .raw_method("call", json!({}), json!({}), move |p: Value| {
            let inner = inner.clone();
            async move {
                let method = p["method"].as_str().unwrap_or_default().to_owned();
                let timeout = Some(Duration::from_millis(
                    p["timeoutMs"].as_u64().unwrap_or(1000),
                ));
                Ok::<_, HandlerError>(
                    inner
                        .call_value("arith", &method, p["params"].clone(), timeout)
                        .await?,
                )
            }
        })
        .build()
        .unwrap();
    let server = MemoryRpcServer::builder(&f.bus)
        .service(proxy)
        .build()
        .unwrap();
    server.start().await.unwrap();
    let e = rpc(f
        .client
        .call_value(
            "proxy",
            "call",
            json!({"method": "deny", "params": {}}),
            None,
        )
        .await
        .unwrap_err());
    assert_eq!(
        e,
        RpcError::new(-32001, "denied").with_data(json!({"why": "x"}))
    );
    let e = rpc(f
        .client
        .call_value(
            "proxy",
            "call",
            json!({"method": "slow", "params": {"sleepMs": 500}, "timeoutMs": 10}),
            None,
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.data,
        json!({"name": "TransportError", "message": "call timeout"})
    );
}

#[tokio::test]
async fn hand_built_services_and_dispatch_of_raw_ids() {
    let svc = RpcService::builder("calc")
        .method("add", |p: AddParams| async move {
            Ok::<_, RpcError>(AddResult { sum: p.a + p.b })
        })
        .notification("ping", |_p: PingParams| async {})
        .build()
        .unwrap();
    assert_eq!(
        svc.contract().method("add").unwrap().params_schema["required"],
        json!(["a", "b"])
    );
    // negative and numeric ids are echoed verbatim
    for id in [json!(-5), json!(0), json!("abc")] {
        let env = clamator::wire::parse_envelope(
            json!({"jsonrpc": "2.0", "method": "calc.add", "params": {"a": 1, "b": 2}, "id": id}),
        )
        .unwrap();
        let reply = svc.dispatch(env).await.unwrap();
        assert_eq!(
            clamator::wire::to_json(&reply),
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"sum":3.0}}}}"#)
        );
    }
    // responses pushed at a service produce nothing
    let env =
        clamator::wire::parse_envelope(json!({"jsonrpc": "2.0", "id": "1", "result": 1})).unwrap();
    assert!(svc.dispatch(env).await.is_none());

    // bad names and mismatched handlers are errors at definition time
    let e = RpcService::builder("Calc")
        .raw_notification("ping", json!({}), |_| async {})
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid service name \"Calc\" (must match ^[a-z][a-z0-9-]*$)"
    );
    let e = RpcService::builder("calc")
        .raw_notification("get-a", json!({}), |_| async {})
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid method name \"get-a\" (must match ^[a-z][a-zA-Z0-9]*$)"
    );
    let e = RpcService::for_contract(ArithContract::descriptor())
        .handle_notification("add", |_p: Value| async {})
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    let e = RpcService::for_contract(ArithContract::descriptor())
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "method \"add\" has no handler");
    // the macro's wrapper is an IntoRpcService
    let (tx, _rx) = mpsc::unbounded_channel();
    let s = ArithServer::new(Impl {
        pings: tx,
        calls: Arc::default(),
    })
    .into_rpc_service();
    assert_eq!(s.name(), "arith");
}

/// Issue 29: a loop of calls (and notifications) to a service nobody serves on the bus takes
/// part in tokio's budget like calls that are served: a timeout around it fires. Run on a
/// thread of its own, so that a starved runtime fails the test instead of hanging it.
#[test]
fn a_loop_of_calls_to_nobody_lets_a_timeout_fire() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let bus = MemoryBus::new();
            let client = MemoryRpcClient::new(&bus);
            client.start().await.unwrap();
            let calls = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    let e = client
                        .call_value("nobody", "home", json!({}), None)
                        .await
                        .unwrap_err();
                    assert_eq!(rpc(e).code, -32601);
                }
            })
            .await;
            let notifies = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    client
                        .notify_value("nobody", "home", json!({}))
                        .await
                        .unwrap();
                }
            })
            .await;
            done.send((calls.is_err(), notifies.is_err())).unwrap();
        });
    });
    let fired = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the runtime was starved: the 200 ms timeouts never fired");
    assert_eq!(fired, (true, true));
}
