//! # clamator-over-redis
//!
//! The Redis Streams transport of clamator, byte-compatible with `clamator-over-redis` 0.1.9
//! (Python) and `@clamator/over-redis` (TypeScript): Rust services and clients share a Redis
//! with them.
//!
//! * Requests and notifications are `XADD`ed to `<prefix>:cmds:<service>` with fields
//!   `type=rpc`, `envelope=<JSON>` and, on requests only, `reply-to=<prefix>:replies:<client>`.
//! * Servers read with `XREADGROUP` in group `<service>` as consumer `<service>:<instance_id>`,
//!   reply with `XADD <reply-to> MAXLEN ~ N *` and then `XACK` (pipelined), and reclaim the
//!   entries of dead servers with `XPENDING` (idle entries of consumers that are not alive)
//!   and `XCLAIM`.
//! * Clients read their reply stream with a blocking `XREAD` and delete it on stop.
//!
//! Unlike the originals, a server runs up to `concurrency` handlers per service at once
//! (`1` keeps their strict order), never reads more than it has free slots, keeps the entries
//! it is still running from being reclaimed by others, answers unparseable requests with an
//! error instead of letting the caller time out, and survives Redis restarts (reconnect with
//! backoff, consumer groups recreated). See the README.

mod client;
mod conn;
mod connection;
mod entry;
mod errors;
mod keys;
mod server;
mod settings;

pub use clamator_protocol::transport::redact_url;
pub use client::{RedisClientTransport, RedisRpcClient, RedisRpcClientBuilder};
pub use connection::{RedisConnection, DEFAULT_REDIS_URL};
pub use keys::MAX_INSTANCE_ID_BYTES;
pub use keys::{
    check_key_prefix, command_stream, consumer_group_name, consumer_name, dead_letter_stream,
    reply_stream,
};
pub use server::{
    RedisRpcServer, RedisRpcServerBuilder, RedisServerTransport, DEFAULT_CONCURRENCY,
    DEFAULT_CONSUMER_CLAIM_IDLE, DEFAULT_CONSUMER_EXPIRY, DEFAULT_MAX_DELIVERIES,
    DEFAULT_REPLY_STREAM_MAXLEN, MIN_CONSUMER_CLAIM_IDLE, RESERVED_FIELDS,
};
pub use settings::{DEFAULT_KEY_PREFIX, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_REPLY_STREAM_TTL};

pub use clamator_protocol::ServerStats;

/// The `redis` crate, re-exported for `redis_client` injection.
pub use redis;
