//! The CLI over NATS JetStream: the services under a prefix (streams, consumers, pending,
//! redeliveries, dead letters) and dead-letter management.

use std::fmt;

use clamator::nats::async_nats::{jetstream, HeaderMap};
use clamator::nats::{
    command_stream, command_subject, dead_letter_stream, HEADER_DEAD_DELIVERIES,
    HEADER_DEAD_REASON, HEADER_DEAD_SEQUENCE,
};
use futures::TryStreamExt;
use serde::Serialize;

type Error = Box<dyn std::error::Error + Send + Sync>;

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
        out.push(NatsService {
            service,
            stream: name,
            messages: info.state.messages,
            replicas: info.config.num_replicas,
            consumer,
            dead_letters,
        });
    }
    Ok(out)
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
            "{:<20} {:>8} {:>8} {:>11} {:>11} {:>13} {:>5} {:>6}",
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
                "{:<20} {:>8} {p:>8} {a:>11} {r:>11} {w:>13} {:>5} {:>6}",
                s.service, s.messages, s.replicas, s.dead_letters
            )?;
        }
        Ok(())
    }
}

/// A dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct NatsDeadLetter {
    /// Its sequence in the dead-letter stream (the id `replay`/`drop` take).
    pub id: u64,
    /// Its sequence in the command stream.
    pub sequence: Option<u64>,
    /// Why it was dead-lettered.
    pub reason: String,
    /// Deliveries before.
    pub deliveries: Option<u64>,
    /// The request envelope.
    pub envelope: String,
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.as_str().to_owned())
}

/// The dead letters of `service`, oldest first.
pub async fn dlq_list(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
) -> Result<Vec<NatsDeadLetter>, Error> {
    let mut stream = js.get_stream(dead_letter_stream(prefix, service)).await?;
    let state = stream.info().await?.state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue; // deleted
        };
        out.push(NatsDeadLetter {
            id: seq,
            sequence: header(&m.headers, HEADER_DEAD_SEQUENCE).and_then(|v| v.parse().ok()),
            reason: header(&m.headers, HEADER_DEAD_REASON).unwrap_or_default(),
            deliveries: header(&m.headers, HEADER_DEAD_DELIVERIES).and_then(|v| v.parse().ok()),
            envelope: String::from_utf8_lossy(&m.payload).into_owned(),
        });
    }
    Ok(out)
}

/// The sequences of the chosen dead letters (all when `ids` is empty), and the ids asked for
/// that are not dead letters of the service.
async fn chosen(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
    ids: &[String],
) -> Result<(Vec<u64>, Vec<String>), Error> {
    let there: Vec<u64> = dlq_list(js, prefix, service)
        .await?
        .iter()
        .map(|l| l.id)
        .collect();
    if ids.is_empty() {
        return Ok((there, Vec::new()));
    }
    let (mut chosen, mut unknown) = (Vec::new(), Vec::new());
    for id in ids {
        match id.parse::<u64>() {
            Ok(seq) if there.contains(&seq) => chosen.push(seq),
            _ => unknown.push(id.clone()),
        }
    }
    Ok((chosen, unknown))
}

/// Publishes the chosen dead letters (all when `ids` is empty) to the command subject again,
/// with their original headers, and deletes them from the dead-letter stream.
pub async fn dlq_replay(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
    ids: &[String],
) -> Result<crate::dlq::Done, Error> {
    let stream = js.get_stream(dead_letter_stream(prefix, service)).await?;
    js.get_stream(command_stream(prefix, service))
        .await
        .map_err(|e| format!("no command stream for {service}: {e}"))?;
    let (chosen, unknown) = chosen(js, prefix, service, ids).await?;
    for &seq in &chosen {
        let m = stream
            .get_raw_message(seq)
            .await
            .map_err(|e| format!("dead letter {seq}: {e}"))?;
        let mut headers = HeaderMap::new();
        for (name, values) in m.headers.iter() {
            let name: &str = name.as_ref();
            if !name.starts_with("Clamator-Dead-") {
                for v in values {
                    headers.append(name, v.as_str());
                }
            }
        }
        js.publish_with_headers(command_subject(prefix, service), headers, m.payload.clone())
            .await?
            .await?;
        stream.delete_message(seq).await?;
    }
    Ok(crate::dlq::Done {
        count: chosen.len(),
        unknown,
    })
}

/// Deletes the chosen dead letters (all when `ids` is empty).
pub async fn dlq_drop(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
    ids: &[String],
) -> Result<crate::dlq::Done, Error> {
    let stream = js.get_stream(dead_letter_stream(prefix, service)).await?;
    let (chosen, unknown) = chosen(js, prefix, service, ids).await?;
    let mut count = 0;
    for seq in chosen {
        if stream.delete_message(seq).await? {
            count += 1;
        }
    }
    Ok(crate::dlq::Done { count, unknown })
}
