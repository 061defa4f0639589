//! Where a NATS transport connects and how: [`NatsConnection`], one value for a client and a
//! server.

use std::fmt;

use async_nats::ConnectOptions;
use clamator_protocol::transport::redact_url;
use clamator_protocol::TransportError;

/// The default server: `nats://127.0.0.1:4222`.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Where a NATS transport connects and how: the URLs of one NATS cluster (the client connects to
/// one and fails over to the others) and async-nats [`ConnectOptions`] (credentials files,
/// nkeys, tokens, TLS, timeouts). Build it once and give it to a client and a server
/// (`.connection(conn.clone())`); `Debug` hides passwords.
///
/// ```
/// use clamator_over_nats::NatsConnection;
/// let conn = NatsConnection::urls(["nats://app:s3cret@10.0.0.1:4222", "nats://10.0.0.2:4222"]);
/// assert!(format!("{conn:?}").contains("nats://app:***@10.0.0.1:4222"));
/// ```
#[derive(Clone)]
pub struct NatsConnection {
    pub(crate) urls: Vec<String>,
    pub(crate) options: ConnectOptions,
}

impl Default for NatsConnection {
    fn default() -> Self {
        Self::url(DEFAULT_NATS_URL)
    }
}

impl fmt::Debug for NatsConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConnection")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl NatsConnection {
    /// One server (or a cluster's seed): `nats://[user:pass@]host:port`, `nats://token@host`,
    /// `tls://host:port`.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            options: ConnectOptions::new(),
        }
    }

    /// Several servers of one NATS cluster.
    pub fn urls<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            options: ConnectOptions::new(),
        }
    }

    /// async-nats options: credentials (`credentials_file`, `nkey`, `token`,
    /// `user_and_password`), TLS (`add_root_certificates`, `add_client_certificate`,
    /// `require_tls`), timeouts. Credentials in the URLs take precedence; the connection name
    /// is set by clamator.
    pub fn options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// The URLs, passwords hidden.
    pub fn redacted_urls(&self) -> String {
        self.urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Connects as clamator's clients and servers do: one attempt per URL, then the client
    /// reconnects on its own, forever; credentials in the URLs applied; errors name the
    /// redacted URLs. `name` is the connection name the NATS server shows. For tools that talk
    /// to JetStream directly, like the `clamator` CLI.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, TransportError> {
        if self.urls.is_empty() {
            return Err(TransportError::Config("no NATS server URL given".into()));
        }
        let addrs: Vec<async_nats::ServerAddr> = self
            .urls
            .iter()
            .map(|u| {
                u.parse().map_err(|e| {
                    TransportError::Config(format!("bad NATS URL {}: {e}", redact_url(u)))
                })
            })
            .collect::<Result<_, _>>()?;
        let shown = self.redacted_urls();
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
}
