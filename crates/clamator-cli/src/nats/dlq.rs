//! Dead letters over NATS: `<prefix>_dead_<service>`, written by the servers for requests
//! delivered `max_deliveries` times; listed, replayed (published to the command subject again)
//! and dropped.

use clamator::nats::async_nats::{jetstream, HeaderMap};
use clamator::nats::{
    command_stream, command_subject, dead_letter_stream, HEADER_DEAD_DELIVERIES,
    HEADER_DEAD_REASON, HEADER_DEAD_SEQUENCE,
};
use serde::Serialize;

use crate::Error;

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
    /// The request's other headers (`Clamator-Reply-To`, metadata, …).
    pub headers: Vec<(String, String)>,
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.as_str().to_owned())
}

/// The dead letters of `service` from dead-letter sequence `from` on, oldest first, at most
/// `limit`: one ephemeral consumer reads them in one batch (not one request per letter).
async fn read(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
    newest: Option<usize>,
) -> Result<Vec<NatsDeadLetter>, Error> {
    use futures::StreamExt;
    let mut stream = js.get_stream(dead_letter_stream(prefix, service)).await?;
    let state = stream.info().await?.state.clone();
    if state.messages == 0 {
        return Ok(Vec::new());
    }
    let (from, count) = match newest {
        Some(n) => (
            state
                .first_sequence
                .max((state.last_sequence + 1).saturating_sub(n as u64)),
            n.min(state.messages as usize),
        ),
        None => (state.first_sequence, state.messages as usize),
    };
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: std::time::Duration::from_secs(10),
            description: Some("clamator CLI: reading dead letters".into()),
            ..Default::default()
        })
        .await?;
    let name = consumer.cached_info().name.clone();
    let mut batch = consumer.fetch().max_messages(count).messages().await?;
    let mut out = Vec::with_capacity(count);
    while let Some(m) = batch.next().await {
        let m = m?;
        let Ok(info) = m.info() else { continue };
        let id = info.stream_sequence;
        let h = m.headers.clone().unwrap_or_default();
        let headers = h
            .iter()
            .flat_map(|(k, vs)| {
                let k: &str = k.as_ref();
                vs.iter()
                    .map(move |v| (k.to_owned(), v.as_str().to_owned()))
            })
            .filter(|(k, _)| !k.starts_with("Clamator-Dead-"))
            .collect();
        out.push(NatsDeadLetter {
            id,
            sequence: header(&h, HEADER_DEAD_SEQUENCE).and_then(|v| v.parse().ok()),
            reason: header(&h, HEADER_DEAD_REASON).unwrap_or_default(),
            deliveries: header(&h, HEADER_DEAD_DELIVERIES).and_then(|v| v.parse().ok()),
            envelope: String::from_utf8_lossy(&m.payload).into_owned(),
            headers,
        });
        if out.len() >= count {
            break;
        }
    }
    drop(batch);
    let _ = stream.delete_consumer(&name).await;
    Ok(out)
}

/// The dead letters of `service`, oldest first.
pub async fn dlq_list(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
) -> Result<Vec<NatsDeadLetter>, Error> {
    read(js, prefix, service, None).await
}

/// The newest `limit` dead letters of `service` (fewer where some were dropped), oldest first.
pub async fn dlq_newest(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
    limit: usize,
) -> Result<Vec<NatsDeadLetter>, Error> {
    read(js, prefix, service, Some(limit)).await
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
) -> Result<crate::Done, Error> {
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
    Ok(crate::Done {
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
) -> Result<crate::Done, Error> {
    let stream = js.get_stream(dead_letter_stream(prefix, service)).await?;
    let (chosen, unknown) = chosen(js, prefix, service, ids).await?;
    let mut count = 0;
    for seq in chosen {
        if stream.delete_message(seq).await? {
            count += 1;
        }
    }
    Ok(crate::Done { count, unknown })
}
