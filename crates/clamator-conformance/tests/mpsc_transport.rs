//! A third transport, over tokio channels, written on the public transport interface alone
//! (`ClientTransport`, `ServerTransport`, `Replies`, `Intake`): it passes the same
//! conformance suite as the memory and Redis transports.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clamator_protocol::{
    build_notification, build_request, parse_envelope_str, to_json, Call, CallError, Client,
    ClientTransport, Delivery, Envelope, Intake, Metadata, Replies, Server, ServerError,
    ServerTransport, TransportError,
};
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What travels on the "wire": the envelope text, the metadata, where to reply.
struct Packet {
    envelope: String,
    metadata: Metadata,
    timeout: Option<Duration>,
    reply_to: Option<UnboundedSender<String>>,
}

/// The "broker": where the server listens.
#[derive(Clone, Default)]
struct Broker(Arc<Mutex<Option<UnboundedSender<Packet>>>>);

impl Broker {
    fn send(&self, packet: Packet) -> Result<(), TransportError> {
        let server = self.0.lock().unwrap().clone();
        server
            .and_then(|s| s.send(packet).ok())
            .ok_or_else(|| TransportError::connection("send failed", "no server listening"))
    }
}

struct ChanServer {
    broker: Broker,
    stop: CancellationToken,
    loops: TaskTracker,
}

impl ServerTransport for ChanServer {
    async fn start(&self, intake: &Intake) -> Result<(), ServerError> {
        let (tx, mut rx) = unbounded_channel::<Packet>();
        *self.broker.0.lock().unwrap() = Some(tx);
        let (intake, stop) = (intake.clone(), self.stop.clone());
        self.loops.spawn(async move {
            while let Some(p) = tokio::select! { p = rx.recv() => p, () = stop.cancelled() => None }
            {
                let Ok(envelope) = parse_envelope_str(&p.envelope) else {
                    continue;
                };
                let name = match &envelope {
                    Envelope::Request(r) => r.service.clone(),
                    Envelope::Notification(n) => n.service.clone(),
                    Envelope::Response(_) => continue,
                };
                let Some(service) = intake.service(&name).cloned() else {
                    continue;
                };
                let deadline = p.timeout.and_then(|t| Instant::now().checked_add(t));
                let delivery = Delivery::new()
                    .with_deadline(deadline)
                    .with_metadata(p.metadata);
                let handling = intake.handle(&service, envelope, delivery);
                let shutdown = intake.shutdown_token().clone();
                intake.tracker().spawn(async move {
                    tokio::select! {
                        reply = handling => if let (Some(r), Some(to)) = (reply, p.reply_to) {
                            let _ = to.send(to_json(&r));
                        },
                        () = shutdown.cancelled() => {}
                    }
                });
            }
        });
        Ok(())
    }

    async fn stop_intake(&self) {
        self.broker.0.lock().unwrap().take();
        self.stop.cancel();
        self.loops.close();
        self.loops.wait().await;
    }

    async fn close(&self) {}
}

struct ChanClient {
    broker: Broker,
    inbox: OnceLock<UnboundedSender<String>>,
}

impl ClientTransport for ChanClient {
    async fn start(&self, replies: &Replies) -> Result<(), TransportError> {
        let (tx, mut rx) = unbounded_channel::<String>();
        let _ = self.inbox.set(tx);
        let replies = replies.clone();
        tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = replies.deliver_slice(reply.as_bytes());
            }
        });
        Ok(())
    }

    async fn request<'a>(
        &'a self,
        call: Call<'a>,
        replies: &'a Replies,
    ) -> Result<Value, CallError> {
        let request = build_request(call.service, call.method, call.params)?;
        let waiter = replies.expect(request.id.to_string());
        self.broker.send(Packet {
            envelope: to_json(&request),
            metadata: call.metadata.clone(),
            timeout: Some(call.timeout),
            reply_to: self.inbox.get().cloned(),
        })?;
        waiter.reply().await
    }

    async fn notify<'a>(&'a self, call: Call<'a>) -> Result<(), CallError> {
        let notification = build_notification(call.service, call.method, call.params)?;
        let (envelope, metadata) = (to_json(&notification), call.metadata.clone());
        let packet = Packet {
            envelope,
            metadata,
            timeout: None,
            reply_to: None,
        };
        Ok(self.broker.send(packet)?)
    }

    async fn stop(&self) {}
}

#[derive(Default)]
struct Channels {
    broker: Broker,
}

impl clamator_conformance::Harness for Channels {
    type Client = Client<ChanClient>;
    type Server = Server<ChanServer>;

    async fn server(
        &self,
        services: Vec<clamator_protocol::RpcService>,
        layers: clamator_protocol::middleware::ServerLayers,
    ) -> Self::Server {
        let transport = ChanServer {
            broker: self.broker.clone(),
            stop: CancellationToken::new(),
            loops: TaskTracker::new(),
        };
        let mut b = Server::builder(transport).layers(layers);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }

    async fn stop_server(&self, server: &Self::Server, grace: Duration) {
        server.stop_with_grace(grace).await;
    }

    async fn client(
        &self,
        timeout: Duration,
        layers: clamator_protocol::middleware::ClientLayers,
    ) -> Self::Client {
        let transport = ChanClient {
            broker: self.broker.clone(),
            inbox: OnceLock::new(),
        };
        let client = Client::builder(transport)
            .default_timeout(timeout)
            .layers(layers)
            .build();
        client.start().await.unwrap();
        client
    }

    async fn stop_client(&self, client: &Self::Client) {
        client.stop().await;
    }
}

clamator_conformance::conformance_suite!(Channels::default());
