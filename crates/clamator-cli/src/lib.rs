//! The `clamator` command-line tool's building blocks, shared by its commands and its web
//! dashboard: [`Broker`] (the one type commands talk to; it answers for Redis or NATS), the
//! load generator ([`mod@bench`]), the web dashboard ([`dashboard`]), and what each broker
//! does underneath ([`redis`]: layout report, dead letters, who reads a stream, one node or a
//! cluster; [`nats`]: the same over JetStream).

pub mod bench;
mod broker;
pub mod dashboard;
pub mod nats;
pub mod redis;

pub use broker::{Broker, DeadLetters, Done, Error, Report};
