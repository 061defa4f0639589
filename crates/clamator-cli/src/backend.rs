//! The one place that picks the broker from the flags: Redis (a node, a cluster or Sentinels)
//! or NATS JetStream. Commands ask it for a client, a raw connection, and what exists under
//! the prefix; they never look at the flags themselves.

use std::time::Duration;

use clamator::nats::async_nats::jetstream;
use clamator::nats::{NatsConnection, NatsRpcClient};
use clamator::redis::{redact_url, RedisConnection, RedisRpcClient};
use clamator::AnyClient;
use clamator_cli::conn::RawConn;
use clamator_cli::diagnose::Readers;

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
            clamator::redis::check_key_prefix(&args.prefix)
                .map_err(|e| format!("{e} (give --prefix or set CLAMATOR_PREFIX)"))?;
            Backend::Redis {
                target,
                min_replicas: args.min_replicas,
            }
        } else {
            for url in &args.nats_url {
                scheme_hint(url, "nats")?;
            }
            if !clamator::nats::is_valid_prefix(&args.prefix) {
                return Err(format!(
                    "key prefix {:?} is not usable over NATS: 1 to 64 ASCII letters, digits, '_' or '-' (give --prefix or set CLAMATOR_PREFIX)",
                    args.prefix
                ));
            }
            Backend::Nats(args.nats_url.clone())
        };
        Ok(Self {
            prefix: args.prefix.clone(),
            backend,
        })
    }

    /// Whether it is NATS.
    pub(crate) fn is_nats(&self) -> bool {
        matches!(self.backend, Backend::Nats(_))
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
            Backend::Redis { .. } => self.redis_client(timeout).await.map(AnyClient::from),
        }
    }

    /// A started Redis client (the dashboard's calls).
    pub(crate) async fn redis_client(&self, timeout: Duration) -> Result<RedisRpcClient, String> {
        let Backend::Redis {
            target,
            min_replicas,
        } = &self.backend
        else {
            return Err("this needs Redis, not --nats-url".into());
        };
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
            .min_replicas(*min_replicas, Duration::from_secs(1))
            .default_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        if let Err(e) = client.start().await {
            return Err(target.connect_error(e.to_string()).await);
        }
        Ok(client)
    }

    /// The CLI's own Redis connection (inspect, dlq, dashboard, diagnoses).
    pub(crate) async fn raw(&self) -> Result<RawConn, String> {
        let Backend::Redis { target, .. } = &self.backend else {
            return Err("this needs Redis, not --nats-url".into());
        };
        let opened = match target {
            RedisTarget::Node(url) => RawConn::node(url).await,
            RedisTarget::Cluster(seeds) => RawConn::cluster(seeds).await,
            RedisTarget::Sentinel { master, sentinels } => {
                RawConn::sentinel(sentinels, master).await
            }
        };
        match opened {
            Ok(conn) => Ok(conn),
            Err(e) => Err(target.connect_error(e.to_string()).await),
        }
    }

    /// JetStream (inspect, dlq, diagnoses over NATS).
    pub(crate) async fn jetstream(&self) -> Result<jetstream::Context, String> {
        let Backend::Nats(urls) = &self.backend else {
            return Err("this needs --nats-url".into());
        };
        // The error names the URLs (passwords as ***).
        clamator_cli::nats::connect(urls)
            .await
            .map_err(|e| format!("cannot connect to NATS: {e}"))
    }

    /// The services that exist under the prefix (from the command streams).
    pub(crate) async fn services(&self) -> Vec<String> {
        if self.is_nats() {
            let Ok(js) = self.jetstream().await else {
                return Vec::new();
            };
            return clamator_cli::nats::inspect(&js, &self.prefix)
                .await
                .map(|s| s.into_iter().map(|s| s.service).collect())
                .unwrap_or_default();
        }
        let Ok(mut conn) = self.raw().await else {
            return Vec::new();
        };
        clamator_cli::inspect::services(&mut conn, &self.prefix)
            .await
            .unwrap_or_default()
    }

    /// Who reads the service's command stream (Redis; `None` when it cannot tell).
    pub(crate) async fn readers(&self, service: &str) -> Option<Readers> {
        let mut conn = self.raw().await.ok()?;
        clamator_cli::diagnose::readers(&mut conn, &self.prefix, service)
            .await
            .ok()
    }

    /// Before a call or notification: a service nobody ever served under the prefix is named
    /// at once (with the services that exist), instead of waiting out the timeout, and nothing
    /// is created for it. Over NATS the client refuses it itself.
    pub(crate) async fn check_served(&self, service: &str) -> Result<(), String> {
        if self.is_nats() {
            return Ok(());
        }
        let Some(readers) = self.readers(service).await else {
            return Ok(());
        };
        if !matches!(readers, Readers::NoStream | Readers::NoGroup) {
            return Ok(());
        }
        let services = self.services().await;
        let known = if services.is_empty() {
            format!("no service has a stream under prefix {:?}", self.prefix)
        } else {
            format!(
                "services under prefix {:?}: {}",
                self.prefix,
                services.join(", ")
            )
        };
        Err(format!(
            "{}; {known} (nothing was sent; --create sends it anyway and leaves it waiting for a server)",
            readers.explain(&self.prefix, service)
        ))
    }

    /// Why a call may have timed out, from the service's readers (Redis) or consumer (NATS).
    pub(crate) async fn timeout_hint(&self, service: &str) -> String {
        if !self.is_nats() {
            return self
                .readers(service)
                .await
                .map(|r| format!(": {}", r.explain(&self.prefix, service)))
                .unwrap_or_default();
        }
        let Ok(js) = self.jetstream().await else {
            return String::new();
        };
        let services = clamator_cli::nats::inspect(&js, &self.prefix)
            .await
            .unwrap_or_default();
        match services.iter().find(|s| s.service == service).and_then(|s| s.consumer.as_ref()) {
            Some(c) if c.waiting_pulls == 0 && c.ack_pending == 0 => format!(
                ": no server of {service:?} is pulling (the consumer has no pull requests waiting and nothing being handled); start one with prefix {:?}",
                self.prefix
            ),
            Some(c) => format!(
                ": the consumer of {service:?} has {} request(s) undelivered, {} being handled (or held by a dead server until the ack wait of {} ms), {} server pull(s) waiting",
                c.pending, c.ack_pending, c.ack_wait_ms, c.waiting_pulls
            ),
            None => String::new(),
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
            if let Some(refusal) = clamator_cli::diagnose::auth_refusal(first).await {
                return format!(
                    "cannot connect to {url}: Redis refused the credentials: {refusal} \
                     (check the user and password in --redis-url / REDIS_URL)"
                );
            }
        }
        format!("cannot connect to {url}: {error}")
    }
}
