//! What a newcomer writes first (issue 13 item 3): methods without params, and the error types
//! people reach for (`Box<dyn Error + Send + Sync>`, `anyhow::Error`), end to end over the
//! in-process bus, with the wire shapes the Python/TypeScript peers see.
#![allow(missing_docs)]

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::serde_json::{json, Value};
use clamator::{CallError, RpcClient, RpcError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[clamator::model]
#[derive(Debug, PartialEq)]
pub struct Count {
    pub n: u64,
}

#[clamator::model]
#[derive(Debug)]
pub struct Name {
    pub name: String,
}

/// A counter.
///
/// Second paragraph.
#[clamator::contract(service = "counter")]
pub trait Counter {
    /// Current value.
    async fn get(&self) -> Result<Count, RpcError>;
    /// Fails with a boxed error.
    async fn boxed(&self) -> Result<Count, BoxError>;
    /// Fails with a boxed `RpcError` (sent verbatim).
    async fn boxed_rpc(&self) -> Result<Count, BoxError>;
    /// Fails with an anyhow error carrying context.
    async fn with_anyhow(&self, params: Name) -> Result<Count, anyhow::Error>;
    /// Fails with an `RpcError` turned into anyhow by `?`.
    async fn anyhow_rpc(&self) -> anyhow::Result<Count>;
    /// Fails with a plain string.
    async fn stringy(&self) -> Result<Count, String>;
    /// Resets.
    #[notification]
    async fn reset(&self);
}

struct Impl(std::sync::atomic::AtomicU64);

impl Counter for Impl {
    async fn get(&self) -> Result<Count, RpcError> {
        Ok(Count {
            n: self.0.load(std::sync::atomic::Ordering::SeqCst),
        })
    }
    async fn boxed(&self) -> Result<Count, BoxError> {
        Err("the counter is jammed".into())
    }
    async fn boxed_rpc(&self) -> Result<Count, BoxError> {
        Err(Box::new(RpcError::new(-32042, "over the limit")))
    }
    async fn with_anyhow(&self, params: Name) -> Result<Count, anyhow::Error> {
        use anyhow::Context;
        let n: u64 = params
            .name
            .parse()
            .with_context(|| format!("{:?} is not a count", params.name))?;
        Ok(Count { n })
    }
    async fn anyhow_rpc(&self) -> anyhow::Result<Count> {
        Err(RpcError::new(-32043, "not yours"))?
    }
    async fn stringy(&self) -> Result<Count, String> {
        Err("out of stock".to_owned())
    }
    async fn reset(&self) {
        self.0.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn setup() -> (
    MemoryRpcServer,
    MemoryRpcClient,
    CounterClient<MemoryRpcClient>,
) {
    let bus = MemoryBus::new();
    let server = MemoryRpcServer::builder(&bus)
        .service(CounterServer::new(Impl(7.into())))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = MemoryRpcClient::new(&bus);
    client.start().await.unwrap();
    let counter = CounterClient::new(client.clone());
    (server, client, counter)
}

fn rpc(e: CallError) -> RpcError {
    match e {
        CallError::Rpc(e) => e,
        other => panic!("expected an RpcError, got {other}"),
    }
}

#[tokio::test]
async fn a_method_without_params_takes_an_empty_object() {
    let (server, client, counter) = setup().await;
    assert_eq!(counter.get().await.unwrap(), Count { n: 7 });
    // What a Python or TypeScript client sends: `{}`, or no params at all (becomes `{}`).
    let raw = client
        .call_value("counter", "get", json!({}), None)
        .await
        .unwrap();
    assert_eq!(raw, json!({"n": 7}));
    // Unknown keys are ignored (as Pydantic does for a model without fields); a non-object is not.
    let raw = client
        .call_value("counter", "get", json!({"extra": 1}), None)
        .await
        .unwrap();
    assert_eq!(raw, json!({"n": 7}));
    let bad = client
        .call_value("counter", "get", json!(5), None)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(-32602), "{bad}");

    counter.reset().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(counter.get().await.unwrap(), Count { n: 0 });
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn boxed_and_anyhow_errors_reach_the_caller_with_their_message() {
    let (server, client, counter) = setup().await;
    let e = rpc(counter.boxed().await.unwrap_err());
    assert_eq!(e.code, -32603);
    assert_eq!(
        e.data,
        json!({"name": "Error", "message": "the counter is jammed"})
    );

    let e = rpc(counter.boxed_rpc().await.unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (-32042, "over the limit"));

    let e = rpc(counter
        .with_anyhow(Name { name: "ten".into() })
        .await
        .unwrap_err());
    assert_eq!(e.code, -32603);
    assert_eq!(e.data["name"], "Error");
    let message = e.data["message"].as_str().unwrap();
    assert!(message.contains("\"ten\" is not a count"), "{message}");
    assert_eq!(
        counter
            .with_anyhow(Name { name: "12".into() })
            .await
            .unwrap(),
        Count { n: 12 }
    );

    let e = rpc(counter.stringy().await.unwrap_err());
    assert_eq!(e.data, json!({"name": "Error", "message": "out of stock"}));

    let e = rpc(counter.anyhow_rpc().await.unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (-32043, "not yours"));
    client.stop().await;
    server.stop().await;
}

#[test]
fn doc_comments_reach_the_descriptor() {
    let c = CounterContract::descriptor();
    assert_eq!(c.description(), Some("A counter.\n\nSecond paragraph."));
    assert_eq!(
        c.method("get").unwrap().description.as_deref(),
        Some("Current value.")
    );
    assert_eq!(
        c.method("boxedRpc").unwrap().description.as_deref(),
        Some("Fails with a boxed `RpcError` (sent verbatim).")
    );
    let get: &Value = &c.method("get").unwrap().params_schema;
    assert_eq!(get["type"], "object");
    assert_eq!(get["properties"], json!({}));
}
