//! Examples for clamator: run `cargo run --example quickstart`.
