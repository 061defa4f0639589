//! # clamator
//!
//! Typed JSON-RPC 2.0 services in Rust, over an in-process bus or Redis Streams, wire-compatible
//! with the Python and TypeScript clamator 0.1.9 packages.
//!
//! Declare a service once, as a trait:
//!
//! ```
//! use clamator::{RpcError, RpcClient};
//! use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
//! pub struct AddParams { pub a: f64, pub b: f64 }
//! #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
//! pub struct AddResult { pub sum: f64 }
//! #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
//! pub struct PingParams { pub tag: Option<String> }
//!
//! #[clamator::contract(service = "arith")]
//! pub trait Arith {
//!     /// Adds two numbers.
//!     async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
//!     #[notification]
//!     async fn ping(&self, params: PingParams);
//! }
//!
//! struct Calculator;
//!
//! impl Arith for Calculator {
//!     async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
//!         Ok(AddResult { sum: p.a + p.b })
//!     }
//!     async fn ping(&self, _p: PingParams) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = MemoryBus::new();
//! let server = MemoryRpcServer::builder(&bus).service(ArithServer::new(Calculator)).build()?;
//! server.start().await?;
//!
//! let client = MemoryRpcClient::new(&bus);
//! client.start().await?;
//! let arith = ArithClient::new(client.clone());
//! assert_eq!(arith.add(AddParams { a: 2.0, b: 3.0 }).await?.sum, 5.0);
//! assert_eq!(ArithContract::descriptor().methods().len(), 2);
//!
//! client.stop().await;
//! server.stop().await;
//! # Ok(()) }
//! ```
//!
//! The macro generates, from `trait Arith`:
//!
//! * the server-side trait `Arith` (its methods return `impl Future + Send`; implement them
//!   with plain `async fn`);
//! * `ArithServer<T>`: wraps an implementation for a server builder;
//! * `ArithClient<C>`: one async method per contract method over any [`RpcClient`], with
//!   `with_timeout` for a per-call timeout;
//! * `ArithContract`: `SERVICE` and `descriptor()` (methods, kinds, draft-07 JSON Schemas).
//!
//! Rust `snake_case` method names become camelCase wire names (`echo_text` → `echoText`);
//! `#[method(name = "...")]` or `#[notification(name = "...")]` overrides. Handlers return
//! `Result<T, E>` for any `E` that converts into [`HandlerError`]: [`RpcError`] is sent
//! verbatim, other errors and panics become `-32603 Internal error`.
//!
//! Hand-built services (closures, built at run time) use [`RpcService::builder`].

pub use clamator_protocol::{
    codes, deadline, decode_params, is_valid_method, is_valid_service, parse_envelope,
    parse_envelope_str, remaining, schema_for, to_json, with_deadline, BoxError, CallError,
    CallKind, Contract, ContractBuilder, ContractError, Envelope, EnvelopeError, ErrorObject,
    HandlerError, Id, IncomingCall, IntoRpcService, InvalidRequest, InvalidRequestReason,
    LifecycleState, Metadata, MethodDescriptor, MethodKind, Notification, OutgoingCall,
    ParamsError, ProtocolError, Request, Response, RpcClient, RpcError, RpcService,
    RpcServiceBuilder, ServerError, TransportError, ValidationIssue, DEFAULT_CALL_TIMEOUT,
    DEFAULT_SHUTDOWN_GRACE,
};
#[allow(deprecated)]
pub use clamator_protocol::{Service, ServiceBuilder};

/// Middleware: tower layers around a client's calls and a server's dispatch, and the ones
/// clamator ships (shared-token auth, retry of idempotent methods).
pub use clamator_protocol::middleware;

/// The transport interface ([`transport::ClientTransport`], [`transport::ServerTransport`])
/// and the generic [`transport::Client`] / [`transport::Server`] every transport is built on.
pub use clamator_protocol::transport;

/// Re-exported for middleware: `tower::limit`, `tower::timeout`, `tower::buffer`, your own
/// layers.
pub use clamator_protocol::tower;

/// The protocol crate, for transport implementers (server and client cores).
pub use clamator_protocol as protocol;

#[cfg(feature = "macros")]
pub use clamator_macros::{contract, include_contract};

/// The in-process bus transport.
#[cfg(feature = "memory")]
pub mod memory {
    pub use clamator_over_memory::{
        MemoryBus, MemoryClientTransport, MemoryRpcClient, MemoryRpcClientBuilder, MemoryRpcServer,
        MemoryRpcServerBuilder, MemoryServerTransport,
    };
}

/// The Redis Streams transport (feature `redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use clamator_over_redis::{
        check_key_prefix, command_stream, consumer_group_name, consumer_name, dead_letter_stream,
        redact_url, redis, reply_stream, RedisRpcClient, RedisRpcClientBuilder, RedisRpcServer,
        RedisRpcServerBuilder, ServerStats, DEFAULT_CONCURRENCY, DEFAULT_CONSUMER_CLAIM_IDLE,
        DEFAULT_CONSUMER_EXPIRY, DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_ENVELOPE_BYTES,
        DEFAULT_REDIS_URL, DEFAULT_REPLY_STREAM_MAXLEN, DEFAULT_REPLY_STREAM_TTL,
        MAX_INSTANCE_ID_BYTES, MIN_CONSUMER_CLAIM_IDLE,
    };
}

/// Re-exported so contracts can derive `JsonSchema` with `#[schemars(crate = "clamator::schemars")]`.
pub use schemars;
/// Re-exported for raw JSON values.
pub use serde_json;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
