//! Where a Redis transport connects: [`RedisConnection`], one value for a client and a server.

use std::fmt;

use crate::conn::Connector;
use clamator_protocol::transport::redact_url;
use clamator_protocol::TransportError;

/// The URL used when no connection is given and `$REDIS_URL` is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";

/// Where a Redis transport connects: one node (a URL, or a `redis::Client` you configured), a
/// Redis Cluster, or the master a set of Sentinels names. Build it once and give it to a
/// client and a server (`.connection(conn.clone())`); `Debug` hides passwords.
///
/// ```
/// use clamator_over_redis::RedisConnection;
/// let node = RedisConnection::url("redis://app:s3cret@db:6379/0");
/// assert_eq!(format!("{node:?}"), r#"RedisConnection(Url("redis://app:***@db:6379/0"))"#);
/// let cluster = RedisConnection::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
/// let sentinel = RedisConnection::sentinel("mymaster", ["redis://10.0.0.1:26379"]);
/// # let _ = (cluster, sentinel);
/// ```
#[derive(Clone, Default)]
pub struct RedisConnection(pub(crate) ConnectionSource);

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisConnection").field(&self.0).finish()
    }
}

impl RedisConnection {
    /// `$REDIS_URL`, else [`DEFAULT_REDIS_URL`] (read when the client or server starts). The
    /// default.
    pub fn from_env() -> Self {
        Self(ConnectionSource::Default)
    }

    /// One node: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS (feature
    /// `tls`). The transport owns the connections it opens and closes them on `stop`.
    pub fn url(url: impl Into<String>) -> Self {
        Self(ConnectionSource::Url(url.into()))
    }

    /// A `redis::Client` you configured; its connections are opened by the transport, the
    /// client itself stays yours.
    pub fn client(client: redis::Client) -> Self {
        Self(ConnectionSource::Client(Box::new(client)))
    }

    /// A Redis Cluster through these seed nodes (`redis://[user:password@]host:port`,
    /// `rediss://` for TLS; one reachable seed is enough, the others are found with `CLUSTER
    /// SLOTS`). Commands go to the master that owns their key's slot and follow `MOVED`/`ASK`
    /// through failovers and resharding; the wire and the key names are the same as on one
    /// node.
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        Self(ConnectionSource::Cluster(
            seeds.into_iter().map(Into::into).collect(),
        ))
    }

    /// The master that these Redis Sentinels monitor as `master_name`
    /// (`redis://[user:password@]host:port` each; the master is reached with the credentials of
    /// the first). After a failover, the first command that finds the old master gone (or a
    /// replica, `READONLY`) asks the Sentinels again and the transport goes on with the new
    /// master.
    pub fn sentinel<S: Into<String>>(
        master_name: impl Into<String>,
        sentinels: impl IntoIterator<Item = S>,
    ) -> Self {
        Self(ConnectionSource::Sentinel {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            master: master_name.into(),
        })
    }
}

/// Where connections come from.
#[derive(Clone, Default)]
pub(crate) enum ConnectionSource {
    /// `$REDIS_URL`, else `redis://localhost:6379`.
    #[default]
    Default,
    /// A URL given by the user.
    Url(String),
    /// A `redis::Client` the user configured (injected).
    Client(Box<redis::Client>),
    /// A Redis Cluster, reached through these seed node URLs.
    Cluster(Vec<String>),
    /// The master a set of Sentinels names.
    Sentinel {
        /// Sentinel URLs.
        sentinels: Vec<String>,
        /// The name the Sentinels monitor the master under.
        master: String,
    },
}

impl fmt::Debug for ConnectionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            Self::Url(u) => f.debug_tuple("Url").field(&redact_url(u)).finish(),
            Self::Client(c) => {
                let info = c.get_connection_info();
                f.debug_tuple("Client")
                    .field(&format_args!("{}", info.addr()))
                    .finish()
            }
            Self::Cluster(seeds) => f
                .debug_tuple("Cluster")
                .field(&seeds.iter().map(|s| redact_url(s)).collect::<Vec<_>>())
                .finish(),
            Self::Sentinel { sentinels, master } => f
                .debug_struct("Sentinel")
                .field("master", master)
                .field(
                    "sentinels",
                    &sentinels.iter().map(|s| redact_url(s)).collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

impl ConnectionSource {
    /// `host:port` of the Redis server (for spans), when it can be known without connecting.
    pub(crate) fn server_address(&self) -> Option<String> {
        self.connector().ok()?.server_address()
    }

    /// Resolves to a [`Connector`]; a malformed URL is a configuration error.
    pub(crate) fn connector(&self) -> Result<Connector, TransportError> {
        let url = match self {
            Self::Client(c) => return Ok(Connector::Node((**c).clone())),
            Self::Cluster(seeds) => return Connector::cluster(seeds.clone()),
            Self::Sentinel { sentinels, master } => {
                return Connector::sentinel(sentinels.clone(), master.clone())
            }
            Self::Url(u) => u.clone(),
            Self::Default => std::env::var("REDIS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned()),
        };
        redis::Client::open(url.as_str())
            .map(Connector::Node)
            .map_err(|e| {
                TransportError::Config(format!("invalid redis url {}: {e}", redact_url(&url)))
            })
    }
}

/// The builder methods that set where a client or server connects (`connection`, `url`), the
/// same on both builders; each builder has a `connection: RedisConnection` field.
macro_rules! connection_methods {
    () => {
        /// Where to connect (a node, a cluster, Sentinels, or an injected `redis::Client`).
        /// Default: [`RedisConnection::from_env`](crate::RedisConnection::from_env)
        /// (`$REDIS_URL`, else `redis://localhost:6379`).
        pub fn connection(mut self, connection: $crate::RedisConnection) -> Self {
            self.connection = connection;
            self
        }

        /// Connect to one node at this URL: `.connection(RedisConnection::url(url))`.
        pub fn url(self, url: impl Into<String>) -> Self {
            self.connection($crate::RedisConnection::url(url))
        }
    };
}
pub(crate) use connection_methods;
