//! An HTTP gateway in front of clamator services (axum): `POST /rpc/<service>/<method>` with
//! JSON params calls the service and answers with the result, or with the error object and an
//! HTTP status that says what went wrong.
//!
//! ```text
//! cargo run --example http_gateway                  # serves on 127.0.0.1:3000 (in-process bus)
//! cargo run --example http_gateway -- --redis [URL] # the gateway calls services over Redis
//! cargo run --example http_gateway -- --once        # start, send a few requests to itself, exit
//!
//! curl -s localhost:3000/rpc/arith/add -d '{"a": 2, "b": 3}'      # 200 {"result":{"sum":5.0}}
//! curl -s localhost:3000/rpc/arith/add -d '{"a": "x"}'            # 400 -32602 invalid params
//! curl -s localhost:3000/rpc/arith/nope -d '{}'                    # 404 -32601 method not found
//! ```
//!
//! | clamator outcome | HTTP |
//! |---|---|
//! | result | 200 `{"result": …}` |
//! | `-32601` method not found | 404 `{"error": …}` |
//! | `-32602` invalid params, `-32600`, `-32700` | 400 |
//! | another error object (the service's own codes, `-32603`) | 502 |
//! | timeout | 504 |
//! | Redis unreachable, client stopped | 503 |

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::redis::{RedisRpcClient, RedisRpcServer};
use clamator::serde_json::{json, Value};
use clamator::{CallError, RpcClient, RpcError};
use clamator_examples::{Args, Transport};

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

/// Arithmetic.
#[clamator::contract(service = "arith")]
pub trait Arith {
    /// Adds two numbers.
    async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
        Ok(AddResult { sum: p.a + p.b })
    }
}

/// One HTTP request → one clamator call, through any clamator client.
async fn rpc<C: RpcClient>(
    State(client): State<C>,
    Path((service, method)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> (StatusCode, Json<Value>) {
    let params = body.map_or_else(|| json!({}), |Json(v)| v);
    match client
        .call_value(&service, &method, params, Some(Duration::from_secs(10)))
        .await
    {
        Ok(result) => (StatusCode::OK, Json(json!({ "result": result }))),
        Err(CallError::Rpc(e)) => {
            let status = match e.code {
                -32601 => StatusCode::NOT_FOUND,
                -32602 | -32600 | -32700 => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            };
            (status, Json(json!({ "error": e })))
        }
        Err(e) if e.is_timeout() => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({ "error": {"message": e.to_string()} })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": {"message": e.to_string()} })),
        ),
    }
}

fn router<C: RpcClient + Clone + Send + Sync + 'static>(client: C) -> Router {
    Router::new()
        .route("/rpc/{service}/{method}", post(rpc::<C>))
        .with_state(client)
}

/// A minimal HTTP/1.1 POST (the example needs no HTTP client crate for `--once`).
async fn post_json(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(format!("{status} {body}"))
}

async fn serve(app: Router, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = args.value("--listen", "127.0.0.1:3000".parse()?);
    let once = args.flag("--once");
    // --once listens on a free port so it can run next to a running gateway.
    let listener =
        tokio::net::TcpListener::bind(if once { "127.0.0.1:0".parse()? } else { addr }).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    if once {
        for (path, body) in [
            ("/rpc/arith/add", r#"{"a": 2, "b": 3}"#),
            ("/rpc/arith/add", r#"{"a": "x"}"#),
            ("/rpc/arith/nope", "{}"),
        ] {
            println!(
                "POST {path} {body} -> {}",
                post_json(addr, path, body).await?
            );
        }
    } else {
        println!("gateway on http://{addr}  (Ctrl-C stops)");
        println!("try: curl -s {addr}/rpc/arith/add -d '{{\"a\": 2, \"b\": 3}}'");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    clamator_examples::init_logs();
    let args = Args::parse();
    match &args.transport {
        Transport::Memory => {
            let bus = MemoryBus::new();
            let server = MemoryRpcServer::builder(&bus)
                .service(ArithServer::new(Calculator))
                .build()?;
            server.start().await?;
            let client = MemoryRpcClient::new(&bus);
            client.start().await?;
            println!("transport: in-process bus");
            serve(router(client.clone()), &args).await?;
            client.stop().await;
            server.stop().await;
        }
        Transport::Redis(url) => {
            // The gateway reaches every service under the prefix, whoever serves it; this
            // process also serves `arith` so the example is complete on its own.
            let prefix = args.value("--prefix", clamator_examples::run_prefix("gateway"));
            let server = RedisRpcServer::builder()
                .key_prefix(&prefix)
                .url(url)
                .service(ArithServer::new(Calculator))
                .build()?;
            server.start().await?;
            let client = RedisRpcClient::builder()
                .key_prefix(&prefix)
                .url(url)
                .build()?;
            client.start().await?;
            println!(
                "transport: redis {} (prefix {prefix})",
                clamator::redis::redact_url(url)
            );
            serve(router(client.clone()), &args).await?;
            client.stop().await;
            server.stop().await;
            clamator_examples::cleanup(url, &prefix).await;
        }
    }
    Ok(())
}
