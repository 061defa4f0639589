//! Interop suite: the Rust fixtures and the released Python clamator 0.1.9 packages over one
//! private Redis, in three directions (Rust server ← Python client, Python server ← Rust
//! client, Rust ↔ Rust), plus a mixed worker pool and the cases the original suite lacks.
//! Prints a PASS/FAIL table and fails if any row failed.
//!
//! The Python side is installed by `scripts/setup-python.sh` (run here if needed) into
//! `.venv` from `interop/requirements.txt`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clamator::redis::redis;
use clamator_test_support::RedisServer;
use serde_json::{json, Value};

mod common;

use common::{setup_python, spawn_server, Lang, Server};

/// The Python client cannot hold more than ~60 calls in flight ("Too many connections").
const PY_CLIENT_MAX_IN_FLIGHT: usize = 50;

struct Env {
    redis: RedisServer,
    python: PathBuf,
    py_dir: PathBuf,
    counter: Mutex<u32>,
}

impl Env {
    fn new() -> Self {
        Self {
            python: setup_python(),
            py_dir: common::root().join("interop/py"),
            redis: RedisServer::start(),
            counter: Mutex::new(0),
        }
    }

    fn prefix(&self, scenario: &str, dir: &str) -> String {
        let mut n = self.counter.lock().unwrap();
        *n += 1;
        let slug: String = format!("{scenario}-{dir}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("clam-interop-{slug}-{n}")
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn server(&self, lang: Lang, prefix: &str, instance: &str, claim_idle_ms: u64) -> Server {
        spawn_server(
            lang,
            &self.python,
            &self.redis.url(),
            prefix,
            instance,
            claim_idle_ms,
            &[],
        )
    }

    fn client(&self, lang: Lang, config: &Value) -> Result<Vec<Value>, String> {
        let mut cmd = match lang {
            Lang::Rust => Command::new(env!("CARGO_BIN_EXE_clamator-interop-client")),
            Lang::Py => {
                let mut c = Command::new(&self.python);
                c.arg(self.py_dir.join("client.py"))
                    .current_dir(&self.py_dir);
                c
            }
            Lang::Ts => {
                let mut c = Command::new("node");
                c.arg(common::ts_driver("client.mjs"));
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client");
        let input = config.to_string();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(out) => out.map_err(|e| e.to_string())?,
            Err(_) => {
                // The Python client prints its asyncio tasks' stacks on SIGUSR1: ask, then kill
                // and show what it said.
                let _ = Command::new("kill")
                    .args(["-USR1", &pid.to_string()])
                    .status();
                std::thread::sleep(Duration::from_secs(1));
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let stderr = rx
                    .recv_timeout(Duration::from_secs(5))
                    .ok()
                    .and_then(|out| out.ok())
                    .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
                    .unwrap_or_default();
                return Err(format!(
                    "client did not finish within 60 s; its stderr:\n{stderr}"
                ));
            }
        };
        let _ = writer.join();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let doc: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
            format!(
                "client output is not JSON ({e}): {stdout} / {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        doc["results"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("no results: {doc}"))
    }

    fn client_config(&self, prefix: &str, timeout_ms: u64, calls: Value) -> Value {
        let mut config = json!({"redisUrl": self.redis.url(), "keyPrefix": prefix, "defaultTimeoutMs": timeout_ms});
        config["calls"] = calls;
        config
    }

    /// Waits until every entry of the service's command stream was delivered and acked.
    fn wait_consumed(&self, prefix: &str, service: &str) -> Result<(), String> {
        let mut con = self.conn();
        let stream = format!("{prefix}:cmds:{service}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(&mut con)
                .unwrap_or_default();
            let info: Vec<redis::Value> = redis::cmd("XPENDING")
                .arg(&stream)
                .arg(service)
                .query(&mut con)
                .unwrap_or_default();
            let pending = matches!(info.first(), Some(redis::Value::Int(0)));
            let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&stream)
                .query(&mut con)
                .unwrap_or_default();
            let delivered = groups
                .first()
                .and_then(|g| g.get("last-delivered-id"))
                .and_then(|v| match v {
                    redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                });
            // Rust servers delete what they acked: an empty stream with a delivered id counts.
            let caught_up = match (&delivered, last.first()) {
                (Some(d), Some((id, _))) => d == id,
                (Some(d), None) => d != "0-0",
                (None, _) => false,
            };
            if pending && caught_up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{stream} not consumed in time"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

type Outcome = Result<String, String>;

fn expect_result(r: &Value, expected: &Value) -> Result<(), String> {
    if r["kind"] != "result" || !json_eq(&r["result"], expected) {
        return Err(format!("expected result {expected}, got {r}"));
    }
    Ok(())
}

/// JSON equality where numbers compare by value (`5` == `5.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn one_server(
    env: &Env,
    server: Lang,
    client: Lang,
    prefix: &str,
    calls: Value,
    timeout_ms: u64,
) -> Result<(Vec<Value>, Option<u64>), String> {
    let srv = env.server(server, prefix, "srv-A", 60_000);
    let results = env.client(client, &env.client_config(prefix, timeout_ms, calls));
    let handled = srv.terminate();
    Ok((results?, handled))
}

fn basic_call(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let calls = json!([
        {"method": "arith.add", "params": {"a": 2, "b": 3}},
        {"method": "arith.echoText", "params": {"text": "hello"}}
    ]);
    let (r, _) = one_server(env, s, c, prefix, calls, 5000)?;
    expect_result(&r[0], &json!({"sum": 5}))?;
    expect_result(&r[1], &json!({"text": "hello"}))?;
    Ok(String::new())
}

fn concurrent_calls(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let n = if c == Lang::Py {
        PY_CLIENT_MAX_IN_FLIGHT
    } else {
        100
    };
    let srv = env.server(s, prefix, "srv-A", 60_000);
    let mut config = env.client_config(
        prefix,
        10_000,
        json!([{"method": "arith.add", "params": {"a": 1, "b": 1}}]),
    );
    config["concurrent"] = json!(n);
    let results = env.client(c, &config)?;
    let handled = srv.terminate();
    if results.len() != n {
        return Err(format!("{} results for {n} calls", results.len()));
    }
    for r in &results {
        expect_result(r, &json!({"sum": 2}))?;
    }
    if handled != Some(n as u64) {
        return Err(format!("server HANDLED {handled:?}, expected {n}"));
    }
    Ok(if n < 100 {
        format!("{n} in flight: the Python 0.1.9 client fails above ~60 (\"Too many connections\")")
    } else {
        "100 in flight".into()
    })
}

fn crash_recovery(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let idle = 500;
    let srv_a = env.server(s, prefix, "srv-A", idle);
    let config = env.client_config(
        prefix,
        15_000,
        json!([{"method": "arith.slowAdd", "params": {"a": 1, "b": 2, "sleepMs": 1500}}]),
    );
    let client = std::thread::scope(|scope| {
        let call = scope.spawn(|| env.client(c, &config));
        // wait until srv-A holds the call (pending, delivered to arith:srv-A), then kill it
        let mut con = env.conn();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let pending: Vec<redis::Value> = redis::cmd("XPENDING")
                .arg(format!("{prefix}:cmds:arith"))
                .arg("arith")
                .query(&mut con)
                .unwrap_or_default();
            if matches!(pending.first(), Some(redis::Value::Int(1))) {
                break;
            }
            if Instant::now() > deadline {
                return Err("the call never reached srv-A".to_owned());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        srv_a.kill9();
        let srv_b = env.server(s, prefix, "srv-B", idle);
        let results = call.join().unwrap();
        let handled_b = srv_b.terminate();
        Ok((results, handled_b))
    })?;
    let (results, handled_b) = client;
    let results = results?;
    expect_result(&results[0], &json!({"sum": 3}))?;
    if handled_b != Some(1) {
        return Err(format!(
            "srv-B HANDLED {handled_b:?}, expected 1 (the reclaimed call)"
        ));
    }
    Ok("srv-A SIGKILLed mid-handler; srv-B reclaimed it".into())
}

fn error_mapping(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let (r, _) = one_server(
        env,
        s,
        c,
        prefix,
        json!([{"method": "arith.divide", "params": {"a": 10, "b": 0}}]),
        5000,
    )?;
    let r = &r[0];
    if r["kind"] != "rpc-error"
        || r["code"] != -32000
        || !r["message"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("division by zero")
    {
        return Err(format!(
            "expected rpc-error -32000 division by zero, got {r}"
        ));
    }
    Ok(String::new())
}

fn notification(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let srv = env.server(s, prefix, "srv-A", 60_000);
    let results = env.client(
        c,
        &env.client_config(
            prefix,
            5000,
            json!([{"method": "notifications.ping", "params": {"tag": "x"}, "notification": true}]),
        ),
    )?;
    env.wait_consumed(prefix, "notifications")?;
    let handled = srv.terminate();
    if results[0]["kind"] != "notification" {
        return Err(format!("expected kind notification, got {}", results[0]));
    }
    if handled != Some(1) {
        return Err(format!("server HANDLED {handled:?}, expected 1"));
    }
    Ok("HANDLED:1".into())
}

fn client_timeout(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let (r, _) = one_server(
        env,
        s,
        c,
        prefix,
        json!([{"method": "arith.slowAdd", "params": {"a": 1, "b": 2, "sleepMs": 800}}]),
        100,
    )?;
    let r = &r[0];
    if r["kind"] != "transport-error"
        || !r["message"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("timeout")
    {
        return Err(format!("expected transport-error timeout, got {r}"));
    }
    Ok(String::new())
}

fn validation_failure(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let (r, _) = one_server(
        env,
        s,
        c,
        prefix,
        json!([{"method": "arith.add", "params": {"a": "two", "b": 3}}]),
        5000,
    )?;
    if r[0]["code"] != -32602 {
        return Err(format!("expected -32602, got {}", r[0]));
    }
    Ok(format!("loc {}", r[0]["data"]["errors"][0]["loc"]))
}

fn mixed_pool(env: &Env, c: Lang, prefix: &str) -> Outcome {
    let rust = env.server(Lang::Rust, prefix, "srv-rust", 60_000);
    let py = env.server(Lang::Py, prefix, "srv-py", 60_000);
    let calls: Vec<Value> = (0..50)
        .map(|_| json!({"method": "arith.add", "params": {"a": 1, "b": 1}}))
        .collect();
    let results = env.client(c, &env.client_config(prefix, 5000, Value::Array(calls)))?;
    let (hr, hp) = (rust.terminate().unwrap_or(0), py.terminate().unwrap_or(0));
    for r in &results {
        expect_result(r, &json!({"sum": 2}))?;
    }
    if results.len() != 50 || hr + hp != 50 || hr < 5 || hp < 5 {
        return Err(format!(
            "{} results; HANDLED rust={hr} py={hp}",
            results.len()
        ));
    }
    Ok(format!("HANDLED rust={hr} py={hp}"))
}

fn payloads(env: &Env, s: Lang, c: Lang, prefix: &str) -> Outcome {
    let unicode = "héllo ✓ — 🎉 中文 \u{7}\"\\/";
    let big: String = "äöü€𝄞".repeat(1024 * 1024 / 13 + 1);
    let calls = json!([
        {"method": "arith.echoText", "params": {"text": unicode}},
        {"method": "arith.echoText", "params": {"text": big}}
    ]);
    let (r, _) = one_server(env, s, c, prefix, calls, 20_000)?;
    expect_result(&r[0], &json!({"text": unicode}))?;
    if r[1]["result"]["text"].as_str() != Some(big.as_str()) {
        return Err(format!(
            "1 MiB echo differs: {}",
            r[1].to_string().chars().take(200).collect::<String>()
        ));
    }
    Ok(format!("{} bytes echoed", big.len()))
}

fn raw_ids(env: &Env, s: Lang, prefix: &str) -> Outcome {
    let srv = env.server(s, prefix, "srv-A", 60_000);
    let mut con = env.conn();
    let reply_to = format!("{prefix}:replies:raw");
    for id in ["42", "-7", "\"s-1\""] {
        let envelope = format!(
            r#"{{"jsonrpc":"2.0","method":"arith.add","params":{{"a":1,"b":2}},"id":{id}}}"#
        );
        let _: String = redis::cmd("XADD")
            .arg(format!("{prefix}:cmds:arith"))
            .arg("*")
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(envelope)
            .arg("reply-to")
            .arg(&reply_to)
            .query(&mut con)
            .map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let replies = loop {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&reply_to)
            .arg("-")
            .arg("+")
            .query(&mut con)
            .unwrap_or_default();
        if entries.len() >= 3 {
            break entries;
        }
        if Instant::now() > deadline {
            return Err(format!("{} replies after 10 s", entries.len()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(srv);
    let ids: Vec<Value> = replies
        .iter()
        .map(|(_, fields)| {
            let env = fields
                .iter()
                .find(|(k, _)| k == "envelope")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            serde_json::from_str::<Value>(&env)
                .map(|v| v["id"].clone())
                .unwrap_or(Value::Null)
        })
        .collect();
    // Rust servers run requests concurrently: replies may come in any order.
    let mut ids = ids;
    ids.sort_by_key(ToString::to_string);
    if ids != [json!("s-1"), json!(-7), json!(42)] {
        return Err(format!("reply ids {ids:?}"));
    }
    Ok("ids 42, -7 came back as numbers; \"s-1\" as a string".into())
}

fn poison(env: &Env, s: Lang, prefix: &str) -> Outcome {
    let srv = env.server(s, prefix, "srv-A", 60_000);
    let mut con = env.conn();
    let stream = format!("{prefix}:cmds:arith");
    let reply_to = format!("{prefix}:replies:poison");
    let add = |fields: &[(&str, &str)], con: &mut redis::Connection| -> Result<(), String> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&stream).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        cmd.query::<String>(con)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    add(
        &[
            ("type", "rpc"),
            ("envelope", "not json at all"),
            ("reply-to", &reply_to),
        ],
        &mut con,
    )?;
    add(&[("type", "rpc")], &mut con)?;
    add(
        &[
            ("type", "rpc"),
            (
                "envelope",
                r#"{"jsonrpc":"1.0","method":"arith.add","id":"p1"}"#,
            ),
            ("reply-to", &reply_to),
        ],
        &mut con,
    )?;
    add(
        &[
            ("type", "rpc"),
            ("envelope", "[1,2]"),
            ("reply-to", &reply_to),
        ],
        &mut con,
    )?;
    env.wait_consumed(prefix, "arith")?;
    let results = env.client(
        Lang::Rust,
        &env.client_config(
            prefix,
            5000,
            json!([{"method": "arith.add", "params": {"a": 2, "b": 2}}]),
        ),
    )?;
    expect_result(&results[0], &json!({"sum": 4}))?;
    let handled = srv.terminate();
    if handled != Some(1) {
        return Err(format!("HANDLED {handled:?}, expected 1"));
    }
    let replies: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&reply_to)
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap_or_default();
    Ok(match s {
        // the TypeScript server is the Rust engine's
        Lang::Rust | Lang::Ts if replies.len() == 1 => {
            "4 poison entries acked, server kept serving; the one with an id got a -32600 reply"
                .into()
        }
        Lang::Rust | Lang::Ts => return Err(format!("expected one -32600 reply, got {replies:?}")),
        Lang::Py => "4 poison entries acked silently (0.1.9), server kept serving".into(),
    })
}

/// The generated, typed Python clients (interop/generated/py) against a Rust server.
fn generated_python_client(env: &Env, prefix: &str) -> Outcome {
    let srv = env.server(Lang::Rust, prefix, "srv-A", 60_000);
    let out = Command::new(&env.python)
        .arg(env.py_dir.join("typed_client.py"))
        .args([env.redis.url(), prefix.to_owned()])
        .current_dir(&env.py_dir)
        .output()
        .map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "typed client output is not JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    env.wait_consumed(prefix, "notifications")?;
    let handled = srv.terminate();
    let want = json!({
        "add": {"sum": 5.0}, "echoText": {"text": "héllo ✓"}, "slowAdd": {"sum": 3.0},
        "slowAddAlias": {"sum": 3.0}, "divide": {"code": -32000, "message": "division by zero"}, "ping": "sent"
    });
    if !json_eq(&doc, &want) {
        return Err(format!("got {doc}"));
    }
    if handled != Some(7) {
        return Err(format!("HANDLED {handled:?}, expected 7"));
    }
    Ok("ArithClient / NotificationsClient from `clamator codegen`, both field spellings".into())
}

#[test]
fn interop_suite() {
    let env = Env::new();
    let dirs = [
        (Lang::Rust, Lang::Py),
        (Lang::Py, Lang::Rust),
        (Lang::Rust, Lang::Rust),
        // the TypeScript packages on the engine, with each language on the other side
        (Lang::Ts, Lang::Py),
        (Lang::Py, Lang::Ts),
        (Lang::Ts, Lang::Rust),
        (Lang::Rust, Lang::Ts),
        (Lang::Ts, Lang::Ts),
    ];
    // CLAMATOR_INTEROP_TS=0 leaves the TypeScript rows out (the reruns of the suite on the
    // clamator-rs wheel and on Valkey: the TypeScript servers are the engine's, tested once).
    let ts = std::env::var("CLAMATOR_INTEROP_TS").map_or(true, |v| v != "0");
    let dirs: Vec<(Lang, Lang)> = dirs
        .into_iter()
        .filter(|(s, c)| ts || (*s != Lang::Ts && *c != Lang::Ts))
        .collect();
    type Scenario = fn(&Env, Lang, Lang, &str) -> Outcome;
    let scenarios: [(&str, Scenario); 8] = [
        ("basic call", basic_call),
        ("concurrent calls", concurrent_calls),
        ("crash recovery (in flight)", crash_recovery),
        ("error mapping", error_mapping),
        ("notification", notification),
        ("client timeout", client_timeout),
        ("validation failure", validation_failure),
        ("unicode + 1 MiB payloads", payloads),
    ];
    let mut rows: Vec<(String, String, Outcome, Duration)> = Vec::new();
    // CLAMATOR_INTEROP_ONLY=<text> runs only the rows whose "scenario [direction]" contains it
    // (for chasing one row by hand); CLAMATOR_INTEROP_REPEAT=<n> runs each row n times.
    let only = std::env::var("CLAMATOR_INTEROP_ONLY").ok();
    let repeat: usize = std::env::var("CLAMATOR_INTEROP_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut run = |name: &str, dir: String, f: &dyn Fn(&str) -> Outcome| {
        if let Some(only) = &only {
            if !format!("{name} [{dir}]").contains(only.as_str()) {
                return;
            }
        }
        for _ in 0..repeat {
            let started = Instant::now();
            let prefix = env.prefix(name, &dir);
            let outcome = f(&prefix);
            let mut con = env.conn();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query(&mut con)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut con);
            }
            eprintln!(
                "{} {name} [{dir}] {:?}",
                if outcome.is_ok() { "PASS" } else { "FAIL" },
                outcome
            );
            rows.push((name.to_owned(), dir.clone(), outcome, started.elapsed()));
        }
    };
    for (name, scenario) in scenarios {
        for &(s, c) in &dirs {
            let dir = format!("{}-server <- {}-client", s.name(), c.name());
            run(name, dir, &|prefix| scenario(&env, s, c, prefix));
        }
    }
    let langs: Vec<Lang> = [Lang::Py, Lang::Rust, Lang::Ts]
        .into_iter()
        .filter(|l| ts || *l != Lang::Ts)
        .collect();
    for &c in &langs {
        run(
            "worker pool, mixed (rust + py servers)",
            format!("mixed <- {}-client", c.name()),
            &|prefix| mixed_pool(&env, c, prefix),
        );
    }
    run(
        "generated Python client",
        "rust-server <- py-client (generated)".into(),
        &|prefix| generated_python_client(&env, prefix),
    );
    for &s in &langs {
        run(
            "numeric/negative ids by raw XADD",
            format!("{}-server", s.name()),
            &|prefix| raw_ids(&env, s, prefix),
        );
        run(
            "poison entries",
            format!("{}-server", s.name()),
            &|prefix| poison(&env, s, prefix),
        );
    }

    let mut table = String::from("\n| scenario | direction | result | note |\n|---|---|---|---|\n");
    for (name, dir, outcome, took) in &rows {
        let (status, note) = match outcome {
            Ok(note) => ("PASS", note.clone()),
            Err(e) => ("FAIL", e.clone()),
        };
        table.push_str(&format!(
            "| {name} | {dir} | {status} | {note} ({:.1} s) |\n",
            took.as_secs_f64()
        ));
    }
    assert!(
        !rows.is_empty(),
        "CLAMATOR_INTEROP_ONLY={only:?} matches no row"
    );
    let failed = rows.iter().filter(|r| r.2.is_err()).count();
    table.push_str(&format!(
        "\ninterop: {} passed, {failed} failed\n",
        rows.len() - failed
    ));
    println!("{table}");
    eprintln!("{table}");
    assert_eq!(failed, 0, "interop failures:{table}");
}
