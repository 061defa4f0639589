//! Classification of Redis errors: what a retry can fix, what it cannot, and how a failed
//! command is reported.

use clamator_protocol::TransportError;

use crate::settings::NOT_REPLICATED;

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
