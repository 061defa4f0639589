//! One trace across three processes (feature `otel`): a client calls `middle.relay` in one
//! process, whose handler calls `leaf.work` in a third, all over a real redis-server. Each
//! process exports its spans to an in-memory OpenTelemetry exporter; the spans form one trace
//! with the right parent links.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use clamator_test_support::RedisServer;
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_clamator-otel-node");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn args<'a>(role: &'a str, url: &'a str, spans: &'a str) -> [&'a str; 8] {
    [
        "--role",
        role,
        "--redis-url",
        url,
        "--prefix",
        "otel",
        "--spans",
        spans,
    ]
}

fn serve(role: &str, url: &str, spans: &str) -> Proc {
    let mut child = Command::new(NODE)
        .args(args(role, url, spans))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("READY"), "{role}: {line}");
    Proc(child)
}

fn terminate(mut p: Proc) {
    let pid = p.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(p.0.wait().unwrap().success());
}

/// The spans of one process, by name.
fn spans(path: &std::path::Path) -> HashMap<String, Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s))
        .collect()
}

#[test]
fn one_trace_spans_client_middle_and_leaf_processes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("clamator-otel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |n: &str| dir.join(format!("{n}.jsonl"));
    let (leaf_f, middle_f, client_f) = (file("leaf"), file("middle"), file("client"));
    let leaf = serve("leaf", &url, leaf_f.to_str().unwrap());
    let middle = serve("middle", &url, middle_f.to_str().unwrap());
    let out = Command::new(NODE)
        .args(args("client", &url, client_f.to_str().unwrap()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"n":42}"#);
    terminate(middle);
    terminate(leaf);

    let (c, m, l) = (spans(&client_f), spans(&middle_f), spans(&leaf_f));
    let root = &c["root"];
    let trace = root["trace_id"].as_str().unwrap();
    let link = |child: &Value, parent: &Value, what: &str| {
        assert_eq!(
            child["trace_id"], trace,
            "{what}: same trace\n{child}\n{parent}"
        );
        assert_eq!(
            child["parent_span_id"], parent["span_id"],
            "{what}: parent link\n{child}\n{parent}"
        );
    };
    let call_middle = &c["middle/relay"];
    assert_eq!(call_middle["kind"], "Client");
    link(call_middle, root, "client span under root");
    let serve_middle = &m["middle/relay"];
    assert_eq!(serve_middle["kind"], "Server");
    link(
        serve_middle,
        call_middle,
        "middle's server span under the client's call",
    );
    let call_leaf = &m["leaf/work"];
    assert_eq!(call_leaf["kind"], "Client");
    link(
        call_leaf,
        serve_middle,
        "the nested call under middle's server span",
    );
    let serve_leaf = &l["leaf/work"];
    assert_eq!(serve_leaf["kind"], "Server");
    link(
        serve_leaf,
        call_leaf,
        "leaf's server span under the nested call",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
