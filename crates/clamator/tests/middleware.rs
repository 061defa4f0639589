//! Middleware over the in-process bus: layers from tower itself (concurrency and rate limits),
//! the retry of idempotent methods (marked with `#[method(idempotent)]`), and how errors of
//! layers reach callers.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::middleware::tower::{Layer, Service};
use clamator::middleware::{ClientLayers, RetryIdempotentLayer, ServerLayers};
use clamator::{
    error::BoxError,
    middleware::{IncomingCall, OutgoingCall},
    CallError, RpcClient, RpcError,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Wait {
    pub ms: u64,
}
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Count {
    pub n: usize,
}

#[clamator::contract(service = "jobs")]
pub trait Jobs {
    /// Sleeps on its first `slow_first` runs, then answers with how many runs there were.
    #[method(idempotent)]
    async fn get(&self, p: Wait) -> Result<Count, RpcError>;
    /// The same, not idempotent.
    async fn put(&self, p: Wait) -> Result<Count, RpcError>;
}

#[derive(Clone, Default)]
struct Impl {
    runs: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Impl {
    async fn run(&self, p: Wait) -> Result<Count, RpcError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        // the first run is slow (its caller times out); later ones are quick
        let ms = if n == 1 { p.ms } else { 1 };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(Count { n })
    }
}

impl Jobs for Impl {
    async fn get(&self, p: Wait) -> Result<Count, RpcError> {
        self.run(p).await
    }
    async fn put(&self, p: Wait) -> Result<Count, RpcError> {
        self.run(p).await
    }
}

async fn serve(bus: &MemoryBus, imp: &Impl, layers: ServerLayers) -> MemoryRpcServer {
    let server = MemoryRpcServer::builder(bus)
        .service(JobsServer::new(imp.clone()))
        .layers(layers)
        .shutdown_grace(Duration::from_millis(50))
        .build()
        .unwrap();
    server.start().await.unwrap();
    server
}

async fn client(bus: &MemoryBus, layers: ClientLayers) -> MemoryRpcClient {
    let c = MemoryRpcClient::builder(bus)
        .layers(layers)
        .build()
        .unwrap();
    c.start().await.unwrap();
    c
}

#[test]
fn the_macro_marks_idempotent_methods() {
    let c = JobsContract::descriptor();
    assert!(c.method("get").unwrap().idempotent);
    assert!(!c.method("put").unwrap().idempotent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_methods_are_retried_after_a_timeout_others_are_not() {
    let bus = MemoryBus::new();
    let imp = Impl::default();
    let _server = serve(&bus, &imp, ServerLayers::new()).await;
    let retry = RetryIdempotentLayer::new(2, [&JobsContract::descriptor()])
        .backoff(Duration::from_millis(1));
    let c = client(&bus, ClientLayers::new().layer(retry)).await;
    let t = Some(Duration::from_millis(100));
    let out = c
        .call_value("jobs", "get", json!({"ms": 2000}), t)
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({"n": 2}),
        "the first attempt timed out, the retry was answered"
    );

    let imp = Impl::default();
    let bus = MemoryBus::new();
    let _server = serve(&bus, &imp, ServerLayers::new()).await;
    let retry = RetryIdempotentLayer::new(2, [&JobsContract::descriptor()]);
    let c = client(&bus, ClientLayers::new().layer(retry)).await;
    let err = c
        .call_value("jobs", "put", json!({"ms": 2000}), t)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        imp.runs.load(Ordering::SeqCst),
        1,
        "put is not idempotent: not retried"
    );
    // an error reply is an answer: never retried
    let err = c
        .call_value("jobs", "get", json!({"ms": "x"}), t)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(-32602));
    assert_eq!(imp.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn towers_concurrency_limit_bounds_running_handlers() {
    let bus = MemoryBus::new();
    let imp = Impl::default();
    let layers = ServerLayers::new()
        .layer(clamator::middleware::tower::limit::ConcurrencyLimitLayer::new(3));
    let _server = serve(&bus, &imp, layers).await;
    // every run after the first sleeps 1 ms: make them all slow instead
    imp.runs.store(0, Ordering::SeqCst);
    let c = client(&bus, ClientLayers::new()).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let c = c.clone();
        calls.spawn(async move { c.call_value("jobs", "get", json!({"ms": 30}), None).await });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(imp.runs.load(Ordering::SeqCst), 20);
    assert!(
        imp.peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        imp.peak.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn towers_rate_limit_behind_a_buffer_spaces_calls() {
    let bus = MemoryBus::new();
    let imp = Impl::default();
    // RateLimit is not Clone: put it behind a Buffer, as one layer
    let layers = ServerLayers::new().layer(
        clamator::middleware::tower::ServiceBuilder::new()
            .layer(clamator::middleware::tower::buffer::BufferLayer::new(64))
            .layer(clamator::middleware::tower::limit::RateLimitLayer::new(
                5,
                Duration::from_millis(200),
            )),
    );
    let _server = serve(&bus, &imp, layers).await;
    let c = client(&bus, ClientLayers::new()).await;
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..15 {
        let c = c.clone();
        calls.spawn(async move { c.call_value("jobs", "put", json!({"ms": 1}), None).await });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().unwrap();
    }
    // 5 per 200 ms: 15 calls need at least two more windows
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );
}

/// A layer that fails every call with an error of its own (not an `RpcError`).
#[derive(Clone)]
struct Refuse;
impl<S> Layer<S> for Refuse {
    type Service = Refusing;
    fn layer(&self, _inner: S) -> Refusing {
        Refusing
    }
}
#[derive(Clone)]
struct Refusing;
impl<R> Service<R> for Refusing {
    type Response = Value;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Value, BoxError>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: R) -> Self::Future {
        std::future::ready(Err("quota exhausted".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_errors_are_named_on_both_sides() {
    let bus = MemoryBus::new();
    let imp = Impl::default();
    let _server = serve(&bus, &imp, ServerLayers::new().layer(Refuse)).await;
    let c = client(&bus, ClientLayers::new()).await;
    let err = c
        .call_value("jobs", "put", json!({"ms": 1}), None)
        .await
        .unwrap_err();
    let rpc = err.as_rpc().expect("an error reply");
    assert_eq!(rpc.code, -32603);
    assert_eq!(
        rpc.data,
        json!({"name": "Middleware", "message": "quota exhausted"})
    );
    assert_eq!(imp.runs.load(Ordering::SeqCst), 0);

    let c = client(&bus, ClientLayers::new().layer(Refuse)).await;
    let err = c
        .call_value("jobs", "put", json!({"ms": 1}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Middleware(e) if e.to_string() == "quota exhausted"),
        "{err:?}"
    );
    // a tower timeout is a call timeout
    let bus = MemoryBus::new();
    let _server = serve(&bus, &imp, ServerLayers::new()).await;
    let c = client(
        &bus,
        ClientLayers::new().layer(clamator::middleware::tower::timeout::TimeoutLayer::new(
            Duration::from_millis(50),
        )),
    )
    .await;
    let err = c
        .call_value("jobs", "put", json!({"ms": 2000}), None)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

/// Layers see the call: a server layer reads the metadata a client layer wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_see_calls_and_metadata() {
    #[derive(Clone)]
    struct Tag;
    impl<S> Layer<S> for Tag {
        type Service = Tagging<S>;
        fn layer(&self, inner: S) -> Tagging<S> {
            Tagging(inner)
        }
    }
    #[derive(Clone)]
    struct Tagging<S>(S);
    impl<S: Service<OutgoingCall>> Service<OutgoingCall> for Tagging<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }
        fn call(&mut self, mut call: OutgoingCall) -> S::Future {
            call.metadata.insert("tenant", "acme");
            self.0.call(call)
        }
    }
    #[derive(Clone)]
    struct Check;
    impl<S> Layer<S> for Check {
        type Service = Checking<S>;
        fn layer(&self, inner: S) -> Checking<S> {
            Checking(inner)
        }
    }
    #[derive(Clone)]
    struct Checking<S>(S);
    impl<S: Service<IncomingCall, Response = Value, Error = BoxError>> Service<IncomingCall>
        for Checking<S>
    where
        S::Future: Send + 'static,
    {
        type Response = Value;
        type Error = BoxError;
        type Future =
            std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, BoxError>> + Send>>;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.0.poll_ready(cx)
        }
        fn call(&mut self, call: IncomingCall) -> Self::Future {
            assert_eq!((call.service.name(), call.method.as_str()), ("jobs", "put"));
            assert!(call.deadline.is_some());
            if call.metadata.get("tenant") != Some("acme") {
                let e = RpcError::new(-32099, "no tenant");
                return Box::pin(std::future::ready(Err(e.into())));
            }
            Box::pin(self.0.call(call))
        }
    }
    let bus = MemoryBus::new();
    let imp = Impl::default();
    let _server = serve(&bus, &imp, ServerLayers::new().layer(Check)).await;
    let tagged = client(&bus, ClientLayers::new().layer(Tag)).await;
    assert_eq!(
        tagged
            .call_value("jobs", "put", json!({"ms": 1}), None)
            .await
            .unwrap(),
        json!({"n": 1})
    );
    let plain = client(&bus, ClientLayers::new()).await;
    let err = plain
        .call_value("jobs", "put", json!({"ms": 1}), None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.as_rpc().unwrap().message.as_str()),
        (Some(-32099), "no tenant")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_method_timeouts_cap_the_listed_methods_only() {
    let bus = MemoryBus::new();
    let imp = Impl::default();
    let _server = serve(&bus, &imp, ServerLayers::new()).await;
    let limits = clamator::middleware::MethodTimeoutsLayer::new().method(
        "jobs",
        "put",
        Duration::from_millis(100),
    );
    let c = client(&bus, ClientLayers::new().layer(limits)).await;
    let started = Instant::now();
    let err = c
        .call_value("jobs", "put", json!({"ms": 3000}), None)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // `get` is not listed: its first (slow) run is waited for under the 30 s default
    imp.runs.store(0, Ordering::SeqCst);
    let out = c
        .call_value("jobs", "get", json!({"ms": 300}), None)
        .await
        .unwrap();
    assert_eq!(out, json!({"n": 1}));
}
