//! Where an engine connects and how it serves, as a binding's constructor says.

use std::num::NonZeroUsize;
use std::time::Duration;

use clamator_over_memory::MemoryBus;
use clamator_over_redis::RedisConnection;

/// Where an engine connects.
#[derive(Debug, Clone)]
pub enum Wire {
    /// An in-process bus.
    Memory(MemoryBus),
    /// Redis (a node, a cluster, or a client built with TLS material).
    Redis(RedisConnection),
    /// NATS JetStream, at these URLs.
    Nats(Vec<String>),
}

/// TLS material the binding took over from its user's Redis client object (PEM bytes).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// The CA certificates to trust instead of the system's.
    pub ca: Option<Vec<u8>>,
    /// A client certificate.
    pub cert: Option<Vec<u8>>,
    /// Its key.
    pub key: Option<Vec<u8>>,
}

fn list(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

impl Wire {
    /// `transport` is `memory` (with `bus`), `redis` (a URL), `redis-cluster` (seed URLs,
    /// comma-separated) or `nats` (URLs, comma-separated).
    pub fn new(
        transport: &str,
        url: Option<String>,
        bus: Option<MemoryBus>,
        tls: Option<Tls>,
    ) -> Result<Self, String> {
        match (transport, url, bus) {
            ("memory", _, Some(bus)) => Ok(Self::Memory(bus)),
            ("redis", Some(url), _) => match tls {
                None => Ok(Self::Redis(RedisConnection::url(url))),
                Some(Tls { ca, cert, key }) => {
                    let client_tls =
                        match (cert, key) {
                            (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig {
                                client_cert,
                                client_key,
                            }),
                            (None, None) => None,
                            _ => return Err(
                                "a TLS client certificate needs its key (give both, or neither)"
                                    .into(),
                            ),
                        };
                    let certificates = redis::TlsCertificates {
                        client_tls,
                        root_cert: ca,
                    };
                    redis::Client::build_with_tls(url.as_str(), certificates)
                        .map(|client| Self::Redis(RedisConnection::client(client)))
                        .map_err(|e| format!("redis TLS settings: {e}"))
                }
            },
            ("redis-cluster", Some(_), _) if tls.is_some() => Err(
                "a private CA or client certificate for a Redis Cluster is not supported yet: use \
                 rediss:// seed URLs with certificates the system trusts"
                    .into(),
            ),
            ("redis-cluster", Some(urls), _) => {
                Ok(Self::Redis(RedisConnection::cluster(list(&urls))))
            }
            ("nats", Some(urls), _) => Ok(Self::Nats(list(&urls))),
            (other, _, _) => Err(format!(
                "transport {other:?} needs a url (redis, redis-cluster, nats) or a bus (memory)"
            )),
        }
    }
}

/// Settings of an engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where it connects.
    pub wire: Wire,
    /// The key (subject) prefix.
    pub key_prefix: Option<String>,
    /// The instance id (consumer name, reply stream or subject token).
    pub instance_id: Option<String>,
    /// The liveness window: Redis `consumer_claim_idle`, NATS `ack_wait`. Running handlers'
    /// requests are refreshed every third of it (the heartbeat).
    pub claim_idle: Option<Duration>,
    /// `MAXLEN ~` of the reply streams a server writes.
    pub reply_stream_maxlen: Option<usize>,
    /// How long a server's stop waits for running handlers.
    pub grace: Duration,
    /// Handlers run at once per service.
    pub concurrency: NonZeroUsize,
    /// Deliveries before a request is dead-lettered.
    pub max_deliveries: Option<u32>,
    /// A client's call timeout when a call names none.
    pub default_timeout: Duration,
}

impl Settings {
    /// Settings on `wire` with the defaults: 5 s grace, 64 handlers, 30 s call timeout.
    pub fn new(wire: Wire) -> Self {
        Self {
            wire,
            key_prefix: None,
            instance_id: None,
            claim_idle: None,
            reply_stream_maxlen: None,
            grace: Duration::from_secs(5),
            concurrency: NonZeroUsize::new(64).expect("64 > 0"),
            max_deliveries: None,
            default_timeout: Duration::from_secs(30),
        }
    }
}
