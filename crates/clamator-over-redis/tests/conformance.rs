//! The Redis transport passes the conformance suite of the transport interface and its fault
//! cases, against a private `redis-server` per test (AOF on, so a restart keeps the streams).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clamator_conformance::{BrokerFaults, BrokerState, Faults, Harness};
use clamator_over_redis::{RedisRpcClient, RedisRpcServer, RedisRpcServerBuilder};
use clamator_protocol::middleware::{ClientLayers, ServerLayers};
use clamator_protocol::RpcService;
use clamator_test_support::RedisServer;

struct Redis {
    redis: Mutex<RedisServer>,
    url: String,
    prefix: String,
}

impl Redis {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let redis = RedisServer::builder().persistent().start();
        Self {
            url: redis.url(),
            redis: Mutex::new(redis),
            prefix: format!("conf{}", N.fetch_add(1, Ordering::SeqCst)),
        }
    }

    async fn start(&self, b: RedisRpcServerBuilder, services: Vec<RpcService>) -> RedisRpcServer {
        let mut b = b.url(&self.url);
        for s in services {
            b = b.service(s);
        }
        let server = b.build().unwrap();
        server.start().await.unwrap();
        server
    }

    fn raw(&self, args: &[&str]) -> String {
        let command = args.iter().map(|a| (*a).to_owned()).collect();
        self.redis.lock().unwrap().raw(&[command]).remove(0)
    }
}

impl Harness for Redis {
    async fn server(
        &self,
        services: Vec<RpcService>,
        layers: ServerLayers,
    ) -> clamator_protocol::AnyServer {
        self.start(
            RedisRpcServer::builder()
                .key_prefix(&self.prefix)
                .layers(layers),
            services,
        )
        .await
        .into()
    }

    async fn client(
        &self,
        default_timeout: Duration,
        layers: ClientLayers,
    ) -> clamator_protocol::AnyClient {
        let client = RedisRpcClient::builder()
            .key_prefix(&self.prefix)
            .url(&self.url)
            .default_timeout(default_timeout)
            .layers(layers)
            .build()
            .unwrap();
        client.start().await.unwrap();
        client.into()
    }
}

impl Faults for Redis {
    async fn fault_server(&self, services: Vec<RpcService>) -> clamator_protocol::AnyServer {
        let b = RedisRpcServer::builder()
            .key_prefix(&self.prefix)
            .consumer_claim_idle(Duration::from_secs(1))
            .max_deliveries(2);
        self.start(b, services).await.into()
    }

    async fn dead_letters(&self, service: &str) -> usize {
        let reply = self.raw(&["XLEN", &format!("{}:dead:{service}", self.prefix)]);
        reply.trim_start_matches(':').trim().parse().unwrap()
    }

    fn max_reply_bytes(&self) -> usize {
        clamator_over_redis::DEFAULT_MAX_ENVELOPE_BYTES
    }
}

impl BrokerFaults for Redis {
    async fn delete_broker_state(&self, service: &str, what: BrokerState) {
        let stream = format!("{}:cmds:{service}", self.prefix);
        let reply = match what {
            BrokerState::Consumer => self.raw(&["XGROUP", "DESTROY", &stream, service]),
            BrokerState::Stream => self.raw(&["DEL", &stream]),
            _ => self.raw(&["FLUSHALL"]),
        };
        assert!(!reply.starts_with('-'), "{reply}");
    }

    async fn restart_broker(&self, down: Duration) {
        tokio::task::block_in_place(|| {
            let mut redis = self.redis.lock().unwrap();
            redis.kill();
            std::thread::sleep(down);
            redis.restart();
        });
    }
}

clamator_conformance::conformance_suite!(Redis::new());
clamator_conformance::fault_suite!(Redis::new());
