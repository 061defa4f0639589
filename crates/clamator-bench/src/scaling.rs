//! clamator against the hand-written floor ([`crate::floor`]) on the same private Redis, in
//! alternating rounds, with the Redis commands each call costs; scaling curves (calls in
//! flight, payload size, services per process, server memory); and the in-process Rust peers
//! ([`crate::peers`]).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use clamator::redis::{redis, RedisRpcClient};
use clamator::RpcClient;
use clamator_cli::bench::BenchReport;
use serde::Serialize;
use serde_json::{json, Value};

use crate::{parse_report, Lang, Proc, Runner};

/// Rounds per point of the floor comparison (alternating floor, clamator); the median is kept.
const ROUNDS: usize = 3;

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Point {
    /// `in_flight`, `payload`, `services` or `in_process`.
    pub(crate) curve: &'static str,
    /// `clamator`, `floor`, `jsonrpsee`, `tarpc`.
    pub(crate) implementation: String,
    /// Calls in flight, payload bytes, or services served.
    pub(crate) x: f64,
    pub(crate) calls_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Redis commands per call, from `INFO commandstats` (all commands but `INFO`).
    pub(crate) commands_per_call: Option<f64>,
    /// Which commands, per call.
    pub(crate) commands: BTreeMap<String, f64>,
    /// Peak RSS of the server process, MiB.
    pub(crate) server_rss_mib: Option<f64>,
    /// Throughput of every round (the point is the median round).
    pub(crate) rounds: Vec<f64>,
    pub(crate) errors: usize,
}

impl Point {
    fn new(curve: &'static str, implementation: &str, x: f64, report: &BenchReport) -> Self {
        Self {
            curve,
            implementation: implementation.to_owned(),
            x,
            calls_per_s: report.calls_per_s,
            p50_ms: report.p50_ms,
            p99_ms: report.p99_ms,
            commands_per_call: None,
            commands: BTreeMap::new(),
            server_rss_mib: None,
            rounds: vec![report.calls_per_s],
            errors: report.errors.values().sum(),
        }
    }
}

/// The median-throughput point of several rounds, with every round's throughput.
fn median(mut points: Vec<Point>) -> Point {
    let rounds: Vec<f64> = points.iter().map(|p| p.calls_per_s).collect();
    points.sort_by(|a, b| a.calls_per_s.total_cmp(&b.calls_per_s));
    let mut p = points.swap_remove(points.len() / 2);
    p.rounds = rounds;
    p
}

/// `calls` per command from `INFO commandstats`.
fn commandstats(url: &str) -> BTreeMap<String, u64> {
    let info: String = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("INFO").arg("commandstats").query(&mut c))
        .unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// Commands per call between two `INFO commandstats` snapshots.
fn per_call(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    calls: usize,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(name, _)| !["info", "flushall"].contains(&name.as_str()))
        .filter_map(|(name, n)| {
            let delta = n.saturating_sub(before.get(name).copied().unwrap_or(0));
            (delta > 0).then(|| (name.clone(), delta as f64 / calls.max(1) as f64))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Floor,
    Clamator,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Clamator => "clamator",
        }
    }
}

impl Runner {
    fn floor_server(&self, prefix: &str) -> Proc {
        let mut child = Command::new(self.tools.bin_dir.join("clamator-bench"))
            .args(["floor-server", &self.redis.url(), prefix])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the floor server");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut out, &mut line).expect("READY");
        assert!(line.contains("READY"), "floor server did not start: {line}");
        Proc(child)
    }

    /// One run of an implementation: its server, a snapshot of the command counts, its client
    /// process, the snapshot again, the server's peak RSS.
    #[allow(clippy::too_many_arguments)]
    fn run_impl(
        &mut self,
        imp: Impl,
        curve: &'static str,
        x: f64,
        method: &str,
        params: &Value,
        calls: usize,
        in_flight: usize,
    ) -> Point {
        let prefix = self.prefix();
        let url = self.redis.url();
        let server = match imp {
            Impl::Floor => self.floor_server(&prefix),
            Impl::Clamator => self.tools.server(Lang::Rust, &url, &prefix, "s0", 256),
        };
        let before = commandstats(&url);
        let report = match imp {
            Impl::Floor => {
                let mut cmd = Command::new(self.tools.bin_dir.join("clamator-bench"));
                cmd.args(["floor-client", &url, &prefix, method, "-"])
                    .args([calls.to_string(), in_flight.to_string()]);
                let out =
                    crate::feed_stdin(&mut cmd, &params.to_string()).expect("run the floor client");
                parse_report(&out.stdout, &out.stderr)
            }
            Impl::Clamator => {
                self.tools
                    .client(Lang::Rust, &url, &prefix, method, params, calls, in_flight)
            }
        };
        let after = commandstats(&url);
        let mut point = Point::new(curve, imp.name(), x, &report);
        point.commands = per_call(&before, &after, report.calls);
        point.commands_per_call = Some(point.commands.values().sum());
        point.server_rss_mib = Some(server.peak_rss_mib());
        drop(server);
        self.flush();
        eprintln!(
            "{curve:<9} {:<9} x={x:<8} {:>9.0} calls/s  p50 {:.3} ms  p99 {:.3} ms  {:.2} cmds/call  errors {}",
            imp.name(),
            point.calls_per_s,
            point.p50_ms,
            point.p99_ms,
            point.commands_per_call.unwrap_or(0.0),
            point.errors
        );
        point
    }

    fn flush(&self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.redis.port().to_string(), "FLUSHALL"])
            .output();
    }

    /// Throughput, latency and commands per call against calls in flight, floor and clamator
    /// alternating, `ROUNDS` rounds a point.
    pub(crate) fn in_flight_curve(&mut self) -> Vec<Point> {
        let add = json!({"a": 1, "b": 2});
        let mut points = Vec::new();
        for in_flight in [1usize, 4, 16, 64, 256, 1024] {
            let calls = match in_flight {
                1 => 5_000,
                4 => 20_000,
                _ => 100_000,
            };
            let mut rounds: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
            for _ in 0..ROUNDS {
                for imp in [Impl::Floor, Impl::Clamator] {
                    let p = self.run_impl(
                        imp,
                        "in_flight",
                        in_flight as f64,
                        "arith.add",
                        &add,
                        calls,
                        in_flight,
                    );
                    rounds.entry(imp.name()).or_default().push(p);
                }
            }
            points.extend(rounds.into_values().map(median));
        }
        points
    }

    /// Throughput and latency against the size of the params and result (`echoText`).
    pub(crate) fn payload_curve(&mut self) -> Vec<Point> {
        let mut points = Vec::new();
        for (bytes, calls) in [
            (100, 20_000),
            (1024, 20_000),
            (10 * 1024, 10_000),
            (100 * 1024, 2_000),
            (1024 * 1024, 300),
        ] {
            let params = json!({"text": "x".repeat(bytes)});
            for imp in [Impl::Floor, Impl::Clamator] {
                points.push(self.run_impl(
                    imp,
                    "payload",
                    bytes as f64,
                    "arith.echoText",
                    &params,
                    calls,
                    16,
                ));
            }
        }
        points
    }

    /// One clamator process serving N services; 256 calls in flight spread over them.
    pub(crate) fn services_curve(&mut self, rt: &tokio::runtime::Runtime) -> Vec<Point> {
        let mut points = Vec::new();
        for services in [1usize, 10, 100] {
            let prefix = self.prefix();
            let url = self.redis.url();
            let mut child = Command::new(self.tools.bin_dir.join("clamator-bench"))
                .args(["echo-server", &url, &prefix, &services.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn the echo server");
            let mut line = String::new();
            let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
            std::io::BufRead::read_line(&mut out, &mut line).expect("READY");
            let server = Proc(child);
            let before = commandstats(&url);
            let report = rt.block_on(async {
                let client = RedisRpcClient::builder()
                    .key_prefix(&prefix)
                    .url(&url)
                    .build()
                    .expect("client");
                client.start().await.expect("start");
                let c = client.clone();
                let report = crate::peers::closed_loop(100_000, 256, move |n| {
                    let c = c.clone();
                    async move {
                        let service = format!("svc{}", n % services as u64);
                        c.call_value(
                            &service,
                            "echo",
                            json!({"n": n}),
                            Some(Duration::from_secs(30)),
                        )
                        .await
                        .is_ok()
                    }
                })
                .await;
                client.stop().await;
                report
            });
            let after = commandstats(&url);
            let mut point = Point::new("services", "clamator", services as f64, &report);
            point.commands = per_call(&before, &after, report.calls);
            point.commands_per_call = Some(point.commands.values().sum());
            point.server_rss_mib = Some(server.peak_rss_mib());
            drop(server);
            self.flush();
            eprintln!(
                "services  clamator  x={services:<8} {:>9.0} calls/s  p50 {:.3} ms  p99 {:.3} ms  rss {:.1} MiB",
                point.calls_per_s, point.p50_ms, point.p99_ms, point.server_rss_mib.unwrap_or(0.0)
            );
            points.push(point);
        }
        points
    }
}

/// The in-process peers at 64 in flight, alternating, `ROUNDS` rounds each.
pub(crate) fn in_process(rt: &tokio::runtime::Runtime) -> Vec<Point> {
    let calls = 500_000;
    let mut rounds: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for (name, report) in [
            (
                "clamator memory",
                rt.block_on(crate::peers::clamator_memory(calls, 64)),
            ),
            (
                "jsonrpsee RpcModule::call",
                rt.block_on(crate::peers::jsonrpsee(calls, 64)),
            ),
            (
                "tarpc in-memory channel",
                rt.block_on(crate::peers::tarpc(calls, 64)),
            ),
        ] {
            eprintln!(
                "in-process {name:<26} {:>9.0} calls/s  p50 {:.4} ms",
                report.calls_per_s, report.p50_ms
            );
            rounds
                .entry(name)
                .or_default()
                .push(Point::new("in_process", name, 64.0, &report));
        }
    }
    rounds.into_values().map(median).collect()
}

/// Markdown for the floor comparison, the curves and the peers.
pub(crate) fn markdown(points: &[Point]) -> String {
    let of = |curve: &str, imp: &str, x: f64| {
        points
            .iter()
            .find(|p| p.curve == curve && p.implementation == imp && p.x == x)
    };
    let mut md = String::from(
        "\n## clamator against the floor (hand-written Redis pair, same wire, same Redis)\n\n\
         Median of 3 alternating rounds; `arith.add`; commands per call from `INFO commandstats`.\n\n\
         | in flight | floor calls/s | clamator calls/s | clamator/floor | floor p50 / p99 ms | clamator p50 / p99 ms | p50 clamator/floor | floor cmds/call | clamator cmds/call | clamator server RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for x in [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0] {
        if let (Some(f), Some(c)) = (of("in_flight", "floor", x), of("in_flight", "clamator", x)) {
            md.push_str(&format!(
                "| {x} | {:.0} | {:.0} | {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
                f.calls_per_s,
                c.calls_per_s,
                c.calls_per_s / f.calls_per_s.max(1.0),
                f.p50_ms,
                f.p99_ms,
                c.p50_ms,
                c.p99_ms,
                c.p50_ms / f.p50_ms.max(1e-9),
                f.commands_per_call.unwrap_or(0.0),
                c.commands_per_call.unwrap_or(0.0),
                c.server_rss_mib.unwrap_or(0.0),
            ));
        }
    }
    if let Some(c) = of("in_flight", "clamator", 256.0) {
        let list: Vec<String> = c
            .commands
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect();
        md.push_str(&format!(
            "\nclamator's commands per call at 256 in flight: {}\n",
            list.join(", ")
        ));
    }
    if let Some(f) = of("in_flight", "floor", 256.0) {
        let list: Vec<String> = f
            .commands
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect();
        md.push_str(&format!(
            "floor's commands per call at 256 in flight: {}\n",
            list.join(", ")
        ));
    }
    md.push_str(
        "\n## Payload size (`echoText`, 16 in flight)\n\n| bytes | floor calls/s | clamator calls/s | clamator/floor | floor p50 / p99 ms | clamator p50 / p99 ms |\n|---|---|---|---|---|---|\n",
    );
    for x in [100.0, 1024.0, 10240.0, 102_400.0, 1_048_576.0] {
        if let (Some(f), Some(c)) = (of("payload", "floor", x), of("payload", "clamator", x)) {
            md.push_str(&format!(
                "| {x} | {:.0} | {:.0} | {:.2} | {:.3} / {:.3} | {:.3} / {:.3} |\n",
                f.calls_per_s,
                c.calls_per_s,
                c.calls_per_s / f.calls_per_s.max(1.0),
                f.p50_ms,
                f.p99_ms,
                c.p50_ms,
                c.p99_ms
            ));
        }
    }
    md.push_str(
        "\n## Services served by one process (256 in flight spread over them)\n\n| services | calls/s | p50 / p99 ms | cmds/call | server RSS MiB |\n|---|---|---|---|---|\n",
    );
    for p in points.iter().filter(|p| p.curve == "services") {
        md.push_str(&format!(
            "| {} | {:.0} | {:.3} / {:.3} | {:.2} | {:.1} |\n",
            p.x,
            p.calls_per_s,
            p.p50_ms,
            p.p99_ms,
            p.commands_per_call.unwrap_or(0.0),
            p.server_rss_mib.unwrap_or(0.0)
        ));
    }
    md.push_str(
        "\n## In-process, against what a Rust user would pick instead (64 in flight, median of 3 alternating rounds)\n\n| implementation | calls/s | p50 ms | rounds (calls/s) | clamator / it |\n|---|---|---|---|---|\n",
    );
    let clamator = points
        .iter()
        .find(|p| p.curve == "in_process" && p.implementation == "clamator memory")
        .map_or(0.0, |p| p.calls_per_s);
    for p in points.iter().filter(|p| p.curve == "in_process") {
        let rounds: Vec<String> = p.rounds.iter().map(|r| format!("{r:.0}")).collect();
        md.push_str(&format!(
            "| {} | {:.0} | {:.4} | {} | {:.2} |\n",
            p.implementation,
            p.calls_per_s,
            p.p50_ms,
            rounds.join(" / "),
            clamator / p.calls_per_s.max(1.0)
        ));
    }
    md
}
