//! `clamator-bench`: runs scenarios S1–S7 against clamator for Rust and the released Python
//! clamator 0.1.9 in one run on one private Redis, and writes `results.json` and
//! `results.md` (absolute figures and Rust/Python ratios) to the output directory.
//!
//! Run it through `bash scripts/bench.sh`, which builds in release mode, installs the Python
//! side and renders `chart.png`.

mod floor;
mod nats;
mod peers;
mod scaling;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator_cli::bench::{self, BenchReport, BenchSpec};
use clamator_interop::{ArithServer, Fixture, NotificationsServer};
use clamator_test_support::RedisServer;
use serde::Serialize;
use serde_json::{json, Value};

/// The Python 0.1.9 client fails above ~60 calls in flight ("Too many connections").
const PY_MAX_IN_FLIGHT: usize = 50;

struct Tools {
    bin_dir: PathBuf,
    python: PathBuf,
    py_dir: PathBuf,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Spawns a server and waits for the `READY` line it prints once it serves.
    fn ready(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut out, &mut line).expect("READY");
        assert!(line.contains("READY"), "server did not start: {line}");
        Self(child)
    }

    /// Peak resident set size (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Lang {
    #[serde(rename = "rust")]
    Rust,
    #[serde(rename = "python")]
    Py,
}

impl Tools {
    fn server(
        &self,
        lang: Lang,
        url: &str,
        prefix: &str,
        instance: &str,
        concurrency: usize,
    ) -> Proc {
        let mut cmd = match lang {
            Lang::Rust => {
                let mut c = Command::new(self.bin_dir.join("clamator-interop-server"));
                c.args(["--concurrency", &concurrency.to_string()]);
                c
            }
            Lang::Py => {
                let mut c = Command::new(&self.python);
                c.arg(self.py_dir.join("server.py"))
                    .current_dir(&self.py_dir);
                c
            }
        };
        cmd.args([
            "--redis-url",
            url,
            "--prefix",
            prefix,
            "--instance-id",
            instance,
        ]);
        Proc::ready(&mut cmd)
    }

    #[allow(clippy::too_many_arguments)]
    fn client(
        &self,
        lang: Lang,
        url: &str,
        prefix: &str,
        method: &str,
        params: &Value,
        calls: usize,
        concurrency: usize,
    ) -> BenchReport {
        // params go through stdin: a large payload does not fit a command-line argument
        let params_text = params.to_string();
        let params = "-";
        let (calls, concurrency) = (calls.to_string(), concurrency.to_string());
        let mut cmd = match lang {
            Lang::Rust => {
                let mut c = Command::new(self.bin_dir.join("clamator"));
                c.args([
                    "--redis-url",
                    url,
                    "--prefix",
                    prefix,
                    "bench",
                    "--json",
                    "--method",
                    method,
                ])
                .args([
                    "--params",
                    params,
                    "--calls",
                    &calls,
                    "--concurrency",
                    &concurrency,
                ]);
                c
            }
            Lang::Py => {
                let mut c = Command::new(&self.python);
                c.arg(self.py_dir.join("bench.py"))
                    .args([
                        "redis",
                        "--redis-url",
                        url,
                        "--prefix",
                        prefix,
                        "--method",
                        method,
                    ])
                    .args([
                        "--params",
                        params,
                        "--calls",
                        &calls,
                        "--concurrency",
                        &concurrency,
                    ])
                    .current_dir(&self.py_dir);
                c
            }
        };
        let output = feed_stdin(&mut cmd, &params_text).expect("run bench client");
        parse_report(&output.stdout, &output.stderr)
    }
}

/// Runs `cmd` with `input` on its stdin and waits for its output.
fn feed_stdin(cmd: &mut Command, input: &str) -> std::io::Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer =
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let output = child.wait_with_output();
    let _ = writer.join();
    output
}

fn parse_report(stdout: &[u8], stderr: &[u8]) -> BenchReport {
    let v: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "bench output is not JSON ({e}): {} {}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(stderr)
        )
    });
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    BenchReport {
        calls: v["calls"].as_u64().unwrap_or(0) as usize,
        ok: v["ok"].as_u64().unwrap_or(0) as usize,
        elapsed_s: f("elapsed_s"),
        calls_per_s: f("calls_per_s"),
        p50_ms: f("p50_ms"),
        p90_ms: f("p90_ms"),
        p99_ms: f("p99_ms"),
        max_ms: f("max_ms"),
        errors: serde_json::from_value(v["errors"].clone()).unwrap_or_default(),
        concurrency: v["concurrency"].as_u64().unwrap_or(0) as usize,
    }
}

#[derive(Debug, Serialize)]
struct Row {
    scenario: &'static str,
    pairing: String,
    metric: &'static str,
    unit: &'static str,
    value: f64,
    in_flight: usize,
    errors: usize,
    note: String,
}

struct Runner {
    tools: Tools,
    redis: RedisServer,
    rows: Vec<Row>,
    n: usize,
}

fn pairing(client: Lang, server: Lang) -> String {
    let name = |l: Lang| if l == Lang::Rust { "Rust" } else { "Python" };
    format!("{} client → {} server", name(client), name(server))
}

impl Runner {
    fn prefix(&mut self) -> String {
        self.n += 1;
        format!("bench{}", self.n)
    }

    #[allow(clippy::too_many_arguments)]
    fn redis_case(
        &mut self,
        scenario: &'static str,
        servers: &[Lang],
        client: Lang,
        server_concurrency: usize,
        method: &str,
        params: &Value,
        calls: usize,
        in_flight: usize,
    ) -> (BenchReport, Vec<f64>) {
        let prefix = self.prefix();
        let url = self.redis.url();
        let procs: Vec<Proc> = servers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                self.tools
                    .server(*l, &url, &prefix, &format!("s{i}"), server_concurrency)
            })
            .collect();
        let effective = if client == Lang::Py {
            in_flight.min(PY_MAX_IN_FLIGHT)
        } else {
            in_flight
        };
        let report = self
            .tools
            .client(client, &url, &prefix, method, params, calls, effective);
        let rss = procs.iter().map(Proc::peak_rss_mib).collect();
        eprintln!(
            "{scenario:<4} {:<34} {:>5} in flight: {:>9.0} calls/s  p50 {:.3} ms  p99 {:.3} ms  errors {:?}",
            pairing(client, servers[0]),
            effective,
            report.calls_per_s,
            report.p50_ms,
            report.p99_ms,
            report.errors
        );
        let _ = std::process::Command::new("redis-cli")
            .args(["-p", &self.redis.port().to_string(), "FLUSHALL"])
            .output();
        (report, rss)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        scenario: &'static str,
        pairing: String,
        metric: &'static str,
        unit: &'static str,
        value: f64,
        in_flight: usize,
        errors: usize,
        note: String,
    ) {
        self.rows.push(Row {
            scenario,
            pairing,
            metric,
            unit,
            value,
            in_flight,
            errors,
            note,
        });
    }
}

fn limit_note(client: Lang, wanted: usize) -> String {
    if client == Lang::Py && wanted > PY_MAX_IN_FLIGHT {
        format!("Python client at its limit ({PY_MAX_IN_FLIGHT} in flight; it fails above ~60)")
    } else {
        String::new()
    }
}

fn errors(r: &BenchReport) -> usize {
    r.errors.values().sum()
}

async fn memory_bench(calls: usize, in_flight: usize) -> BenchReport {
    let bus = MemoryBus::new();
    let fixture = Fixture::default();
    let server = MemoryRpcServer::builder(&bus)
        .service(ArithServer::new(fixture.clone()))
        .service(NotificationsServer::new(fixture))
        .build()
        .expect("server");
    server.start().await.expect("start");
    let client = MemoryRpcClient::new(&bus);
    client.start().await.expect("start");
    let spec = BenchSpec {
        service: "arith".into(),
        method: "add".into(),
        params: json!({"a": 1, "b": 2}),
        calls,
        concurrency: in_flight,
        duration: None,
        timeout: None,
    };
    let report = bench::run(&client, &spec, Arc::new(AtomicUsize::new(0))).await;
    client.stop().await;
    server.stop().await;
    report
}

fn redis_benchmark_xadd(port: u16) -> f64 {
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-n",
            "200000",
            "-c",
            "64",
            "-q",
            "XADD",
            "rb:stream",
            "MAXLEN",
            "~",
            "1000",
            "*",
            "f",
            "v",
        ])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "XADD rb:stream ...: 123456.79 requests per second, p50=..."
    text.split(':')
        .rev()
        .find_map(|part| {
            part.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// Modes run as separate processes by the orchestrator (and useful by hand).
fn run_mode(args: &[String]) -> bool {
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    };
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize| arg(i).parse::<usize>().expect("a number");
    match arg(1).as_str() {
        "--memory-only" => println!("{}", rt().block_on(memory_bench(1_000_000, 64))),
        "--peers" => {
            let rt = rt();
            for _ in 0..3 {
                for (name, rep) in [
                    (
                        "clamator memory",
                        rt.block_on(peers::clamator_memory(500_000, 64)),
                    ),
                    (
                        "jsonrpsee RpcModule::call",
                        rt.block_on(peers::jsonrpsee(500_000, 64)),
                    ),
                    ("tarpc channel", rt.block_on(peers::tarpc(500_000, 64))),
                ] {
                    println!(
                        "{name:<28} {:>9.0} calls/s  p50 {:.4} ms",
                        rep.calls_per_s, rep.p50_ms
                    );
                }
            }
        }
        "floor-server" => {
            if let Err(e) = rt().block_on(floor::server(&arg(2), &arg(3))) {
                eprintln!("floor server: {e}");
                std::process::exit(1);
            }
        }
        "floor-client" => {
            let text = if arg(5) == "-" {
                let mut buf = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).expect("stdin");
                buf
            } else {
                arg(5)
            };
            let params: Value = serde_json::from_str(&text).expect("params JSON");
            match rt().block_on(floor::client(
                &arg(2),
                &arg(3),
                &arg(4),
                &params,
                num(6),
                num(7),
            )) {
                Ok(rep) => println!("{}", serde_json::to_string(&rep).expect("json")),
                Err(e) => {
                    eprintln!("floor client: {e}");
                    std::process::exit(1);
                }
            }
        }
        "echo-server" => rt().block_on(echo_server(&arg(2), &arg(3), num(4))),
        "nats-floor-server" => {
            if let Err(e) = rt().block_on(nats::floor_server(&arg(2))) {
                eprintln!("nats floor server: {e}");
                std::process::exit(1);
            }
        }
        "nats-js-floor-server" => {
            if let Err(e) = rt().block_on(nats::js_floor_server(&arg(2))) {
                eprintln!("nats JetStream floor server: {e}");
                std::process::exit(1);
            }
        }
        "nats-js-floor-client" | "nats-floor-client" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).expect("stdin");
            let params: Value = serde_json::from_str(&text).expect("params JSON");
            let run = if arg(1) == "nats-js-floor-client" {
                rt().block_on(nats::js_floor_client(
                    &arg(2),
                    &arg(3),
                    &params,
                    num(5),
                    num(6),
                ))
            } else {
                rt().block_on(nats::floor_client(
                    &arg(2),
                    &arg(3),
                    &params,
                    num(5),
                    num(6),
                ))
            };
            match run {
                Ok(rep) => println!("{}", serde_json::to_string(&rep).expect("json")),
                Err(e) => {
                    eprintln!("nats floor client: {e}");
                    std::process::exit(1);
                }
            }
        }
        _ => return false,
    }
    true
}

/// A clamator server with `n` services `svc0..` each with a raw `echo` method; prints READY and
/// serves until killed.
async fn echo_server(url: &str, prefix: &str, n: usize) {
    let mut builder = clamator::redis::RedisRpcServer::builder()
        .key_prefix(prefix)
        .url(url);
    for i in 0..n {
        builder = builder.service(
            clamator::RpcService::builder(format!("svc{i}"))
                .raw_method("echo", json!({}), json!({}), |p: Value| async move {
                    Ok::<_, clamator::RpcError>(p)
                })
                .build()
                .expect("service"),
        );
    }
    let server = builder.build().expect("server");
    server.start().await.expect("start");
    println!("READY");
    std::future::pending::<()>().await;
}

#[allow(clippy::too_many_lines)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if run_mode(&args) {
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tools = Tools {
        bin_dir: exe.parent().expect("bin dir").to_path_buf(),
        python: root.join(".venv/bin/python"),
        py_dir: root.join("interop/py"),
    };
    let mut r = Runner {
        tools,
        redis: RedisServer::start(),
        rows: Vec::new(),
        n: 0,
    };
    if args.get(1).map(String::as_str) == Some("--nats") {
        let rounds = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
        println!("{}", nats::quick(&mut r, rounds));
        return;
    }
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "bench".into()));
    std::fs::create_dir_all(&out_dir).expect("output dir");
    let add = json!({"a": 1, "b": 2});
    let (rust, py) = (Lang::Rust, Lang::Py);
    let pairs = [(rust, rust), (py, py), (py, rust)];

    // S1 sequential round trip
    for (c, s) in pairs {
        let calls = if c == rust { 20_000 } else { 5_000 };
        let (rep, _) = r.redis_case("S1", &[s], c, 64, "arith.add", &add, calls, 1);
        let e = errors(&rep);
        r.push(
            "S1",
            pairing(c, s),
            "p50 latency",
            "ms",
            rep.p50_ms,
            1,
            e,
            String::new(),
        );
        r.push(
            "S1",
            pairing(c, s),
            "p99 latency",
            "ms",
            rep.p99_ms,
            1,
            e,
            String::new(),
        );
    }
    // S2 throughput, one server, 64 and 256 in flight; S7 server peak RSS during S2
    for in_flight in [64, 256] {
        for (c, s) in pairs {
            let calls = if c == rust { 200_000 } else { 20_000 };
            let (rep, rss) = r.redis_case("S2", &[s], c, 64, "arith.add", &add, calls, in_flight);
            let note = limit_note(c, in_flight);
            r.push(
                "S2",
                pairing(c, s),
                if in_flight == 64 {
                    "throughput @64"
                } else {
                    "throughput @256"
                },
                "calls/s",
                rep.calls_per_s,
                rep.concurrency,
                errors(&rep),
                note.clone(),
            );
            r.push(
                "S7",
                pairing(c, s),
                if in_flight == 64 {
                    "server peak RSS (S2 @64)"
                } else {
                    "server peak RSS (S2 @256)"
                },
                "MiB",
                rss[0],
                rep.concurrency,
                0,
                note,
            );
        }
    }
    // S3 I/O-bound handler
    let slow = json!({"a": 1, "b": 2, "sleepMs": 10});
    for (c, s) in pairs {
        let (rep, _) = r.redis_case("S3", &[s], c, 256, "arith.slowAdd", &slow, 2_000, 200);
        r.push(
            "S3",
            pairing(c, s),
            "throughput, slowAdd 10 ms",
            "calls/s",
            rep.calls_per_s,
            rep.concurrency,
            errors(&rep),
            limit_note(c, 200),
        );
    }
    // S4 worker pool of two servers
    for (c, s) in pairs {
        let calls = if c == rust { 200_000 } else { 20_000 };
        let (rep, _) = r.redis_case("S4", &[s, s], c, 64, "arith.add", &add, calls, 256);
        r.push(
            "S4",
            pairing(c, s) + " ×2",
            "throughput, 2-server pool",
            "calls/s",
            rep.calls_per_s,
            rep.concurrency,
            errors(&rep),
            limit_note(c, 256),
        );
    }
    // S5 64 KiB echoText
    let text = json!({"text": "x".repeat(64 * 1024)});
    for (c, s) in pairs {
        let calls = if c == rust { 20_000 } else { 5_000 };
        let (rep, _) = r.redis_case("S5", &[s], c, 64, "arith.echoText", &text, calls, 16);
        r.push(
            "S5",
            pairing(c, s),
            "throughput, 64 KiB echoText",
            "calls/s",
            rep.calls_per_s,
            16,
            errors(&rep),
            String::new(),
        );
        r.push(
            "S5",
            pairing(c, s),
            "p50 latency, 64 KiB echoText",
            "ms",
            rep.p50_ms,
            16,
            errors(&rep),
            String::new(),
        );
    }
    // The same scenarios over NATS JetStream, and the async-nats floor
    r.nats_rows();
    // S6 in-memory
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let rep = rt.block_on(memory_bench(1_000_000, 64));
    eprintln!("S6   Rust in-memory: {:.0} calls/s", rep.calls_per_s);
    r.push(
        "S6",
        "Rust, in-process bus".into(),
        "throughput @64",
        "calls/s",
        rep.calls_per_s,
        64,
        errors(&rep),
        String::new(),
    );
    let out = Command::new(&r.tools.python)
        .arg(r.tools.py_dir.join("bench.py"))
        .args([
            "memory",
            "--method",
            "arith.add",
            "--params",
            &add.to_string(),
            "--calls",
            "100000",
            "--concurrency",
            "64",
        ])
        .current_dir(&r.tools.py_dir)
        .output()
        .expect("python memory bench");
    let rep = parse_report(&out.stdout, &out.stderr);
    eprintln!("S6   Python in-memory: {:.0} calls/s", rep.calls_per_s);
    r.push(
        "S6",
        "Python, in-process bus".into(),
        "throughput @64",
        "calls/s",
        rep.calls_per_s,
        64,
        errors(&rep),
        String::new(),
    );
    // clamator against the floor; scaling curves; in-process peers
    let mut points = r.in_flight_curve();
    points.extend(r.payload_curve());
    points.extend(r.services_curve(&rt));
    points.extend(scaling::in_process(&rt));
    // Redis itself
    let xadd = redis_benchmark_xadd(r.redis.port());
    r.push(
        "Redis",
        "redis-benchmark XADD, 64 clients".into(),
        "XADD/s",
        "ops/s",
        xadd,
        64,
        0,
        "what Redis does at most on these cores; commands per call: see the floor table".into(),
    );

    let json_out =
        serde_json::to_string_pretty(&json!({"rows": r.rows, "points": points})).expect("json");
    std::fs::write(out_dir.join("results.json"), json_out).expect("write results.json");
    let md = markdown(&r.rows) + &scaling::markdown(&points);
    std::fs::write(out_dir.join("results.md"), &md).expect("write results.md");
    println!("{md}");
}

fn markdown(rows: &[Row]) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let redis_version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut md = format!(
        "Machine: {} cores, {cpu}; {redis_version}; one private redis-server for all rows.\n\n\
         | scenario | pairing | metric | value | in flight | errors | Rust/Python | note |\n|---|---|---|---|---|---|---|---|\n",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    for row in rows {
        let ratio = ratio_for(rows, row);
        md.push_str(&format!(
            "| {} | {} | {} | {} {} | {} | {} | {} | {} |\n",
            row.scenario,
            row.pairing,
            row.metric,
            fmt_value(row.value),
            row.unit,
            row.in_flight,
            row.errors,
            ratio,
            row.note
        ));
    }
    md
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// For Rust-server rows: the ratio against the Python client → Python server row of the same
/// scenario and metric (throughput: Rust/Python; latency and memory: Python/Rust, so > 1 is
/// always "Rust better").
fn ratio_for(rows: &[Row], row: &Row) -> String {
    if !row.pairing.starts_with("Rust") || row.scenario == "Redis" {
        return String::new();
    }
    let base = rows.iter().find(|o| {
        o.scenario == row.scenario
            && o.metric == row.metric
            && o.pairing.starts_with("Python client → Python")
            || (row.scenario == "S6" && o.scenario == "S6" && o.pairing.starts_with("Python"))
    });
    let Some(base) = base else {
        return String::new();
    };
    if base.value == 0.0 || row.value == 0.0 {
        return String::new();
    }
    let higher_is_better = row.unit == "calls/s";
    let r = if higher_is_better {
        row.value / base.value
    } else {
        base.value / row.value
    };
    let mut text = format!("{r:.1}× better");
    if row.pairing.contains("NATS JetStream") {
        // Over NATS: also against clamator over Redis and against the async-nats floor.
        let same = |prefix: &str| {
            rows.iter().find(|o| {
                o.scenario == row.scenario
                    && o.metric == row.metric
                    && o.pairing.starts_with(prefix)
            })
        };
        let against = |o: &Row| {
            if higher_is_better {
                row.value / o.value
            } else {
                o.value / row.value
            }
        };
        if let Some(redis) = rows.iter().find(|o| {
            o.scenario == row.scenario
                && o.metric == row.metric
                && o.pairing == "Rust client → Rust server"
        }) {
            text.push_str(&format!("; {:.2}× Rust over Redis", against(redis)));
        }
        if let Some(floor) = same("hand-written JetStream") {
            text.push_str(&format!(
                "; {:.0}% of the JetStream floor",
                100.0 * against(floor)
            ));
        }
        if let Some(floor) = same("plain async-nats") {
            text.push_str(&format!(
                "; {:.0}% of the async-nats floor",
                100.0 * against(floor)
            ));
        }
    }
    text
}
