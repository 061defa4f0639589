//! The engine every language binding drives (clamator-rs for Python, `@clamator-rs/engine` for
//! Node): servers whose handlers run in the binding's event loop, clients whose calls are
//! awaited there, over memory, Redis Streams or NATS JetStream. One Rust core, thin per-language
//! wrappers (as Valkey GLIDE does): a binding implements [`Sink`] (how events reach its loop:
//! an asyncio reader socket, a Node threadsafe function), converts its language's arguments
//! into [`Settings`], and answers handlers with [`EngineServer::complete`].
//!
//! Every operation is started by a synchronous call from the loop thread and reports back
//! through the sink ([`Event::Done`] with the operation's token); the engine's threads never
//! call into the other language.

mod client;
mod events;
pub mod logs;
mod runtime;
mod server;
mod settings;

pub use client::EngineClient;
pub use events::{Event, Outcome, Sink};
pub use runtime::runtime;
pub use server::{EngineServer, MethodSpec};
pub use settings::{Settings, Tls, Wire};

/// Milliseconds as a `Duration`.
pub fn ms(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}
