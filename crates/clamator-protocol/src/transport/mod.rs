//! The transport interface: what every transport shares lives here, so that a transport is a
//! thin implementation of [`ClientTransport`] and [`ServerTransport`].
//!
//! ```text
//!  typed proxy ─► Client<T> ── layers ──► T: ClientTransport ══ wire ══► T: ServerTransport
//!                 (lifecycle, timeout,                                   │ Intake::handle / call
//!                  stop, spans, Replies)                                 ▼
//!                                              Server<T> ── layers ──► RpcService pipeline
//! ```

mod backoff;
mod client;
pub mod pipeline;
mod redact;
mod server;
mod slots;

pub use backoff::Backoff;
pub use client::{
    Call, Client, ClientBuilder, ClientTransport, OutgoingCall, Replies, ReplyWaiter,
};
pub use pipeline::{ServerCounters, ServerStats};
pub use redact::redact_url;
pub(crate) use server::middleware_error;
pub use server::{Delivery, IncomingCall, Intake, Server, ServerBuilder, ServerTransport};
pub use slots::{Slot, Slots};

/// Whether a call expects a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Expects a response.
    Request,
    /// Fire and forget.
    Notification,
}

/// Extra fields carried with a call besides the envelope: auth tokens, W3C trace context
/// (`traceparent`, `tracestate`), anything middleware adds. Over Redis they are extra fields
/// of the stream entry (which 0.1.9 readers ignore); in process they travel with the call.
///
/// Names are ASCII lower case letters, digits and `-` (1 to 64 bytes); a transport refuses
/// the names its wire reserves (Redis: `type`, `envelope`, `reply-to`, `timeout-ms`,
/// `reply-trim`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(String, String)>);

static EMPTY: Metadata = Metadata(Vec::new());

impl Metadata {
    /// No fields.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// A shared empty set.
    pub fn empty() -> &'static Self {
        &EMPTY
    }

    /// Whether `name` is a valid field name.
    pub fn is_valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` (replacing an earlier value).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(at).1)
    }

    /// The fields, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}
