//! The `clamator` command-line tool's building blocks: the load generator ([`mod@bench`]), the
//! Redis layout report ([`inspect`]) and dead-letter management ([`dlq`]).

pub mod bench;
pub mod dlq;
pub mod inspect;
