//! Promises that need real processes (issue 10): a server's memory stays flat whatever
//! `reply-to` values arrive; a paused client loses no reply; bad settings make the fixture
//! binaries exit non-zero with a clear message.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clamator::redis::redis;
use clamator_test_support::RedisServer;
use serde_json::{json, Value};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(redis: &RedisServer, prefix: &str, extra: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clamator-interop-server"))
        .args(["--redis-url", &redis.url(), "--prefix", prefix])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("READY"), "{line}");
    Proc(child)
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn conn(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn add_request(id: &str) -> String {
    json!({"jsonrpc": "2.0", "method": "arith.add", "params": {"a": 1, "b": 2}, "id": id})
        .to_string()
}

fn settled(c: &mut redis::Connection, stream: &str) -> bool {
    let len: i64 = redis::cmd("XLEN").arg(stream).query(c).unwrap();
    let pending: Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg("arith")
        .query::<redis::Value>(c)
        .map(|v| match v {
            redis::Value::Array(a) => match a.first() {
                Some(redis::Value::Int(n)) => json!(n),
                _ => json!(0),
            },
            _ => json!(0),
        })
        .unwrap();
    len == 0 && pending == json!(0)
}

#[test]
fn server_memory_stays_flat_whatever_reply_to_values_arrive() {
    let redis = RedisServer::start();
    let srv = server(&redis, "mem", &["--concurrency", "16"]);
    let pid = srv.0.id();
    let mut c = conn(&redis);
    // warm up with ordinary traffic first
    for i in 0..200 {
        let _: String = redis::cmd("XADD")
            .arg("mem:cmds:arith")
            .arg("*")
            .arg("envelope")
            .arg(add_request(&format!("w{i}")))
            .arg("reply-to")
            .arg("mem:replies:warm")
            .query(&mut c)
            .unwrap();
    }
    wait_for("warm-up served", Duration::from_secs(20), || {
        settled(&mut c, "mem:cmds:arith")
    });
    let before = rss_kib(pid);
    // 3,000 requests, each naming a different 100 KB reply-to
    for i in 0..3000 {
        let name = format!("mem:replies:{i}-{}", "n".repeat(100 * 1024));
        let _: String = redis::cmd("XADD")
            .arg("mem:cmds:arith")
            .arg("*")
            .arg("envelope")
            .arg(add_request(&format!("r{i}")))
            .arg("reply-to")
            .arg(&name)
            .query(&mut c)
            .unwrap();
        if i % 200 == 199 {
            wait_for("batch served", Duration::from_secs(60), || {
                settled(&mut c, "mem:cmds:arith")
            });
        }
    }
    wait_for("all served", Duration::from_secs(60), || {
        settled(&mut c, "mem:cmds:arith")
    });
    let after = rss_kib(pid);
    let grown_mib = after.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "server RSS grew by {grown_mib} MiB ({before} KiB -> {after} KiB) for 3,000 reply-to names"
    );
}

#[test]
fn a_paused_client_loses_no_reply_at_any_number_in_flight() {
    let redis = RedisServer::start();
    let mut c = conn(&redis);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("pause:cmds:arith")
        .arg("arith")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut c)
        .unwrap();
    let in_flight = 2000;
    let mut client = Command::new(env!("CARGO_BIN_EXE_clamator-interop-client"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let config = json!({
        "redisUrl": redis.url(),
        "keyPrefix": "pause",
        "defaultTimeoutMs": 15000,
        "calls": [{"method": "arith.add", "params": {"a": 1, "b": 2}}],
        "concurrent": in_flight,
    });
    client
        .stdin
        .take()
        .unwrap()
        .write_all(config.to_string().as_bytes())
        .unwrap();
    let pid = client.id().to_string();
    wait_for("all requests written", Duration::from_secs(20), || {
        let len: i64 = redis::cmd("XLEN")
            .arg("pause:cmds:arith")
            .query(&mut c)
            .unwrap();
        len == in_flight as i64
    });
    // the client pauses (GC, SIGSTOP, a reconnect backoff) while every reply arrives
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let paused = Instant::now();
    let _srv = server(&redis, "pause", &["--concurrency", "256"]);
    wait_for("all served", Duration::from_secs(20), || {
        settled(&mut c, "pause:cmds:arith")
    });
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(paused.elapsed()));
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let out = client.wait_with_output().unwrap();
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results["results"].as_array().unwrap();
    let ok = results.iter().filter(|r| r["ok"] == json!(true)).count();
    assert_eq!(
        ok,
        in_flight,
        "{} calls failed, e.g. {}",
        in_flight - ok,
        results
            .iter()
            .find(|r| r["ok"] != json!(true))
            .unwrap_or(&Value::Null)
    );
}

#[test]
fn bad_settings_make_the_fixture_server_exit_non_zero_with_the_reason() {
    let redis = RedisServer::start();
    for (args, what) in [
        (vec!["--prefix", "p", "--claim-idle-ms", "0"], "claim idle"),
        (
            vec!["--prefix", "", "--claim-idle-ms", "1000"],
            "key prefix",
        ),
        (
            vec!["--prefix", "a*", "--claim-idle-ms", "1000"],
            "key prefix",
        ),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clamator-interop-server"))
            .args(["--redis-url", &redis.url()])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(what), "{args:?}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("READY"));
    }
}
