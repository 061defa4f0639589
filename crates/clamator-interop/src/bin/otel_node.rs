//! `clamator-otel-node`: one process of the three-process trace test (feature `otel`).
//!
//! `--role leaf` serves `leaf.work`; `--role middle` serves `middle.relay`, which calls
//! `leaf.work`; `--role client` calls `middle.relay` inside a `root` span and exits. Every
//! process exports its spans to an in-memory OpenTelemetry exporter and writes them, one JSON
//! object per line (`name`, `kind`, `trace_id`, `span_id`, `parent_span_id`), to `--spans
//! FILE` when it ends (servers: on SIGTERM, after a graceful stop). Servers print `READY`.
//!
//! Flags: `--role`, `--redis-url`, `--prefix`, `--spans`.

use std::io::Write;
use std::time::Duration;

use clamator::redis::{RedisRpcClient, RedisRpcServer};
use clamator::{RpcClient, RpcError, RpcService};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn write_spans(provider: &SdkTracerProvider, exporter: &InMemorySpanExporter, path: &str) {
    let _ = provider.force_flush();
    let spans = exporter
        .get_finished_spans()
        .unwrap_or_else(|e| fail(&format!("reading the exported spans: {e}")));
    let mut out = std::fs::File::create(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    for s in spans {
        let line = json!({
            "name": s.name,
            "kind": format!("{:?}", s.span_kind),
            "trace_id": s.span_context.trace_id().to_string(),
            "span_id": s.span_context.span_id().to_string(),
            "parent_span_id": s.parent_span_id.to_string(),
        });
        writeln!(out, "{line}").unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    }
}

#[tokio::main]
async fn main() {
    let (mut role, mut url, mut prefix, mut spans) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--role" => role = Some(value),
            "--redis-url" => url = Some(value),
            "--prefix" => prefix = Some(value),
            "--spans" => spans = Some(value),
            other => fail(&format!("unknown flag {other}")),
        }
    }
    let (role, url, prefix, spans) = (
        role.unwrap_or_else(|| fail("--role is required")),
        url.unwrap_or_else(|| fail("--redis-url is required")),
        prefix.unwrap_or_else(|| fail("--prefix is required")),
        spans.unwrap_or_else(|| fail("--spans is required")),
    );

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("clamator-otel-node")))
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .init();

    let client = RedisRpcClient::builder()
        .key_prefix(&prefix)
        .url(&url)
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    client
        .start()
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));

    if role == "client" {
        let out = client
            .call_value(
                "middle",
                "relay",
                json!({"n": 41}),
                Some(Duration::from_secs(10)),
            )
            .instrument(tracing::info_span!("root"))
            .await
            .unwrap_or_else(|e| fail(&format!("middle.relay: {e}")));
        client.stop().await;
        println!("{out}");
        write_spans(&provider, &exporter, &spans);
        return;
    }

    let service = match role.as_str() {
        "leaf" => RpcService::builder("leaf")
            .raw_method("work", json!({}), json!({}), |p: Value| async move {
                Ok::<_, RpcError>(json!({ "n": p["n"].as_i64().unwrap_or(0) + 1 }))
            })
            .build(),
        "middle" => {
            let nested = client.clone();
            RpcService::builder("middle")
                .raw_method("relay", json!({}), json!({}), move |p: Value| {
                    let nested = nested.clone();
                    async move {
                        nested
                            .call_value("leaf", "work", p, None)
                            .await
                            .map_err(|e| {
                                RpcError::internal(
                                    json!({"name": "Nested", "message": e.to_string()}),
                                )
                            })
                    }
                })
                .build()
        }
        other => fail(&format!("unknown role {other}")),
    }
    .unwrap_or_else(|e| fail(&e.to_string()));
    let server = RedisRpcServer::builder()
        .key_prefix(&prefix)
        .url(&url)
        .service(service)
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    server
        .start()
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| fail(&e.to_string()));
    println!("READY");
    term.recv().await;
    server.stop().await;
    client.stop().await;
    write_spans(&provider, &exporter, &spans);
}
