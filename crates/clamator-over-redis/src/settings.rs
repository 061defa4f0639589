//! Defaults and values the client and the server share: limits, timeouts, the Redis clock,
//! durability (`min_replicas`).

use std::time::Duration;

use crate::conn::Conn;
use redis::Value;

/// The key prefix of builders that are given none.
pub const DEFAULT_KEY_PREFIX: &str = "clamator";

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

/// A duration in whole milliseconds, for Redis arguments (saturating).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
