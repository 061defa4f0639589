//! Compile-time checks of clamator's macros: see `tests/macro_ui.rs`. This crate holds no code.
