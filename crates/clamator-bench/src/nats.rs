//! NATS rows: the Redis scenarios (S1 latency, S2 throughput, S3 I/O-bound handler, S4 pool of
//! two, S5 64 KiB) run Rust client → Rust server over NATS JetStream on a private
//! `nats-server -js`, next to the Redis rows, plus the floor: plain `async-nats` core
//! request/reply (a subscriber that parses the envelope and answers; no stream, no ack, no
//! validation) on the same NATS server.

use std::process::Command;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use clamator::nats::async_nats;
use clamator::{CallError, RpcClient, RpcError};
use clamator_cli::bench::{self, BenchReport, BenchSpec};
use clamator_test_support::nats::NatsServer;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::{errors, feed_stdin, parse_report, Proc, Runner};

/// The floor's subject.
const FLOOR_SUBJECT: &str = "floor.arith";

/// The floor server: answers `arith.add` / `arith.echoText` envelopes on `floor.arith`.
pub(crate) async fn floor_server(url: &str) -> Result<(), async_nats::Error> {
    let client = async_nats::connect(url).await?;
    let mut sub = client
        .queue_subscribe(FLOOR_SUBJECT, "floor".into())
        .await?;
    client.flush().await?;
    println!("READY");
    while let Some(m) = sub.next().await {
        let Some(reply) = m.reply else { continue };
        let Ok(request) = serde_json::from_slice::<Value>(&m.payload) else {
            continue;
        };
        let response =
            json!({"jsonrpc": "2.0", "id": request["id"], "result": floor_result(&request)});
        client
            .publish(reply, serde_json::to_vec(&response)?.into())
            .await?;
    }
    Ok(())
}

/// A client of the floor: one core NATS request per call, the envelope built by hand.
#[derive(Clone)]
struct FloorClient(async_nats::Client);

impl RpcClient for FloorClient {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        _timeout: Option<std::time::Duration>,
    ) -> Result<Value, CallError> {
        let id = uuid_like();
        let request = json!({"jsonrpc": "2.0", "method": format!("{service}.{method}"), "params": params, "id": id});
        let reply = self
            .0
            .request(
                FLOOR_SUBJECT,
                serde_json::to_vec(&request).expect("json").into(),
            )
            .await
            .map_err(|e| CallError::Rpc(RpcError::new(-1, e.to_string())))?;
        let v: Value = serde_json::from_slice(&reply.payload)
            .map_err(|e| CallError::Rpc(RpcError::new(-1, e.to_string())))?;
        Ok(v["result"].clone())
    }

    async fn notify_value(&self, _: &str, _: &str, _: Value) -> Result<(), CallError> {
        Ok(())
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "floor-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a floor client runs: `calls` calls of `service.method`, `in_flight` at once.
fn spec_of(method: &str, params: &Value, calls: usize, in_flight: usize) -> BenchSpec {
    let (service, method) = method.split_once('.').unwrap_or(("arith", method));
    BenchSpec {
        service: service.into(),
        method: method.into(),
        params: params.clone(),
        calls,
        concurrency: in_flight,
        duration: None,
        timeout: None,
    }
}

/// The floor client: a closed loop of `in_flight` core requests.
pub(crate) async fn floor_client(
    url: &str,
    method: &str,
    params: &Value,
    calls: usize,
    in_flight: usize,
) -> Result<BenchReport, async_nats::Error> {
    let client = FloorClient(async_nats::connect(url).await?);
    let spec = spec_of(method, params, calls, in_flight);
    Ok(bench::run(&client, &spec, Arc::new(AtomicUsize::new(0))).await)
}

/// The JetStream floor's stream and subject.
const JS_FLOOR_STREAM: &str = "floorjs";
const JS_FLOOR_SUBJECT: &str = "floorjs.arith";

fn floor_result(request: &Value) -> Value {
    let p = &request["params"];
    match request["method"].as_str() {
        Some("arith.add") => {
            json!({"sum": p["a"].as_f64().unwrap_or(0.0) + p["b"].as_f64().unwrap_or(0.0)})
        }
        _ => json!({"text": p["text"]}),
    }
}

/// The JetStream floor server: the same path as clamator over NATS, written by hand with
/// async-nats alone: a work-queue stream, one durable pull consumer read as a continuous
/// stream of messages, a core reply to the `Reply-To` header, then an ack. No validation, no
/// slots, no in-progress acks, no deadlines, no dead letters.
pub(crate) async fn js_floor_server(url: &str) -> Result<(), async_nats::Error> {
    use async_nats::jetstream::{self, consumer::pull, stream};
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(stream::Config {
            name: JS_FLOOR_STREAM.into(),
            subjects: vec![JS_FLOOR_SUBJECT.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .get_or_create_consumer(
            "arith",
            pull::Config {
                durable_name: Some("arith".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 100_000,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    println!("READY");
    while let Some(m) = messages.next().await {
        let m = m?;
        let reply = m.headers.as_ref().and_then(|h| h.get("Reply-To"));
        let Some(reply) = reply.map(|v| v.as_str().to_owned()) else {
            continue;
        };
        let Ok(request) = serde_json::from_slice::<Value>(&m.payload) else {
            continue;
        };
        let response =
            json!({"jsonrpc": "2.0", "id": request["id"], "result": floor_result(&request)});
        client
            .publish(reply, serde_json::to_vec(&response)?.into())
            .await?;
        m.ack().await?;
    }
    Ok(())
}

type JsWaiters =
    std::sync::Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<Value>>>;

/// A client of the JetStream floor: a JetStream publish (waiting for the stream's ack) per
/// call, replies on one core subscription.
#[derive(Clone)]
struct JsFloorClient {
    js: async_nats::jetstream::Context,
    inbox: String,
    waiters: Arc<JsWaiters>,
}

impl RpcClient for JsFloorClient {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        _timeout: Option<std::time::Duration>,
    ) -> Result<Value, CallError> {
        let fail = |e: String| CallError::Rpc(RpcError::new(-1, e));
        let id = uuid_like();
        let request = json!({"jsonrpc": "2.0", "method": format!("{service}.{method}"), "params": params, "id": id});
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiters.lock().expect("waiters").insert(id.clone(), tx);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Reply-To", self.inbox.as_str());
        headers.insert("Nats-Msg-Id", id.as_str());
        let body = serde_json::to_vec(&request).expect("json").into();
        self.js
            .publish_with_headers(JS_FLOOR_SUBJECT, headers, body)
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        let reply = rx.await.map_err(|e| fail(e.to_string()))?;
        Ok(reply["result"].clone())
    }

    async fn notify_value(&self, _: &str, _: &str, _: Value) -> Result<(), CallError> {
        Ok(())
    }
}

/// The JetStream floor client: a closed loop of `in_flight` calls.
pub(crate) async fn js_floor_client(
    url: &str,
    method: &str,
    params: &Value,
    calls: usize,
    in_flight: usize,
) -> Result<BenchReport, async_nats::Error> {
    let client = async_nats::connect(url).await?;
    let inbox = format!("floorjs.replies.{}", std::process::id());
    let mut sub = client.subscribe(inbox.clone()).await?;
    client.flush().await?;
    let waiters: Arc<JsWaiters> = Arc::default();
    let reader = {
        let waiters = waiters.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
                    continue;
                };
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                if let Some(tx) = waiters.lock().expect("waiters").remove(&id) {
                    let _ = tx.send(v);
                }
            }
        })
    };
    let floor = JsFloorClient {
        js: async_nats::jetstream::new(client),
        inbox,
        waiters,
    };
    let spec = spec_of(method, params, calls, in_flight);
    let report = bench::run(&floor, &spec, Arc::new(AtomicUsize::new(0))).await;
    reader.abort();
    Ok(report)
}

/// Which side runs a NATS case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NatsImpl {
    /// clamator over NATS JetStream (interop server + `clamator bench --nats-url`).
    Clamator,
    /// Plain async-nats request/reply.
    Floor,
    /// The same JetStream path as clamator, hand-written on async-nats.
    JsFloor,
}

impl NatsImpl {
    /// The `clamator-bench` modes of a floor's server and client.
    fn floor_modes(self) -> (&'static str, &'static str) {
        match self {
            Self::JsFloor => ("nats-js-floor-server", "nats-js-floor-client"),
            _ => ("nats-floor-server", "nats-floor-client"),
        }
    }
}

impl Runner {
    /// One NATS case: `servers` servers, a client with `in_flight` calls in flight.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn nats_case(
        &mut self,
        nats: &NatsServer,
        imp: NatsImpl,
        servers: usize,
        method: &str,
        params: &Value,
        calls: usize,
        in_flight: usize,
    ) -> BenchReport {
        let prefix = self.prefix();
        let url = nats.url();
        let bin = self.tools.bin_dir.clone();
        let procs: Vec<Proc> = (0..servers)
            .map(|i| match imp {
                NatsImpl::Clamator => Proc::ready(
                    Command::new(bin.join("clamator-interop-server"))
                        .args(["--nats-url", &url, "--prefix", &prefix])
                        .args(["--instance-id", &format!("s{i}"), "--concurrency", "256"]),
                ),
                NatsImpl::Floor | NatsImpl::JsFloor => Proc::ready(
                    Command::new(bin.join("clamator-bench")).args([imp.floor_modes().0, &url]),
                ),
            })
            .collect();
        let (calls_s, in_flight_s) = (calls.to_string(), in_flight.to_string());
        let mut cmd = match imp {
            NatsImpl::Clamator => {
                let mut c = Command::new(bin.join("clamator"));
                c.args(["--nats-url", &url, "--prefix", &prefix, "bench", "--json"])
                    .args(["--method", method, "--params", "-", "--calls", &calls_s])
                    .args(["--concurrency", &in_flight_s]);
                c
            }
            NatsImpl::Floor | NatsImpl::JsFloor => {
                let mut c = Command::new(bin.join("clamator-bench"));
                c.args([
                    imp.floor_modes().1,
                    &url,
                    method,
                    "-",
                    &calls_s,
                    &in_flight_s,
                ]);
                c
            }
        };
        let out = feed_stdin(&mut cmd, &params.to_string()).expect("run the bench client");
        let report = parse_report(&out.stdout, &out.stderr);
        drop(procs);
        eprintln!(
            "NATS {:<9} {servers} server(s) {method:<15} {in_flight:>4} in flight: {:>9.0} calls/s  p50 {:.3} ms  p99 {:.3} ms  errors {:?}",
            format!("{imp:?}"),
            report.calls_per_s,
            report.p50_ms,
            report.p99_ms,
            report.errors
        );
        report
    }

    /// The NATS rows of the suite (same scenarios as Redis) and the async-nats floor.
    pub(crate) fn nats_rows(&mut self) {
        let nats = NatsServer::start();
        let add = json!({"a": 1, "b": 2});
        let pairing = || "Rust client → Rust server, NATS JetStream".to_owned();
        for imp in [NatsImpl::Clamator, NatsImpl::JsFloor, NatsImpl::Floor] {
            let name = match imp {
                NatsImpl::Clamator => pairing(),
                NatsImpl::JsFloor => "hand-written JetStream work queue (floor), NATS".to_owned(),
                NatsImpl::Floor => "plain async-nats request/reply (floor), NATS".to_owned(),
            };
            let rep = self.nats_case(&nats, imp, 1, "arith.add", &add, 20_000, 1);
            let e = errors(&rep);
            self.push(
                "S1",
                name.clone(),
                "p50 latency",
                "ms",
                rep.p50_ms,
                1,
                e,
                String::new(),
            );
            self.push(
                "S1",
                name.clone(),
                "p99 latency",
                "ms",
                rep.p99_ms,
                1,
                e,
                String::new(),
            );
            for in_flight in [64, 256] {
                let rep = self.nats_case(&nats, imp, 1, "arith.add", &add, 200_000, in_flight);
                let metric = if in_flight == 64 {
                    "throughput @64"
                } else {
                    "throughput @256"
                };
                self.push(
                    "S2",
                    name.clone(),
                    metric,
                    "calls/s",
                    rep.calls_per_s,
                    in_flight,
                    errors(&rep),
                    String::new(),
                );
            }
            let text = json!({"text": "x".repeat(64 * 1024)});
            let rep = self.nats_case(&nats, imp, 1, "arith.echoText", &text, 20_000, 16);
            self.push(
                "S5",
                name.clone(),
                "throughput, 64 KiB echoText",
                "calls/s",
                rep.calls_per_s,
                16,
                errors(&rep),
                String::new(),
            );
            self.push(
                "S5",
                name,
                "p50 latency, 64 KiB echoText",
                "ms",
                rep.p50_ms,
                16,
                errors(&rep),
                String::new(),
            );
        }
        let slow = json!({"a": 1, "b": 2, "sleepMs": 10});
        let rep = self.nats_case(
            &nats,
            NatsImpl::Clamator,
            1,
            "arith.slowAdd",
            &slow,
            2_000,
            200,
        );
        self.push(
            "S3",
            pairing(),
            "throughput, slowAdd 10 ms",
            "calls/s",
            rep.calls_per_s,
            200,
            errors(&rep),
            String::new(),
        );
        let rep = self.nats_case(
            &nats,
            NatsImpl::Clamator,
            2,
            "arith.add",
            &add,
            200_000,
            256,
        );
        self.push(
            "S4",
            pairing() + " ×2",
            "throughput, 2-server pool",
            "calls/s",
            rep.calls_per_s,
            256,
            errors(&rep),
            String::new(),
        );
    }
}

/// The quick comparison `clamator-bench --nats [rounds]`: S1 (p50, 1 in flight) and S2
/// (calls/s, 256 in flight) of clamator over Redis (Rust and Python 0.1.9), over NATS with one
/// and two servers, the hand-written JetStream floor and the core request/reply floor. Rounds
/// alternate (every implementation once per round, so a busy moment of the machine hits them
/// all); medians as a markdown table with the ratios.
pub(crate) fn quick(r: &mut Runner, rounds: usize) -> String {
    use crate::Lang;
    let nats = NatsServer::start();
    let add = json!({"a": 1, "b": 2});
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let calls = |in_flight: usize, fast: bool| match (in_flight, fast) {
        (1, true) => 10_000,
        (1, false) => 2_000,
        (_, true) => 100_000,
        (_, false) => 10_000,
    };
    const NAMES: [&str; 6] = [
        "clamator Rust, Redis",
        "clamator Python 0.1.9, Redis",
        "clamator Rust, NATS JetStream",
        "clamator Rust, NATS JetStream, 2 servers",
        "hand-written JetStream work queue (floor)",
        "async-nats request/reply (floor)",
    ];
    let one = |r: &mut Runner, which: usize, f: usize| -> BenchReport {
        match which {
            0 => {
                r.redis_case(
                    "Q",
                    &[Lang::Rust],
                    Lang::Rust,
                    256,
                    "arith.add",
                    &add,
                    calls(f, true),
                    f,
                )
                .0
            }
            1 => {
                let f = f.min(crate::PY_MAX_IN_FLIGHT);
                r.redis_case(
                    "Q",
                    &[Lang::Py],
                    Lang::Py,
                    64,
                    "arith.add",
                    &add,
                    calls(f, false),
                    f,
                )
                .0
            }
            2 | 3 => r.nats_case(
                &nats,
                NatsImpl::Clamator,
                which - 1,
                "arith.add",
                &add,
                calls(f, true),
                f,
            ),
            4 => r.nats_case(
                &nats,
                NatsImpl::JsFloor,
                1,
                "arith.add",
                &add,
                calls(f, true),
                f,
            ),
            _ => r.nats_case(
                &nats,
                NatsImpl::Floor,
                1,
                "arith.add",
                &add,
                calls(f, true),
                f,
            ),
        }
    };
    let mut p50: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    let mut tput: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    for round in 0..rounds {
        eprintln!("== round {} of {rounds}", round + 1);
        for which in 0..NAMES.len() {
            p50[which].push(one(r, which, 1).p50_ms);
            tput[which].push(one(r, which, 256).calls_per_s);
        }
    }
    let rows: Vec<(&str, f64, f64)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, median(p50[i].clone()), median(tput[i].clone())))
        .collect();
    let (redis, py, js_floor, floor) = (rows[0].2, rows[1].2, rows[4].2, rows[5].2);
    let mut md = format!(
        "{rounds} alternating round(s), medians; Python at {} in flight (its limit).\n\n| implementation | p50, 1 in flight | calls/s @256 | vs Python/Redis | vs Rust/Redis | share of JetStream floor | share of request/reply floor |\n|---|---|---|---|---|---|---|\n",
        crate::PY_MAX_IN_FLIGHT
    );
    for (name, p50, tput) in &rows {
        md.push_str(&format!(
            "| {name} | {p50:.3} ms | {tput:.0} | {:.1}× | {:.2}× | {:.0}% | {:.0}% |\n",
            tput / py,
            tput / redis,
            100.0 * tput / js_floor,
            100.0 * tput / floor
        ));
    }
    md.push_str(&format!(
        "\nPer round, calls/s @256: {}\n",
        NAMES
            .iter()
            .zip(&tput)
            .map(|(n, v)| format!("{n}: {:?}", v.iter().map(|x| x.round()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    md
}
