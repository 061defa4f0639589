//! The interop contracts generated from the committed documents in `contracts/` by
//! `bash scripts/codegen.sh` (a Rust service implementing contracts authored elsewhere).
//! `clamator-interop-server` serves these.

pub mod arith;
pub mod notifications;
