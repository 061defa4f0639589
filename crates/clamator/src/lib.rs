//! # clamator
//!
//! Typed JSON-RPC 2.0 services in Rust, over an in-process bus, Redis Streams or NATS JetStream;
//! over Redis wire-compatible
//! with the Python and TypeScript clamator 0.1.9 packages: Rust, Python and TypeScript servers
//! and clients share one Redis, and Rust servers join the same worker pools.
//!
//! ```toml
//! [dependencies]
//! clamator = "0.1"            # features = ["redis"] for the Redis transport
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! That is all a crate needs: `serde`, `schemars` and `serde_json` come through clamator
//! ([`model`], [`serde`], [`schemars`], [`serde_json`]).
//!
//! Declare a service once, as a trait, and its types with [`#[clamator::model]`](model):
//!
//! ```
//! use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
//! use clamator::RpcError;
//!
//! #[clamator::model]
//! #[derive(Debug)]
//! pub struct AddParams { pub a: f64, pub b: f64 }
//! #[clamator::model]
//! #[derive(Debug)]
//! pub struct AddResult { pub sum: f64 }
//!
//! /// Arithmetic.
//! #[clamator::contract(service = "arith")]
//! pub trait Arith {
//!     /// Adds two numbers.
//!     async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
//!     /// Says it is alive (a method without params: `{}` on the wire).
//!     #[notification]
//!     async fn ping(&self);
//! }
//!
//! struct Calculator;
//!
//! impl Arith for Calculator {
//!     async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
//!         Ok(AddResult { sum: p.a + p.b })
//!     }
//!     async fn ping(&self) {}
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
//! arith.ping().await?;
//! let contract = ArithContract::descriptor();
//! assert_eq!(contract.method("add").unwrap().description.as_deref(), Some("Adds two numbers."));
//!
//! client.stop().await;
//! server.stop().await;
//! # Ok(()) }
//! ```
//!
//! The macro generates, from `trait Arith` (details on [`contract`]):
//!
//! * the server-side trait `Arith` (its methods return `impl Future + Send`; implement them
//!   with plain `async fn`);
//! * `ArithServer<T>`: wraps an implementation for a server builder;
//! * `ArithClient<C>`: one async method per contract method over any [`RpcClient`], with
//!   `with_timeout` for a per-call timeout;
//! * `ArithContract`: `SERVICE` and `descriptor()` (methods, kinds, doc comments, draft-07 JSON
//!   Schemas).
//!
//! Hand-built services (closures, built at run time) use [`RpcService::builder`].
//!
//! # Transports
//!
//! | module | feature | what |
//! |---|---|---|
//! | [`memory`] | `memory` (default) | in-process bus: tests, embedding, one binary |
//! | [`redis`] | `redis` | Redis Streams, consumer-group worker pools, interop with Python/TypeScript 0.1.9 |
//! | [`nats`] | `nats` | NATS JetStream work-queue streams, competing pull consumers (Rust only) |
//!
//! All run the same dispatch pipeline (method lookup, params validation, handler, error
//! mapping, result serialisation), so a service behaves the same over any of them. Every client and
//! server has one lifecycle: `start` (idempotent), `stop` (drains: running handlers finish up
//! to a grace period), and dropping the last handle stops it at once.
//!
//! # Errors
//!
//! A call returns [`CallError`]: [`CallError::Rpc`] (the server's error object: `-32601`
//! unknown method, `-32602` invalid params with the failing path, `-32603` internal, or your own
//! codes), [`CallError::Transport`] (timeout, not started, Redis gone) or
//! [`CallError::Protocol`]. A handler fails with an [`RpcError`] (sent verbatim) or any error
//! type that converts (see [`contract`]).
//!
//! # More
//!
//! * [`middleware`]: tower layers around calls and dispatch (auth tokens, retries of idempotent
//!   methods, per-method timeouts, metrics, concurrency limits).
//! * [`transport`]: the interface a new transport implements.
//! * **Install a `tracing` subscriber** (`tracing_subscriber::fmt::init()` or your own): servers
//!   report reconnects, lost broker state, dead letters and bad input through `tracing`
//!   events, and without a subscriber they are silent.
//! * Observability: every call is a `tracing` span (`rpc.client` / `rpc.server`); feature `otel`
//!   carries W3C trace context across processes; [`middleware`] has `metrics` layers.
//! * [`codegen`] (feature `codegen`): OpenRPC contract documents of a contract, and Python /
//!   TypeScript / Rust code generated from them; [`include_contract!`] expands a document into
//!   a contract at compile time.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `memory` | yes | the in-process transport ([`memory`]) |
//! | `macros` | yes | [`contract`], [`model`], [`include_contract!`] |
//! | `redis` | | the Redis Streams transport ([`redis`]); links no OpenSSL |
//! | `tls` | | `rediss://` through the system's OpenSSL |
//! | `nats` | | the NATS JetStream transport ([`nats`]); TLS through rustls |
//! | `otel` | | W3C trace context across processes through `tracing-opentelemetry` |
//! | `codegen` | | [`codegen`]: contract documents and code generation |
#![doc = ""]
#![cfg_attr(
    not(feature = "redis"),
    doc = "[`redis`]: https://docs.rs/clamator-over-redis \"the redis feature\""
)]
#![cfg_attr(
    not(feature = "nats"),
    doc = "[`nats`]: https://docs.rs/clamator-over-nats \"the nats feature\""
)]
#![cfg_attr(
    not(feature = "codegen"),
    doc = "[`codegen`]: https://docs.rs/clamator-codegen \"the codegen feature\""
)]
#![cfg_attr(feature = "redis", doc = "[`redis`]: crate::redis")]
#![cfg_attr(feature = "nats", doc = "[`nats`]: crate::nats")]
#![cfg_attr(feature = "codegen", doc = "[`codegen`]: crate::codegen")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use clamator_protocol::{
    remaining, AnyClient, AnyServer, CallError, Contract, HandlerError, IntoRpcService, NoParams,
    RpcClient, RpcError, RpcService,
};

/// Everything that can fail, apart from [`CallError`] (what a call returns), [`RpcError`] (the
/// wire's error object a handler returns) and [`HandlerError`]: the causes a [`CallError`]
/// carries, server and contract errors, and the reserved JSON-RPC codes.
pub mod error {
    pub use clamator_protocol::{
        codes, BoxError, ContractError, EnvelopeError, ErrorObject, InvalidRequest,
        InvalidRequestReason, ParamsError, ProtocolError, ServerError, TransportError,
        ValidationIssue,
    };
}

/// The JSON-RPC 2.0 wire: envelopes and ids, parsing and encoding, typed params from a raw
/// value, and the rules for service and method names.
pub mod wire {
    pub use clamator_protocol::{
        decode_params, is_valid_method, is_valid_service, parse_envelope, parse_envelope_str,
        to_json, Envelope, Id, Notification, Request, Response,
    };
}

/// Contracts and services built by hand (at run time, without the macro), what a running
/// server reports, call deadlines, and the defaults every transport shares.
pub mod service {
    pub use clamator_protocol::{
        deadline, request_id, schema_for, with_deadline, ContractBuilder, LifecycleState,
        MethodDescriptor, MethodKind, RpcServiceBuilder, ServerStats, DEFAULT_CALL_TIMEOUT,
        DEFAULT_SHUTDOWN_GRACE,
    };
}

#[doc = include_str!("../docs/middleware.md")]
pub mod middleware {
    pub use clamator_protocol::middleware::*;
    /// Re-exported for layers: `tower::limit`, `tower::timeout`, `tower::buffer`, your own.
    pub use clamator_protocol::tower;
    pub use clamator_protocol::{CallKind, IncomingCall, Metadata, OutgoingCall};
}

#[doc = include_str!("../docs/transport.md")]
pub use clamator_protocol::transport;

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use clamator_protocol::__private::*;
}

/// Declares a service contract on a trait.
///
/// ```
/// use clamator::{NoParams, RpcError};
///
/// #[clamator::model]
/// pub struct Item { pub id: u32, pub name: String }
/// #[clamator::model]
/// pub struct GetItem { pub id: u32 }
///
/// /// A store of items (this text becomes the contract's description).
/// #[clamator::contract(service = "items")]
/// pub trait Items {
///     /// Looks an item up (becomes the method's OpenRPC summary, Python docstring, JSDoc).
///     #[method(idempotent)]
///     async fn get(&self, params: GetItem) -> Result<Item, RpcError>;
///     /// Counts the items (no params: `{}` on the wire).
///     async fn count(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
///     /// Wire name given explicitly (default: `snake_case` → camelCase, `echo_text` → `echoText`).
///     #[method(name = "listAll")]
///     async fn list(&self) -> Result<Vec<Item>, std::io::Error>;
///     /// Fire and forget: no reply, no result type.
///     #[notification]
///     async fn touched(&self, params: GetItem);
/// }
///
/// assert_eq!(ItemsContract::SERVICE, "items");
/// let c = ItemsContract::descriptor();
/// let names: Vec<&str> = c.methods().iter().map(|m| m.name.as_str()).collect();
/// assert_eq!(names, ["get", "count", "listAll", "touched"]);
/// assert!(c.method("get").unwrap().idempotent);
/// assert_eq!(c.description(), Some("A store of items (this text becomes the contract's description)."));
/// ```
///
/// **Rules** (each broken one is a compile error at the offending token): the trait is not
/// generic and holds only `async fn` methods; each takes `&self` and at most one params argument
/// (a type that is `Serialize + Deserialize + JsonSchema`, usually a [`model`] struct); a
/// request returns `Result<T, E>`, a `#[notification]` returns nothing. Names follow the wire
/// rules (service `^[a-z][a-z0-9-]*$`, method `^[a-z][a-zA-Z0-9]*$`).
///
/// **Generated**, next to the trait (for `trait Items`): the trait itself with methods returning
/// `impl Future + Send` (implement it with plain `async fn`; the implementation must be
/// `Send + Sync + 'static`), `ItemsServer<T>` (`new(impl)` / `from_arc(arc)`, give it to a
/// server builder's `service`), `ItemsClient<C>` (`new(client)`, `with_timeout(d)`, one method
/// per contract method returning `Result<_, CallError>`) and `ItemsContract` (`SERVICE`,
/// `descriptor()`).
///
/// **Errors.** `E` may be [`RpcError`] (sent verbatim, with its code and data), [`HandlerError`],
/// any `std::error::Error + Send + Sync + 'static` (sent as `-32603 Internal error` with data
/// `{"name": <type name>, "message": <Display>}`), `Box<dyn Error + Send + Sync>`, or
/// `anyhow::Error` (both: `{"name": "Error", …}`, or verbatim if the box holds an `RpcError`).
/// A panic in a handler is sent as `-32603` too; the server keeps serving.
///
/// **Doc comments** on the trait and its methods become the contract's and the methods'
/// descriptions ([`Contract::description`], [`MethodDescriptor::description`](service::MethodDescriptor::description)); doc comments on
/// fields of the params/result types go into their JSON Schemas. Contract documents and
/// generated Python/TypeScript code carry both.
#[cfg(feature = "macros")]
pub use clamator_macros::contract;

/// Derives `Serialize`, `Deserialize` and `JsonSchema` for a contract's params or result type
/// through clamator's re-exports, so the crate needs no `serde` or `schemars` dependency.
///
/// ```
/// /// A point (this becomes the schema's description).
/// #[clamator::model]
/// #[derive(Debug, Clone, PartialEq)]
/// pub struct Point {
///     /// Horizontal.
///     pub x: f64,
///     #[serde(rename = "yCoord", default)]
///     pub y: f64,
/// }
///
/// #[clamator::model]
/// #[serde(tag = "type", rename_all = "camelCase")]
/// pub enum Shape { Circle { r: f64 }, Square { side: f64 } }
///
/// let p: Point = clamator::serde_json::from_str(r#"{"x": 1}"#).unwrap();
/// assert_eq!(p, Point { x: 1.0, y: 0.0 });
/// let schema = clamator::service::schema_for::<Point>();
/// assert_eq!(schema["properties"]["x"]["description"], "Horizontal.");
/// ```
///
/// `#[serde(...)]` and `#[schemars(...)]` attributes work as with the derives. Put
/// `#[clamator::model]` above your own `#[derive(...)]`, and do not derive `Serialize`,
/// `Deserialize` or `JsonSchema` again. Crates that already depend on serde and schemars can
/// derive them directly instead (schemars 1.x).
#[cfg(feature = "macros")]
pub use clamator_macros::model;

/// Expands a contract document (OpenRPC, as `clamator codegen` and `codegen::to_openrpc`
/// write it; path relative to the crate's `Cargo.toml`) into the params/result types and a
/// [`contract`] trait: a Rust service implements a contract authored elsewhere. The document
/// is tracked for rebuilds.
///
/// ```ignore
/// clamator::include_contract!("contracts/arith.openrpc.json");
/// // → AddParams, AddResult, ..., trait Arith, ArithServer, ArithClient, ArithContract
/// ```
#[cfg(feature = "macros")]
pub use clamator_macros::include_contract;

/// The names most programs need: `use clamator::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "macros")]
    pub use crate::{contract, model};
    pub use crate::{
        CallError, HandlerError, IntoRpcService, NoParams, RpcClient, RpcError, RpcService,
    };
}

/// The in-process bus transport: a [`MemoryBus`](memory::MemoryBus) maps service names to
/// the server that serves them. Params and results travel as JSON values through the same
/// dispatch pipeline as over Redis, so validation and errors are the same; only the envelope a
/// wire would need is not built. An unknown service is `-32601` at once (over Redis: a
/// timeout). A call that times out cancels its handler, which runs in the caller's task.
///
/// ```
/// use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
/// use clamator::{RpcClient, RpcError, RpcService};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = MemoryBus::new();
/// let echo = RpcService::builder("echo")
///     .raw_method("say", serde_json::json!({}), serde_json::json!({}), |p| async move { Ok::<_, RpcError>(p) })
///     .build()?;
/// let server = MemoryRpcServer::builder(&bus).service(echo).build()?;
/// server.start().await?;
/// let client = MemoryRpcClient::new(&bus);
/// client.start().await?;
/// let out = client.call_value("echo", "say", serde_json::json!({"hi": 1}), None).await?;
/// assert_eq!(out, serde_json::json!({"hi": 1}));
/// let missing = client.call_value("nobody", "home", serde_json::json!({}), None).await;
/// assert_eq!(missing.unwrap_err().code(), Some(-32601));
/// client.stop().await;
/// server.stop().await;
/// # Ok(()) }
/// ```
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory {
    pub use clamator_over_memory::{
        MemoryBus, MemoryClientTransport, MemoryRpcClient, MemoryRpcClientBuilder, MemoryRpcServer,
        MemoryRpcServerBuilder, MemoryServerTransport,
    };
}

#[doc = include_str!("../docs/redis.md")]
///
/// # Example
///
/// ```no_run
/// use clamator::redis::{RedisConnection, RedisRpcClient, RedisRpcServer};
/// use clamator::RpcError;
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
///
/// #[clamator::model]
/// pub struct Hello { pub name: String }
///
/// #[clamator::contract(service = "greeter")]
/// pub trait Greeter {
///     async fn greet(&self, params: Hello) -> Result<String, RpcError>;
/// }
///
/// struct English;
/// impl Greeter for English {
///     async fn greet(&self, p: Hello) -> Result<String, RpcError> {
///         Ok(format!("hello, {}", p.name))
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // One connection value for the servers and clients of a program.
/// let redis = RedisConnection::url("redis://127.0.0.1:6379");
/// // Any number of servers with one prefix form a worker pool for each service they serve.
/// let server = RedisRpcServer::builder()
///     .connection(redis.clone())
///     .key_prefix("app")                                  // keys are app:*
///     .service(GreeterServer::new(English))
///     .concurrency(NonZeroUsize::new(32).unwrap())        // handlers at once per service
///     .shutdown_grace(Duration::from_secs(10))
///     .build()?;
/// server.start().await?;
///
/// let client = RedisRpcClient::builder().connection(redis).key_prefix("app").build()?;
/// client.start().await?;
/// let greeter = GreeterClient::new(client.clone());
/// println!("{}", greeter.greet(Hello { name: "Ada".into() }).await?);
///
/// client.stop().await;   // deletes the client's reply stream
/// server.stop().await;   // drains: running handlers finish up to the grace
/// # Ok(()) }
/// ```
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use clamator_over_redis::{
        check_key_prefix, command_stream, consumer_group_name, consumer_name, dead_letter_stream,
        redact_url, redis, reply_stream, RedisConnection, RedisRpcClient, RedisRpcClientBuilder,
        RedisRpcServer, RedisRpcServerBuilder, DEFAULT_CONCURRENCY, DEFAULT_CONSUMER_CLAIM_IDLE,
        DEFAULT_CONSUMER_EXPIRY, DEFAULT_KEY_PREFIX, DEFAULT_MAX_DELIVERIES,
        DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_REDIS_URL, DEFAULT_REPLY_STREAM_MAXLEN,
        DEFAULT_REPLY_STREAM_TTL, MAX_INSTANCE_ID_BYTES, MIN_CONSUMER_CLAIM_IDLE,
    };
}

#[doc = include_str!("../docs/nats.md")]
///
/// # Example
///
/// ```no_run
/// use clamator::nats::{NatsRpcClient, NatsRpcServer};
/// use clamator::RpcError;
///
/// #[clamator::contract(service = "greeter")]
/// pub trait Greeter {
///     async fn greet(&self, name: String) -> Result<String, RpcError>;
/// }
///
/// struct English;
/// impl Greeter for English {
///     async fn greet(&self, name: String) -> Result<String, RpcError> {
///         Ok(format!("hello, {name}"))
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = NatsRpcServer::builder()
///     .url("nats://127.0.0.1:4222")
///     .service(GreeterServer::new(English))
///     .build()?;
/// server.start().await?;
///
/// let client = NatsRpcClient::builder().url("nats://127.0.0.1:4222").build()?;
/// client.start().await?;
/// println!("{}", GreeterClient::new(client.clone()).greet("Ada".into()).await?);
/// # Ok(()) }
/// ```
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats {
    pub use clamator_over_nats::{
        async_nats, command_stream, command_subject, consumer_name, dead_letter_stream,
        dead_letter_subject, is_reply_subject_of, is_valid_prefix, redact_url, reply_subject,
        status_subject, NatsConnection, NatsRpcClient, NatsRpcClientBuilder, NatsRpcServer,
        NatsRpcServerBuilder, RunningRequest, ServerStatus, ServiceStatus, DEAD_LETTERS_KEPT,
        DEFAULT_ACK_WAIT, DEFAULT_CONCURRENCY, DEFAULT_DUPLICATE_WINDOW, DEFAULT_KEY_PREFIX,
        DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_NATS_URL,
        HEADER_DEAD_DELIVERIES, HEADER_DEAD_REASON, HEADER_DEAD_SEQUENCE, HEADER_MSG_ID,
        HEADER_REPLY_TO, HEADER_TIMEOUT_MS, MIN_ACK_WAIT,
    };
}

/// Re-exported: [`model`] derives through it; `#[derive(clamator::schemars::JsonSchema)]` with
/// `#[schemars(crate = "clamator::schemars")]` works too.
pub use schemars;
/// Re-exported: [`model`] derives through it.
pub use serde;
/// Re-exported for raw JSON values: `clamator::serde_json::json!`.
pub use serde_json;

/// Contract documents (OpenRPC) and code generation (feature `codegen`): the library behind
/// `clamator codegen`.
///
/// ```
/// #[clamator::model]
/// pub struct Hello { pub name: String }
///
/// /// Greets.
/// #[clamator::contract(service = "greeter")]
/// pub trait Greeter {
///     /// Says hello.
///     async fn greet(&self, params: Hello) -> Result<String, clamator::RpcError>;
/// }
///
/// let doc = clamator::codegen::to_openrpc(&GreeterContract::descriptor());
/// assert_eq!(doc["methods"][0]["name"], "greeter.greet");
/// assert_eq!(doc["methods"][0]["summary"], "Says hello.");
/// let parsed = clamator::codegen::from_openrpc(&doc).unwrap();
/// assert!(clamator::codegen::python(&parsed).contains("class GreeterClient"));
/// ```
#[cfg(feature = "codegen")]
#[cfg_attr(docsrs, doc(cfg(feature = "codegen")))]
pub use clamator_codegen as codegen;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
