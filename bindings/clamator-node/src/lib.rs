//! clamator for Node: the Rust engine behind the clamator TypeScript API, as a native addon
//! (`@clamator-rs/engine`). The TypeScript packages (`@clamator-rs/over-redis`, `over-nats`)
//! keep the original classes and run contract validation, dispatch and logging in JavaScript;
//! this addon is what they drive: servers whose handlers are JavaScript functions, clients
//! whose calls are awaited in JavaScript, over Redis Streams or NATS JetStream, joined to the
//! event loop by a batched bridge (see `bridge`). `bench` holds the bridge measurement.

// Under `cfg(test)` napi-derive registers no exports, so every export looks unused.
#![cfg_attr(test, allow(dead_code))]

mod bench;
mod bridge;
mod engine;
