//! Every example runs with its one documented command and does what its doc says, over the
//! in-process bus and over a private Redis (issue 13 item 13). `cargo test` builds the
//! examples; this runs the binaries it built.

use std::path::PathBuf;
use std::process::{Command, Output};

use clamator_test_support::RedisServer;

fn example(name: &str) -> PathBuf {
    // target/debug/deps/examples-<hash> → target/debug/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run these tests with `cargo test --workspace --all-features` (the quickstart is in the clamator-quickstart package)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> (String, String) {
    let out: Output = Command::new(example(name))
        .args(args)
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// How many keys a run left behind (none: examples clean up after themselves).
fn leftovers(redis: &RedisServer) -> String {
    redis.raw(&[vec!["DBSIZE".into()]]).concat()
}

#[test]
fn quickstart_over_memory_and_redis() {
    let (out, _) = run("quickstart", &[]);
    assert!(out.contains("transport: in-process bus"), "{out}");
    assert!(out.contains("arith.add(2, 3) = 5"), "{out}");
    assert!(out.contains("server: ping"), "{out}");
    let redis = RedisServer::start();
    let (out, _) = run("quickstart", &["--redis", &redis.url()]);
    assert!(out.contains("transport: redis"), "{out}");
    assert!(out.contains("arith.add(2, 3) = 5"), "{out}");
    assert!(out.contains("server: ping"), "{out}");
    assert_eq!(leftovers(&redis), ":0", "keys left behind");
}

#[test]
fn quickstart_over_nats_leaves_no_stream_behind() {
    let nats = clamator_test_support::nats::NatsServer::start();
    let (out, _) = run("quickstart", &["--nats", &nats.url()]);
    assert!(out.contains("transport: nats"), "{out}");
    assert!(out.contains("arith.add(2, 3) = 5"), "{out}");
    assert!(out.contains("server: ping"), "{out}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left: Vec<String> = rt.block_on(async {
        use futures::TryStreamExt;
        let client = clamator::nats::async_nats::connect(nats.url())
            .await
            .unwrap();
        clamator::nats::async_nats::jetstream::new(client)
            .stream_names()
            .try_collect()
            .await
            .unwrap()
    });
    assert!(left.is_empty(), "streams left behind: {left:?}");
}

#[test]
fn service_to_service_passes_errors_and_budget_through() {
    let redis = RedisServer::start();
    for args in [vec![], vec!["--redis".to_owned(), redis.url()]] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, _) = run("service_to_service", &args);
        assert!(out.contains("order 1 placed: 2 tea, 1 left"), "{out}");
        // the 5 s budget minus the time spent so far reached the inventory call
        assert!(out.contains("ms of the 5 s budget"), "{out}");
        assert!(!out.contains("None ms"), "{out}");
        assert!(
            out.contains(
                r#"order refused by inventory: -32010 out of stock {"sku":"tea","have":1,"want":2}"#
            ),
            "{out}"
        );
    }
    assert_eq!(leftovers(&redis), ":0", "keys left behind");
}

#[test]
fn http_gateway_maps_outcomes_to_statuses() {
    let redis = RedisServer::start();
    for args in [
        vec!["--once".to_owned()],
        vec!["--redis".to_owned(), redis.url(), "--once".to_owned()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, _) = run("http_gateway", &args);
        assert!(
            out.contains(r#"-> HTTP/1.1 200 OK {"result":{"sum":5.0}}"#),
            "{out}"
        );
        assert!(
            out.contains("-> HTTP/1.1 400 Bad Request") && out.contains(r#""loc":["a"]"#),
            "{out}"
        );
        assert!(out.contains("-> HTTP/1.1 404 Not Found"), "{out}");
    }
    assert_eq!(leftovers(&redis), ":0", "keys left behind");
}

#[test]
fn worker_pool_spreads_calls_over_every_worker() {
    let redis = RedisServer::start();
    let (out, _) = run(
        "worker_pool",
        &["--redis", &redis.url(), "--workers", "3", "--calls", "300"],
    );
    let mut total = 0;
    for n in 1..=3 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("worker {n}:")))
            .unwrap_or_else(|| panic!("worker {n} handled nothing:\n{out}"));
        let calls: usize = line
            .split_whitespace()
            .nth(2)
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(calls >= 20, "worker {n} handled only {calls}:\n{out}");
        total += calls;
    }
    assert_eq!(total, 300, "{out}");
    assert_eq!(leftovers(&redis), ":0", "keys left behind");
}

#[test]
fn worker_pool_without_redis_says_what_to_start() {
    let port = clamator_test_support::free_port();
    let out = Command::new(example("worker_pool"))
        .args(["--redis", &format!("redis://127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("redis-server"), "{stderr}");
}

#[test]
fn python_peer_calls_the_rust_service_with_generated_code() {
    let root = clamator_test_support::workspace_root();
    let status = Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/setup-python.sh failed");
    let redis = RedisServer::start();
    let (out, _) = run("python_peer", &["--redis", &redis.url()]);
    for line in [
        "rust: add(2, 3)",
        "python: arith.add(2, 3) = 5.0",
        "python: arith.echoText -> héllo from Python ✓",
        "python: arith.divide(1, 0) -> RpcError -32000 'division by zero'",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert_eq!(leftovers(&redis), ":0", "keys left behind");
}
