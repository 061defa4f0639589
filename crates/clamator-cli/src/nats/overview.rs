//! The dashboard's reads over NATS JetStream: the overview (each command stream, its consumer
//! and dead-letter stream, and the servers that answer `<prefix>.status`) and one service in
//! detail. JetStream knows a consumer's totals; the servers say what they run (which requests,
//! delivered how often), so the service page lists the servers as its consumers and their
//! running requests as its pending ones.

use clamator::nats::async_nats::jetstream;
use clamator::nats::{command_stream, consumer_name, dead_letter_stream};

use super::dlq;
use crate::dashboard::data::{
    cap, ConsumerRow, Counts, DeadRow, MethodRow, Overview, PendingRow, Sampler, ServiceDetail,
    DEAD_LETTER_LIMIT, PENDING_LIMIT,
};
use crate::redis::inspect::now_ms;
use crate::Error;

/// Reads one sample: every command stream under the prefix (the stream list is one request)
/// with its consumer, dead letters and the servers that answered.
pub async fn sample(sampler: &mut Sampler, js: &jetstream::Context) -> Result<Overview, Error> {
    let services = super::inspect(js, &sampler.prefix).await?;
    let counts = services
        .into_iter()
        .map(|s| Counts {
            length: s.messages,
            added: Some(s.stored_total),
            pending: s.consumer.as_ref().map_or(0, |c| c.ack_pending as u64),
            lag: s.consumer.as_ref().map(|c| c.pending),
            oldest_pending_age_ms: s.oldest_age_ms,
            consumers_alive: s.servers.len(),
            consumers_dead: None,
            dead_letters: s.dead_letters,
            service: s.service,
        })
        .collect();
    let now = now_ms();
    Ok(Overview {
        broker: "nats",
        prefix: sampler.prefix.clone(),
        at_ms: now,
        interval_s: 0.0,
        services: sampler.rows(counts, now),
        reply_streams: Vec::new(),
        error: None,
    })
}

/// Reads one service in detail: the consumer's totals, the servers running it (as consumers)
/// with the requests they run (as pending, most delivered first), and the newest dead letters.
pub async fn service_detail(
    js: &jetstream::Context,
    prefix: &str,
    service: &str,
    methods: Option<Vec<MethodRow>>,
) -> Result<ServiceDetail, Error> {
    let stream_name = command_stream(prefix, service);
    let mut stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| format!("stream {stream_name}: {e}"))?;
    let length = stream.info().await?.state.messages;
    let consumer = stream.consumer_info(consumer_name(service)).await.ok();
    let (ack_pending, ack_wait) = consumer
        .as_ref()
        .map_or((0, None), |c| (c.num_ack_pending, Some(c.config.ack_wait)));
    let statuses = super::servers(&js.client(), prefix, super::STATUS_WAIT).await;
    let mut consumers = Vec::new();
    let mut pending = Vec::new();
    for status in &statuses {
        let Some(s) = status.services.iter().find(|s| s.service == service) else {
            continue;
        };
        consumers.push(ConsumerRow {
            name: status.instance_id.clone(),
            group: consumer_name(service),
            pending: s.running.len() as u64,
            idle_ms: 0,
            last_delivery_ms: None,
            alive: true,
        });
        pending.extend(s.running.iter().map(|r| PendingRow {
            id: r.sequence.to_string(),
            group: consumer_name(service),
            consumer: status.instance_id.clone(),
            idle_ms: r.running_ms,
            deliveries: r.deliveries,
        }));
    }
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let running: usize = pending.len();
    pending.sort_by(|a, b| {
        b.deliveries
            .cmp(&a.deliveries)
            .then(b.idle_ms.cmp(&a.idle_ms))
    });
    pending.truncate(PENDING_LIMIT);
    let note = (ack_pending > running).then(|| {
        format!(
            "{} delivered request(s) are held by no server that answered (one that died, froze or is stopping): JetStream delivers them again after the ack wait{}",
            ack_pending - running,
            ack_wait.map_or(String::new(), |w| format!(" ({} ms)", w.as_millis()))
        )
    });
    let dead_total = match js.get_stream(dead_letter_stream(prefix, service)).await {
        Ok(mut d) => d.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    };
    let mut letters = dlq::dlq_newest(js, prefix, service, DEAD_LETTER_LIMIT)
        .await
        .unwrap_or_default();
    letters.reverse();
    letters.truncate(DEAD_LETTER_LIMIT);
    let dead_letters = letters
        .into_iter()
        .map(|l| {
            let (envelope, truncated) = cap(&l.envelope);
            DeadRow {
                id: l.id.to_string(),
                reason: l.reason,
                entry_id: l.sequence.map_or_else(|| "?".into(), |s| s.to_string()),
                deliveries: l.deliveries,
                envelope,
                truncated,
                fields: l.headers,
            }
        })
        .collect();
    Ok(ServiceDetail {
        service: service.to_owned(),
        stream: stream_name,
        length,
        pending_total: ack_pending as u64,
        consumers,
        pending,
        dead_total,
        note,
        dead_letters: Some(dead_letters),
        methods,
    })
}
