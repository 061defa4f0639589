//! What the Redis user may do, checked once at start with commands that change nothing, so a
//! server that could not serve fails `start()` with the server's message instead of failing
//! every call later, and optional features that are denied are switched off with one warning.

use crate::conn::Conn;
use clamator_protocol::TransportError;
use redis::Value;

use crate::errors::is_denied;
use crate::keys::reply_stream;

/// Optional features, on unless the ACL denies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capabilities {
    /// `PEXPIRE` on reply streams (their TTL).
    pub(crate) reply_ttl: bool,
    /// `EVALSHA`/`EVAL` + `XGROUP DELCONSUMER`: removing the consumers of dead servers.
    pub(crate) consumer_cleanup: bool,
}

/// One probe: what it checks, whether the server can work without it, and the command.
struct Probe {
    what: &'static str,
    required: bool,
    cmd: redis::Cmd,
}

fn probe(what: &'static str, required: bool, args: &[&str]) -> Probe {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Probe {
        what,
        required,
        cmd,
    }
}

/// Runs the probes against the first service's stream and group (created already).
pub(crate) async fn capabilities(
    conn: &mut Conn,
    key_prefix: &str,
    stream: &str,
    group: &str,
    consumer: &str,
) -> Result<Capabilities, TransportError> {
    // A reply stream that does not exist: NOMKSTREAM writes nothing, PEXPIRE finds nothing.
    let absent = reply_stream(
        key_prefix,
        &format!("clamator-probe-{}", uuid::Uuid::new_v4()),
    );
    let probes = [
        probe("XACK", true, &["XACK", stream, group, "0-0"]),
        probe("XDEL", true, &["XDEL", stream, "0-0"]),
        probe(
            "XPENDING",
            true,
            &["XPENDING", stream, group, "-", "+", "1"],
        ),
        probe(
            "XCLAIM",
            true,
            &["XCLAIM", stream, group, consumer, "0", "0-0", "JUSTID"],
        ),
        probe(
            "XINFO CONSUMERS",
            true,
            &["XINFO", "CONSUMERS", stream, group],
        ),
        probe(
            "XADD",
            true,
            &["XADD", &absent, "NOMKSTREAM", "*", "type", "rpc"],
        ),
        probe("PEXPIRE", false, &["PEXPIRE", &absent, "1000"]),
        probe(
            "XGROUP DELCONSUMER",
            false,
            &["XGROUP", "DELCONSUMER", stream, group, "clamator-probe"],
        ),
        probe(
            "EVALSHA",
            false,
            &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
        ),
        probe("EVAL", false, &["EVAL", "return 0", "0"]),
    ];
    let cmds: Vec<redis::Cmd> = probes.iter().map(|p| p.cmd.clone()).collect();
    let results: Vec<redis::RedisResult<Value>> = conn
        .each(&cmds)
        .await
        .map_err(|e| TransportError::connection("checking permissions failed", e))?;
    let mut denied = Vec::new();
    for (p, result) in probes.iter().zip(results) {
        match result {
            Err(e) if is_denied(&e) && p.required => {
                return Err(TransportError::connection(
                    "the Redis user may not run a command the server needs (see the README's least-privilege ACL)",
                    format!("{}: {e}", p.what),
                ));
            }
            Err(e) if is_denied(&e) => denied.push(p.what),
            _ => {}
        }
    }
    let cleanup_denied: Vec<&str> = denied
        .iter()
        .copied()
        .filter(|d| ["XGROUP DELCONSUMER", "EVALSHA", "EVAL"].contains(d))
        .collect();
    let caps = Capabilities {
        reply_ttl: !denied.contains(&"PEXPIRE"),
        consumer_cleanup: cleanup_denied.is_empty(),
    };
    if !caps.reply_ttl {
        tracing::warn!(
            "reply-stream TTLs are off: the Redis user may not run PEXPIRE, so the reply streams of clients that die are never removed; allow +pexpire (see the README's least-privilege ACL)"
        );
    }
    if !caps.consumer_cleanup {
        tracing::warn!(
            denied = ?cleanup_denied,
            "dead consumers are not removed from their groups: the Redis user may not run EVALSHA, EVAL or XGROUP DELCONSUMER; allow them to have consumers of dead servers removed"
        );
    }
    Ok(caps)
}

/// The `redis_version` an engine reports in `INFO server` (Valkey reports the Redis version it
/// is compatible with, e.g. 7.2.4), as (major, minor).
pub(crate) fn parse_version(info: &str) -> Option<(u32, u32)> {
    let v = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Reads the engine's version (by what it reports, never by its name) and says what it means
/// for mixed pools: before 7.2, `XINFO CONSUMERS` `idle` counts only reads and claims that
/// returned entries, so a 0.1.9 server's liveness is known only while it receives entries.
pub(crate) async fn report_version(conn: &mut Conn) {
    let info: redis::RedisResult<String> = conn.any_node(redis::cmd("INFO").arg("server")).await;
    match info.as_deref().map(parse_version) {
        Ok(Some(v)) if v < (7, 2) => tracing::info!(
            redis_version = %format!("{}.{}", v.0, v.1),
            "XINFO CONSUMERS idle counts only reads that returned entries on this server (< 7.2): a 0.1.9 server busy with one long handler looks dead after the liveness window (README: Mixed pools); Redis 7.2+ or Valkey lifts this"
        ),
        Ok(Some(v)) => {
            tracing::debug!(redis_version = %format!("{}.{}", v.0, v.1), "XINFO CONSUMERS idle counts every attempted interaction")
        }
        Ok(None) => tracing::debug!(
            "INFO server has no redis_version; assuming XINFO idle semantics of Redis < 7.2"
        ),
        Err(error) => {
            tracing::debug!(%error, "INFO server not permitted; assuming XINFO idle semantics of Redis < 7.2")
        }
    }
}

#[cfg(test)]
mod version_tests {
    use super::parse_version;

    #[test]
    fn versions_come_from_redis_version() {
        assert_eq!(
            parse_version("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"),
            Some((7, 0))
        );
        // Valkey 8.1 reports the Redis version it is compatible with
        assert_eq!(
            parse_version("redis_version:7.2.4\nserver_name:valkey\nvalkey_version:8.1.8\n"),
            Some((7, 2))
        );
        assert_eq!(parse_version("valkey_version:8.1.8\n"), None);
    }
}
