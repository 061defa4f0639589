//! Metadata travels as extra stream-entry fields: the released Python 0.1.9 server ignores
//! them and still answers; a Rust server hands them to its middleware; names the wire uses
//! itself are refused before anything is sent.

mod common;

use std::task::{Context, Poll};

use clamator::middleware::tower::{Layer, Service};
use clamator::middleware::{AuthTokenLayer, ClientLayers, RequireAuthTokenLayer, ServerLayers};
use clamator::redis::{redis, RedisRpcClient, RedisRpcServer};
use clamator::{error::TransportError, middleware::OutgoingCall, CallError, RpcClient};
use clamator_test_support::RedisServer;
use common::{setup_python, spawn_server, Lang};
use serde_json::json;

/// Adds a fixed metadata field to every call.
#[derive(Clone)]
struct Field(&'static str, &'static str);
impl<S> Layer<S> for Field {
    type Service = WithField<S>;
    fn layer(&self, inner: S) -> WithField<S> {
        WithField(inner, self.0, self.1)
    }
}
#[derive(Clone)]
struct WithField<S>(S, &'static str, &'static str);
impl<S: Service<OutgoingCall>> Service<OutgoingCall> for WithField<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, mut call: OutgoingCall) -> S::Future {
        call.metadata.insert(self.1, self.2);
        self.0.call(call)
    }
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn client(redis: &RedisServer, prefix: &str, layers: ClientLayers) -> RedisRpcClient {
    let c = RedisRpcClient::builder()
        .key_prefix(prefix)
        .url(redis.url())
        .layers(layers)
        .build()
        .unwrap();
    c.start().await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_0_1_9_server_answers_requests_with_extra_fields() {
    let python = setup_python();
    let redis = RedisServer::start();
    let _py = spawn_server(Lang::Py, &python, &redis.url(), "xf", "py1", 60_000, &[]);
    let layers = ClientLayers::new()
        .layer(AuthTokenLayer::new("s3cret"))
        .layer(Field("traceparent", TRACEPARENT));
    let c = client(&redis, "xf", layers).await;
    for i in 0..5 {
        let out = c
            .call_value("arith", "add", json!({"a": i, "b": 2}), None)
            .await
            .unwrap();
        assert_eq!(out["sum"], json!(f64::from(i) + 2.0));
    }
    // and the fields were really on the entries the Python server read (0.1.9 acks without
    // deleting, so they are still there)
    let mut r = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("xf:cmds:arith")
        .arg("-")
        .arg("+")
        .query(&mut r)
        .unwrap();
    let with_fields = entries
        .ids
        .iter()
        .filter(|e| {
            e.get::<String>("traceparent").as_deref() == Some(TRACEPARENT)
                && e.get::<String>("auth-token").as_deref() == Some("s3cret")
        })
        .count();
    assert_eq!(with_fields, 5, "{entries:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_server_hands_extra_fields_to_its_middleware() {
    let redis = RedisServer::start();
    let server = RedisRpcServer::builder()
        .key_prefix("xf")
        .url(redis.url())
        .service(clamator_interop::generated::arith::ArithServer::new(
            clamator_interop::Fixture::default(),
        ))
        .layers(ServerLayers::new().layer(RequireAuthTokenLayer::new("s3cret")))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let good = client(
        &redis,
        "xf",
        ClientLayers::new().layer(AuthTokenLayer::new("s3cret")),
    )
    .await;
    let out = good
        .call_value("arith", "add", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap();
    assert_eq!(out["sum"], json!(3.0));
    let bad = client(&redis, "xf", ClientLayers::new()).await;
    let err = bad
        .call_value("arith", "add", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(clamator::middleware::UNAUTHORIZED));

    // a field the wire uses itself is refused before anything is sent
    let forged = client(
        &redis,
        "xf",
        ClientLayers::new().layer(Field("reply-to", "xf:replies:victim")),
    )
    .await;
    let err = forged
        .call_value("arith", "add", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Transport(TransportError::Config(m)) if m.contains("reply-to")),
        "{err:?}"
    );
    for c in [&good, &bad, &forged] {
        c.stop().await;
    }
    server.stop().await;
}
