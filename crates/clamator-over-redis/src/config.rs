//! Connection settings shared by the server and the client.

use std::fmt;
use std::time::Duration;

use crate::conn::{Conn, Connector};
use clamator_protocol::TransportError;
use redis::Value;

/// The URL used when neither `redis_url` nor `$REDIS_URL` is set.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";

/// The default largest envelope a client sends or a server accepts: 4 MiB.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// The default time-to-live of reply streams: 10 minutes. A live client keeps refreshing it;
/// servers set it (`EXPIRE … NX`) when they reply, so streams of dead clients expire.
pub const DEFAULT_REPLY_STREAM_TTL: Duration = Duration::from_secs(600);

/// Milliseconds since the Unix epoch on Redis's clock minus the same on ours.
pub(crate) async fn redis_clock_offset_ms(conn: &mut Conn) -> redis::RedisResult<i64> {
    let (secs, micros): (i64, i64) = conn.any_node(&redis::cmd("TIME")).await?;
    Ok(secs.saturating_mul(1000).saturating_add(micros / 1000) - local_now_ms())
}

/// Milliseconds since the Unix epoch on our clock.
pub(crate) fn local_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long a non-blocking command may take before it fails.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The `BLOCK` of blocking reads (as the originals).
pub(crate) const BLOCK: Duration = Duration::from_millis(1000);

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

pub use clamator_protocol::transport::redact_url;

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

/// The connection choice of a builder: a URL, an injected client or cluster seeds, only one.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectionChoice {
    source: ConnectionSource,
    both: bool,
}

impl ConnectionChoice {
    fn set(&mut self, source: ConnectionSource) {
        self.both |= !matches!(self.source, ConnectionSource::Default)
            && std::mem::discriminant(&self.source) != std::mem::discriminant(&source);
        self.source = source;
    }

    pub(crate) fn url(&mut self, url: String) {
        self.set(ConnectionSource::Url(url));
    }

    pub(crate) fn client(&mut self, client: redis::Client) {
        self.set(ConnectionSource::Client(Box::new(client)));
    }

    pub(crate) fn cluster(&mut self, seeds: Vec<String>) {
        self.set(ConnectionSource::Cluster(seeds));
    }

    pub(crate) fn sentinel(&mut self, master: String, sentinels: Vec<String>) {
        self.set(ConnectionSource::Sentinel { sentinels, master });
    }

    /// The source, or an error when more than one kind was given.
    pub(crate) fn finish(self) -> Result<ConnectionSource, TransportError> {
        if self.both {
            return Err(TransportError::Config(
                "provide one of `redis_url`, `redis_client`, `redis_cluster` or `redis_sentinel`, not several".into(),
            ));
        }
        Ok(self.source)
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

/// A duration in whole milliseconds, for Redis arguments (saturating).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a Redis error means the connection is gone (reconnect), as opposed to a reply error.
pub(crate) fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// Whether a blocking reader should open a new connection: the connection is gone, or the node
/// stopped being a master under it (`READONLY`; `UNBLOCKED` when a master is turned into a
/// replica, or the key moved to another cluster node), so that it finds the master again.
pub(crate) fn reconnect_reader(e: &redis::RedisError) -> bool {
    is_connection_error(e) || matches!(e.code(), Some("READONLY" | "UNBLOCKED" | "MASTERDOWN"))
}

/// Writes count only once this many replicas have them (`WAIT replicas timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Durability {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
}

/// The error code of a write that was made but did not reach `min_replicas` replicas in time
/// (ours; the server's own `NOREPLICAS` means a write was refused).
pub(crate) const NOT_REPLICATED: &str = "NOTREPLICATED";

impl Durability {
    pub(crate) fn wait_cmd(self) -> redis::Cmd {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.replicas).arg(millis(self.timeout).max(1));
        cmd
    }

    /// `Ok` when `reached` replicas are enough, else a `NOTREPLICATED` error saying so.
    pub(crate) fn check(self, reached: i64) -> redis::RedisResult<()> {
        if usize::try_from(reached).is_ok_and(|r| r >= self.replicas) {
            return Ok(());
        }
        let line = format!(
            "-{NOT_REPLICATED} the write reached {reached} of the {} replicas asked for (min_replicas) within {} ms\r\n",
            self.replicas,
            millis(self.timeout)
        );
        match redis::parse_redis_value(line.as_bytes()) {
            Ok(Value::ServerError(e)) => Err(e.into()),
            _ => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "write not replicated",
                line,
            ))),
        }
    }
}

/// Server error codes that mean "not now, try again": the command was not executed.
const TRANSIENT_CODES: &[&str] = &[
    "LOADING",     // restarted, loading its data (AOF/RDB)
    "OOM",         // maxmemory reached with noeviction
    "BUSY",        // a script is running
    "TRYAGAIN",    // cluster resharding
    "MASTERDOWN",  // replica lost its master
    "CLUSTERDOWN", // cluster not serving
    "READONLY",    // failover in progress: we reached a replica
    "MOVED",       // cluster: the slot is served elsewhere (sent again there)
    "ASK",         // cluster: the slot is moving
    "NOREPLICAS",  // min-replicas-to-write not met: the write was refused
];

/// Whether retrying the same command later can succeed: the connection is gone or the server
/// is temporarily unable to run it (loading, out of memory, failing over). Anything else
/// (`WRONGTYPE`, `NOPERM`, syntax errors) fails the same way every time.
pub(crate) fn is_transient(e: &redis::RedisError) -> bool {
    is_connection_error(e)
        || e.code()
            .is_some_and(|c| TRANSIENT_CODES.contains(&c) || c == NOT_REPLICATED)
}

/// A Redis error as the server said it (`NOPERM this user has no permissions to run the
/// 'xack' command`), or as redis-rs describes a client-side failure.
pub(crate) fn describe(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// A failed command as a transport error: the connection (retrying can help) or a refusal
/// (permissions, key types: it will fail the same way again), with the server's message.
pub(crate) fn command_error(context: &'static str, e: &redis::RedisError) -> TransportError {
    if is_transient(e) {
        TransportError::connection(context, describe(e))
    } else {
        TransportError::rejected(context, describe(e))
    }
}

/// Whether a failed command was certainly not executed: no connection could be made, or the
/// server refused to run it for now (`LOADING`, `OOM`, ...). A connection that broke after the
/// command was sent leaves it unknown.
pub(crate) fn was_not_executed(e: &redis::RedisError) -> bool {
    e.is_connection_refusal() || e.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// Whether the ACL user may not run the command.
pub(crate) fn is_denied(e: &redis::RedisError) -> bool {
    e.code() == Some("NOPERM")
}
