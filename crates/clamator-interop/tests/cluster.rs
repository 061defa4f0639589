//! The released Python clamator 0.1.9 packages on a Redis Cluster, with Rust servers and
//! clients on the same cluster. 0.1.9 takes any `redis.asyncio` client; given a
//! `RedisCluster` it works, because each of its commands names one key (its server reads each
//! service's stream with its own `XREADGROUP` and acks with single commands). The Rust side
//! splits its pipelines by slot.

use std::io::Write;
use std::process::{Command, Stdio};

use clamator_test_support::RedisCluster;
use serde_json::{json, Value};

mod common;

use common::{setup_python, spawn_server, Lang};

fn calls() -> Value {
    json!([
        {"method": "arith.add", "params": {"a": 2, "b": 3}},
        {"method": "arith.echoText", "params": {"text": "héllo"}},
        {"method": "arith.divide", "params": {"a": 1, "b": 0}},
        {"method": "arith.add", "params": {"a": "x", "b": 1}},
        {"method": "notifications.ping", "params": {"tag": "t"}, "notification": true},
    ])
}

fn run_client(lang: Lang, python: &std::path::Path, seeds: &[String], prefix: &str) -> Vec<Value> {
    let mut cmd = match lang {
        Lang::Rust => Command::new(env!("CARGO_BIN_EXE_clamator-interop-client")),
        Lang::Py => {
            let mut c = Command::new(python);
            c.arg(common::root().join("interop/py/client.py"));
            c
        }
        Lang::Ts => {
            let mut c = Command::new("node");
            c.arg(common::ts_driver("client.mjs"));
            c
        }
    };
    let config = json!({
        "redisCluster": seeds, "keyPrefix": prefix, "defaultTimeoutMs": 10_000,
        "calls": calls(), "concurrent": 20,
    });
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{lang:?} client output is not JSON ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["results"].as_array().unwrap().clone()
}

fn check(results: &[Value], who: &str) {
    assert_eq!(results.len(), 100, "{who}");
    for batch in results.chunks(5) {
        assert_eq!(batch[0]["result"], json!({"sum": 5.0}), "{who}: {batch:?}");
        assert_eq!(
            batch[1]["result"],
            json!({"text": "héllo"}),
            "{who}: {batch:?}"
        );
        assert_eq!(batch[2]["code"], -32000, "{who}: {batch:?}");
        assert_eq!(batch[3]["code"], -32602, "{who}: {batch:?}");
        assert_eq!(batch[4]["kind"], "notification", "{who}: {batch:?}");
    }
}

#[test]
fn python_0_1_9_and_rust_on_one_redis_cluster() {
    let python = setup_python();
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seeds();
    let joined = seeds.join(",");
    for (server_lang, client_lang) in [
        (Lang::Py, Lang::Rust),
        (Lang::Rust, Lang::Py),
        (Lang::Py, Lang::Py),
    ] {
        let prefix = format!("icl-{}-{}", server_lang.name(), client_lang.name());
        let server = spawn_server(
            server_lang,
            &python,
            &seeds[0],
            &prefix,
            "s1",
            60_000,
            &["--redis-cluster", &joined],
        );
        let results = run_client(client_lang, &python, &seeds, &prefix);
        check(
            &results,
            &format!("{server_lang:?} server, {client_lang:?} client"),
        );
        for service in ["arith", "notifications"] {
            wait_consumed(&cluster, &format!("{prefix}:cmds:{service}"));
        }
        let handled = server.terminate();
        // 20 × (3 handled requests + 1 notification); the bad-params call never reaches a handler
        assert_eq!(handled, Some(80), "{server_lang:?} server handled");
        // the streams are on the masters their slots say
        for key in [
            format!("{prefix}:cmds:arith"),
            format!("{prefix}:cmds:notifications"),
        ] {
            let owner = cluster.master_of(&key);
            assert_eq!(
                cluster.node(owner.port).cli(&["EXISTS", &key]).trim(),
                "1",
                "{key}"
            );
        }
    }
}

/// Waits until the group of `stream` has read everything and acked it (`XINFO GROUPS`:
/// `pending` 0 and `lag` 0).
fn wait_consumed(cluster: &RedisCluster, stream: &str) {
    let node = cluster.node(cluster.master_of(stream).port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let info = node.cli(&["XINFO", "GROUPS", stream]);
        let lines: Vec<&str> = info.lines().map(str::trim).collect();
        let value = |k: &str| {
            lines
                .iter()
                .position(|l| *l == k)
                .and_then(|i| lines.get(i + 1).copied())
        };
        if value("pending") == Some("0") && value("lag") == Some("0") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stream} not consumed: {info}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
