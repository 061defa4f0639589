//! What a client and a server of one system must agree on: where NATS is, the subject prefix,
//! the stream layout and the envelope limit; and the builder methods that set them.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream;
use clamator_protocol::TransportError;

use crate::connection::NatsConnection;

use crate::names::{command_stream, command_subject, dead_letter_stream, dead_letter_subject};

/// How long JetStream remembers a `Nats-Msg-Id` (publish dedup): 2 minutes.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Envelopes larger than this are refused (the server's `max_payload` may be lower: then
/// that is the limit). 1 MiB, NATS's own default `max_payload`.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// How many dead letters a service's dead-letter stream keeps (oldest dropped first).
pub const DEAD_LETTERS_KEPT: i64 = 100_000;

/// Connection, prefix and stream layout, shared by the client and server builders.
#[derive(Clone)]
pub(crate) struct Wire {
    pub(crate) connection: NatsConnection,
    pub(crate) prefix: String,
    pub(crate) replicas: usize,
    pub(crate) memory_storage: bool,
    pub(crate) duplicate_window: Duration,
    pub(crate) max_envelope_bytes: usize,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .field("replicas", &self.replicas)
            .field("memory_storage", &self.memory_storage)
            .finish_non_exhaustive()
    }
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            connection: NatsConnection::default(),
            prefix: crate::names::DEFAULT_KEY_PREFIX.to_owned(),
            replicas: 1,
            memory_storage: false,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
        }
    }
}

impl Wire {
    pub(crate) fn check(&self) -> Result<(), TransportError> {
        if !crate::names::is_valid_prefix(&self.prefix) {
            return Err(TransportError::Config(format!(
                "key prefix {:?} is not usable over NATS: 1 to 64 ASCII letters, digits, '_' or '-'",
                self.prefix
            )));
        }
        if self.connection.urls.is_empty() {
            return Err(TransportError::Config("no NATS server URL given".into()));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(TransportError::Config(format!(
                "replicas must be 1 to 5, not {}",
                self.replicas
            )));
        }
        Ok(())
    }

    /// The command stream of `service`: a work queue over `<prefix>.cmds.<service>`.
    pub(crate) fn command_stream_config(&self, service: &str) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: command_stream(&self.prefix, service),
            subjects: vec![command_subject(&self.prefix, service)],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            storage: self.storage(),
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            description: Some(format!("clamator requests to service {service}")),
            ..Default::default()
        }
    }

    /// The dead-letter stream of `service`: limits retention, newest [`DEAD_LETTERS_KEPT`].
    pub(crate) fn dead_letter_stream_config(&self, service: &str) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: dead_letter_stream(&self.prefix, service),
            subjects: vec![dead_letter_subject(&self.prefix, service)],
            retention: jetstream::stream::RetentionPolicy::Limits,
            storage: self.storage(),
            num_replicas: self.replicas,
            max_messages: DEAD_LETTERS_KEPT,
            description: Some(format!("clamator dead letters of service {service}")),
            ..Default::default()
        }
    }

    fn storage(&self) -> jetstream::stream::StorageType {
        if self.memory_storage {
            jetstream::stream::StorageType::Memory
        } else {
            jetstream::stream::StorageType::File
        }
    }
}

/// Builder methods for the connection settings, shared by the client and server builders.
macro_rules! connection_methods {
    () => {
        /// Where NATS is and how to connect (URLs, credentials, TLS). Default:
        /// `nats://127.0.0.1:4222`.
        pub fn connection(mut self, connection: $crate::NatsConnection) -> Self {
            self.wire.connection = connection;
            self
        }

        /// One NATS server: `.connection(NatsConnection::url(url))`.
        pub fn url(self, url: impl Into<String>) -> Self {
            self.connection($crate::NatsConnection::url(url))
        }

        /// Several servers of one NATS cluster: `.connection(NatsConnection::urls(urls))`.
        pub fn urls<S: Into<String>>(self, urls: impl IntoIterator<Item = S>) -> Self {
            self.connection($crate::NatsConnection::urls(urls))
        }

        /// Prefix of every subject and stream name (default `clamator`): 1 to 64 ASCII
        /// letters, digits, `_` or `-`.
        pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.wire.prefix = prefix.into();
            self
        }

        /// The largest envelope sent or served (default 1 MiB; NATS's `max_payload` may be
        /// lower).
        pub fn max_envelope_bytes(mut self, bytes: usize) -> Self {
            self.wire.max_envelope_bytes = bytes;
            self
        }
    };
}
pub(crate) use connection_methods;
