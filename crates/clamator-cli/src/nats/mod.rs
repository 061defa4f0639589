//! The CLI over NATS JetStream: the services under a prefix (streams, consumers, pending,
//! redeliveries, dead letters, the servers running: [`servers`]), dead letters ([`dlq`]) and
//! the dashboard's samples ([`overview`]).

pub mod dlq;
pub mod overview;

use std::fmt;

use clamator::nats::async_nats::jetstream;
use clamator::nats::dead_letter_stream;
use futures::TryStreamExt;
use serde::Serialize;

use crate::Error;

/// Connects to the first reachable of `urls` (credentials in a URL are used).
pub async fn connect(urls: &[String]) -> Result<jetstream::Context, Error> {
    let client = clamator::nats::NatsConnection::urls(urls.iter().cloned())
        .connect("clamator-cli")
        .await?;
    Ok(jetstream::new(client))
}

/// One service's queue as JetStream sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NatsService {
    /// The service.
    pub service: String,
    /// Its work-queue stream.
    pub stream: String,
    /// Requests in the stream (waiting or being handled).
    pub messages: u64,
    /// Replicas of the stream.
    pub replicas: usize,
    /// The shared consumer, when a server has created it.
    pub consumer: Option<ConsumerState>,
    /// Messages in its dead-letter stream.
    pub dead_letters: u64,
    /// Every request ever stored (the stream's last sequence).
    pub stored_total: u64,
    /// Age of the oldest request stored, ms (none stored: `None`).
    pub oldest_age_ms: Option<u64>,
    /// The servers of the service that answered the status request (instance ids).
    pub servers: Vec<String>,
}

/// The state of a service's durable consumer.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerState {
    /// Requests not yet delivered to any server.
    pub pending: u64,
    /// Requests delivered and not yet acked (being handled, or their server died).
    pub ack_pending: usize,
    /// Requests delivered more than once, now unacked.
    pub redelivered: usize,
    /// Pull requests waiting: servers with free slots and nothing to do.
    pub waiting_pulls: usize,
    /// The ack wait, ms.
    pub ack_wait_ms: u128,
}

/// Every service with a command stream under `prefix`.
pub async fn inspect(js: &jetstream::Context, prefix: &str) -> Result<Vec<NatsService>, Error> {
    let head = format!("{prefix}_cmds_");
    let mut names: Vec<String> = js
        .stream_names()
        .try_filter(|n| std::future::ready(n.starts_with(&head)))
        .try_collect()
        .await?;
    names.sort();
    let statuses = servers(&js.client(), prefix, STATUS_WAIT).await;
    let mut out = Vec::new();
    for name in names {
        let service = name[head.len()..].to_owned();
        let mut stream = js.get_stream(&name).await?;
        let info = stream.info().await?.clone();
        let consumer = match stream.consumer_info(&service).await {
            Ok(c) => Some(ConsumerState {
                pending: c.num_pending,
                ack_pending: c.num_ack_pending,
                redelivered: c.num_redelivered,
                waiting_pulls: c.num_waiting,
                ack_wait_ms: c.config.ack_wait.as_millis(),
            }),
            Err(_) => None,
        };
        let dead_letters = match js.get_stream(dead_letter_stream(prefix, &service)).await {
            Ok(mut d) => d.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        let oldest_age_ms = (info.state.messages > 0).then(|| {
            let first_ms = info.state.first_timestamp.unix_timestamp_nanos() / 1_000_000;
            u64::try_from(i128::from(crate::redis::inspect::now_ms()) - first_ms).unwrap_or(0)
        });
        let mut servers: Vec<String> = statuses
            .iter()
            .filter(|s| s.services.iter().any(|x| x.service == service))
            .map(|s| s.instance_id.clone())
            .collect();
        servers.sort();
        out.push(NatsService {
            service,
            stream: name,
            messages: info.state.messages,
            replicas: info.config.num_replicas,
            consumer,
            dead_letters,
            stored_total: info.state.last_sequence,
            oldest_age_ms,
            servers,
        });
    }
    Ok(out)
}

/// How long [`servers`] waits for answers after the last one came (and at most 4× that).
pub const STATUS_WAIT: std::time::Duration = std::time::Duration::from_millis(150);

/// Asks every running server under `prefix` what it is doing (`<prefix>.status`, answered by
/// each server; see [`clamator::nats::ServerStatus`]): the answers that come within `wait` of
/// each other (at most 4 × `wait` in all). None when no server runs or NATS is unreachable.
pub async fn servers(
    client: &clamator::nats::async_nats::Client,
    prefix: &str,
    wait: std::time::Duration,
) -> Vec<clamator::nats::ServerStatus> {
    use futures::StreamExt;
    let inbox = client.new_inbox();
    let Ok(mut sub) = client.subscribe(inbox.clone()).await else {
        return Vec::new();
    };
    let subject = clamator::nats::status_subject(prefix);
    if client
        .publish_with_reply(subject, inbox, "".into())
        .await
        .is_err()
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    let until = tokio::time::Instant::now() + wait * 4;
    loop {
        let next =
            tokio::time::timeout_at(until.min(tokio::time::Instant::now() + wait), sub.next());
        match next.await {
            Ok(Some(m)) => {
                if let Ok(status) = serde_json::from_slice(&m.payload) {
                    out.push(status);
                }
            }
            _ => break,
        }
    }
    let _ = sub.unsubscribe().await;
    out
}

/// The services as a table.
#[derive(Debug)]
pub struct Table<'a>(pub &'a [NatsService]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no services (no <prefix>_cmds_* streams)");
        }
        writeln!(
            f,
            "{:<20} {:>8} {:>8} {:>11} {:>11} {:>13} {:>5} {:>6}  SERVERS",
            "SERVICE",
            "MESSAGES",
            "PENDING",
            "ACK-PENDING",
            "REDELIVERED",
            "WAITING-PULLS",
            "R",
            "DEAD"
        )?;
        for s in self.0 {
            let (p, a, r, w) = match &s.consumer {
                Some(c) => (
                    c.pending.to_string(),
                    c.ack_pending.to_string(),
                    c.redelivered.to_string(),
                    c.waiting_pulls.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            writeln!(
                f,
                "{:<20} {:>8} {p:>8} {a:>11} {r:>11} {w:>13} {:>5} {:>6}  {}",
                s.service,
                s.messages,
                s.replicas,
                s.dead_letters,
                if s.servers.is_empty() {
                    "none answered".to_owned()
                } else {
                    s.servers.join(",")
                }
            )?;
        }
        Ok(())
    }
}
