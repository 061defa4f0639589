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

/// The lines `<ms>\t<pid>\t<instance>\t<method>\t<a>\t<event>` of an exec log whose `a` is `a`.
fn runs_of(log: &std::path::Path, a: u64) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 6 && f[4].parse::<f64>().ok() == Some(a as f64))
                .then(|| (f[2].to_owned(), f[5].to_owned()))
        })
        .collect()
}

/// A server process as [`server`], with its handler runs appended to `exec_log`.
fn logged_server(url: &str, id: &str, prefix: &str, exec_log: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clamator-interop-server"))
        .args(["--nats-url", url, "--prefix", prefix, "--instance-id", id])
        .args(["--claim-idle-ms", "1000", "--concurrency", "8"])
        .arg("--exec-log")
        .arg(exec_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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

/// The shape that lost calls in the NATS chaos run (issue 35): a request runs on server A
/// while server B, which reconnected (as after a NATS restart), removes requests the stream
/// kept after their ack (below the consumer's ack floor: what a SIGKILLed nats-server 2.9
/// leaves when it had written the consumer's acks but not the stream's deletions); then A is
/// SIGKILLed before its reply. The request must be delivered again and answered. On
/// nats-server 2.9 a stream *purge* drops every consumer's pending deliveries, so a removal by
/// purge strands A's request: never delivered again, never answered.
///
/// The kept requests are made deterministically: two requests are stored and the store's
/// messages copied aside (NATS stopped with SIGTERM, so everything is written); they are
/// delivered and acked; NATS is stopped again and the old messages put back. The stream then
/// holds two requests its consumer has acked, as after the SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_server_killed_while_another_cleans_the_stream_loses_no_call() {
    use clamator::nats::async_nats::{self, jetstream};
    use clamator_test_support::proxy::TcpProxy;
    use futures::StreamExt;
    let prefix = "strand";
    let stream_name = format!("{prefix}_cmds_arith");
    let mut nats = NatsServer::start();
    let url = nats.url();
    {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{prefix}.cmds.arith")],
                retention: jetstream::stream::RetentionPolicy::WorkQueue,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .unwrap();
        stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("arith".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(1),
                max_deliver: -1,
                max_ack_pending: 100_000,
                ..Default::default()
            })
            .await
            .unwrap();
        for _ in 0..2 {
            js.publish(format!("{prefix}.cmds.arith"), "kept after its ack".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
    let msgs = nats
        .store_dir()
        .join(format!("jetstream/$G/streams/{stream_name}/msgs"));
    let saved = nats.store_dir().join("msgs-before-the-acks");
    nats.terminate();
    copy_dir(&msgs, &saved);
    nats.restart();
    {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        let consumer: jetstream::consumer::PullConsumer = js
            .get_stream(&stream_name)
            .await
            .unwrap()
            .get_consumer("arith")
            .await
            .unwrap();
        let mut batch = consumer
            .fetch()
            .max_messages(2)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        while let Some(m) = batch.next().await {
            m.unwrap().double_ack().await.unwrap();
        }
    }
    nats.terminate();
    std::fs::remove_dir_all(&msgs).unwrap();
    copy_dir(&saved, &msgs);
    nats.restart();
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    {
        let mut stream = js.get_stream(&stream_name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer("arith").await.unwrap();
        let floor = consumer.info().await.unwrap().ack_floor.stream_sequence;
        assert_eq!(
            (state.messages, state.first_sequence, floor),
            (2, 1, 2),
            "setup: the stream should hold 2 requests below the consumer's ack floor"
        );
    }

    let dir = std::env::temp_dir().join(format!("clamator-strand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exec_log = dir.join("exec.log");
    let _ = std::fs::remove_file(&exec_log);
    let mut a = logged_server(&url, "srv-a", prefix, &exec_log);
    let client = NatsRpcClient::builder()
        .url(url.as_str())
        .key_prefix(prefix)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let call = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call_value(
                    "arith",
                    "slowAdd",
                    json!({"a": 41, "b": 1, "sleepMs": 3000}),
                    Some(Duration::from_secs(20)),
                )
                .await
        })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while runs_of(&exec_log, 41).is_empty() {
        assert!(Instant::now() < until, "server A never ran the call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // B comes up behind a proxy, and its connection is cut: it reconnects, as after a NATS
    // restart, and cleans what the stream kept below the ack floor.
    let proxy = TcpProxy::to(nats.port());
    let _b = logged_server(&proxy.nats_url(), "srv-b", prefix, &exec_log);
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let first = js.get_stream(&stream_name).await.unwrap();
        let kept = first.get_raw_message(1).await.is_ok() || first.get_raw_message(2).await.is_ok();
        if !kept {
            break;
        }
        assert!(
            Instant::now() < until,
            "server B did not remove the requests kept below the ack floor after its reconnect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.0.kill().unwrap();
    let _ = a.0.wait();
    let out = call
        .await
        .unwrap()
        .expect("the call whose server was SIGKILLed must be answered by the other one");
    assert_eq!(out["sum"], json!(42.0));
    let runs = runs_of(&exec_log, 41);
    assert!(
        runs.iter().any(|(who, ev)| who == "srv-b" && ev == "start"),
        "B should have run the request again: {runs:?}"
    );
    client.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
