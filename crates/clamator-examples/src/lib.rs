//! Examples for clamator (the quickstart is in `clamator-quickstart`), each runnable with one command (over the in-process bus by default,
//! over Redis with `--redis [URL]` where the example can use either):
//!
//! | command | what |
//! |---|---|
//! | `cargo run -p clamator-examples --example service_to_service` | `orders` calls `inventory` from its handler; errors and deadlines pass through |
//! | `cargo run -p clamator-examples --example http_gateway` | an axum HTTP gateway in front of a clamator service |
//! | `cargo run -p clamator-examples --example worker_pool` | Redis only: worker processes share a service, the load spreads |
//! | `cargo run -p clamator-examples --example python_peer` | Redis only: a Python client from generated code calls a Rust service |
//! | `cargo run -p clamator-examples --example observability` | spans, metrics (Prometheus) and logs |
//!
//! This library holds what the examples share: the command line.

/// Where an example runs: the in-process bus, or Redis at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The in-process bus (the default).
    Memory,
    /// Redis: `--redis` (then `$REDIS_URL`, else `redis://localhost:6379`) or `--redis URL`.
    Redis(String),
}

/// The parsed command line of an example: the transport and the remaining flags.
#[derive(Debug, Clone)]
pub struct Args {
    /// Memory or Redis.
    pub transport: Transport,
    /// Flags after the transport flag, in order (`--once`, `--workers 3`, ...).
    pub rest: Vec<String>,
}

impl Args {
    /// Reads `std::env::args()`: `[--redis [URL]] [other flags]`.
    pub fn parse() -> Self {
        Self::from_args(std::env::args().skip(1))
    }

    /// Parses `args` (without the program name).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut transport = Transport::Memory;
        let mut rest = Vec::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            if arg == "--redis" {
                let url = match args.peek() {
                    Some(next) if !next.starts_with("--") => args.next().unwrap_or_default(),
                    _ => std::env::var("REDIS_URL")
                        .unwrap_or_else(|_| clamator::redis::DEFAULT_REDIS_URL.to_owned()),
                };
                transport = Transport::Redis(url);
            } else {
                rest.push(arg);
            }
        }
        Self { transport, rest }
    }

    /// Whether `flag` was given.
    pub fn flag(&self, flag: &str) -> bool {
        self.rest.iter().any(|a| a == flag)
    }

    /// The value after `flag`, parsed, or `default`.
    pub fn value<T: std::str::FromStr>(&self, flag: &str, default: T) -> T {
        self.rest
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.rest.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The Redis URL of a Redis-only example: `--redis URL`, else `$REDIS_URL`, else
    /// `redis://localhost:6379`.
    pub fn redis_url(&self) -> String {
        match &self.transport {
            Transport::Redis(url) => url.clone(),
            Transport::Memory => std::env::var("REDIS_URL")
                .unwrap_or_else(|_| clamator::redis::DEFAULT_REDIS_URL.to_owned()),
        }
    }
}

/// A key prefix of its own for one run of an example (so runs never share streams).
pub fn run_prefix(example: &str) -> String {
    format!("example-{example}-{}", std::process::id())
}

/// Starts `tracing` output on stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

/// Deletes the keys of one example run (`<prefix>:*`) so runs leave nothing behind.
pub async fn cleanup(url: &str, prefix: &str) {
    use clamator::redis::redis::{self, AsyncCommands};
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = match conn.keys(format!("{prefix}:*")).await {
        Ok(keys) => keys,
        Err(_) => return,
    };
    if !keys.is_empty() {
        let _: Result<i64, _> = conn.del(keys).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a = Args::from_args(["--redis".into(), "redis://h:1".into(), "--once".into()]);
        assert_eq!(a.transport, Transport::Redis("redis://h:1".into()));
        assert!(a.flag("--once"));
        let a = Args::from_args(["--workers".into(), "4".into()]);
        assert_eq!(a.transport, Transport::Memory);
        assert_eq!(a.value("--workers", 3), 4);
        assert_eq!(a.value("--calls", 7), 7);
        let a = Args::from_args(["--redis".into(), "--once".into()]);
        assert!(matches!(a.transport, Transport::Redis(_)));
        assert!(a.flag("--once"));
    }
}
