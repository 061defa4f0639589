//! `clamator-chaos`: the delivery promises under faults, measured (run it with
//! `bash scripts/chaos.sh`; `--smoke` is the short version CI runs).
//!
//! A private `redis-server` with AOF (`appendfsync always`), three `clamator-interop-server`
//! processes with a short claim idle, and a load of calls (`add`, and `slowAdd` sleeping
//! 200–500 ms) at a fixed number in flight for a fixed time. Meanwhile one of two servers is
//! SIGKILLed and restarted every few seconds, the third is SIGSTOPped once for longer than the
//! claim idle, and Redis is SIGKILLed and restarted once. Every handler execution is appended
//! to a file by the servers (it survives their SIGKILL). At the end it prints: calls OK,
//! failed by kind, lost (no answer), executions per call and why each duplicate happened,
//! the final streams, pending entries and keys, and a server's RSS; and exits 1 unless: no
//! call is lost or failed, no call is OK without an execution, every duplicate is explained
//! by a server that was killed or stopped while running it, nothing is left pending, every
//! key left has a TTL or is a command stream, and the server's memory did not grow.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clamator::redis::{redis, RedisRpcClient};
use clamator::{CallError, RpcClient};
use clamator_test_support::RedisServer;
use serde_json::json;

const PREFIX: &str = "chaos";

struct Opts {
    duration: Duration,
    in_flight: usize,
    claim_idle_ms: u64,
    kill_every: Duration,
    json: Option<PathBuf>,
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}");
    eprintln!(
        "usage: clamator-chaos [--smoke] [--duration-s N] [--in-flight N] [--claim-idle-ms N] \
         [--kill-every-ms N] [--json FILE]"
    );
    std::process::exit(2)
}

fn opts() -> Opts {
    let mut o = Opts {
        duration: Duration::from_secs(120),
        in_flight: 128,
        claim_idle_ms: 2000,
        kill_every: Duration::from_secs(3),
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--smoke" {
            o.duration = Duration::from_secs(30);
            o.in_flight = 64;
            o.kill_every = Duration::from_secs(4);
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let n = || -> u64 {
            value
                .parse()
                .unwrap_or_else(|_| usage(&format!("bad {flag}")))
        };
        match flag.as_str() {
            "--duration-s" => o.duration = Duration::from_secs(n()),
            "--in-flight" => o.in_flight = usize::try_from(n()).unwrap_or(1).max(1),
            "--claim-idle-ms" => o.claim_idle_ms = n(),
            "--kill-every-ms" => o.kill_every = Duration::from_millis(n()),
            "--json" => o.json = Some(PathBuf::from(&value)),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    o
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// What was done to whom, and when.
#[derive(Debug, Clone)]
enum Event {
    Kill { pid: u32, at: u128 },
    Stop { pid: u32, from: u128, to: u128 },
    RedisRestart { from: u128, to: u128 },
}

struct ServerProc {
    instance: String,
    child: Child,
}

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name("clamator-interop-server")
}

fn spawn_server(url: &str, instance: &str, claim_idle_ms: u64, exec_log: &Path) -> ServerProc {
    let mut child = Command::new(server_binary())
        .args([
            "--redis-url",
            url,
            "--prefix",
            PREFIX,
            "--instance-id",
            instance,
        ])
        .args([
            "--claim-idle-ms",
            &claim_idle_ms.to_string(),
            "--concurrency",
            "32",
        ])
        .arg("--exec-log")
        .arg(exec_log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn clamator-interop-server (build it: cargo build -p clamator-interop --bins)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read READY");
    assert!(
        line.contains("READY"),
        "server {instance} did not start: {line}"
    );
    ServerProc {
        instance: instance.to_owned(),
        child,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The outcome of one call.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Lost,
    Failed(String),
}

/// One handler execution from the exec log.
#[derive(Debug, Clone)]
struct Execution {
    pid: u32,
    start: u128,
    ended: bool,
}

fn read_exec_log(path: &Path) -> HashMap<u64, Vec<Execution>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut by_call: HashMap<u64, Vec<Execution>> = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [ms, pid, _instance, _method, a, event] = f[..] else {
            continue;
        };
        let (Ok(ms), Ok(pid), Ok(a)) = (ms.parse::<u128>(), pid.parse::<u32>(), a.parse::<f64>())
        else {
            continue;
        };
        let call = a as u64;
        let runs = by_call.entry(call).or_default();
        match event {
            "start" => runs.push(Execution {
                pid,
                start: ms,
                ended: false,
            }),
            _ => {
                if let Some(run) = runs.iter_mut().rev().find(|r| r.pid == pid && !r.ended) {
                    run.ended = true;
                }
            }
        }
    }
    for runs in by_call.values_mut() {
        runs.sort_by_key(|r| r.start);
    }
    by_call
}

/// Why a call ran again (`second`) after `first`.
fn why_again(first: &Execution, second: &Execution, events: &[Event]) -> &'static str {
    let (from, until) = (first.start, second.start);
    for e in events {
        match *e {
            Event::Kill { pid, at } if pid == first.pid && at >= from && at <= until => {
                return "its server was SIGKILLed while running it (or before acking it)";
            }
            Event::Stop { pid, from: s, to } if pid == first.pid && s <= until && to >= from => {
                return "its server was SIGSTOPped longer than the claim idle while running it";
            }
            Event::Stop { pid, from: s, to } if pid == second.pid && s <= until && to >= from => {
                return "it was delivered to a server while SIGSTOPped, reclaimed meanwhile, and run there too after SIGCONT";
            }
            _ => {}
        }
    }
    for e in events {
        if let Event::RedisRestart { from: r, to } = *e {
            if r <= until && to >= from {
                return "UNEXPLAINED (Redis restart)";
            }
        }
    }
    "UNEXPLAINED"
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let o = opts();
    let dir = std::env::temp_dir().join(format!("clamator-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exec_log = dir.join("exec.log");
    let mut redis = RedisServer::builder().persistent().start();
    let url = redis.url();
    eprintln!(
        "chaos: {:?} of load at {} in flight, claim idle {} ms, a server killed every {:?}, redis {url} (AOF, appendfsync always)",
        o.duration, o.in_flight, o.claim_idle_ms, o.kill_every
    );
    let mut servers: Vec<ServerProc> = (0..3)
        .map(|i| spawn_server(&url, &format!("srv-{i}"), o.claim_idle_ms, &exec_log))
        .collect();
    let steady_pid = servers[0].child.id();
    let rss_start = rss_kib(steady_pid);

    let client = RedisRpcClient::builder(PREFIX)
        .redis_url(&url)
        .default_timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    client.start().await.expect("client start");

    // the load: in_flight workers, each calling one after another until the time is up
    let started = Instant::now();
    let stop_at = started + o.duration;
    let next = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<Mutex<BTreeMap<u64, Outcome>>> = Arc::default();
    let workers: Vec<_> = (0..o.in_flight)
        .map(|_| {
            let (client, next, outcomes) = (client.clone(), next.clone(), outcomes.clone());
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let slow = n % 10 < 3;
                    let (method, params) = if slow {
                        (
                            "slowAdd",
                            json!({"a": n, "b": 0, "sleepMs": 200 + (n * 37) % 301}),
                        )
                    } else {
                        ("add", json!({"a": n, "b": 0}))
                    };
                    let outcome = match client.call_value("arith", method, params, None).await {
                        Ok(v) if v["sum"] == json!(n as f64) => Outcome::Ok,
                        Ok(v) => Outcome::Failed(format!("wrong result {v}")),
                        Err(CallError::Transport(e)) if e.is_timeout() => Outcome::Lost,
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                    outcomes.lock().expect("outcomes").insert(n, outcome);
                }
            })
        })
        .collect();

    // the faults
    let mut events: Vec<Event> = Vec::new();
    let warm = Arc::new(AtomicBool::new(false));
    let mut rss_warm = 0;
    let mut stopped_once = false;
    let mut redis_restarted = false;
    let mut kills = 0usize;
    let mut next_kill = started + Duration::from_secs(2);
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let progress = started.elapsed().as_secs_f64() / o.duration.as_secs_f64();
        if !warm.load(Ordering::Relaxed) && progress >= 0.1 {
            warm.store(true, Ordering::Relaxed);
            rss_warm = rss_kib(steady_pid);
        }
        if Instant::now() >= next_kill {
            next_kill += o.kill_every;
            let victim = 1 + kills % 2;
            kills += 1;
            let pid = servers[victim].child.id();
            signal(pid, "-KILL");
            let _ = servers[victim].child.wait();
            events.push(Event::Kill { pid, at: now_ms() });
            let instance = servers[victim].instance.clone();
            servers[victim] = tokio::task::block_in_place(|| {
                spawn_server(&url, &instance, o.claim_idle_ms, &exec_log)
            });
        }
        if !stopped_once && progress >= 0.35 {
            stopped_once = true;
            let pause = Duration::from_millis(o.claim_idle_ms * 5 / 2);
            let from = now_ms();
            signal(steady_pid, "-STOP");
            tokio::time::sleep(pause).await;
            signal(steady_pid, "-CONT");
            events.push(Event::Stop {
                pid: steady_pid,
                from,
                to: now_ms(),
            });
        }
        if !redis_restarted && progress >= 0.6 {
            redis_restarted = true;
            let from = now_ms();
            tokio::task::block_in_place(|| redis.restart());
            events.push(Event::RedisRestart { from, to: now_ms() });
        }
    }
    for w in workers {
        let _ = w.await;
    }
    let rss_end = rss_kib(steady_pid);
    let elapsed = started.elapsed();
    client.stop().await;
    for s in &mut servers {
        signal(s.child.id(), "-TERM");
    }
    for s in &mut servers {
        let _ = s.child.wait();
    }

    // the analysis
    let outcomes = outcomes.lock().expect("outcomes").clone();
    let executions = read_exec_log(&exec_log);
    let (mut ok, mut lost) = (0usize, 0usize);
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok_without_execution = 0usize;
    let mut runs_hist: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, outcome) in &outcomes {
        let runs = executions.get(n).map_or(&[][..], Vec::as_slice);
        match outcome {
            Outcome::Ok => {
                ok += 1;
                if runs.is_empty() {
                    ok_without_execution += 1;
                }
            }
            Outcome::Lost => lost += 1,
            Outcome::Failed(kind) => *failed.entry(kind.clone()).or_default() += 1,
        }
        let bucket = match runs.len() {
            0 => "0",
            1 => "1",
            2 => "2",
            _ => ">2",
        };
        *runs_hist.entry(bucket).or_default() += 1;
        for pair in runs.windows(2) {
            let why = why_again(&pair[0], &pair[1], &events);
            if why.starts_with("UNEXPLAINED") {
                eprintln!("unexplained duplicate of call {n}: {runs:?}; events: {events:?}");
            }
            *reasons.entry(why).or_default() += 1;
        }
    }
    let unexplained: usize = reasons
        .iter()
        .filter(|(r, _)| r.starts_with("UNEXPLAINED"))
        .map(|(_, n)| n)
        .sum();

    // what is left in Redis
    let mut conn = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let mut left = Vec::new();
    let mut leaked = 0usize;
    let mut pending_total = 0i64;
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap_or(-2);
        let len: i64 = redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
        let group = key.rsplit(':').next().unwrap_or_default();
        let pending: i64 = if key.contains(":cmds:") {
            redis::cmd("XPENDING")
                .arg(key)
                .arg(group)
                .query_async::<redis::Value>(&mut conn)
                .await
                .ok()
                .and_then(|v| match v {
                    redis::Value::Array(a) => match a.first() {
                        Some(redis::Value::Int(n)) => Some(*n),
                        _ => None,
                    },
                    _ => None,
                })
                .unwrap_or(0)
        } else {
            0
        };
        pending_total += pending;
        if !key.contains(":cmds:") && ttl < 0 {
            leaked += 1;
        }
        left.push(
            json!({"key": key, "type": kind, "length": len, "pending": pending, "pttl": ttl}),
        );
    }
    let command_entries: i64 = left
        .iter()
        .filter(|k| k["key"].as_str().is_some_and(|k| k.contains(":cmds:")))
        .map(|k| k["length"].as_i64().unwrap_or(0))
        .sum();
    let rss_grown_kib = rss_end.saturating_sub(rss_warm.max(rss_start));

    let calls = outcomes.len();
    let kills_n = events
        .iter()
        .filter(|e| matches!(e, Event::Kill { .. }))
        .count();
    println!("## chaos run\n");
    println!(
        "{calls} calls in {:.1} s at {} in flight (30% slowAdd 200–500 ms); claim idle {} ms; {kills_n} SIGKILL + restart of a server, 1 SIGSTOP of {} ms, 1 Redis SIGKILL + restart (AOF, appendfsync always)\n",
        elapsed.as_secs_f64(),
        o.in_flight,
        o.claim_idle_ms,
        o.claim_idle_ms * 5 / 2
    );
    let t0 = now_ms() - elapsed.as_millis();
    let at = |t: u128| format!("+{:.1}s", (t.saturating_sub(t0)) as f64 / 1000.0);
    let faults: Vec<String> = events
        .iter()
        .map(|e| match *e {
            Event::Kill { pid, at: t } => format!("SIGKILL pid {pid} {}", at(t)),
            Event::Stop { pid, from, to } => format!("SIGSTOP pid {pid} {}..{}", at(from), at(to)),
            Event::RedisRestart { from, to } => format!("Redis restart {}..{}", at(from), at(to)),
        })
        .collect();
    eprintln!("faults: {}", faults.join(", "));
    println!("| measure | value |\n|---|---|");
    println!("| calls OK | {ok} |");
    println!(
        "| calls failed | {} {} |",
        failed.values().sum::<usize>(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("{failed:?}")
        }
    );
    println!("| calls lost (no answer) | {lost} |");
    println!("| OK without an execution | {ok_without_execution} |");
    for (bucket, n) in &runs_hist {
        println!("| calls executed {bucket} time(s) | {n} |");
    }
    for (reason, n) in &reasons {
        println!("| duplicate executions: {reason} | {n} |");
    }
    println!("| command stream entries left / pending | {command_entries} / {pending_total} |");
    println!(
        "| keys under `{PREFIX}:` | {} ({leaked} without a TTL that are not command streams) |",
        keys.len()
    );
    println!(
        "| server RSS (never killed): start / warm / end | {:.1} / {:.1} / {:.1} MiB |",
        rss_start as f64 / 1024.0,
        rss_warm as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    let checks = [
        ("no call lost", lost == 0),
        ("no call failed", failed.is_empty()),
        ("no call OK without an execution", ok_without_execution == 0),
        (
            "every duplicate explained by a killed or stopped server",
            unexplained == 0,
        ),
        (
            "nothing left in or pending on the command streams",
            command_entries == 0 && pending_total == 0,
        ),
        ("no key leaked", leaked == 0),
        (
            "server memory did not grow (< 32 MiB over its warm RSS)",
            rss_grown_kib < 32 * 1024,
        ),
        ("calls were made", calls > 1000),
    ];
    println!();
    let mut pass = true;
    for (what, ok) in checks {
        println!("- [{}] {what}", if ok { "x" } else { " " });
        pass &= ok;
    }
    if let Some(path) = &o.json {
        let report = json!({
            "calls": calls, "ok": ok, "failed": failed, "lost": lost,
            "ok_without_execution": ok_without_execution, "executions": runs_hist,
            "duplicate_reasons": reasons, "keys": left, "kills": kills_n,
            "rss_kib": {"start": rss_start, "warm": rss_warm, "end": rss_end}, "pass": pass,
        });
        let _ = std::fs::write(
            path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(redis);
    if !pass {
        eprintln!("chaos: FAILED");
        std::process::exit(1);
    }
    eprintln!("chaos: passed");
}
