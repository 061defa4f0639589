//! The quickstart: the `arith` contract, a server implementing it, and a client calling
//! `add(2, 3)`, over the in-process bus — or over Redis with `--redis` (uses `$REDIS_URL`,
//! else `redis://localhost:6379`; `--redis <url>` picks another), or over NATS JetStream with
//! `--nats` (uses `$NATS_URL`, else `nats://127.0.0.1:4222`; `--nats <url>`).
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart -- --redis
//! cargo run --example quickstart -- --nats
//! ```

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::nats::{NatsRpcClient, NatsRpcServer};
use clamator::redis::{RedisRpcClient, RedisRpcServer};
use clamator::{RpcClient, RpcError};

/// Params of `arith.add`.
#[clamator::model]
#[derive(Debug)]
pub struct AddParams {
    /// First addend.
    pub a: f64,
    /// Second addend.
    pub b: f64,
}

/// Result of `arith.add`.
#[clamator::model]
#[derive(Debug)]
pub struct AddResult {
    /// `a + b`.
    pub sum: f64,
}

/// The `arith` service.
#[clamator::contract(service = "arith")]
pub trait Arith {
    /// Adds two numbers.
    async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
    /// Fire-and-forget ping (no params: `{}` on the wire).
    #[notification]
    async fn ping(&self);
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
        Ok(AddResult { sum: p.a + p.b })
    }

    async fn ping(&self) {
        println!("server: ping");
    }
}

/// Calls the service through any clamator client.
async fn use_arith<C: RpcClient>(client: C) -> Result<(), Box<dyn std::error::Error>> {
    let arith = ArithClient::new(client);
    let result = arith.add(AddParams { a: 2.0, b: 3.0 }).await?;
    println!("arith.add(2, 3) = {}", result.sum);
    arith.ping().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let (first, url) = (args.next(), args.next());
    match first.as_deref() {
        None => {
            println!("transport: in-process bus");
            let bus = MemoryBus::new();
            let server = MemoryRpcServer::builder(&bus)
                .service(ArithServer::new(Calculator))
                .build()?;
            server.start().await?;
            let client = MemoryRpcClient::new(&bus);
            client.start().await?;
            use_arith(client.clone()).await?;
            client.stop().await;
            server.stop().await; // drains the ping handler
        }
        Some("--nats") => {
            let url = url.unwrap_or_else(|| {
                std::env::var("NATS_URL")
                    .unwrap_or_else(|_| clamator::nats::DEFAULT_NATS_URL.to_owned())
            });
            let prefix = format!("quickstart-{}", std::process::id());
            let server = NatsRpcServer::builder()
                .url(&url)
                .key_prefix(&prefix)
                .service(ArithServer::new(Calculator))
                .build()?;
            server.start().await?; // creates the arith stream and consumer
            let client = NatsRpcClient::builder()
                .url(&url)
                .key_prefix(&prefix)
                .build()?;
            client.start().await?;
            println!("transport: nats ({client:?})");
            use_arith(client.clone()).await?;
            client.stop().await;
            server.stop().await;
            clamator_examples::cleanup_nats(&url, &prefix).await;
        }
        Some("--redis") => {
            let prefix = format!("quickstart-{}", std::process::id());
            let mut server = RedisRpcServer::builder()
                .key_prefix(&prefix)
                .service(ArithServer::new(Calculator));
            let mut client = RedisRpcClient::builder().key_prefix(&prefix);
            if let Some(url) = &url {
                server = server.url(url);
                client = client.url(url);
            }
            let (server, client) = (server.build()?, client.build()?);
            server.start().await?;
            client.start().await?;
            println!("transport: redis ({client:?})");
            use_arith(client.clone()).await?;
            client.stop().await;
            server.stop().await;
            let url = url.unwrap_or_else(|| {
                std::env::var("REDIS_URL")
                    .unwrap_or_else(|_| clamator::redis::DEFAULT_REDIS_URL.to_owned())
            });
            clamator_examples::cleanup(&url, &prefix).await;
        }
        Some(other) => {
            return Err(format!(
                "unknown argument {other:?}; usage: quickstart [--redis [URL] | --nats [URL]]"
            )
            .into())
        }
    }
    Ok(())
}
