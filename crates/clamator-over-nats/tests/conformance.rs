//! The NATS JetStream transport passes the shared conformance suite, each case on its own
//! private `nats-server -js`.

use std::time::Duration;

use clamator_conformance::Harness;
use clamator_over_nats::{NatsRpcClient, NatsRpcServer};
use clamator_protocol::middleware::{ClientLayers, ServerLayers};
use clamator_protocol::RpcService;
use clamator_test_support::nats::NatsServer;

struct Nats {
    nats: NatsServer,
}

impl Nats {
    fn new() -> Self {
        Self {
            nats: NatsServer::start(),
        }
    }
}

impl Harness for Nats {
    type Client = NatsRpcClient;
    type Server = NatsRpcServer;

    async fn server(&self, services: Vec<RpcService>, layers: ServerLayers) -> NatsRpcServer {
        let mut b = NatsRpcServer::builder().url(self.nats.url()).layers(layers);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }

    async fn stop_server(&self, server: &NatsRpcServer, grace: Duration) {
        server.stop_with_grace(grace).await;
    }

    async fn client(&self, default_timeout: Duration, layers: ClientLayers) -> NatsRpcClient {
        let client = NatsRpcClient::builder()
            .url(self.nats.url())
            .default_timeout(default_timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client
    }

    async fn stop_client(&self, client: &NatsRpcClient) {
        client.stop().await;
    }
}

clamator_conformance::conformance_suite!(Nats::new());
