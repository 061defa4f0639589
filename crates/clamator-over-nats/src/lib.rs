//! # clamator-over-nats
//!
//! The NATS JetStream transport of clamator: typed JSON-RPC 2.0 services whose requests are
//! kept in JetStream work-queue streams and pulled by competing servers.
//!
//! * A request is published to `<prefix>.cmds.<service>` with `Nats-Msg-Id` = its request id
//!   (JetStream stores it once however often the publish is retried), `Clamator-Reply-To` and
//!   `Clamator-Timeout-Ms` headers; middleware metadata travels as further headers. The call
//!   counts as sent once the stream has stored it.
//! * The stream `<prefix>_cmds_<service>` is a work queue; all servers of the service share
//!   one durable pull consumer `<service>` and pull only as many requests as they have free
//!   handler slots. Running handlers send in-progress acks every third of the ack wait; a
//!   request whose server died is delivered again after the ack wait; one delivered
//!   `max_deliveries` times without an ack goes to `<prefix>.dead.<service>`.
//! * Replies go over core NATS to the caller's `<prefix>.replies.<client-id>`; a server
//!   replies before it acks and publishes to no other subject.
//!
//! The wire is documented in the README ("NATS JetStream") for other languages to follow.
//!
//! ```no_run
//! use clamator_over_nats::{NatsRpcClient, NatsRpcServer};
//! # async fn run(service: clamator_protocol::RpcService) -> Result<(), Box<dyn std::error::Error>> {
//! let server = NatsRpcServer::builder()
//!     .url("nats://127.0.0.1:4222")
//!     .service(service)
//!     .build()?;
//! server.start().await?;
//! let client = NatsRpcClient::builder().url("nats://127.0.0.1:4222").build()?;
//! client.start().await?;
//! # Ok(()) }
//! ```

mod client;
mod connection;
mod names;
mod server;
mod wire;

pub use clamator_protocol::transport::redact_url;
pub use client::{NatsClientTransport, NatsRpcClient, NatsRpcClientBuilder};
pub use connection::{NatsConnection, DEFAULT_NATS_URL};
pub use names::{
    command_stream, command_subject, consumer_name, dead_letter_stream, dead_letter_subject,
    is_metadata_header, is_reply_subject_of, is_valid_client_id, is_valid_prefix, reply_subject,
    status_subject, DEFAULT_KEY_PREFIX, HEADER_DEAD_DELIVERIES, HEADER_DEAD_REASON,
    HEADER_DEAD_SEQUENCE, HEADER_MSG_ID, HEADER_REPLY_TO, HEADER_TIMEOUT_MS,
};
pub use server::{
    NatsRpcServer, NatsRpcServerBuilder, NatsServerTransport, RunningRequest, ServerStatus,
    ServiceStatus, DEFAULT_ACK_WAIT, DEFAULT_CONCURRENCY, DEFAULT_MAX_DELIVERIES, MIN_ACK_WAIT,
};
pub use wire::{DEAD_LETTERS_KEPT, DEFAULT_DUPLICATE_WINDOW, DEFAULT_MAX_ENVELOPE_BYTES};

pub use clamator_protocol::ServerStats;

/// The `async-nats` crate, re-exported for `connect_options`.
pub use async_nats;
