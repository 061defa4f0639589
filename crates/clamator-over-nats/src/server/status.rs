//! What a server is doing, on request: every running server answers `<prefix>.status` (core
//! NATS, no queue group) with its instance id and, per service, the requests it is running
//! (stream sequence, deliveries, how long). Operators' tools (`clamator dashboard` and
//! `clamator inspect` over NATS) gather the answers: JetStream knows the consumer's totals but
//! neither which servers pull from it nor how often each pending request was delivered.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::message::ServiceCtx;

/// One server's answer on `<prefix>.status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerStatus {
    /// The server's instance id.
    pub instance_id: String,
    /// How long it has been running, ms.
    pub up_ms: u64,
    /// The services it serves.
    pub services: Vec<ServiceStatus>,
}

/// One served service in a [`ServerStatus`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// The service.
    pub service: String,
    /// Its handler slots.
    pub concurrency: usize,
    /// The requests running now.
    pub running: Vec<RunningRequest>,
}

/// A request a server is running.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunningRequest {
    /// Its sequence in the command stream.
    pub sequence: u64,
    /// Deliveries so far, this one included.
    pub deliveries: u64,
    /// Since this server received it, ms.
    pub running_ms: u64,
}

fn status(instance_id: &str, started: Instant, ctxs: &[Arc<ServiceCtx>]) -> ServerStatus {
    let services = ctxs
        .iter()
        .map(|ctx| {
            let running = ctx.running.lock().unwrap_or_else(PoisonError::into_inner);
            let mut running: Vec<RunningRequest> = running
                .iter()
                .map(|(&sequence, r)| RunningRequest {
                    sequence,
                    deliveries: r.deliveries,
                    running_ms: r.since.elapsed().as_millis() as u64,
                })
                .collect();
            running.sort_by_key(|r| r.sequence);
            ServiceStatus {
                service: ctx.service.name().to_owned(),
                concurrency: ctx.settings.concurrency.get(),
                running,
            }
        })
        .collect();
    ServerStatus {
        instance_id: instance_id.to_owned(),
        up_ms: started.elapsed().as_millis() as u64,
        services,
    }
}

/// Answers status requests until `stop`.
pub(super) async fn answer(
    client: async_nats::Client,
    mut sub: async_nats::Subscriber,
    instance_id: String,
    ctxs: Vec<Arc<ServiceCtx>>,
    stop: CancellationToken,
) {
    let started = Instant::now();
    while let Some(Some(message)) = stop.run_until_cancelled(sub.next()).await {
        let Some(reply) = message.reply else { continue };
        let body = serde_json::to_vec(&status(&instance_id, started, &ctxs)).unwrap_or_default();
        if let Err(error) = client.publish(reply, body.into()).await {
            tracing::debug!(%error, "status not sent");
        }
    }
    let _ = sub.unsubscribe().await;
}
