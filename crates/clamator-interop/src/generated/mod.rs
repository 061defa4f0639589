//! The interop contracts generated from the committed documents in `contracts/` by
//! `bash scripts/codegen.sh` (a Rust service implementing contracts authored elsewhere).
//! `clamator-interop-server` serves these. The files are left as codegen writes them
//! (`rustfmt::skip`), so `scripts/codegen.sh --check` compares them byte for byte.

#[rustfmt::skip]
pub mod arith;
#[rustfmt::skip]
pub mod notifications;
