//! The `clamator` command-line tool's building blocks: the load generator ([`mod@bench`]), the
//! Redis layout report ([`inspect`]), dead-letter management ([`dlq`]) and who reads a
//! service's stream ([`diagnose`]), on one node or a cluster ([`conn`]), and the web
//! dashboard ([`dashboard`]); the same over NATS JetStream ([`nats`]).

pub mod bench;
pub mod conn;
pub mod dashboard;
pub mod diagnose;
pub mod dlq;
pub mod inspect;
pub mod nats;
