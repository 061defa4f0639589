//! `clamator dashboard` in a real browser (headless Debian chromium driven by playwright-core,
//! both installed by `scripts/setup-browser.sh`), on each broker: a private redis-server with a
//! Rust and a Python 0.1.9 server under load, and a private `nats-server -js` with two Rust
//! servers under load. The page lists the services and their consumers, the rate moves, a
//! running request is pending, a dead letter replayed from the page is answered, an envelope
//! holding `<script>` stays inert, actions need the CSRF header and the token, read-only hides
//! them. The browser part is `browser/dashboard.test.mjs` (the same checks on both brokers);
//! these tests run everything around it and check the broker.
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clamator::redis::{redis, RedisRpcClient, RedisRpcServer};
use clamator::RpcClient;
use clamator_interop::{ArithServer, Fixture, NotificationsServer};
use clamator_test_support::{workspace_root, RedisServer};
use serde_json::json;

const PREFIX: &str = "dash";
const TOKEN: &str = "s3cret-token";

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_script(name: &str) {
    let status = Command::new("bash")
        .arg(workspace_root().join("scripts").join(name))
        .status()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    assert!(status.success(), "scripts/{name} failed");
}

/// Starts a process and waits for a stdout line containing `marker`; returns it.
fn spawn_until(mut cmd: Command, marker: &str) -> (Proc, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&wanted) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no line with {marker:?} from {cmd:?}"));
    (Proc(child), line)
}

/// The chromium binary on `PATH` (playwright wants a path).
fn chromium() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .expect("chromium on PATH (scripts/setup-browser.sh installs it)")
}

fn dashboard(redis: &RedisServer, extra: &[&str]) -> (Proc, String) {
    dashboard_on(&["--redis-url", &redis.url()], extra)
}

/// A dashboard on the broker `conn` names (`--redis-url …` or `--nats-url …`).
fn dashboard_on(conn: &[&str], extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamator"));
    cmd.args(conn)
        .args(["--prefix", PREFIX])
        .args(["dashboard", "--listen", "127.0.0.1:0"])
        .args(extra);
    let (proc, line) = spawn_until(cmd, "dashboard for prefix");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the URL in the first line")
        .to_owned();
    (proc, url)
}

/// Runs `browser/dashboard.test.mjs` against the dashboards at `url` (with the token) and
/// `ro_url` (read-only); `consumers` are the names the service page must list.
async fn browser_checks(url: &str, ro_url: &str, consumers: &[&str], shots: &str) {
    let root = workspace_root();
    let screenshots = std::env::var_os("CLAMATOR_SCREENSHOTS")
        .map_or_else(|| root.join("target/dashboard-screenshots"), PathBuf::from);
    let started = Instant::now();
    let (url, ro_url, consumers, shots) = (
        url.to_owned(),
        ro_url.to_owned(),
        consumers.join(","),
        shots.to_owned(),
    );
    let browser = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(root.join("browser/dashboard.test.mjs"))
            .current_dir(root.join("browser"))
            .env("DASH_URL", &url)
            .env("DASH_RO_URL", &ro_url)
            .env("DASH_TOKEN", TOKEN)
            .env("DASH_CONSUMERS", &consumers)
            .env("DASH_SHOT_PREFIX", &shots)
            .env("SCREENSHOTS", &screenshots)
            .env("CHROMIUM", chromium())
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&browser.stdout);
    eprintln!(
        "{stdout}{}(browser part: {:.1} s)",
        String::from_utf8_lossy(&browser.stderr),
        started.elapsed().as_secs_f64()
    );
    assert!(browser.status.success(), "the browser checks failed");
    assert!(stdout.contains("all dashboard checks passed"));
}

async fn dead_letter(conn: &mut redis::aio::MultiplexedConnection, id: &str, envelope: &str) {
    // the fields a server writes when it dead-letters an entry (tests/reliability.rs checks
    // that it writes these)
    let _: String = redis::cmd("XADD")
        .arg(format!("{PREFIX}:dead:arith"))
        .arg("*")
        .arg("dead-reason")
        .arg("delivered 5 times without being acked (max_deliveries 5)")
        .arg("dead-entry-id")
        .arg(format!("1700000000000-{}", id.len()))
        .arg("dead-deliveries")
        .arg(5)
        .arg("type")
        .arg("rpc")
        .arg("envelope")
        .arg(envelope)
        .arg("reply-to")
        .arg(format!("{PREFIX}:replies:dashtest"))
        .query_async(conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_a_browser() {
    run_script("setup-browser.sh");
    run_script("setup-python.sh");
    let root = workspace_root();
    let redis_server = RedisServer::start();

    // a Rust and a Python server in one pool
    let fixture = Fixture::default();
    let rust = RedisRpcServer::builder()
        .key_prefix(PREFIX)
        .url(redis_server.url())
        .instance_id("rust-1")
        .service(ArithServer::new(fixture.clone()))
        .service(NotificationsServer::new(fixture.clone()))
        .build()
        .unwrap();
    rust.start().await.unwrap();
    let mut py = Command::new(root.join(".venv/bin/python"));
    py.arg(root.join("interop/py/server.py"))
        .current_dir(root.join("interop/py"))
        .args(["--redis-url", &redis_server.url(), "--prefix", PREFIX])
        .args(["--instance-id", "py-1"]);
    let (_python, _) = spawn_until(py, "READY");

    // load: calls until the test ends
    let client = RedisRpcClient::builder()
        .key_prefix(PREFIX)
        .url(redis_server.url())
        .build()
        .unwrap();
    client.start().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for i in 0..4 {
        let (client, stop, answered) = (client.clone(), stop.clone(), answered.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .call_value("arith", "add", json!({"a": i, "b": 1}), None)
                    .await;
                assert_eq!(r.unwrap(), json!({"sum": f64::from(i + 1)}));
                answered.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    // two dead letters: one to replay, one whose envelope is hostile markup
    let mut conn = redis::Client::open(redis_server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    dead_letter(
        &mut conn,
        "replay",
        r#"{"jsonrpc":"2.0","method":"arith.add","params":{"a":20,"b":22},"id":"replay-me"}"#,
    )
    .await;
    dead_letter(
        &mut conn,
        "xss",
        &json!({
            "jsonrpc": "2.0",
            "method": "arith.echoText",
            "params": {"text": "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=1\">"},
            "id": "</pre><script>window.__xss=1</script>",
        })
        .to_string(),
    )
    .await;

    // a request that stays pending while the browser looks
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_value(
                    "arith",
                    "slowAdd",
                    json!({"a": 1, "b": 1, "sleepMs": 20_000}),
                    Some(Duration::from_secs(60)),
                )
                .await
        }
    });

    let docs = root.join("contracts");
    let docs = docs.to_str().unwrap();
    let (_dash, url) = dashboard(&redis_server, &["--token", TOKEN, "--docs", docs]);
    let (_dash_ro, ro_url) = dashboard(&redis_server, &["--read-only"]);
    assert!(
        url.ends_with('/') && ro_url.ends_with('/'),
        "{url} {ro_url}"
    );

    browser_checks(&url, &ro_url, &["arith:rust-1", "arith:py-1"], "").await;

    // the dead letter replayed from the page was answered on its reply stream
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(format!("{PREFIX}:replies:dashtest"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Some((_, fields)) = entries.first() {
            break fields.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the replayed request was not answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let envelope = &reply.iter().find(|(k, _)| k == "envelope").unwrap().1;
    let envelope: serde_json::Value = serde_json::from_str(envelope).unwrap();
    assert_eq!(envelope["id"], "replay-me");
    assert_eq!(envelope["result"], json!({"sum": 42.0}));
    // the hostile one was dropped from the page by a bulk "drop selected"
    let left: u64 = redis::cmd("XLEN")
        .arg(format!("{PREFIX}:dead:arith"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(answered.load(Ordering::Relaxed) > 0);
    slow.abort();
    client.stop().await;
    rust.stop_with_grace(Duration::ZERO).await;
}

/// The same page over NATS JetStream: two Rust servers (the consumers the page lists are the
/// servers that answer `<prefix>.status`), their running request as pending with its
/// deliveries, dead letters replayed (answered on the client's subject) and dropped.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_a_browser_over_nats() {
    use clamator::nats::async_nats::{self, jetstream, HeaderMap};
    use clamator::nats::{NatsRpcClient, NatsRpcServer};
    use clamator_test_support::nats::NatsServer;
    use futures::StreamExt;
    run_script("setup-browser.sh");
    let nats = NatsServer::start();
    let fixture = Fixture::default();
    let mut servers = Vec::new();
    for id in ["rust-1", "rust-2"] {
        let server = NatsRpcServer::builder()
            .url(nats.url())
            .key_prefix(PREFIX)
            .instance_id(id)
            .service(ArithServer::new(fixture.clone()))
            .service(NotificationsServer::new(fixture.clone()))
            .build()
            .unwrap();
        server.start().await.unwrap();
        servers.push(server);
    }
    let client = NatsRpcClient::builder()
        .url(nats.url())
        .key_prefix(PREFIX)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for i in 0..4 {
        let (client, stop, answered) = (client.clone(), stop.clone(), answered.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .call_value("arith", "add", json!({"a": i, "b": 1}), None)
                    .await;
                assert_eq!(r.unwrap(), json!({"sum": f64::from(i + 1)}));
                answered.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_value(
                    "arith",
                    "slowAdd",
                    json!({"a": 1, "b": 1, "sleepMs": 20_000}),
                    Some(Duration::from_secs(60)),
                )
                .await
        }
    });

    // two dead letters, as a server writes them; the replayed one answers on this subject
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let mut replies = raw
        .subscribe(format!("{PREFIX}.replies.dashtest"))
        .await
        .unwrap();
    raw.flush().await.unwrap();
    let js = jetstream::new(raw.clone());
    for (sequence, envelope) in [
        (
            "7",
            r#"{"jsonrpc":"2.0","method":"arith.add","params":{"a":20,"b":22},"id":"replay-me"}"#
                .to_owned(),
        ),
        (
            "8",
            json!({
                "jsonrpc": "2.0",
                "method": "arith.echoText",
                "params": {"text": "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=1\">"},
                "id": "</pre><script>window.__xss=1</script>",
            })
            .to_string(),
        ),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("Clamator-Reply-To", format!("{PREFIX}.replies.dashtest").as_str());
        headers.insert(
            "Clamator-Dead-Reason",
            "delivered 5 times without being acked (max_deliveries 5)",
        );
        headers.insert("Clamator-Dead-Deliveries", "5");
        headers.insert("Clamator-Dead-Sequence", sequence);
        js.publish_with_headers(format!("{PREFIX}.dead.arith"), headers, envelope.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let root = workspace_root();
    let docs = root.join("contracts");
    let docs = docs.to_str().unwrap();
    let nats_url = nats.url();
    let conn = ["--nats-url", nats_url.as_str()];
    let (_dash, url) = dashboard_on(&conn, &["--token", TOKEN, "--docs", docs]);
    let (_dash_ro, ro_url) = dashboard_on(&conn, &["--read-only"]);
    browser_checks(&url, &ro_url, &["rust-1", "rust-2"], "nats-").await;

    // the dead letter replayed from the page was answered on the client's subject
    let reply = tokio::time::timeout(Duration::from_secs(10), replies.next())
        .await
        .expect("the replayed request was not answered")
        .unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(envelope["id"], "replay-me");
    assert_eq!(envelope["result"], json!({"sum": 42.0}));
    // the hostile one was dropped from the page by a bulk "drop selected"
    let mut dead = js.get_stream(format!("{PREFIX}_dead_arith")).await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 0);

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(answered.load(Ordering::Relaxed) > 0);
    slow.abort();
    client.stop().await;
    for s in servers {
        s.stop_with_grace(Duration::ZERO).await;
    }
}

/// Sends one raw HTTP/1.1 request (with `Connection: close`) and returns the whole answer.
async fn http(addr: &str, raw: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The JSON body of a `GET` (chunked or not: the body is the text after the head, from the
/// first `{`).
async fn get_json(addr: &str, path: &str) -> serde_json::Value {
    let answer = http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The dashboard ends cleanly on SIGTERM, with a browser's event stream still open.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_stops_on_sigterm_with_an_event_stream_open() {
    let redis_server = RedisServer::start();
    let (mut dash, url) = dashboard(&redis_server, &[]);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!(
                "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    let head = String::from_utf8_lossy(&first[..n]);
    assert!(
        head.contains("200 OK") && head.contains("text/event-stream"),
        "{head}"
    );
    let pid = dash.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = dash.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard did not stop on SIGTERM with an event stream open"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

/// Another origin's page cannot act: DNS-rebinding `Host`, cross-origin `Origin`, no CSRF header.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_refuses_foreign_hosts_and_origins() {
    let redis_server = RedisServer::start();
    let (_dash, url) = dashboard(&redis_server, &[]);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let request = |raw: String| http(&addr, raw);
    let get = |host: &str, path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let page = request(get(&addr, "/")).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("content-security-policy"), "{page}");
    let csrf = page
        .split("name=\"clamator-csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let rebound = request(get("evil.example:7474", "/api/overview")).await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("not a loopback name"), "{rebound}");
    let post = |origin: Option<&str>, csrf: Option<&str>| {
        let body = r#"{"all":true}"#;
        format!(
            "POST /api/services/arith/dead-letters/drop HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{}{}\r\n{body}",
            body.len(),
            origin.map_or(String::new(), |o| format!("Origin: {o}\r\n")),
            csrf.map_or(String::new(), |c| format!("X-Clamator-Csrf: {c}\r\n")),
        )
    };
    let foreign = request(post(Some("http://evil.example"), Some(&csrf))).await;
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    assert!(foreign.contains("cross-origin"), "{foreign}");
    let no_csrf = request(post(None, None)).await;
    assert!(no_csrf.starts_with("HTTP/1.1 403"), "{no_csrf}");
    let wrong_csrf = request(post(None, Some("0000"))).await;
    assert!(wrong_csrf.starts_with("HTTP/1.1 403"), "{wrong_csrf}");
    let ours = request(post(Some(&format!("http://{addr}")), Some(&csrf))).await;
    assert!(ours.starts_with("HTTP/1.1 200"), "{ours}");
    assert!(
        ours.contains(r#"{"action":"drop","count":0,"unknown":[]}"#),
        "{ours}"
    );
}

/// On a Redis Cluster: services whose streams live on different masters are all listed, with
/// their rates, consumers and a call made through the dashboard.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_on_a_cluster() {
    use clamator_test_support::RedisCluster;
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3, 0))
        .await
        .unwrap();
    let prefix = (0..)
        .map(|i| format!("dclu{i}"))
        .find(|p| {
            cluster.master_of(&format!("{p}:cmds:arith")).port
                != cluster.master_of(&format!("{p}:cmds:notifications")).port
        })
        .unwrap();
    let seeds = cluster.seeds();
    let server = RedisRpcServer::builder()
        .key_prefix(&prefix)
        .connection(clamator::redis::RedisConnection::cluster(seeds.clone()))
        .instance_id("c1")
        .service(ArithServer::new(Fixture::default()))
        .service(NotificationsServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = RedisRpcClient::builder()
        .key_prefix(&prefix)
        .connection(clamator::redis::RedisConnection::cluster(seeds.clone()))
        .build()
        .unwrap();
    client.start().await.unwrap();
    for i in 0..50 {
        client
            .call_value("arith", "add", json!({"a": i, "b": 1}), None)
            .await
            .unwrap();
    }
    client
        .notify_value("notifications", "ping", json!({}))
        .await
        .unwrap();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clamator"));
    cmd.args(["--redis-cluster", &seeds.join(","), "--prefix", &prefix])
        .args(["dashboard", "--listen", "127.0.0.1:0"]);
    let (_dash, line) = spawn_until(cmd, "dashboard for prefix");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    let overview = loop {
        let o = get_json(&addr, "/api/overview").await;
        let names: Vec<&str> = o["services"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["service"].as_str())
            .collect();
        if names == ["arith", "notifications"] {
            break o;
        }
        assert!(Instant::now() < deadline, "services not listed: {o}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(overview["services"][0]["entries_added"], 50, "{overview}");
    assert_eq!(overview["services"][1]["entries_added"], 1, "{overview}");
    assert_eq!(overview["services"][0]["consumers_alive"], 1, "{overview}");
    let detail = get_json(&addr, "/api/services/arith").await;
    assert_eq!(detail["consumers"][0]["name"], "arith:c1", "{detail}");

    // a call through the dashboard, on the cluster
    let page = http(
        &addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    let csrf = page
        .split("name=\"clamator-csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let body = r#"{"method":"arith.add","params":{"a":2,"b":3}}"#;
    let answer = http(
        &addr,
        format!(
            "POST /api/call HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             X-Clamator-Csrf: {csrf}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.contains(r#""result":{"sum":5.0}"#), "{answer}");
    client.stop().await;
    server.stop().await;
}

/// Listening beyond loopback without a token (or read-only) is refused before anything starts.
#[test]
fn a_public_listener_needs_a_token_or_read_only() {
    let redis_server = RedisServer::start();
    let out = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["--redis-url", &redis_server.url(), "--prefix", PREFIX])
        .args(["dashboard", "--listen", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not loopback") && stderr.contains("--token"),
        "{stderr}"
    );
}

/// Issue 29: with `--token`, reads need the token too (dead letters can hold personal data):
/// the API answers 401, a page is the login form, and the login sets a cookie that opens both.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_protects_reads_too() {
    let redis_server = RedisServer::start();
    let (_dash, url) = dashboard(&redis_server, &["--token", TOKEN]);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n")
    };
    for path in [
        "/api/overview",
        "/api/events",
        "/api/services/arith",
        "/api/services/arith/events",
    ] {
        let answer = http(&addr, get(path, "")).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
    }
    let page = http(&addr, get("/services/arith", "")).await;
    assert!(page.starts_with("HTTP/1.1 401"), "{page}");
    assert!(
        page.contains("name=\"token\"") && !page.contains("clamator-csrf"),
        "{page}"
    );
    let bearer = http(
        &addr,
        get(
            "/api/overview",
            &format!("Authorization: Bearer {TOKEN}\r\n"),
        ),
    )
    .await;
    assert!(bearer.starts_with("HTTP/1.1 200"), "{bearer}");
    // the login form: a wrong token is refused, the right one sets the cookie
    let login = |token: &str| {
        let body = format!("token={token}&next=%2Fservices%2Farith");
        format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let wrong = http(&addr, login("nope")).await;
    assert!(
        wrong.starts_with("HTTP/1.1 401") && wrong.contains("wrong token"),
        "{wrong}"
    );
    let right = http(&addr, login(TOKEN)).await;
    assert!(right.starts_with("HTTP/1.1 303"), "{right}");
    assert!(right.contains("location: /services/arith"), "{right}");
    let cookie = right
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = http(&addr, get("/api/overview", &format!("Cookie: {pair}\r\n"))).await;
    assert!(with_cookie.starts_with("HTTP/1.1 200"), "{with_cookie}");
    // an open redirect is not possible through `next`
    let body = format!("token={TOKEN}&next=%2F%2Fevil.example");
    let redirect = http(
        &addr,
        format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(redirect.contains("location: /\r\n"), "{redirect}");
}

/// `INFO commandstats` calls of one command.
async fn calls_of(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Issue 29: on a Redis shared with many unrelated keys, discovery costs a SCAN per thousand
/// keys, not per ten, and runs on its own slow cadence; any number of viewers of a service page
/// cost Redis what one does.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_and_service_pages_cost_little_on_a_shared_redis() {
    const UNRELATED: u64 = 100_000;
    let redis_server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let client = redis::Client::open(redis_server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(UNRELATED)
        .arg("unrelated")
        .query_async(&mut conn)
        .await
        .unwrap();
    for service in ["arith", "billing"] {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(format!("{PREFIX}:cmds:{service}"))
            .arg(service)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // inspect: one walk, a SCAN per thousand keys (at COUNT 10: 10,000 per walk, and it walked twice)
    let before = calls_of(&mut conn, "scan").await;
    let out = tokio::task::spawn_blocking({
        let url = redis_server.url();
        move || {
            Command::new(env!("CARGO_BIN_EXE_clamator"))
                .args(["--redis-url", &url, "--prefix", PREFIX, "inspect", "--json"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["services"].as_array().unwrap().len(), 2, "{report}");
    let walk = calls_of(&mut conn, "scan").await - before;
    assert!(
        walk <= UNRELATED / 1000 + 5,
        "inspect sent {walk} SCANs for {UNRELATED} keys"
    );

    // an idle dashboard: one walk at start, then only the known streams every second
    let (_dash, url) = dashboard(&redis_server, &[]);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let overview = get_json(&addr, "/api/overview").await;
    assert_eq!(
        overview["services"].as_array().unwrap().len(),
        2,
        "{overview}"
    );
    let before = calls_of(&mut conn, "scan").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let idle = calls_of(&mut conn, "scan").await - before;
    assert_eq!(
        idle, 0,
        "an idle dashboard walked the keyspace again within 4 s"
    );

    // viewers of one service page: the range XPENDING of the service page, per second
    let viewers = |n: usize| {
        let addr = addr.clone();
        async move {
            let mut streams = Vec::new();
            for _ in 0..n {
                let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                tokio::io::AsyncWriteExt::write_all(
                    &mut s,
                    format!("GET /api/services/arith/events HTTP/1.1\r\nHost: {addr}\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
                streams.push(s);
            }
            streams
        }
    };
    let mut rate = Vec::new();
    for n in [1, 20] {
        let open = viewers(n).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = calls_of(&mut conn, "xpending").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        rate.push(calls_of(&mut conn, "xpending").await - before);
        drop(open);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // the overview's XPENDING summary is in both; per-viewer sampling would make it ~20×
    assert!(
        rate[1] <= rate[0] * 3 / 2 + 2,
        "XPENDING calls in 3 s: 1 viewer {}, 20 viewers {}",
        rate[0],
        rate[1]
    );
}
