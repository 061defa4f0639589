//! Fault tests with real processes: `kill -9` of one of two `clamator-interop-server`s under
//! load, over Redis and over NATS JetStream. Bounded in time; stops by itself.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator::nats::NatsRpcClient;
use clamator::redis::RedisRpcClient;
use clamator::RpcClient;
use clamator_test_support::nats::NatsServer;
use clamator_test_support::RedisServer;
use serde_json::json;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server process on `transport` (`--redis-url <url>` or `--nats-url <url>`) with a 1 s
/// claim idle / ack wait.
fn server(transport: [&str; 2], id: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clamator-interop-server"))
        .args(transport)
        .args(["--prefix", "fault", "--instance-id", id])
        .args(["--claim-idle-ms", "1000", "--concurrency", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("READY"), "{line}");
    Server(child)
}

/// 1000 calls of 50 ms at once; `a` is SIGKILLed after 300 are answered, with calls in its
/// hands: every call is answered, right, within 30 s.
async fn kill_one_of_two_under_load(client: impl RpcClient + 'static, mut a: Server) {
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let (client, done) = (client.clone(), done.clone());
            tokio::spawn(async move {
                let out = client
                    .call_value(
                        "arith",
                        "slowAdd",
                        json!({"a": i, "b": 1, "sleepMs": 50}),
                        Some(Duration::from_secs(30)),
                    )
                    .await;
                done.fetch_add(1, Ordering::SeqCst);
                out.map(|v| (i, v))
            })
        })
        .collect();
    while done.load(Ordering::SeqCst) < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.0.kill().unwrap();
    let _ = a.0.wait();
    let mut ok = 0;
    for call in calls {
        let (i, v) = call
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a call failed: {e}"));
        assert_eq!(v["sum"], json!(f64::from(i) + 1.0));
        ok += 1;
    }
    assert_eq!(ok, 1000);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_server_under_load_loses_no_call() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = server(["--redis-url", &url], "srv-a");
    let _b = server(["--redis-url", &url], "srv-b");
    let client = RedisRpcClient::builder()
        .key_prefix("fault")
        .url(url.as_str())
        .build()
        .unwrap();
    client.start().await.unwrap();
    kill_one_of_two_under_load(client.clone(), a).await;
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_nats_server_under_load_loses_no_call() {
    let nats = NatsServer::start();
    let url = nats.url();
    let a = server(["--nats-url", &url], "srv-a");
    let _b = server(["--nats-url", &url], "srv-b");
    let client = NatsRpcClient::builder()
        .url(url.as_str())
        .key_prefix("fault")
        .build()
        .unwrap();
    client.start().await.unwrap();
    kill_one_of_two_under_load(client.clone(), a).await;
    client.stop().await;
}
