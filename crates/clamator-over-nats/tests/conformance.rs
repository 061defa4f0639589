//! The NATS JetStream transport passes the shared conformance suite and its fault cases, each
//! case on its own private `nats-server -js`.

use std::sync::Mutex;
use std::time::Duration;

use clamator_conformance::{BrokerFaults, BrokerState, Faults, Harness};
use clamator_over_nats::async_nats::{self, jetstream};
use clamator_over_nats::{NatsRpcClient, NatsRpcServer};
use clamator_protocol::middleware::{ClientLayers, ServerLayers};
use clamator_protocol::RpcService;
use clamator_test_support::nats::NatsServer;

struct Nats {
    nats: Mutex<NatsServer>,
    url: String,
}

impl Nats {
    fn new() -> Self {
        // RUST_LOG=clamator_over_nats=debug shows what the transport did.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let nats = NatsServer::start();
        Self {
            url: nats.url(),
            nats: Mutex::new(nats),
        }
    }

    async fn start(
        &self,
        server: clamator_over_nats::NatsRpcServerBuilder,
        services: Vec<RpcService>,
    ) -> NatsRpcServer {
        let mut b = server.url(&self.url);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }

    async fn js(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(&self.url).await.unwrap())
    }
}

impl Harness for Nats {
    async fn server(
        &self,
        services: Vec<RpcService>,
        layers: ServerLayers,
    ) -> clamator_protocol::AnyServer {
        self.start(NatsRpcServer::builder().layers(layers), services)
            .await
            .into()
    }

    async fn client(
        &self,
        default_timeout: Duration,
        layers: ClientLayers,
    ) -> clamator_protocol::AnyClient {
        let client = NatsRpcClient::builder()
            .url(&self.url)
            .default_timeout(default_timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client.into()
    }
}

impl Faults for Nats {
    async fn fault_server(&self, services: Vec<RpcService>) -> clamator_protocol::AnyServer {
        let b = NatsRpcServer::builder()
            .ack_wait(Duration::from_secs(1))
            .max_deliveries(2);
        self.start(b, services).await.into()
    }

    async fn dead_letters(&self, service: &str) -> usize {
        match self
            .js()
            .await
            .get_stream(format!("clamator_dead_{service}"))
            .await
        {
            Ok(mut stream) => stream.info().await.unwrap().state.messages as usize,
            Err(_) => 0,
        }
    }

    fn max_reply_bytes(&self) -> usize {
        // nats-server's default max_payload, below the transport's default of 1 MiB.
        1024 * 1024
    }
}

impl BrokerFaults for Nats {
    const RESENDS_AFTER_RECONNECT: bool = true;

    async fn delete_broker_state(&self, service: &str, what: BrokerState) {
        let stream = format!("clamator_cmds_{service}");
        match what {
            BrokerState::Consumer => {
                self.js()
                    .await
                    .delete_consumer_from_stream(service, &stream)
                    .await
                    .unwrap();
            }
            BrokerState::Stream => {
                self.js().await.delete_stream(&stream).await.unwrap();
            }
            _ => tokio::task::block_in_place(|| self.nats.lock().unwrap().restart_empty()),
        }
    }

    async fn restart_broker(&self, down: Duration) {
        tokio::task::block_in_place(|| {
            let mut nats = self.nats.lock().unwrap();
            nats.kill();
            std::thread::sleep(down);
            nats.restart();
        });
    }
}

clamator_conformance::conformance_suite!(Nats::new());
clamator_conformance::fault_suite!(Nats::new());
