//! `clamator`: call, notify, inspect and load-test clamator services over Redis, whatever
//! language they are written in.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator::nats::NatsRpcClient;
use clamator::redis::{redact_url, redis, RedisConnection, RedisRpcClient};
use clamator::{CallError, RpcClient};
use clamator_cli::conn::RawConn;
use clamator_cli::{bench, inspect};
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::Value;

/// `println!` that ends the process quietly when stdout is closed (`clamator … | head -1`),
/// like every Unix tool, instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        write_out(&format!($($arg)*), true)
    };
}

/// `print!` with the same broken-pipe handling as [`out!`].
macro_rules! out_nonl {
    ($($arg:tt)*) => {
        write_out(&format!($($arg)*), false)
    };
}

fn write_out(text: &str, newline: bool) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// Call, notify, inspect and benchmark clamator services over Redis.
#[derive(Debug, Parser)]
#[command(name = "clamator", version, about)]
struct Cli {
    /// Redis URL.
    #[arg(long, global = true, env = "REDIS_URL", default_value = clamator::redis::DEFAULT_REDIS_URL, hide_env_values = true)]
    redis_url: String,
    /// A Redis Cluster instead of one node: seed node URLs, comma-separated (one reachable
    /// seed is enough). Takes the place of --redis-url.
    #[arg(
        long,
        global = true,
        env = "REDIS_CLUSTER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    redis_cluster: Vec<String>,
    /// Redis Sentinels instead of one node: Sentinel URLs, comma-separated; the master is the
    /// one they monitor as --sentinel-master. Takes the place of --redis-url.
    #[arg(
        long,
        global = true,
        env = "REDIS_SENTINEL",
        value_delimiter = ',',
        requires = "sentinel_master",
        conflicts_with = "redis_cluster",
        hide_env_values = true
    )]
    redis_sentinel: Vec<String>,
    /// Calls and notifications count as sent once this many replicas have them (Redis `WAIT`,
    /// up to 1 s; a call they do not confirm fails saying so). Default 0: off.
    #[arg(long, global = true, default_value_t = 0)]
    min_replicas: usize,
    /// NATS JetStream instead of Redis: server URLs, comma-separated (one cluster; the first
    /// reachable is used). `call`, `notify`, `bench`, `inspect` and `dlq` work over it.
    #[arg(
        long,
        global = true,
        env = "NATS_URL",
        value_delimiter = ',',
        conflicts_with_all = ["redis_cluster", "redis_sentinel"],
        hide_env_values = true
    )]
    nats_url: Vec<String>,
    /// The name the Sentinels monitor the master under (with --redis-sentinel).
    #[arg(long, global = true, env = "REDIS_SENTINEL_MASTER")]
    sentinel_master: Option<String>,
    /// Key prefix of the services (required by every command that talks to Redis).
    #[arg(long, global = true, env = "CLAMATOR_PREFIX", default_value = "")]
    prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call `<service.method>` and print the result (or the error object, exiting 1).
    Call {
        /// `<service>.<method>`.
        method: String,
        /// Params as JSON (`-` reads stdin). Default `{}`.
        params: Option<String>,
        /// Call timeout (e.g. `500ms`, `5s`).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Send the notification `<service.method>`.
    Notify {
        /// `<service>.<method>`.
        method: String,
        /// Params as JSON (`-` reads stdin). Default `{}`.
        params: Option<String>,
    },
    /// Show command streams, groups, consumers, pending entries and reply streams.
    Inspect {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate Python, TypeScript and Rust code and a manifest from contract documents;
    /// `codegen import` reads contracts written in Python, `codegen check` compares contracts
    /// of two languages.
    #[command(args_conflicts_with_subcommands = true)]
    Codegen {
        #[command(subcommand)]
        action: Option<CodegenAction>,
        /// A contract document (OpenRPC JSON) or a directory of them.
        #[arg(long)]
        docs: Option<std::path::PathBuf>,
        /// Write `<service>.py` here (Pydantic v2, for the released Python clamator 0.1.9).
        #[arg(long)]
        out_py: Option<std::path::PathBuf>,
        /// Write `<service>.ts` here (Zod, self-contained).
        #[arg(long)]
        out_ts: Option<std::path::PathBuf>,
        /// Write `<service>.rs` here (serde types + a `#[clamator::contract]` trait).
        #[arg(long)]
        out_rust: Option<std::path::PathBuf>,
        /// Write the schema-hash manifest here.
        #[arg(long)]
        manifest: Option<std::path::PathBuf>,
        /// Write nothing; exit 1 naming every file (and contract method) that drifted.
        #[arg(long)]
        check: bool,
    },
    /// Manage dead letters (`<prefix>:dead:<service>`).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Load-test a method (closed loop: `--concurrency` calls in flight).
    Bench {
        /// `<service>.<method>`.
        #[arg(long)]
        method: String,
        /// Params of every call, as JSON (`-` reads stdin).
        #[arg(long, default_value = "{}")]
        params: String,
        /// Number of calls.
        #[arg(long, default_value_t = 10_000)]
        calls: usize,
        /// Calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Stop after this long (e.g. `10s`), even if fewer calls ran.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Per-call timeout.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve a web dashboard of the services under the prefix: rates, backlog, consumers,
    /// pending entries and dead letters (replay, drop), live; a form to call a method.
    Dashboard {
        /// Address to listen on (loopback by default; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:7474")]
        listen: std::net::SocketAddr,
        /// Show only: no replay, drop or call.
        #[arg(long)]
        read_only: bool,
        /// A token every action must carry (the page asks for it once).
        #[arg(long, env = "CLAMATOR_DASHBOARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Contract documents (OpenRPC JSON, a file or a directory) to show each service's
        /// methods and prefill the call form.
        #[arg(long)]
        docs: Option<std::path::PathBuf>,
        /// Time between samples (rates, sparklines, live updates).
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
        /// Consumers idle for less than this count as alive (match your servers'
        /// claim idle plus a margin).
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        alive_within: Duration,
    },
    /// Print a shell completion script: `source <(clamator completions bash)`, or save it where
    /// your shell loads completions from.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `clamator man | man -l -`; `--out-dir DIR` writes it and one
    /// page per command (`clamator-call.1`, …) for installation under `man1/`.
    Man {
        /// Write `clamator.1` and the pages of every command here instead of printing.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CodegenAction {
    /// Import contracts written in another language as contract documents
    /// (`<out>/<service>.openrpc.json`), by running that language.
    Import {
        /// `MODULE:ATTR` of a `clamator_protocol.Contract` (released Python package 0.1.9,
        /// Pydantic v2 models), or `MODULE` for every Contract the module defines.
        #[arg(long, required_unless_present = "ts", conflicts_with = "ts")]
        python: Option<String>,
        /// `FILE.ts:EXPORT` of a TypeScript contract object (`defineContract(...)`: Zod
        /// `params`/`result`), or `FILE.ts` for every exported contract.
        #[arg(long)]
        ts: Option<String>,
        /// `node_modules` with `typescript` and `zod-to-json-schema` (for `--ts`).
        #[arg(long, default_value = "node_modules")]
        node_modules: std::path::PathBuf,
        /// The Node.js binary (for `--ts`).
        #[arg(long = "node-bin", default_value = "node")]
        node_bin: std::path::PathBuf,
        /// A directory to import from (added to `PYTHONPATH`; repeatable).
        #[arg(long)]
        python_path: Vec<std::path::PathBuf>,
        /// The Python interpreter (one with `clamator_protocol` installed).
        #[arg(long = "python-bin", default_value = "python3")]
        python_bin: std::path::PathBuf,
        /// Where to write the documents.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Compare contracts structurally (types, required fields, enums, formats, bounds,
    /// nullability, request vs notification; not titles, descriptions or key order) and name
    /// every difference; exit 1 on drift.
    Check {
        /// A contract document or a directory of them.
        #[arg(long)]
        contract: std::path::PathBuf,
        /// The contract document(s) to compare against (e.g. imported from Python).
        #[arg(long)]
        against: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// List the dead letters of a service.
    List {
        /// The service.
        service: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back on the command stream (the given ids, or `--all`).
    Replay {
        /// The service.
        service: String,
        /// Dead-letter ids.
        ids: Vec<String>,
        /// All of them.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete dead letters (the given ids, or `--all`).
    Drop {
        /// The service.
        service: String,
        /// Dead-letter ids.
        ids: Vec<String>,
        /// All of them.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

/// `250ms`, `5s`, `2m`, or a bare number of milliseconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let Some((num, unit)) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
    else {
        return Err(format!("duration {s:?} needs a unit: {s}ms, {s}s or {s}m"));
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (examples: 500ms, 5s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn split_method(full: &str) -> Result<(&str, &str), String> {
    full.split_once('.')
        .ok_or_else(|| format!("expected <service>.<method>, got {full:?}"))
}

fn read_params(params: Option<&str>) -> Result<Value, String> {
    let text = match params {
        None => return Ok(Value::Object(serde_json::Map::new())),
        Some("-") => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| format!("reading stdin: {e}"))?;
            buf
        }
        Some(text) => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| format!("params are not valid JSON: {e}"))
}

/// Who reads the service's command stream (`None` when Redis cannot tell us).
async fn readers(cli: &Cli, service: &str) -> Option<clamator_cli::diagnose::Readers> {
    let mut conn = open_raw(cli).await.ok()?;
    clamator_cli::diagnose::readers(&mut conn, &cli.prefix, service)
        .await
        .ok()
}

/// A client over Redis or NATS (`--nats-url`).
#[derive(Clone)]
enum AnyClient {
    Redis(RedisRpcClient),
    Nats(NatsRpcClient),
}

impl AnyClient {
    async fn stop(&self) {
        match self {
            Self::Redis(c) => c.stop().await,
            Self::Nats(c) => c.stop().await,
        }
    }
}

impl RpcClient for AnyClient {
    async fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, CallError> {
        match self {
            Self::Redis(c) => c.call_value(service, method, params, timeout).await,
            Self::Nats(c) => c.call_value(service, method, params, timeout).await,
        }
    }

    async fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
    ) -> Result<(), CallError> {
        match self {
            Self::Redis(c) => c.notify_value(service, method, params).await,
            Self::Nats(c) => c.notify_value(service, method, params).await,
        }
    }
}

async fn client(cli: &Cli, timeout: Duration) -> Result<AnyClient, String> {
    if !cli.nats_url.is_empty() {
        let client = NatsRpcClient::builder()
            .urls(cli.nats_url.clone())
            .key_prefix(&cli.prefix)
            .default_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        client.start().await.map_err(|e| e.to_string())?;
        return Ok(AnyClient::Nats(client));
    }
    redis_client(cli, timeout).await.map(AnyClient::Redis)
}

async fn nats(cli: &Cli) -> Result<clamator::nats::async_nats::jetstream::Context, String> {
    // The error names the URLs (passwords as ***).
    clamator_cli::nats::connect(&cli.nats_url)
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))
}

/// Why a NATS call may have timed out, from the service's consumer.
async fn nats_hint(cli: &Cli, service: &str) -> String {
    let Ok(js) = nats(cli).await else {
        return String::new();
    };
    let services = clamator_cli::nats::inspect(&js, &cli.prefix)
        .await
        .unwrap_or_default();
    match services.iter().find(|s| s.service == service).and_then(|s| s.consumer.as_ref()) {
        Some(c) if c.waiting_pulls == 0 && c.ack_pending == 0 => format!(
            ": no server of {service:?} is pulling (the consumer has no pull requests waiting and nothing being handled); start one with prefix {:?}",
            cli.prefix
        ),
        Some(c) => format!(
            ": the consumer of {service:?} has {} request(s) undelivered, {} being handled (or held by a dead server until the ack wait of {} ms), {} server pull(s) waiting",
            c.pending, c.ack_pending, c.ack_wait_ms, c.waiting_pulls
        ),
        None => String::new(),
    }
}

async fn redis_client(cli: &Cli, timeout: Duration) -> Result<RedisRpcClient, String> {
    let connection = match (
        &cli.redis_cluster[..],
        &cli.redis_sentinel[..],
        &cli.sentinel_master,
    ) {
        ([], [], _) => RedisConnection::url(&cli.redis_url),
        ([], sentinels, Some(master)) => RedisConnection::sentinel(master, sentinels.to_vec()),
        (seeds, _, _) => RedisConnection::cluster(seeds.to_vec()),
    };
    let client = RedisRpcClient::builder()
        .key_prefix(&cli.prefix)
        .connection(connection)
        .min_replicas(cli.min_replicas, Duration::from_secs(1))
        .default_timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    if let Err(e) = client.start().await {
        return Err(connect_error(cli, e.to_string()).await);
    }
    Ok(client)
}

async fn open_raw(cli: &Cli) -> redis::RedisResult<RawConn> {
    match (
        &cli.redis_cluster[..],
        &cli.redis_sentinel[..],
        &cli.sentinel_master,
    ) {
        ([], [], _) => RawConn::node(&cli.redis_url).await,
        ([], sentinels, Some(master)) => RawConn::sentinel(sentinels, master).await,
        (seeds, _, _) => RawConn::cluster(seeds).await,
    }
}

async fn raw_connection(cli: &Cli) -> Result<RawConn, String> {
    match open_raw(cli).await {
        Ok(conn) => Ok(conn),
        Err(e) => Err(connect_error(cli, e.to_string()).await),
    }
}

/// A failed connection, named with the (redacted) URL; a refused password in the server's own
/// words rather than redis-rs's `Password authentication failed - AuthenticationFailed`.
async fn connect_error(cli: &Cli, error: String) -> String {
    let first = cli
        .redis_cluster
        .first()
        .or(cli.redis_sentinel.first())
        .unwrap_or(&cli.redis_url);
    let shown = |urls: &[String]| {
        urls.iter()
            .map(|s| redact_url(s))
            .collect::<Vec<_>>()
            .join(",")
    };
    let url = if !cli.redis_cluster.is_empty() {
        format!("the cluster {}", shown(&cli.redis_cluster))
    } else if !cli.redis_sentinel.is_empty() {
        format!("the master of Sentinels {}", shown(&cli.redis_sentinel))
    } else {
        redact_url(&cli.redis_url)
    };
    if error.contains("AuthenticationFailed") {
        if let Some(refusal) = clamator_cli::diagnose::auth_refusal(first).await {
            return format!(
                "cannot connect to {url}: Redis refused the credentials: {refusal} \
                 (check the user and password in --redis-url / REDIS_URL)"
            );
        }
    }
    format!("cannot connect to {url}: {error}")
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    if !matches!(
        cli.command,
        Command::Codegen { .. } | Command::Completions { .. } | Command::Man { .. }
    ) {
        if cli.nats_url.is_empty() {
            clamator::redis::check_key_prefix(&cli.prefix)
                .map_err(|e| format!("{e} (give --prefix or set CLAMATOR_PREFIX)"))?;
        } else if !clamator::nats::is_valid_prefix(&cli.prefix) {
            return Err(format!(
                "key prefix {:?} is not usable over NATS: 1 to 64 ASCII letters, digits, '_' or '-' (give --prefix or set CLAMATOR_PREFIX)",
                cli.prefix
            ));
        }
    }
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "clamator", &mut script);
            out_nonl!("{}", String::from_utf8_lossy(&script));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir: Some(dir) } => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir: None } => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| e.to_string())?;
            out_nonl!("{}", String::from_utf8_lossy(&page));
            Ok(ExitCode::SUCCESS)
        }
        Command::Call {
            method,
            params,
            timeout,
        } => {
            let (service, method) = split_method(method)?;
            let params = read_params(params.as_deref())?;
            let client = client(&cli, *timeout).await?;
            let outcome = client
                .call_value(service, method, params, Some(*timeout))
                .await;
            client.stop().await;
            match outcome {
                Ok(result) => {
                    out!("{}", pretty(&result));
                    Ok(ExitCode::SUCCESS)
                }
                Err(CallError::Rpc(e)) => {
                    out!("{}", pretty(&e));
                    Ok(ExitCode::from(1))
                }
                Err(e) if e.is_timeout() && !cli.nats_url.is_empty() => Err(format!(
                    "{e} after {timeout:?}{}",
                    nats_hint(&cli, service).await
                )),
                Err(e) if e.is_timeout() => Err(match readers(&cli, service).await {
                    Some(r) => {
                        format!("{e} after {timeout:?}: {}", r.explain(&cli.prefix, service))
                    }
                    None => e.to_string(),
                }),
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Notify { method, params } => {
            let (service, method) = split_method(method)?;
            let params = read_params(params.as_deref())?;
            let client = client(&cli, Duration::from_secs(30)).await?;
            let sent = client.notify_value(service, method, params).await;
            client.stop().await;
            sent.map_err(|e| e.to_string())?;
            if !cli.nats_url.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(r) = readers(&cli, service).await.filter(|r| r.nobody()) {
                eprintln!(
                    "warning: sent, but it may never be read: {}",
                    r.explain(&cli.prefix, service)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Codegen {
            action:
                Some(CodegenAction::Import {
                    python,
                    python_path,
                    python_bin,
                    ts,
                    node_modules,
                    node_bin,
                    out,
                }),
            ..
        } => {
            let docs = match (python, ts) {
                (Some(python), _) => {
                    let how = clamator_codegen::import::PythonImport {
                        python: python_bin.clone(),
                        python_path: python_path.clone(),
                    };
                    clamator_codegen::import::python(python, &how)
                }
                (None, Some(ts)) => {
                    let how = clamator_codegen::import::TsImport {
                        node: node_bin.clone(),
                        node_modules: node_modules.clone(),
                    };
                    clamator_codegen::import::typescript(ts, &how)
                }
                (None, None) => return Err("give --python or --ts".into()),
            }
            .map_err(|e| e.to_string())?;
            for path in
                clamator_codegen::import::write_documents(&docs, out).map_err(|e| e.to_string())?
            {
                out!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Codegen {
            action: Some(CodegenAction::Check { contract, against }),
            ..
        } => {
            let ours = clamator_codegen::read_docs(contract).map_err(|e| e.to_string())?;
            let theirs = clamator_codegen::read_docs(against).map_err(|e| e.to_string())?;
            if ours.is_empty() {
                return Err(format!("no contract documents in {}", contract.display()));
            }
            let differences = clamator_codegen::compare(&ours, &theirs);
            if differences.is_empty() {
                out!(
                    "codegen check: {} contract(s) match {}",
                    ours.len(),
                    against.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            for d in &differences {
                out!("drift: {d}");
            }
            eprintln!(
                "{} difference(s) between {} and {}",
                differences.len(),
                contract.display(),
                against.display()
            );
            Ok(ExitCode::from(1))
        }
        Command::Codegen {
            action: None,
            docs,
            out_py,
            out_ts,
            out_rust,
            manifest,
            check,
        } => {
            let docs = docs.as_ref().ok_or(
                "codegen needs --docs (or a subcommand: import, check); see clamator codegen --help",
            )?;
            let contracts = clamator_codegen::read_docs(docs).map_err(|e| e.to_string())?;
            if contracts.is_empty() {
                return Err(format!("no contract documents in {}", docs.display()));
            }
            let outputs = clamator_codegen::Outputs {
                python: out_py.clone(),
                typescript: out_ts.clone(),
                rust: out_rust.clone(),
                manifest: manifest.clone(),
            };
            let files = clamator_codegen::render(&contracts, &outputs);
            if *check {
                let drift = clamator_codegen::check(&files);
                if drift.is_empty() {
                    out!("codegen: {} file(s) up to date", files.len());
                    return Ok(ExitCode::SUCCESS);
                }
                for d in &drift {
                    eprintln!("drift: {d}");
                }
                return Ok(ExitCode::from(1));
            }
            clamator_codegen::write(&files).map_err(|e| e.to_string())?;
            for (path, _) in &files {
                out!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { action } if !cli.nats_url.is_empty() => {
            let js = nats(&cli).await?;
            let err = |e: Box<dyn std::error::Error + Send + Sync>| e.to_string();
            match action {
                DlqAction::List { service, json } => {
                    let letters = clamator_cli::nats::dlq_list(&js, &cli.prefix, service)
                        .await
                        .map_err(err)?;
                    if *json {
                        out!("{}", pretty(&letters));
                    } else {
                        out!(
                            "{} dead letter(s) in {}",
                            letters.len(),
                            clamator::nats::dead_letter_stream(&cli.prefix, service)
                        );
                        for l in &letters {
                            let shown: String = l.envelope.chars().take(120).collect();
                            let seq = l.sequence.map_or("?".into(), |s| s.to_string());
                            out!("{}  sequence {seq}  {}\n    {shown}", l.id, l.reason);
                        }
                    }
                }
                DlqAction::Replay { service, ids, all } | DlqAction::Drop { service, ids, all } => {
                    if ids.is_empty() && !*all {
                        return Err("give dead-letter ids, or --all".into());
                    }
                    let replay = matches!(action, DlqAction::Replay { .. });
                    let n = if replay {
                        clamator_cli::nats::dlq_replay(&js, &cli.prefix, service, ids).await
                    } else {
                        clamator_cli::nats::dlq_drop(&js, &cli.prefix, service, ids).await
                    }
                    .map_err(err)?;
                    out!(
                        "{} {n} dead letter(s)",
                        if replay { "replayed" } else { "dropped" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { action } => {
            let mut conn = raw_connection(&cli).await?;
            let err = |e: redis::RedisError| e.to_string();
            match action {
                DlqAction::List { service, json } => {
                    let letters = clamator_cli::dlq::list(&mut conn, &cli.prefix, service)
                        .await
                        .map_err(err)?;
                    if *json {
                        out!("{}", pretty(&letters));
                    } else {
                        out!(
                            "{} dead letter(s) in {}",
                            letters.len(),
                            clamator::redis::dead_letter_stream(&cli.prefix, service)
                        );
                        for l in &letters {
                            let envelope = l
                                .fields
                                .iter()
                                .find(|(k, _)| k == "envelope")
                                .map_or("", |(_, v)| v.as_str());
                            let shown: String = envelope.chars().take(120).collect();
                            out!("{}  entry {}  {}\n    {shown}", l.id, l.entry_id, l.reason);
                        }
                    }
                }
                DlqAction::Replay { service, ids, all } | DlqAction::Drop { service, ids, all } => {
                    if ids.is_empty() && !*all {
                        return Err("give dead-letter ids, or --all".into());
                    }
                    let replay = matches!(action, DlqAction::Replay { .. });
                    let n = if replay {
                        clamator_cli::dlq::replay(&mut conn, &cli.prefix, service, ids)
                            .await
                            .map_err(err)?
                    } else {
                        clamator_cli::dlq::drop(&mut conn, &cli.prefix, service, ids)
                            .await
                            .map_err(err)?
                    };
                    out!(
                        "{} {n} dead letter(s)",
                        if replay { "replayed" } else { "dropped" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboard {
            listen,
            read_only,
            token,
            docs,
            interval,
            alive_within,
        } => {
            if !cli.nats_url.is_empty() {
                return Err("the dashboard works over Redis only (not --nats-url); use `clamator inspect --nats-url …`".into());
            }
            if !listen.ip().is_loopback() && token.is_none() && !*read_only {
                return Err(format!(
                    "--listen {listen} is not loopback: give --token (or --read-only) so that \
                     nobody else on the network can replay, drop or call"
                ));
            }
            let docs = match docs {
                Some(path) => clamator_codegen::read_docs(path).map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            let conn = raw_connection(&cli).await?;
            let client = if *read_only {
                None
            } else {
                Some(redis_client(&cli, Duration::from_secs(10)).await?)
            };
            let options = clamator_cli::dashboard::Options {
                prefix: cli.prefix.clone(),
                listen: *listen,
                read_only: *read_only,
                token: token.clone(),
                interval: (*interval).max(Duration::from_millis(100)),
                alive_within: *alive_within,
                history: 300,
                docs,
            };
            let served = clamator_cli::dashboard::serve(
                options,
                conn,
                client.clone(),
                |addr| {
                    out!(
                        "dashboard for prefix {} on http://{addr}/{} (Ctrl-C stops it)",
                        cli.prefix,
                        if *read_only { " (read-only)" } else { "" }
                    )
                },
                shutdown_signal(),
            )
            .await;
            if let Some(client) = client {
                client.stop().await;
            }
            served.map_err(|e| format!("dashboard on {listen}: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { json } if !cli.nats_url.is_empty() => {
            let js = nats(&cli).await?;
            let services = clamator_cli::nats::inspect(&js, &cli.prefix)
                .await
                .map_err(|e| e.to_string())?;
            if *json {
                out!("{}", pretty(&services));
            } else {
                out_nonl!("{}", clamator_cli::nats::Table(&services));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { json } => {
            let mut conn = raw_connection(&cli).await?;
            let report = inspect::inspect(&mut conn, &cli.prefix)
                .await
                .map_err(|e| e.to_string())?;
            if *json {
                out!("{}", pretty(&report));
            } else {
                out_nonl!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            method,
            params,
            calls,
            concurrency,
            duration,
            timeout,
            json,
        } => {
            let (service, method) = split_method(method)?;
            let params =
                read_params(Some(params.as_str())).map_err(|e| format!("--params: {e}"))?;
            let spec = bench::BenchSpec {
                service: service.to_owned(),
                method: method.to_owned(),
                params,
                calls: *calls,
                concurrency: *concurrency,
                duration: *duration,
                timeout: Some(*timeout),
            };
            let client = client(&cli, *timeout).await?;
            let progress = Arc::new(AtomicUsize::new(0));
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new(*calls as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} calls  {per_sec}  eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                let (bar2, progress2) = (bar.clone(), Arc::clone(&progress));
                tokio::spawn(async move {
                    loop {
                        bar2.set_position(progress2.load(Ordering::Relaxed) as u64);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
                bar
            });
            let report = bench::run(&client, &spec, progress).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            client.stop().await;
            if *json {
                out!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| e.to_string())?
                );
            } else {
                out!("{report}");
            }
            if report.calls > 0 && report.ok == 0 {
                // The latencies above are of successful calls: there are none.
                eprintln!(
                    "error: no call succeeded ({} calls; errors: {:?})",
                    report.calls, report.errors
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
