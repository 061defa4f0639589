//! The Redis transport passes the conformance suite of the transport interface, against a
//! private `redis-server` per test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clamator_conformance::Harness;
use clamator_over_redis::{RedisRpcClient, RedisRpcServer};
use clamator_protocol::middleware::{ClientLayers, ServerLayers};
use clamator_protocol::RpcService;
use clamator_test_support::RedisServer;

struct Redis {
    redis: RedisServer,
    prefix: String,
}

impl Redis {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        Self {
            redis: RedisServer::start(),
            prefix: format!("conf{}", N.fetch_add(1, Ordering::SeqCst)),
        }
    }
}

impl Harness for Redis {
    type Client = RedisRpcClient;
    type Server = RedisRpcServer;

    async fn server(&self, services: Vec<RpcService>, layers: ServerLayers) -> RedisRpcServer {
        let mut b = RedisRpcServer::builder(&self.prefix)
            .redis_url(self.redis.url())
            .layers(layers);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }

    async fn stop_server(&self, server: &RedisRpcServer, grace: Duration) {
        server.stop_with_grace(grace).await;
    }

    async fn client(&self, default_timeout: Duration, layers: ClientLayers) -> RedisRpcClient {
        let client = RedisRpcClient::builder(&self.prefix)
            .redis_url(self.redis.url())
            .default_timeout(default_timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client
    }

    async fn stop_client(&self, client: &RedisRpcClient) {
        client.stop().await;
    }
}

clamator_conformance::conformance_suite!(Redis::new());
