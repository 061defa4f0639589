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
    async fn server(
        &self,
        services: Vec<RpcService>,
        layers: ServerLayers,
    ) -> clamator_protocol::AnyServer {
        let mut b = MemoryRpcServer::builder(&self.bus).layers(layers);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server.into()
    }

    async fn client(
        &self,
        default_timeout: Duration,
        layers: ClientLayers,
    ) -> clamator_protocol::AnyClient {
        let client = MemoryRpcClient::builder(&self.bus)
            .default_timeout(default_timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client.into()
    }
}

clamator_conformance::conformance_suite!(Memory::default());
