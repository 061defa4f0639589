//! `clamator-chaos`: the delivery promises under faults, measured (run it with
//! `bash scripts/chaos.sh [--nats]`; `--smoke` is the short version CI runs).
//!
//! A private broker — `redis-server` with AOF (`appendfsync always`), or with `--nats` a
//! `nats-server -js` with file storage —, three `clamator-interop-server` processes with a
//! short claim idle (Redis) or ack wait (NATS), and a load of calls (`add`, and `slowAdd`
//! sleeping 200–500 ms) at a fixed number in flight for a fixed time. Meanwhile servers 1 and 2
//! are in turn SIGKILLed or SIGTERMed (graceful stop) and started again every few seconds,
//! server 0 is SIGSTOPped once for longer than the claim idle, and the broker is SIGKILLed and
//! restarted (Redis once; NATS twice, and once the service's consumer is deleted under the
//! running servers). Every handler execution is appended to a file by the servers (it survives
//! their SIGKILL). At the end it prints: calls OK, failed by kind, lost (no answer), executions
//! per call and why each duplicate happened, dead letters (and those that never ran), what is
//! left on the broker, and a server's RSS; and exits 1 unless: no call is lost or failed, no
//! call is OK without an execution, no request that never ran is dead-lettered, every
//! duplicate is explained (a server killed or stopped while running it, or a broker that lost
//! its ack: restarted, or its consumer deleted), nothing is left pending, nothing leaked, and
//! the server's memory did not grow.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clamator::nats::async_nats::jetstream;
use clamator::nats::{NatsConnection, NatsRpcClient};
use clamator::redis::{redis, RedisRpcClient};
use clamator::{CallError, RpcClient};
use clamator_test_support::nats::NatsServer;
use clamator_test_support::RedisServer;
use serde_json::{json, Value};

const PREFIX: &str = "chaos";

struct Opts {
    duration: Duration,
    in_flight: usize,
    claim_idle_ms: u64,
    kill_every: Duration,
    nats: bool,
    json: Option<PathBuf>,
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}");
    eprintln!(
        "usage: clamator-chaos [--nats] [--smoke] [--duration-s N] [--in-flight N] \
         [--claim-idle-ms N] [--kill-every-ms N] [--json FILE]"
    );
    std::process::exit(2)
}

fn opts() -> Opts {
    let mut o = Opts {
        duration: Duration::from_secs(120),
        in_flight: 128,
        claim_idle_ms: 2000,
        kill_every: Duration::from_secs(3),
        nats: false,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--smoke" => {
                o.duration = Duration::from_secs(30);
                o.in_flight = 64;
                o.kill_every = Duration::from_secs(4);
                continue;
            }
            "--nats" => {
                o.nats = true;
                continue;
            }
            _ => {}
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
    Term { pid: u32, at: u128 },
    Stop { pid: u32, from: u128, to: u128 },
    BrokerRestart { from: u128, to: u128 },
    ConsumerDeleted { at: u128 },
}

/// The broker under test.
enum Broker {
    Redis(RedisServer),
    Nats(NatsServer),
}

impl Broker {
    fn name(&self) -> &'static str {
        match self {
            Self::Redis(_) => "Redis",
            Self::Nats(_) => "NATS",
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Redis(r) => r.url(),
            Self::Nats(n) => n.url(),
        }
    }

    fn server_args(&self) -> [String; 2] {
        match self {
            Self::Redis(r) => ["--redis-url".into(), r.url()],
            Self::Nats(n) => ["--nats-url".into(), n.url()],
        }
    }

    /// SIGKILL, down for a moment, started again with its data.
    fn restart(&mut self) {
        match self {
            Self::Redis(r) => r.restart(),
            Self::Nats(n) => {
                n.kill();
                std::thread::sleep(Duration::from_millis(1400));
                n.restart();
            }
        }
    }
}

/// The client, over the broker under test.
#[derive(Clone)]
enum Caller {
    Redis(RedisRpcClient),
    Nats(NatsRpcClient),
}

impl Caller {
    async fn start(broker: &Broker) -> Self {
        let timeout = Duration::from_secs(60);
        let caller = match broker {
            Broker::Redis(r) => Self::Redis(
                RedisRpcClient::builder()
                    .key_prefix(PREFIX)
                    .url(r.url())
                    .default_timeout(timeout)
                    .build()
                    .expect("client"),
            ),
            Broker::Nats(n) => Self::Nats(
                NatsRpcClient::builder()
                    .key_prefix(PREFIX)
                    .url(n.url())
                    .default_timeout(timeout)
                    .build()
                    .expect("client"),
            ),
        };
        match &caller {
            Self::Redis(c) => c.start().await.expect("client start"),
            Self::Nats(c) => c.start().await.expect("client start"),
        }
        caller
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        match self {
            Self::Redis(c) => c.call_value("arith", method, params, None).await,
            Self::Nats(c) => c.call_value("arith", method, params, None).await,
        }
    }

    async fn stop(&self) {
        match self {
            Self::Redis(c) => c.stop().await,
            Self::Nats(c) => c.stop().await,
        }
    }
}

struct ServerProc {
    instance: String,
    child: Child,
}

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name("clamator-interop-server")
}

fn spawn_server(
    broker: &Broker,
    instance: &str,
    claim_idle_ms: u64,
    exec_log: &Path,
) -> ServerProc {
    let mut child = Command::new(server_binary())
        .args(broker.server_args())
        .args(["--prefix", PREFIX, "--instance-id", instance])
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

/// Why a call made at `called` ran again (`second`) after `first`.
fn why_again(
    called: u128,
    first: &Execution,
    second: &Execution,
    events: &[Event],
) -> &'static str {
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
        match *e {
            Event::BrokerRestart { from: r, to } if r <= until && to >= from => {
                return "the broker was SIGKILLed while it ran, and lost its ack or delivery state";
            }
            Event::ConsumerDeleted { at } if at >= from && at <= until => {
                return "the consumer was deleted while it ran (its ack went with it)";
            }
            _ => {}
        }
    }
    // NATS: a client whose connection is made again while it waits sends its request again
    // (a reply may have been lost meanwhile), so both copies may run after the restart. Its
    // reconnect comes up to a few seconds after the broker is back (async-nats's backoff).
    const RECONNECT_SLACK_MS: u128 = 5_000;
    for e in events {
        if let Event::BrokerRestart { from: r, to } = *e {
            if r <= until && to + RECONNECT_SLACK_MS >= called {
                return "the client's connection broke while it waited (broker restart): it sent the request again";
            }
        }
    }
    "UNEXPLAINED"
}

/// What is left on the broker after the run.
#[derive(Default)]
struct Leftovers {
    /// Requests still stored (NATS: in the work queue; Redis: entries of command streams).
    entries: i64,
    /// Requests delivered and not acked.
    pending: i64,
    /// Keys without a TTL that are not command or dead-letter streams (Redis).
    leaked: usize,
    /// The call numbers (`a`) of the dead letters.
    dead_letters: Vec<u64>,
    /// For the JSON report.
    detail: Vec<Value>,
}

fn call_number(envelope: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(envelope).ok()?;
    v["params"]["a"].as_f64().map(|a| a as u64)
}

async fn redis_leftovers(url: &str) -> Leftovers {
    let mut out = Leftovers::default();
    let mut conn = redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for key in &keys {
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
        let mut pending = 0;
        if key.contains(":cmds:") {
            out.entries += len;
            pending = redis::cmd("XPENDING")
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
                .unwrap_or(0);
            out.pending += pending;
        } else if key.contains(":dead:") {
            let entries: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(key)
                .arg("-")
                .arg("+")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            out.dead_letters.extend(
                entries
                    .iter()
                    .filter_map(|(_, f)| f.get("envelope").and_then(|e| call_number(e))),
            );
        } else if ttl < 0 {
            out.leaked += 1;
        }
        out.detail
            .push(json!({"key": key, "length": len, "pending": pending, "pttl": ttl}));
    }
    out
}

async fn nats_leftovers(url: &str) -> Leftovers {
    let mut out = Leftovers::default();
    let client = NatsConnection::url(url)
        .connect("clamator-chaos")
        .await
        .expect("connect to nats");
    let js = jetstream::new(client);
    if let Ok(mut stream) = js.get_stream(format!("{PREFIX}_cmds_arith")).await {
        let info = stream.info().await.expect("stream info").clone();
        out.entries = info.state.messages as i64;
        let consumer = stream
            .get_consumer::<jetstream::consumer::pull::Config>("arith")
            .await;
        if let Err(e) = &consumer {
            eprintln!("chaos: consumer arith: {e}");
        }
        if let Ok(mut consumer) = consumer {
            let c = consumer.info().await.expect("consumer info");
            out.pending = c.num_ack_pending as i64;
            out.detail.push(json!({
                "consumer": "arith", "ack_floor_stream_sequence": c.ack_floor.stream_sequence,
                "delivered_stream_sequence": c.delivered.stream_sequence,
                "num_pending": c.num_pending, "ack_pending": c.num_ack_pending,
            }));
        }
        out.detail.push(json!({
            "stream": info.config.name, "messages": info.state.messages,
            "first_sequence": info.state.first_sequence, "last_sequence": info.state.last_sequence,
        }));
    }
    if let Ok(mut dead) = js.get_stream(format!("{PREFIX}_dead_arith")).await {
        let state = dead.info().await.expect("dead info").state.clone();
        for seq in state.first_sequence..=state.last_sequence {
            if state.messages == 0 {
                break;
            }
            if let Ok(m) = dead.get_raw_message(seq).await {
                out.dead_letters.extend(call_number(&m.payload));
            }
        }
        out.detail
            .push(json!({"stream": format!("{PREFIX}_dead_arith"), "messages": state.messages}));
    }
    out
}

async fn delete_consumer(url: &str) {
    let client = NatsConnection::url(url)
        .connect("clamator-chaos")
        .await
        .expect("connect to nats");
    let js = jetstream::new(client);
    if let Err(e) = js
        .delete_consumer_from_stream("arith", format!("{PREFIX}_cmds_arith"))
        .await
    {
        eprintln!("chaos: could not delete the consumer: {e}");
    }
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
    let mut broker = if o.nats {
        Broker::Nats(NatsServer::start())
    } else {
        Broker::Redis(RedisServer::builder().persistent().start())
    };
    let url = broker.url();
    eprintln!(
        "chaos: {:?} of load at {} in flight, claim idle / ack wait {} ms, a server killed or stopped every {:?}, {} {url}",
        o.duration,
        o.in_flight,
        o.claim_idle_ms,
        o.kill_every,
        if o.nats { "nats-server -js (file storage)" } else { "redis-server (AOF, appendfsync always)" }
    );
    let mut servers: Vec<ServerProc> = (0..3)
        .map(|i| spawn_server(&broker, &format!("srv-{i}"), o.claim_idle_ms, &exec_log))
        .collect();
    let steady_pid = servers[0].child.id();
    let rss_start = rss_kib(steady_pid);
    let client = Caller::start(&broker).await;

    // the load: in_flight workers, each calling one after another until the time is up
    let started = Instant::now();
    let started_ms = now_ms();
    let stop_at = started + o.duration;
    let next = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<Mutex<BTreeMap<u64, (Outcome, u128)>>> = Arc::default();
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
                    let called = now_ms();
                    let outcome = match client.call(method, params).await {
                        Ok(v) if v["sum"] == json!(n as f64) => Outcome::Ok,
                        Ok(v) => Outcome::Failed(format!("wrong result {v}")),
                        Err(CallError::Transport(e)) if e.is_timeout() => Outcome::Lost,
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                    outcomes
                        .lock()
                        .expect("outcomes")
                        .insert(n, (outcome, called));
                }
            })
        })
        .collect();

    // the faults: (progress, what) once each, and a server SIGKILLed or SIGTERMed in turn
    let mut events: Vec<Event> = Vec::new();
    let mut rss_warm = None;
    let mut stopped_once = false;
    let broker_restarts_at: &[f64] = if o.nats { &[0.4, 0.75] } else { &[0.6] };
    let mut broker_restarts = 0;
    let mut consumer_deleted = !o.nats;
    let mut turns = 0usize;
    let mut next_turn = started + Duration::from_secs(2);
    while Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let progress = started.elapsed().as_secs_f64() / o.duration.as_secs_f64();
        if rss_warm.is_none() && progress >= 0.1 {
            rss_warm = Some(rss_kib(steady_pid));
        }
        if Instant::now() >= next_turn {
            next_turn += o.kill_every;
            let victim = 1 + turns % 2;
            // kill, kill, term, term, kill, kill, …: each victim gets both
            let graceful = (turns / 2) % 2 == 1;
            turns += 1;
            let pid = servers[victim].child.id();
            if graceful {
                signal(pid, "-TERM");
                events.push(Event::Term { pid, at: now_ms() });
            } else {
                signal(pid, "-KILL");
                events.push(Event::Kill { pid, at: now_ms() });
            }
            let _ = tokio::task::block_in_place(|| servers[victim].child.wait());
            let instance = servers[victim].instance.clone();
            servers[victim] = tokio::task::block_in_place(|| {
                spawn_server(&broker, &instance, o.claim_idle_ms, &exec_log)
            });
        }
        if !stopped_once && progress >= 0.3 {
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
        if broker_restarts < broker_restarts_at.len()
            && progress >= broker_restarts_at[broker_restarts]
        {
            broker_restarts += 1;
            let from = now_ms();
            tokio::task::block_in_place(|| broker.restart());
            events.push(Event::BrokerRestart { from, to: now_ms() });
        }
        if !consumer_deleted && progress >= 0.55 {
            consumer_deleted = true;
            delete_consumer(&url).await;
            events.push(Event::ConsumerDeleted { at: now_ms() });
        }
    }
    for w in workers {
        let _ = w.await;
    }
    let rss_end = rss_kib(steady_pid);
    let elapsed = started.elapsed();
    // The system idles after the load, as systems do: the servers finish what is pending
    // (requests held by a killed server come back after the claim idle / ack wait) and clean
    // up what a broker restart left behind. Up to 30 s.
    let settling = Instant::now();
    loop {
        let left = match &broker {
            Broker::Redis(_) => redis_leftovers(&url).await,
            Broker::Nats(_) => nats_leftovers(&url).await,
        };
        if (left.entries == 0 && left.pending == 0) || settling.elapsed() > Duration::from_secs(30)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled = settling.elapsed();
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
    for (n, (outcome, called)) in &outcomes {
        let runs = executions.get(n).map_or(&[][..], Vec::as_slice);
        match outcome {
            Outcome::Ok => {
                ok += 1;
                if runs.is_empty() {
                    ok_without_execution += 1;
                }
            }
            Outcome::Lost => {
                lost += 1;
                if lost <= 10 {
                    let t0 = started_ms;
                    let at: Vec<String> = runs
                        .iter()
                        .map(|r| {
                            format!(
                                "pid {} +{:.3}s",
                                r.pid,
                                (r.start.saturating_sub(t0)) as f64 / 1000.0
                            )
                        })
                        .collect();
                    eprintln!("lost call {n}: executions {at:?}");
                }
            }
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
            let why = why_again(*called, &pair[0], &pair[1], &events);
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
    let left = match &broker {
        Broker::Redis(_) => redis_leftovers(&url).await,
        Broker::Nats(_) => nats_leftovers(&url).await,
    };
    let unrun_dead = left
        .dead_letters
        .iter()
        .filter(|n| !executions.contains_key(n))
        .count();
    let rss_warm = rss_warm.unwrap_or(rss_start);
    let rss_grown_kib = rss_end.saturating_sub(rss_warm.max(rss_start));

    let calls = outcomes.len();
    let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    let (kills, terms) = (
        count(|e| matches!(e, Event::Kill { .. })),
        count(|e| matches!(e, Event::Term { .. })),
    );
    println!("## chaos run ({})\n", broker.name());
    println!(
        "{calls} calls in {:.1} s at {} in flight (30% slowAdd 200–500 ms); claim idle / ack wait {} ms; {kills} SIGKILL and {terms} SIGTERM (+ restart) of a server, 1 SIGSTOP of {} ms, {} {} SIGKILL + restart{}\n",
        elapsed.as_secs_f64(),
        o.in_flight,
        o.claim_idle_ms,
        o.claim_idle_ms * 5 / 2,
        broker_restarts,
        broker.name(),
        if o.nats { ", the consumer deleted once" } else { " (AOF, appendfsync always)" }
    );
    let t0 = now_ms() - elapsed.as_millis();
    let at = |t: u128| format!("+{:.1}s", (t.saturating_sub(t0)) as f64 / 1000.0);
    let faults: Vec<String> = events
        .iter()
        .map(|e| match *e {
            Event::Kill { pid, at: t } => format!("SIGKILL pid {pid} {}", at(t)),
            Event::Term { pid, at: t } => format!("SIGTERM pid {pid} {}", at(t)),
            Event::Stop { pid, from, to } => format!("SIGSTOP pid {pid} {}..{}", at(from), at(to)),
            Event::BrokerRestart { from, to } => format!("broker restart {}..{}", at(from), at(to)),
            Event::ConsumerDeleted { at: t } => format!("consumer deleted {}", at(t)),
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
    println!(
        "| dead letters / of requests that never ran | {} / {unrun_dead} |",
        left.dead_letters.len()
    );
    println!(
        "| requests left stored / pending, {:.1} s after the load | {} / {} |",
        settled.as_secs_f64(),
        left.entries,
        left.pending
    );
    if let Broker::Redis(_) = broker {
        println!(
            "| keys under `{PREFIX}:` without a TTL that are not command or dead-letter streams | {} |",
            left.leaked
        );
    }
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
        ("no request that never ran dead-lettered", unrun_dead == 0),
        (
            "every duplicate explained by a killed or stopped server, or a broker that lost its ack",
            unexplained == 0,
        ),
        (
            "nothing left stored or pending",
            left.entries == 0 && left.pending == 0,
        ),
        ("no key leaked", left.leaked == 0),
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
            "broker": broker.name(), "calls": calls, "ok": ok, "failed": failed, "lost": lost,
            "ok_without_execution": ok_without_execution, "executions": runs_hist,
            "duplicate_reasons": reasons, "dead_letters": left.dead_letters.len(),
            "unrun_dead_letters": unrun_dead, "left": left.detail, "kills": kills,
            "terms": terms,
            "rss_kib": {"start": rss_start, "warm": rss_warm, "end": rss_end}, "pass": pass,
        });
        let _ = std::fs::write(
            path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(broker);
    if !pass {
        eprintln!("chaos: FAILED");
        std::process::exit(1);
    }
    eprintln!("chaos: passed");
}
