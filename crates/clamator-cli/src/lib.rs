//! The `clamator` command-line tool's building blocks: the load generator ([`bench`]) and the
//! Redis layout report ([`inspect`]).

pub mod bench;
pub mod inspect;
