//! `clamator-interop-server --metrics-addr` serves the server's metrics in Prometheus text
//! format: a real process, a real redis-server, scraped over HTTP.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clamator::redis::RedisRpcClient;
use clamator::RpcClient;
use clamator_test_support::{free_port, RedisServer};
use serde_json::json;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// The value of the sample whose line starts with `prefix` (labels included).
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interop_server_exposes_prometheus_metrics() {
    let redis = RedisServer::start();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_clamator-interop-server"))
        .args([
            "--redis-url",
            &redis.url(),
            "--prefix",
            "metrics",
            "--metrics-addr",
            &addr,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 5];
    child.stdout.take().unwrap().read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"READY");
    let _server = Proc(child);

    let client = RedisRpcClient::builder()
        .key_prefix("metrics")
        .url(redis.url())
        .build()
        .unwrap();
    client.start().await.unwrap();
    for i in 0..7 {
        let out = client
            .call_value("arith", "add", json!({"a": i, "b": 1}), None)
            .await
            .unwrap();
        assert_eq!(out["sum"], json!(f64::from(i) + 1.0));
    }
    let bad = client
        .call_value("arith", "add", json!({"a": "x", "b": 1}), None)
        .await;
    assert_eq!(bad.unwrap_err().code(), Some(-32602));
    let unknown = client.call_value("arith", "nosuch", json!({}), None).await;
    assert_eq!(unknown.unwrap_err().code(), Some(-32601));
    client.stop().await;

    let body = tokio::task::spawn_blocking(move || scrape(&addr))
        .await
        .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let ok = [r#"service="arith""#, r#"method="add""#, r#"code="ok""#];
    assert_eq!(
        sample(&body, "clamator_server_calls_total{", &ok),
        Some(7.0),
        "{body}"
    );
    let invalid = [r#"method="add""#, r#"code="-32602""#];
    assert_eq!(
        sample(&body, "clamator_server_calls_total{", &invalid),
        Some(1.0),
        "{body}"
    );
    let unknown = [r#"method="<unknown>""#, r#"code="-32601""#];
    assert_eq!(
        sample(&body, "clamator_server_calls_total{", &unknown),
        Some(1.0),
        "{body}"
    );
    let count = [r#"service="arith""#, r#"method="add""#];
    assert_eq!(
        sample(
            &body,
            "clamator_server_call_duration_seconds_count{",
            &count
        ),
        Some(8.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "clamator_server_in_flight{", &count),
        Some(0.0),
        "{body}"
    );
}
