//! The quickstart: the `arith` contract, a server implementing it, and a client calling
//! `add(2, 3)`, over the in-process bus.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::RpcError;
use serde::{Deserialize, Serialize};

/// Params of `arith.add`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AddParams {
    /// First addend.
    pub a: f64,
    /// Second addend.
    pub b: f64,
}

/// Result of `arith.add`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AddResult {
    /// `a + b`.
    pub sum: f64,
}

/// Params of the `arith.ping` notification.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PingParams {
    /// An optional tag.
    pub tag: Option<String>,
}

/// The `arith` service.
#[clamator::contract(service = "arith")]
pub trait Arith {
    /// Adds two numbers.
    async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
    /// Fire-and-forget ping.
    #[notification]
    async fn ping(&self, params: PingParams);
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
        Ok(AddResult { sum: p.a + p.b })
    }

    async fn ping(&self, p: PingParams) {
        println!("server: ping {:?}", p.tag);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    let bus = MemoryBus::new();
    let server = MemoryRpcServer::builder(&bus)
        .service(ArithServer::new(Calculator))
        .build()?;
    server.start().await?;

    let client = MemoryRpcClient::new(&bus);
    client.start().await?;
    let arith = ArithClient::new(client.clone());

    let result = arith.add(AddParams { a: 2.0, b: 3.0 }).await?;
    println!("arith.add(2, 3) = {}", result.sum);
    arith
        .ping(PingParams {
            tag: Some("hello".into()),
        })
        .await?;

    client.stop().await;
    server.stop().await; // drains the ping handler
    Ok(())
}
