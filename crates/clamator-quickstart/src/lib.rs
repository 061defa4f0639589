//! The quickstart example of clamator (`cargo run --example quickstart`), in a package of its
//! own so that it builds only `clamator` with its default features and `tokio`.
