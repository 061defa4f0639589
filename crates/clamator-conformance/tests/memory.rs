//! The memory transport passes the conformance suite.

use std::time::Duration;

use clamator_conformance::Harness;
use clamator_over_memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator_protocol::middleware::{ClientLayers, ServerLayers};
use clamator_protocol::RpcService;

#[derive(Default)]
struct Memory {
    bus: MemoryBus,
}

impl Harness for Memory {
    type Client = MemoryRpcClient;
    type Server = MemoryRpcServer;

    async fn server(&self, services: Vec<RpcService>, layers: ServerLayers) -> MemoryRpcServer {
        let mut b = MemoryRpcServer::builder(&self.bus).layers(layers);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }

    async fn stop_server(&self, server: &MemoryRpcServer, grace: Duration) {
        server.stop_with_grace(grace).await;
    }

    async fn client(&self, default_timeout: Duration, layers: ClientLayers) -> MemoryRpcClient {
        let client = MemoryRpcClient::builder(&self.bus)
            .default_timeout(default_timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client
    }

    async fn stop_client(&self, client: &MemoryRpcClient) {
        client.stop().await;
    }
}

clamator_conformance::conformance_suite!(Memory::default());
