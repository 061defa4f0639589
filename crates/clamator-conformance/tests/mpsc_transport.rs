//! A fourth transport, over tokio channels, written on the public transport interface alone
//! (`ClientTransport`, `ServerTransport`, `Replies`, `Intake` and its pipeline): it writes only
//! its I/O, gets the size limits, poison handling and deadlines of the shared pipeline, and
//! passes the same conformance suite as the memory, Redis and NATS transports.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clamator_protocol::transport::pipeline::{Admission, Deadline, Limits, Received};
use clamator_protocol::{
    build_notification, build_request, to_json, Call, CallError, Client, ClientTransport, Intake,
    Metadata, Replies, RpcService, Server, ServerError, ServerTransport, TransportError,
};
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// Envelopes larger than this are refused, replies larger are not sent.
const LIMIT: usize = 64 * 1024;

/// What travels on the "wire": the service, the envelope text, metadata, where to reply.
struct Packet {
    service: String,
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
}

/// One packet through the shared pipeline, then the reply.
fn serve(intake: &Intake, service: &RpcService, p: Packet) {
    let received = Received {
        body: Some(p.envelope.as_bytes()),
        reply_to: Ok(p.reply_to),
        deadline: p
            .timeout
            .map_or(Deadline::None, |t| Deadline::At(Instant::now() + t)),
        message_id: "",
    };
    let admission = intake.admit(service, received, Limits::both(LIMIT));
    let metadata = p.metadata;
    intake.spawn(
        async move {
            let finished = match admission {
                Admission::Done(finished) => finished,
                Admission::Run(admitted) => admitted.run(metadata, String::new()).await,
            };
            if let Some(reply) = finished.reply {
                let _ = reply.to.send(reply.envelope);
            }
        },
        || async {},
    );
}

impl ServerTransport for ChanServer {
    async fn start(&self, intake: &Intake) -> Result<(), ServerError> {
        let (tx, mut rx) = unbounded_channel::<Packet>();
        *self.broker.0.lock().unwrap() = Some(tx);
        let (intake, stop) = (intake.clone(), self.stop.clone());
        tokio::spawn(async move {
            while let Some(Some(p)) = stop.run_until_cancelled(rx.recv()).await {
                if let Some(service) = intake.service(&p.service).cloned() {
                    serve(&intake, &service, p);
                }
            }
        });
        Ok(())
    }

    async fn stop_intake(&self) {
        self.broker.0.lock().unwrap().take();
        self.stop.cancel();
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
            service: call.service.to_owned(),
            envelope: to_json(&request),
            metadata: call.metadata.clone(),
            timeout: Some(call.timeout),
            reply_to: self.inbox.get().cloned(),
        })?;
        waiter.reply().await
    }

    async fn notify<'a>(&'a self, call: Call<'a>) -> Result<(), CallError> {
        let notification = build_notification(call.service, call.method, call.params)?;
        Ok(self.broker.send(Packet {
            service: call.service.to_owned(),
            envelope: to_json(&notification),
            metadata: call.metadata.clone(),
            timeout: None,
            reply_to: None,
        })?)
    }

    async fn stop(&self) {}
}
// ---- Above: the whole transport. Below: the conformance harness. ----

#[derive(Default)]
struct Channels {
    broker: Broker,
}

impl Channels {
    async fn start(
        &self,
        services: Vec<RpcService>,
        layers: clamator_protocol::middleware::ServerLayers,
    ) -> Server<ChanServer> {
        let transport = ChanServer {
            broker: self.broker.clone(),
            stop: CancellationToken::new(),
        };
        let mut b = Server::builder(transport).layers(layers);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }
}

impl clamator_conformance::Harness for Channels {
    async fn server(
        &self,
        services: Vec<RpcService>,
        layers: clamator_protocol::middleware::ServerLayers,
    ) -> clamator_protocol::AnyServer {
        self.start(services, layers).await.into()
    }

    async fn client(
        &self,
        timeout: Duration,
        layers: clamator_protocol::middleware::ClientLayers,
    ) -> clamator_protocol::AnyClient {
        let transport = ChanClient {
            broker: self.broker.clone(),
            inbox: OnceLock::new(),
        };
        let client = Client::builder(transport)
            .default_timeout(timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client.into()
    }
}

impl clamator_conformance::Faults for Channels {
    async fn fault_server(&self, services: Vec<RpcService>) -> clamator_protocol::AnyServer {
        self.start(services, Default::default()).await.into()
    }

    async fn dead_letters(&self, _service: &str) -> usize {
        0
    }

    fn max_reply_bytes(&self) -> usize {
        LIMIT
    }
}

clamator_conformance::conformance_suite!(Channels::default());
clamator_conformance::fault_suite!(@cases Channels::default(); reply_over_limit_answered_once);
