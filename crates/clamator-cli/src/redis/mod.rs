//! The CLI over Redis: its own connection ([`conn::RawConn`], a node, a cluster or a Sentinel's
//! master), the layout report ([`inspect`]), dead letters ([`dlq`]), who reads a stream
//! ([`diagnose`]) and the dashboard's samples ([`overview`]).

pub mod conn;
pub mod diagnose;
pub mod dlq;
pub mod inspect;
pub mod overview;

pub use conn::RawConn;
