//! The one place that reads the connection flags: Redis (a node, a cluster or Sentinels) or
//! NATS JetStream. Commands ask it for a client ([`AnyClient`]) and a [`Broker`], which answers
//! everything else; they never look at the flags, nor at which broker it is.

use std::time::Duration;

use clamator::nats::{NatsConnection, NatsRpcClient};
use clamator::redis::{redact_url, RedisConnection, RedisRpcClient};
use clamator::AnyClient;
use clamator_cli::redis::RawConn;
use clamator_cli::Broker;

use crate::cli::ConnArgs;

/// Which broker, and how to reach it.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// Redis: one node, a cluster or the master of a set of Sentinels.
    Redis {
        /// Where.
        target: RedisTarget,
        /// `WAIT` for this many replicas (0: off).
        min_replicas: usize,
    },
    /// NATS JetStream, at these URLs.
    Nats(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) enum RedisTarget {
    Node(String),
    Cluster(Vec<String>),
    Sentinel {
        master: String,
        sentinels: Vec<String>,
    },
}

/// The broker and the key prefix every command works under.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) prefix: String,
    pub(crate) backend: Backend,
}

/// `host:6379` → a hint to add the scheme (the `redis` crate says only "invalid URL").
fn scheme_hint(url: &str, scheme: &str) -> Result<(), String> {
    if url.contains("://") {
        return Ok(());
    }
    Err(format!(
        "{url:?} is not a URL: did you mean {scheme}://{url}? (the scheme is required)"
    ))
}

impl Target {
    /// From the flags: the broker they name, and a prefix checked for it.
    pub(crate) fn from_args(args: &ConnArgs) -> Result<Self, String> {
        let prefix = args.prefix.clone();
        let backend = if args.nats_url.is_empty() {
            let target = match (&args.redis_cluster[..], &args.redis_sentinel[..]) {
                ([], []) => RedisTarget::Node(args.redis_url.clone()),
                ([], sentinels) => RedisTarget::Sentinel {
                    master: args.sentinel_master.clone().unwrap_or_default(),
                    sentinels: sentinels.to_vec(),
                },
                (seeds, _) => RedisTarget::Cluster(seeds.to_vec()),
            };
            for url in target.urls() {
                scheme_hint(url, "redis")?;
            }
            clamator::redis::check_key_prefix(&prefix)
                .map_err(|e| format!("{e} (give --prefix or set CLAMATOR_PREFIX)"))?;
            Backend::Redis {
                target,
                min_replicas: args.min_replicas,
            }
        } else {
            for url in &args.nats_url {
                scheme_hint(url, "nats")?;
            }
            if !clamator::nats::is_valid_prefix(&prefix) {
                return Err(format!(
                    "key prefix {:?} is not usable over NATS: 1 to 64 ASCII letters, digits, '_' or '-' (give --prefix or set CLAMATOR_PREFIX)",
                    prefix
                ));
            }
            Backend::Nats(args.nats_url.clone())
        };
        Ok(Self { prefix, backend })
    }

    /// A started client whose calls time out after `timeout`.
    pub(crate) async fn client(&self, timeout: Duration) -> Result<AnyClient, String> {
        match &self.backend {
            Backend::Nats(urls) => {
                let client = NatsRpcClient::builder()
                    .connection(NatsConnection::urls(urls.clone()))
                    .key_prefix(&self.prefix)
                    .default_timeout(timeout)
                    .build()
                    .map_err(|e| e.to_string())?;
                client.start().await.map_err(|e| e.to_string())?;
                Ok(client.into())
            }
            Backend::Redis {
                target,
                min_replicas,
            } => self
                .redis_client(target, *min_replicas, timeout)
                .await
                .map(AnyClient::from),
        }
    }

    /// A started Redis client.
    async fn redis_client(
        &self,
        target: &RedisTarget,
        min_replicas: usize,
        timeout: Duration,
    ) -> Result<RedisRpcClient, String> {
        let connection = match target {
            RedisTarget::Node(url) => RedisConnection::url(url),
            RedisTarget::Cluster(seeds) => RedisConnection::cluster(seeds.clone()),
            RedisTarget::Sentinel { master, sentinels } => {
                RedisConnection::sentinel(master, sentinels.clone())
            }
        };
        let client = RedisRpcClient::builder()
            .key_prefix(&self.prefix)
            .connection(connection)
            .min_replicas(min_replicas, Duration::from_secs(1))
            .default_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        if let Err(e) = client.start().await {
            return Err(target.connect_error(e.to_string()).await);
        }
        Ok(client)
    }

    /// The broker, connected: what every command but `call`'s client asks.
    pub(crate) async fn broker(&self) -> Result<Broker, String> {
        let prefix = self.prefix.clone();
        match &self.backend {
            Backend::Redis { target, .. } => {
                let opened = match target {
                    RedisTarget::Node(url) => RawConn::node(url).await,
                    RedisTarget::Cluster(seeds) => RawConn::cluster(seeds).await,
                    RedisTarget::Sentinel { master, sentinels } => {
                        RawConn::sentinel(sentinels, master).await
                    }
                };
                match opened {
                    Ok(conn) => Ok(Broker::Redis { conn, prefix }),
                    Err(e) => Err(target.connect_error(e.to_string()).await),
                }
            }
            // The error names the URLs (passwords as ***).
            Backend::Nats(urls) => clamator_cli::nats::connect(urls)
                .await
                .map(|js| Broker::Nats { js, prefix })
                .map_err(|e| format!("cannot connect to NATS: {e}")),
        }
    }
}

impl RedisTarget {
    fn urls(&self) -> Vec<&String> {
        match self {
            Self::Node(url) => vec![url],
            Self::Cluster(seeds) => seeds.iter().collect(),
            Self::Sentinel { sentinels, .. } => sentinels.iter().collect(),
        }
    }

    /// A failed connection, named with the (redacted) URL; a refused password in the server's
    /// own words rather than redis-rs's `Password authentication failed - AuthenticationFailed`.
    async fn connect_error(&self, error: String) -> String {
        let shown = |urls: &[String]| {
            urls.iter()
                .map(|s| redact_url(s))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (url, first) = match self {
            Self::Node(url) => (redact_url(url), url),
            Self::Cluster(seeds) => (format!("the cluster {}", shown(seeds)), &seeds[0]),
            Self::Sentinel { sentinels, .. } => (
                format!("the master of Sentinels {}", shown(sentinels)),
                &sentinels[0],
            ),
        };
        if error.contains("AuthenticationFailed") {
            if let Some(refusal) = clamator_cli::redis::diagnose::auth_refusal(first).await {
                return format!(
                    "cannot connect to {url}: Redis refused the credentials: {refusal} \
                     (check the user and password in --redis-url / REDIS_URL)"
                );
            }
        }
        format!("cannot connect to {url}: {error}")
    }
}
