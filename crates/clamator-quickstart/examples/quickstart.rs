//! The quickstart: the `arith` contract, a server implementing it, and a client calling
//! `add(2, 3)`, over the in-process bus; over Redis or NATS JetStream with a feature and a
//! flag (a private key prefix, removed afterwards):
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart --features redis -- --redis [URL]   # $REDIS_URL, else redis://localhost:6379
//! cargo run --example quickstart --features nats -- --nats [URL]     # $NATS_URL, else nats://127.0.0.1:4222
//! ```

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
    let mut args = std::env::args().skip(1);
    let (flag, url) = (args.next(), args.next());
    match flag.as_deref() {
        None => memory().await,
        Some("--redis") => redis(url).await,
        Some("--nats") => nats(url).await,
        Some(other) => Err(format!(
            "unknown argument {other:?}; usage: quickstart [--redis [URL] | --nats [URL]]"
        )
        .into()),
    }
}

async fn memory() -> Result<(), Box<dyn std::error::Error>> {
    use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
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
    Ok(())
}

/// A key prefix of this run's own, removed afterwards.
#[allow(dead_code)]
fn private_prefix() -> String {
    format!("quickstart-{}", std::process::id())
}

#[cfg(feature = "redis")]
async fn redis(url: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    use clamator::redis::{RedisConnection, RedisRpcClient, RedisRpcServer};
    let url = url
        .or_else(|| std::env::var("REDIS_URL").ok())
        .unwrap_or_else(|| clamator::redis::DEFAULT_REDIS_URL.to_owned());
    let (redis, prefix) = (RedisConnection::url(&url), private_prefix());
    let server = RedisRpcServer::builder()
        .connection(redis.clone())
        .key_prefix(&prefix)
        .service(ArithServer::new(Calculator))
        .build()?;
    server.start().await?;
    let client = RedisRpcClient::builder()
        .connection(redis)
        .key_prefix(&prefix)
        .build()?;
    client.start().await?;
    println!("transport: redis ({client:?})");
    use_arith(client.clone()).await?;
    client.stop().await; // deletes its reply stream
    server.stop().await;
    // The service's command stream stays for the servers that come later; this run's goes.
    use clamator::redis::redis::AsyncCommands;
    let mut conn = clamator::redis::redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let _: i64 = conn
        .del(clamator::redis::command_stream(&prefix, "arith"))
        .await?;
    Ok(())
}

#[cfg(not(feature = "redis"))]
async fn redis(_: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    Err("over Redis the quickstart needs the redis feature: cargo run --example quickstart --features redis -- --redis".into())
}

#[cfg(feature = "nats")]
async fn nats(url: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    use clamator::nats::{NatsConnection, NatsRpcClient, NatsRpcServer};
    let url = url
        .or_else(|| std::env::var("NATS_URL").ok())
        .unwrap_or_else(|| clamator::nats::DEFAULT_NATS_URL.to_owned());
    let (nats, prefix) = (NatsConnection::url(&url), private_prefix());
    let server = NatsRpcServer::builder()
        .connection(nats.clone())
        .key_prefix(&prefix)
        .service(ArithServer::new(Calculator))
        .build()?;
    server.start().await?; // creates the arith stream and consumer
    let client = NatsRpcClient::builder()
        .connection(nats.clone())
        .key_prefix(&prefix)
        .build()?;
    client.start().await?;
    println!("transport: nats ({client:?})");
    use_arith(client.clone()).await?;
    client.stop().await;
    server.stop().await;
    // This run's streams go.
    let js = clamator::nats::async_nats::jetstream::new(nats.connect("quickstart").await?);
    for stream in [
        clamator::nats::command_stream(&prefix, "arith"),
        clamator::nats::dead_letter_stream(&prefix, "arith"),
    ] {
        js.delete_stream(&stream).await?;
    }
    Ok(())
}

#[cfg(not(feature = "nats"))]
async fn nats(_: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    Err("over NATS the quickstart needs the nats feature: cargo run --example quickstart --features nats -- --nats".into())
}
