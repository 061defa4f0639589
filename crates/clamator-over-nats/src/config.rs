//! What clients and servers share: where NATS is, how to connect, the subject prefix, and
//! the command streams' settings.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::ConnectOptions;
use clamator_protocol::TransportError;

use crate::names::{command_stream, command_subject, dead_letter_stream, dead_letter_subject};

/// The default server: `nats://127.0.0.1:4222`.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// How long JetStream remembers a `Nats-Msg-Id` (publish dedup): 2 minutes.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Envelopes larger than this are refused (the server's `max_payload` may be lower: then
/// that is the limit). 1 MiB, NATS's own default `max_payload`.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// How many dead letters a service's dead-letter stream keeps (oldest dropped first).
pub const DEAD_LETTERS_KEPT: i64 = 100_000;

/// Connection settings and stream layout, shared by the client and server builders.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) urls: Vec<String>,
    pub(crate) options: ConnectOptions,
    pub(crate) prefix: String,
    pub(crate) replicas: usize,
    pub(crate) memory_storage: bool,
    pub(crate) duplicate_window: Duration,
    pub(crate) max_envelope_bytes: usize,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("replicas", &self.replicas)
            .field("memory_storage", &self.memory_storage)
            .finish_non_exhaustive()
    }
}

impl Default for Connection {
    fn default() -> Self {
        Self {
            urls: vec![DEFAULT_NATS_URL.to_owned()],
            options: ConnectOptions::new(),
            prefix: crate::names::DEFAULT_PREFIX.to_owned(),
            replicas: 1,
            memory_storage: false,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
        }
    }
}

pub use clamator_protocol::transport::redact_url;

impl Connection {
    pub(crate) fn check(&self) -> Result<(), TransportError> {
        if !crate::names::is_valid_prefix(&self.prefix) {
            return Err(TransportError::Config(format!(
                "key prefix {:?} is not usable over NATS: 1 to 64 ASCII letters, digits, '_' or '-'",
                self.prefix
            )));
        }
        if self.urls.is_empty() {
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

    /// Connects (one attempt per URL; afterwards the client reconnects on its own).
    pub(crate) async fn connect(&self, name: &str) -> Result<async_nats::Client, TransportError> {
        self.check()?;
        let addrs: Vec<async_nats::ServerAddr> = self
            .urls
            .iter()
            .map(|u| {
                u.parse().map_err(|e| {
                    TransportError::Config(format!("bad NATS URL {}: {e}", redact_url(u)))
                })
            })
            .collect::<Result<_, _>>()?;
        let shown = self
            .urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",");
        // async-nats reads no credentials from URLs: `nats://user:pass@host` and
        // `nats://token@host` are applied here (they take precedence over `connect_options`).
        let mut options = self.options.clone();
        if let Some(user) = addrs.iter().find_map(|a| a.username()) {
            let addr = addrs.iter().find(|a| a.username().is_some());
            options = match addr.and_then(|a| a.password()) {
                Some(pass) => options.user_and_password(user.to_owned(), pass.to_owned()),
                None => options.token(user.to_owned()),
            };
        }
        options
            .name(name)
            .max_reconnects(None)
            .connect(addrs)
            .await
            .map_err(|e| TransportError::Connection {
                context: "nats connect failed",
                source: format!("{shown}: {e}").into(),
            })
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

/// Connects to the first reachable of `urls` as clamator's clients and servers do (URL
/// credentials applied, reconnecting forever, errors naming the redacted URLs): for tools
/// that talk to JetStream directly, like the `clamator` CLI.
pub async fn connect(
    urls: &[String],
    options: ConnectOptions,
    name: &str,
) -> Result<async_nats::Client, TransportError> {
    let conn = Connection {
        urls: urls.to_vec(),
        options,
        ..Connection::default()
    };
    conn.connect(name).await
}

/// Builder methods for the connection settings, shared by the client and server builders.
macro_rules! connection_methods {
    () => {
        /// The NATS server (default `nats://127.0.0.1:4222`); `nats://user:pass@host:port` and
        /// `tls://` URLs work.
        pub fn url(mut self, url: impl Into<String>) -> Self {
            self.conn.urls = vec![url.into()];
            self
        }

        /// Several servers of one NATS cluster: the client connects to one and fails over to
        /// the others.
        pub fn urls<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
            self.conn.urls = urls.into_iter().map(Into::into).collect();
            self
        }

        /// Connection options of `async-nats`: credentials (`credentials_file`, `nkey`,
        /// `token`, `user_and_password`), TLS (`add_root_certificates`, `add_client_certificate`,
        /// `require_tls`), timeouts. The connection name is set by clamator.
        pub fn connect_options(mut self, options: $crate::async_nats::ConnectOptions) -> Self {
            self.conn.options = options;
            self
        }

        /// Prefix of every subject and stream name (default `clamator`): 1 to 64 ASCII
        /// letters, digits, `_` or `-`.
        pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.conn.prefix = prefix.into();
            self
        }

        /// The largest envelope sent or served (default 1 MiB; NATS's `max_payload` may be
        /// lower).
        pub fn max_envelope_bytes(mut self, bytes: usize) -> Self {
            self.conn.max_envelope_bytes = bytes;
            self
        }
    };
}
pub(crate) use connection_methods;
