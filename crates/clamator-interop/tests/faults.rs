//! Fault tests with real processes: `kill -9` of one of two `clamator-interop-server`s under
//! load. Bounded in time; stops by itself.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator::redis::RedisRpcClient;
use clamator::RpcClient;
use clamator_test_support::RedisServer;
use serde_json::json;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(redis: &RedisServer, id: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clamator-interop-server"))
        .args([
            "--redis-url",
            &redis.url(),
            "--prefix",
            "fault",
            "--instance-id",
            id,
        ])
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
    assert!(line.contains("READY"));
    Server(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_server_under_load_loses_no_call() {
    let redis = RedisServer::start();
    let mut a = server(&redis, "srv-a");
    let _b = server(&redis, "srv-b");
    let client = RedisRpcClient::builder("fault")
        .redis_url(redis.url())
        .build()
        .unwrap();
    client.start().await.unwrap();
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
    // kill srv-a in the middle of the load, with calls in its hands
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
    client.stop().await;
}
