//! # clamator-over-memory
//!
//! An in-process bus transport for clamator: a [`MemoryBus`] maps service names to the server
//! that serves them; [`MemoryRpcServer`] registers its services on start, and
//! [`MemoryRpcClient`] calls them. Params and results travel as JSON values through the same
//! dispatch pipeline as over Redis (`RpcService::call`: method lookup, params validation, handler,
//! error mapping, result serialisation), so validation, field names and errors behave exactly
//! as they will over Redis; only the envelope a wire would need is not built.
//!
//! ```
//! use clamator_over_memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
//! use clamator_protocol::{RpcClient, RpcError, RpcService};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = MemoryBus::new();
//! let service = RpcService::builder("echo")
//!     .raw_method("say", serde_json::json!({}), serde_json::json!({}), |p| async move { Ok::<_, RpcError>(p) })
//!     .build()?;
//! let server = MemoryRpcServer::builder(&bus).service(service).build()?;
//! server.start().await?;
//! let client = MemoryRpcClient::new(&bus);
//! client.start().await?;
//! let out = client.call_value("echo", "say", serde_json::json!({"hi": 1}), None).await?;
//! assert_eq!(out, serde_json::json!({"hi": 1}));
//! client.stop().await;
//! server.stop().await;
//! # Ok(()) }
//! ```

mod bus;
mod client;
mod server;

pub use bus::MemoryBus;
pub use client::{MemoryClientTransport, MemoryRpcClient, MemoryRpcClientBuilder};
pub use server::{MemoryRpcServer, MemoryRpcServerBuilder, MemoryServerTransport};
