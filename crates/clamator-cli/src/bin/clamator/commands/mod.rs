//! One module per command, each with an `exec`; `main` parses the command line, picks the
//! broker once ([`crate::target::Target`]) and hands it to the command.

pub(crate) mod bench;
pub(crate) mod call;
pub(crate) mod codegen;
pub(crate) mod dashboard;
pub(crate) mod dlq;
pub(crate) mod inspect;
pub(crate) mod man;
pub(crate) mod notify;

/// Pretty JSON for people.
pub(crate) fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}
