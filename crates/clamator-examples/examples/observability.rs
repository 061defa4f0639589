//! Metrics and spans: a server and a client on the in-process bus (or Redis with `--redis
//! [URL]`), a Prometheus endpoint on `--metrics-addr` (default `127.0.0.1:9464`), a few calls,
//! then the clamator lines of the endpoint's own `GET /metrics`.
//!
//! ```sh
//! cargo run --example observability
//! cargo run --example observability -- --redis --metrics-addr 127.0.0.1:9100
//! RUST_LOG=clamator::rpc=info cargo run --example observability   # spans as log context
//! ```

use std::io::{Read, Write};

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::middleware::{ClientLayers, ClientMetricsLayer, ServerLayers, ServerMetricsLayer};
use clamator::redis::{RedisRpcClient, RedisRpcServer};
use clamator::{RpcClient, RpcError, RpcService};
use serde_json::{json, Value};

fn arith() -> RpcService {
    RpcService::builder("arith")
        .raw_method(
            "add",
            json!({"type": "object"}),
            json!({}),
            |p: Value| async move {
                match (p["a"].as_f64(), p["b"].as_f64()) {
                    (Some(a), Some(b)) => Ok(json!({ "sum": a + b })),
                    _ => Err(RpcError::new(-32602, "Invalid params")
                        .with_data(json!({"why": "a and b are numbers"}))),
                }
            },
        )
        .build()
        .expect("a valid service")
}

async fn calls(client: &impl RpcClient) {
    for i in 0..10 {
        let _ = client
            .call_value("arith", "add", json!({"a": i, "b": 1}), None)
            .await;
    }
    let _ = client
        .call_value("arith", "add", json!({"a": "two"}), None)
        .await;
    let _ = client.call_value("arith", "nosuch", json!({}), None).await;
}

fn scrape(addr: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let (mut redis, mut addr) = (None, "127.0.0.1:9464".to_owned());
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--redis" => redis = Some(args.next_if(|v| !v.starts_with("--"))),
            "--metrics-addr" => addr = args.next().ok_or("--metrics-addr needs host:port")?,
            other => return Err(format!("unknown argument {other:?}; usage: observability [--redis [URL]] [--metrics-addr HOST:PORT]").into()),
        }
    }
    // Install the recorder before building servers and clients.
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr.parse::<std::net::SocketAddr>()?)
        .install()?;
    let layers = ClientLayers::new().layer(ClientMetricsLayer);
    let server_layers = ServerLayers::new().layer(ServerMetricsLayer);

    match redis {
        None => {
            let bus = MemoryBus::new();
            let server = MemoryRpcServer::builder(&bus)
                .service(arith())
                .layers(server_layers)
                .build()?;
            server.start().await?;
            let client = MemoryRpcClient::builder(&bus).layers(layers).build()?;
            client.start().await?;
            calls(&client).await;
            client.stop().await;
            server.stop().await;
        }
        Some(url) => {
            let prefix = format!("observability-{}", std::process::id());
            let (mut server, mut client) = (
                RedisRpcServer::builder()
                    .key_prefix(&prefix)
                    .service(arith())
                    .layers(server_layers),
                RedisRpcClient::builder().key_prefix(&prefix).layers(layers),
            );
            if let Some(url) = url {
                server = server.url(&url);
                client = client.url(&url);
            }
            let (server, client) = (server.build()?, client.build()?);
            server.start().await?;
            client.start().await?;
            calls(&client).await;
            client.stop().await;
            server.stop().await;
        }
    }
    let body = tokio::task::spawn_blocking(move || scrape(&addr)).await??;
    for line in body
        .lines()
        .filter(|l| l.starts_with("clamator_") && !l.contains("_bucket"))
    {
        println!("{line}");
    }
    Ok(())
}
