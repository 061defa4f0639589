//! `clamator-interop-server`: serves `arith` and `notifications` over Redis, implemented on
//! the Rust code generated from the committed contract documents (`contracts/`).
//!
//! Flags: `--redis-url`, `--nats-url <url,url…>` (serve over NATS JetStream instead; with
//! `--replicas <n>`, and `--claim-idle-ms` as the ack wait), `--redis-cluster <url,url…>`, `--redis-sentinel <url,url…>` with
//! `--sentinel-master <name>`, `--prefix`, `--instance-id`, `--claim-idle-ms`, `--concurrency`,
//! `--max-deliveries`, `--exec-log <file>` (see `Fixture::with_exec_log`), `--metrics-addr
//! <host:port>` (Prometheus text format on `GET /metrics`).
//! Prints `READY` on stdout once consuming; on SIGTERM (or SIGINT) stops gracefully and prints
//! `HANDLED:<n>` (handler invocations, notifications included) on stderr.

use std::num::NonZeroUsize;
use std::time::Duration;

use clamator::nats::NatsRpcServer;
use clamator::redis::RedisRpcServer;
use clamator_interop::generated::{arith::ArithServer, notifications::NotificationsServer};
use clamator_interop::Fixture;
use tokio::signal::unix::{signal, SignalKind};

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}");
    eprintln!(
        "usage: clamator-interop-server --prefix <p> [--redis-url <url> | --redis-cluster <url,…> \
         | --redis-sentinel <url,…> --sentinel-master <name>] [--instance-id <id>] \
         [--claim-idle-ms <ms>] [--concurrency <n>] [--max-deliveries <n>] [--exec-log <file>] \
         [--metrics-addr <host:port>] [--min-replicas <n>] [--nats-url <url,…> [--replicas <n>]]"
    );
    std::process::exit(2)
}

fn split_urls(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let (mut url, mut prefix, mut instance, mut idle, mut concurrency, mut max_deliveries) =
        (None, None, None, None, None, None);
    let mut exec_log = None;
    let (mut cluster, mut sentinels, mut sentinel_master) = (None, None, None);
    let mut min_replicas = 0;
    let (mut nats, mut replicas) = (None, 1);
    let mut metrics_addr: Option<std::net::SocketAddr> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--redis-url" => url = Some(value),
            "--redis-cluster" => cluster = Some(split_urls(&value)),
            "--redis-sentinel" => sentinels = Some(split_urls(&value)),
            "--sentinel-master" => sentinel_master = Some(value),
            "--min-replicas" => {
                min_replicas = value
                    .parse::<usize>()
                    .unwrap_or_else(|_| usage("bad --min-replicas"));
            }
            "--nats-url" => nats = Some(split_urls(&value)),
            "--replicas" => {
                replicas = value
                    .parse::<usize>()
                    .unwrap_or_else(|_| usage("bad --replicas"));
            }
            "--prefix" => prefix = Some(value),
            "--instance-id" => instance = Some(value),
            "--claim-idle-ms" => {
                idle = Some(Duration::from_millis(
                    value
                        .parse()
                        .unwrap_or_else(|_| usage("bad --claim-idle-ms")),
                ));
            }
            "--concurrency" => {
                concurrency = Some(
                    value
                        .parse::<NonZeroUsize>()
                        .unwrap_or_else(|_| usage("bad --concurrency")),
                );
            }
            "--max-deliveries" => {
                max_deliveries = Some(
                    value
                        .parse::<u32>()
                        .unwrap_or_else(|_| usage("bad --max-deliveries")),
                );
            }
            "--exec-log" => exec_log = Some(std::path::PathBuf::from(value)),
            "--metrics-addr" => {
                metrics_addr = Some(
                    value
                        .parse()
                        .unwrap_or_else(|_| usage("bad --metrics-addr (host:port)")),
                );
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let prefix = prefix.unwrap_or_else(|| usage("--prefix is required"));
    if let Some(addr) = metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
            .and_then(metrics_exporter_prometheus::PrometheusBuilder::install)
            .unwrap_or_else(|e| fail(&format!("cannot serve metrics on {addr}: {e}")));
    }
    let fixture = match &exec_log {
        Some(path) => Fixture::with_exec_log(path, instance.as_deref().unwrap_or(""))
            .unwrap_or_else(|e| fail(&format!("cannot open {}: {e}", path.display()))),
        None => Fixture::default(),
    };
    let layers = match metrics_addr {
        Some(_) => clamator::middleware::ServerLayers::new()
            .layer(clamator::middleware::ServerMetricsLayer),
        None => clamator::middleware::ServerLayers::new(),
    };
    let server = if let Some(urls) = nats {
        let mut builder = NatsRpcServer::builder()
            .urls(urls)
            .key_prefix(prefix)
            .replicas(replicas)
            .layers(layers)
            .service(ArithServer::new(fixture.clone()))
            .service(NotificationsServer::new(fixture.clone()));
        if let Some(instance) = instance {
            builder = builder.instance_id(instance);
        }
        if let Some(idle) = idle {
            builder = builder.ack_wait(idle);
        }
        if let Some(concurrency) = concurrency {
            builder = builder.concurrency(concurrency);
        }
        if let Some(max) = max_deliveries {
            builder = builder.max_deliveries(max);
        }
        Serving::Nats(
            builder
                .build()
                .unwrap_or_else(|e| fail(&format!("invalid settings: {e}"))),
        )
    } else {
        let mut builder = RedisRpcServer::builder()
            .key_prefix(prefix)
            .layers(layers)
            .service(ArithServer::new(fixture.clone()))
            .service(NotificationsServer::new(fixture.clone()));
        // a cluster or Sentinels take the place of --redis-url (the test harness passes one always)
        if let (Some(url), None, None) = (url, &cluster, &sentinels) {
            builder = builder.url(url);
        }
        if let Some(seeds) = cluster {
            builder = builder.connection(clamator::redis::RedisConnection::cluster(seeds));
        }
        match (sentinels, sentinel_master) {
            (Some(sentinels), Some(master)) => {
                builder = builder.connection(clamator::redis::RedisConnection::sentinel(
                    master, sentinels,
                ))
            }
            (None, None) => {}
            _ => usage("--redis-sentinel and --sentinel-master go together"),
        }
        if let Some(instance) = instance {
            builder = builder.instance_id(instance);
        }
        if let Some(idle) = idle {
            builder = builder.consumer_claim_idle(idle);
        }
        if let Some(concurrency) = concurrency {
            builder = builder.concurrency(concurrency);
        }
        builder = builder.min_replicas(min_replicas, Duration::from_secs(1));
        if let Some(max) = max_deliveries {
            builder = builder.max_deliveries(max);
        }
        Serving::Redis(
            builder
                .build()
                .unwrap_or_else(|e| fail(&format!("invalid settings: {e}"))),
        )
    };
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let started = match &server {
        Serving::Redis(s) => s.start().await,
        Serving::Nats(s) => s.start().await,
    };
    if let Err(e) = started {
        fail(&format!("could not start: {e}"));
    }
    println!("READY");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    match &server {
        Serving::Redis(s) => s.stop().await,
        Serving::Nats(s) => s.stop().await,
    }
    eprintln!("HANDLED:{}", fixture.handled());
    Ok(())
}

/// The server, over Redis or (`--nats-url`) NATS.
enum Serving {
    Redis(RedisRpcServer),
    Nats(NatsRpcServer),
}
