//! [`Broker`]: the one type the commands and the dashboard talk to. It answers for Redis or
//! NATS JetStream (chosen once, where the flags are read), so no command branches on the
//! broker: each question has one method, each answer one type that prints itself.

use std::fmt;
use std::time::Duration;

use clamator::nats::async_nats::jetstream;
use serde::Serialize;

use crate::dashboard::data::{MethodRow, Overview, Sampler, ServiceDetail};
use crate::nats::dlq::NatsDeadLetter;
use crate::nats::NatsService;
use crate::redis::diagnose::Readers;
use crate::redis::dlq::DeadLetter;
use crate::redis::{self, RawConn};

/// What a broker operation fails with: its cause, in words for people.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The services of one key prefix on one broker, and what the tools do with them.
#[derive(Debug, Clone)]
pub enum Broker {
    /// Redis (a node, a cluster or a Sentinel-managed master), through the CLI's connection.
    Redis {
        /// The connection.
        conn: RawConn,
        /// The key prefix.
        prefix: String,
    },
    /// NATS JetStream.
    Nats {
        /// JetStream on the CLI's connection.
        js: jetstream::Context,
        /// The subject prefix.
        prefix: String,
    },
}

/// What `replay` or `drop` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// How many dead letters it replayed or dropped.
    pub count: usize,
    /// The ids asked for that are not dead letters of the service.
    pub unknown: Vec<String>,
}

/// `clamator inspect`'s report: prints as a table, serializes as the broker's own layout.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// Streams, groups, consumers, pending entries, dead letters, reply streams.
    Redis(redis::inspect::Report),
    /// Streams, the consumer's counts, dead letters, the servers that answered.
    Nats(Vec<NatsService>),
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(r) => r.fmt(f),
            Self::Nats(s) => crate::nats::Table(s).fmt(f),
        }
    }
}

/// A service's dead letters: prints as a list, serializes as the broker's own records.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DeadLetters {
    /// Entries of `<prefix>:dead:<service>`.
    Redis {
        /// The dead-letter stream.
        #[serde(skip)]
        stream: String,
        /// The letters, oldest first.
        letters: Vec<DeadLetter>,
    },
    /// Messages of `<prefix>_dead_<service>`.
    Nats {
        /// The dead-letter stream.
        #[serde(skip)]
        stream: String,
        /// The letters, oldest first.
        letters: Vec<NatsDeadLetter>,
    },
}

impl DeadLetters {
    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Self::Redis { letters, .. } => letters.len(),
            Self::Nats { letters, .. } => letters.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records alone (what `--json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Redis { letters, .. } => serde_json::to_value(letters),
            Self::Nats { letters, .. } => serde_json::to_value(letters),
        }
        .unwrap_or_default()
    }
}

impl fmt::Display for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |envelope: &str| envelope.chars().take(120).collect::<String>();
        match self {
            Self::Redis { stream, letters } => {
                writeln!(f, "{} dead letter(s) in {stream}", letters.len())?;
                for l in letters {
                    let envelope = l
                        .fields
                        .iter()
                        .find(|(k, _)| k == "envelope")
                        .map_or("", |(_, v)| v.as_str());
                    writeln!(
                        f,
                        "{}  entry {}  {}\n    {}",
                        l.id,
                        l.entry_id,
                        l.reason,
                        short(envelope)
                    )?;
                }
            }
            Self::Nats { stream, letters } => {
                writeln!(f, "{} dead letter(s) in {stream}", letters.len())?;
                for l in letters {
                    let seq = l.sequence.map_or("?".into(), |s| s.to_string());
                    writeln!(
                        f,
                        "{}  sequence {seq}  {}\n    {}",
                        l.id,
                        l.reason,
                        short(&l.envelope)
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl Broker {
    /// The key prefix.
    pub fn prefix(&self) -> &str {
        match self {
            Self::Redis { prefix, .. } | Self::Nats { prefix, .. } => prefix,
        }
    }

    /// `redis` or `nats`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Redis { .. } => "redis",
            Self::Nats { .. } => "nats",
        }
    }

    /// The services that have a command stream under the prefix.
    pub async fn services(&self) -> Result<Vec<String>, Error> {
        Ok(match self {
            Self::Redis { conn, prefix } => {
                redis::inspect::services(&mut conn.clone(), prefix).await?
            }
            Self::Nats { js, prefix } => crate::nats::inspect(js, prefix)
                .await?
                .into_iter()
                .map(|s| s.service)
                .collect(),
        })
    }

    /// Everything under the prefix (`clamator inspect`).
    pub async fn inspect(&self) -> Result<Report, Error> {
        Ok(match self {
            Self::Redis { conn, prefix } => {
                Report::Redis(redis::inspect::inspect(&mut conn.clone(), prefix).await?)
            }
            Self::Nats { js, prefix } => Report::Nats(crate::nats::inspect(js, prefix).await?),
        })
    }

    /// The dead letters of `service`, oldest first.
    pub async fn dead_letters(&self, service: &str) -> Result<DeadLetters, Error> {
        Ok(match self {
            Self::Redis { conn, prefix } => DeadLetters::Redis {
                stream: clamator::redis::dead_letter_stream(prefix, service),
                letters: redis::dlq::list(&mut conn.clone(), prefix, service).await?,
            },
            Self::Nats { js, prefix } => DeadLetters::Nats {
                stream: clamator::nats::dead_letter_stream(prefix, service),
                letters: crate::nats::dlq::dlq_list(js, prefix, service).await?,
            },
        })
    }

    /// Puts the dead letters `ids` (all when empty) back on the command stream.
    pub async fn replay(&self, service: &str, ids: &[String]) -> Result<Done, Error> {
        match self {
            Self::Redis { conn, prefix } => {
                Ok(redis::dlq::replay(&mut conn.clone(), prefix, service, ids).await?)
            }
            Self::Nats { js, prefix } => {
                crate::nats::dlq::dlq_replay(js, prefix, service, ids).await
            }
        }
    }

    /// Deletes the dead letters `ids` (all when empty).
    pub async fn drop_dead_letters(&self, service: &str, ids: &[String]) -> Result<Done, Error> {
        match self {
            Self::Redis { conn, prefix } => {
                Ok(redis::dlq::drop(&mut conn.clone(), prefix, service, ids).await?)
            }
            Self::Nats { js, prefix } => crate::nats::dlq::dlq_drop(js, prefix, service, ids).await,
        }
    }

    /// Before a call or notification: a service nobody ever served under the prefix is named
    /// at once (with the services that exist), instead of waiting out the timeout, and nothing
    /// is created for it. Over NATS the client refuses it itself (no stream: no server ever).
    pub async fn check_served(&self, service: &str) -> Result<(), String> {
        let Self::Redis { conn, prefix } = self else {
            return Ok(());
        };
        let Ok(readers) = redis::diagnose::readers(&mut conn.clone(), prefix, service).await else {
            return Ok(());
        };
        if !matches!(readers, Readers::NoStream | Readers::NoGroup) {
            return Ok(());
        }
        let services = self.services().await.unwrap_or_default();
        let known = if services.is_empty() {
            format!("no service has a stream under prefix {prefix:?}")
        } else {
            format!("services under prefix {prefix:?}: {}", services.join(", "))
        };
        Err(format!(
            "{}; {known} (nothing was sent; --create sends it anyway and leaves it waiting for a server)",
            readers.explain(prefix, service)
        ))
    }

    /// Why a call to `service` may have timed out: who reads its stream (Redis), or what its
    /// consumer and servers are doing (NATS). Empty when it cannot tell.
    pub async fn timeout_hint(&self, service: &str) -> String {
        match self {
            Self::Redis { conn, prefix } => {
                redis::diagnose::readers(&mut conn.clone(), prefix, service)
                    .await
                    .map(|r| format!(": {}", r.explain(prefix, service)))
                    .unwrap_or_default()
            }
            Self::Nats { js, prefix } => {
                let services = crate::nats::inspect(js, prefix).await.unwrap_or_default();
                let Some(s) = services.iter().find(|s| s.service == service) else {
                    return String::new();
                };
                match &s.consumer {
                    Some(c) if s.servers.is_empty() => format!(
                        ": no server of {service:?} answered under prefix {prefix:?} ({} request(s) waiting, {} delivered and held, ack wait {} ms); start one",
                        c.pending, c.ack_pending, c.ack_wait_ms
                    ),
                    Some(c) => format!(
                        ": the consumer of {service:?} has {} request(s) undelivered, {} being handled (or held by a dead server until the ack wait of {} ms); servers: {}",
                        c.pending, c.ack_pending, c.ack_wait_ms, s.servers.join(", ")
                    ),
                    None => String::new(),
                }
            }
        }
    }

    /// After a notification was sent: a warning when nobody may ever read it (Redis: no
    /// consumer group or no live consumer; NATS: no server answered).
    pub async fn unread_warning(&self, service: &str) -> Option<String> {
        match self {
            Self::Redis { conn, prefix } => {
                redis::diagnose::readers(&mut conn.clone(), prefix, service)
                    .await
                    .ok()
                    .filter(Readers::nobody)
                    .map(|r| r.explain(prefix, service))
            }
            Self::Nats { js, prefix } => {
                let servers =
                    crate::nats::servers(&js.client(), prefix, crate::nats::STATUS_WAIT).await;
                let served = servers
                    .iter()
                    .any(|s| s.services.iter().any(|x| x.service == service));
                (!served).then(|| {
                    format!("no server of {service:?} answered under prefix {prefix:?}: it waits in the stream until one starts")
                })
            }
        }
    }

    /// One sample of the dashboard's overview.
    pub async fn sample(&self, sampler: &mut Sampler) -> Result<Overview, Error> {
        Ok(match self {
            Self::Redis { conn, .. } => redis::overview::sample(sampler, &mut conn.clone()).await?,
            Self::Nats { js, .. } => crate::nats::overview::sample(sampler, js).await?,
        })
    }

    /// One service in detail, for the dashboard's service page.
    pub async fn service_detail(
        &self,
        service: &str,
        alive_within: Duration,
        methods: Option<Vec<MethodRow>>,
    ) -> Result<ServiceDetail, Error> {
        Ok(match self {
            Self::Redis { conn, prefix } => {
                redis::overview::service_detail(
                    &mut conn.clone(),
                    prefix,
                    service,
                    alive_within,
                    methods,
                )
                .await?
            }
            Self::Nats { js, prefix } => {
                crate::nats::overview::service_detail(js, prefix, service, methods).await?
            }
        })
    }
}
