//! The command line: flags and commands (clap), and the parsers of their values.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

/// Call, notify, inspect and benchmark clamator services over Redis or NATS, whatever language
/// they are written in; generate code from contract documents.
#[derive(Debug, Parser)]
#[command(name = "clamator", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the services are. Given before the command (`clamator --prefix app call …`) or after
/// it ([`ConnAfter`]); the commands that need no broker (`codegen`, `completions`, `man`) do
/// not list them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct ConnArgs {
    /// Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS).
    #[arg(long, env = "REDIS_URL", default_value = clamator::redis::DEFAULT_REDIS_URL, hide_env_values = true)]
    pub(crate) redis_url: String,
    /// A Redis Cluster instead of one node: seed node URLs, comma-separated (one reachable
    /// seed is enough). Takes the place of --redis-url.
    #[arg(
        long,
        env = "REDIS_CLUSTER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) redis_cluster: Vec<String>,
    /// Redis Sentinels instead of one node: Sentinel URLs, comma-separated; the master is the
    /// one they monitor as --sentinel-master. Takes the place of --redis-url.
    #[arg(
        long,
        env = "REDIS_SENTINEL",
        value_delimiter = ',',
        requires = "sentinel_master",
        conflicts_with = "redis_cluster",
        hide_env_values = true
    )]
    pub(crate) redis_sentinel: Vec<String>,
    /// The name the Sentinels monitor the master under (with --redis-sentinel).
    #[arg(long, env = "REDIS_SENTINEL_MASTER")]
    pub(crate) sentinel_master: Option<String>,
    /// Calls and notifications count as sent once this many replicas have them (Redis `WAIT`,
    /// up to 1 s; a call they do not confirm fails saying so). Default 0: off.
    #[arg(long, default_value_t = 0)]
    pub(crate) min_replicas: usize,
    /// NATS JetStream instead of Redis: server URLs, comma-separated (one cluster; the first
    /// reachable is used). `call`, `notify`, `bench`, `inspect` and `dlq` work over it.
    #[arg(
        long,
        env = "NATS_URL",
        value_delimiter = ',',
        conflicts_with_all = ["redis_cluster", "redis_sentinel"],
        hide_env_values = true
    )]
    pub(crate) nats_url: Vec<String>,
    /// Key prefix of the services (required by every command that talks to a broker).
    #[arg(long, env = "CLAMATOR_PREFIX", default_value = "")]
    pub(crate) prefix: String,
}

/// The connection flags given after the command (`clamator call --prefix app …`): they take
/// the place of the same flags given before it. No environment variables and no defaults
/// here: those are [`ConnArgs`]'s.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Connection (also before the command; see `clamator --help`)")]
pub(crate) struct ConnAfter {
    /// Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS).
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// A Redis Cluster: seed node URLs, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) redis_cluster: Vec<String>,
    /// Redis Sentinels: Sentinel URLs, comma-separated (with --sentinel-master).
    #[arg(long, value_delimiter = ',')]
    pub(crate) redis_sentinel: Vec<String>,
    /// The name the Sentinels monitor the master under.
    #[arg(long)]
    pub(crate) sentinel_master: Option<String>,
    /// Replicas that must have each call (Redis `WAIT`).
    #[arg(long)]
    pub(crate) min_replicas: Option<usize>,
    /// NATS JetStream server URLs, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) nats_url: Vec<String>,
    /// Key prefix of the services.
    #[arg(long)]
    pub(crate) prefix: Option<String>,
}

impl Command {
    /// The connection flags given after the command, if it takes any.
    pub(crate) fn conn_after(&self) -> Option<&ConnAfter> {
        match self {
            Self::Call(a) => Some(&a.conn),
            Self::Notify(a) => Some(&a.conn),
            Self::Inspect(a) => Some(&a.conn),
            Self::Bench(a) => Some(&a.conn),
            Self::Dashboard(a) => Some(&a.conn),
            Self::Dlq {
                action:
                    DlqAction::List { conn, .. }
                    | DlqAction::Replay { conn, .. }
                    | DlqAction::Drop { conn, .. },
            } => Some(conn),
            Self::Codegen(_) | Self::Completions { .. } | Self::Man { .. } => None,
        }
    }
}

impl ConnArgs {
    /// These flags, with those given after the command in their place.
    pub(crate) fn with(&self, after: &ConnAfter) -> Self {
        let pick = |after: &Vec<String>, before: &Vec<String>| {
            if after.is_empty() {
                before.clone()
            } else {
                after.clone()
            }
        };
        let mut conn = Self {
            redis_url: after
                .redis_url
                .clone()
                .unwrap_or_else(|| self.redis_url.clone()),
            redis_cluster: pick(&after.redis_cluster, &self.redis_cluster),
            redis_sentinel: pick(&after.redis_sentinel, &self.redis_sentinel),
            sentinel_master: after
                .sentinel_master
                .clone()
                .or_else(|| self.sentinel_master.clone()),
            min_replicas: after.min_replicas.unwrap_or(self.min_replicas),
            nats_url: pick(&after.nats_url, &self.nats_url),
            prefix: after.prefix.clone().unwrap_or_else(|| self.prefix.clone()),
        };
        // A broker named after the command replaces the one named before it (or by the
        // environment), whichever kind it was.
        if after.redis_url.is_some()
            || !after.redis_cluster.is_empty()
            || !after.redis_sentinel.is_empty()
        {
            conn.nats_url.clear();
        }
        if !after.nats_url.is_empty() || after.redis_url.is_some() {
            conn.redis_cluster.clear();
            conn.redis_sentinel.clear();
        }
        conn
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Call `<service.method>` and print the result (or the error object, exiting 1).
    Call(CallArgs),
    /// Send the notification `<service.method>`.
    Notify(NotifyArgs),
    /// Show the services: streams, consumers, pending requests, dead letters, reply streams.
    Inspect(InspectArgs),
    /// Generate Python, TypeScript and Rust code and a manifest from contract documents;
    /// `codegen import` reads contracts written in Python or TypeScript, `codegen check`
    /// compares contracts of two languages.
    Codegen(CodegenArgs),
    /// Manage dead letters.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Load-test a method (closed loop: `--concurrency` calls in flight).
    Bench(BenchArgs),
    /// Serve a web dashboard of the services under the prefix: rates, backlog, consumers,
    /// pending entries and dead letters (replay, drop), live; a form to call a method.
    Dashboard(DashboardArgs),
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
        out_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// `<service>.<method>`.
    pub(crate) method: String,
    /// Params as JSON (`-` reads stdin). Default `{}`.
    pub(crate) params: Option<String>,
    /// Call timeout (e.g. `500ms`, `5s`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Send it even if no server has ever served the service under the prefix (the request
    /// waits in a new stream for one to come). Without it such a call fails at once, naming
    /// the services that exist.
    #[arg(long)]
    pub(crate) create: bool,
    #[command(flatten)]
    pub(crate) conn: ConnAfter,
}

#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// `<service>.<method>`.
    pub(crate) method: String,
    /// Params as JSON (`-` reads stdin). Default `{}`.
    pub(crate) params: Option<String>,
    /// Send it even if no server has ever served the service under the prefix.
    #[arg(long)]
    pub(crate) create: bool,
    #[command(flatten)]
    pub(crate) conn: ConnAfter,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: ConnAfter,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct CodegenArgs {
    #[command(subcommand)]
    pub(crate) action: Option<CodegenAction>,
    /// A contract document (OpenRPC JSON) or a directory of them.
    #[arg(long)]
    pub(crate) docs: Option<PathBuf>,
    /// Write `<service>.py` here (Pydantic v2, for the released Python clamator 0.1.9).
    #[arg(long)]
    pub(crate) out_py: Option<PathBuf>,
    /// Write `<service>.ts` here (Zod, self-contained).
    #[arg(long)]
    pub(crate) out_ts: Option<PathBuf>,
    /// Write the TypeScript in the original `@clamator/codegen` shape instead: import each
    /// contract object from this path (`{service}` is replaced, e.g. `../contracts/{service}.js`)
    /// and `ClamatorClient` from `@clamator/protocol`.
    #[arg(long, requires = "out_ts")]
    pub(crate) ts_contract_import: Option<String>,
    /// Write `<service>.rs` here (serde types + a `#[clamator::contract]` trait).
    #[arg(long)]
    pub(crate) out_rust: Option<PathBuf>,
    /// Write the schema-hash manifest here.
    #[arg(long)]
    pub(crate) manifest: Option<PathBuf>,
    /// Write nothing; exit 1 naming every file (and contract method) that drifted.
    #[arg(long)]
    pub(crate) check: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CodegenAction {
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
        node_modules: PathBuf,
        /// The Node.js binary (for `--ts`).
        #[arg(long = "node-bin", default_value = "node")]
        node_bin: PathBuf,
        /// A directory to import from (added to `PYTHONPATH`; repeatable).
        #[arg(long)]
        python_path: Vec<PathBuf>,
        /// The Python interpreter (one with `clamator_protocol` installed).
        #[arg(long = "python-bin", default_value = "python3")]
        python_bin: PathBuf,
        /// Where to write the documents.
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare contracts structurally (types, required fields, enums, formats, bounds,
    /// nullability, request vs notification; not titles, descriptions or key order) and name
    /// every difference; exit 1 on drift.
    Check {
        /// A contract document or a directory of them.
        #[arg(long)]
        contract: PathBuf,
        /// The contract document(s) to compare against (e.g. imported from Python).
        #[arg(long)]
        against: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqAction {
    /// List the dead letters of a service.
    List {
        /// The service.
        service: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: ConnAfter,
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
        #[command(flatten)]
        conn: ConnAfter,
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
        #[command(flatten)]
        conn: ConnAfter,
    },
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// `<service>.<method>`.
    #[arg(long)]
    pub(crate) method: String,
    /// Params of every call, as JSON (`-` reads stdin).
    #[arg(long, default_value = "{}")]
    pub(crate) params: String,
    /// Number of calls (default 10000; with --duration alone: as many as fit).
    #[arg(long)]
    pub(crate) calls: Option<usize>,
    /// Calls in flight (at least 1).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) concurrency: u64,
    /// Stop after this long (e.g. `10s`), even if fewer calls ran.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Per-call timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) conn: ConnAfter,
}

#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7474")]
    pub(crate) listen: std::net::SocketAddr,
    /// Show only: no replay, drop or call.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// A token every request must carry, reads included (the page shows a login form; scripts
    /// send `Authorization: Bearer <token>`).
    #[arg(long, env = "CLAMATOR_DASHBOARD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Contract documents (OpenRPC JSON, a file or a directory) to show each service's
    /// methods and prefill the call form.
    #[arg(long)]
    pub(crate) docs: Option<PathBuf>,
    /// Time between samples (rates, sparklines, live updates).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) interval: Duration,
    /// Consumers idle for less than this count as alive (match your servers'
    /// claim idle plus a margin).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) alive_within: Duration,
    /// Time between walks of the keyspace for new services and reply streams (one SCAN per
    /// thousand keys: on a Redis shared with millions of keys, the dashboard's main cost). A
    /// service page opened for a service not yet listed walks at once.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) discover_every: Duration,
    #[command(flatten)]
    pub(crate) conn: ConnAfter,
}

/// `250ms`, `5s`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
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

/// `<service>.<method>` → its two parts.
pub(crate) fn split_method(full: &str) -> Result<(&str, &str), String> {
    full.split_once('.')
        .ok_or_else(|| format!("expected <service>.<method>, got {full:?}"))
}

/// Params as JSON text, `-` for stdin, none for `{}`.
pub(crate) fn read_params(params: Option<&str>) -> Result<Value, String> {
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
