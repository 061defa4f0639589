use clamator::RpcError;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct P {
    pub a: f64,
}

#[clamator::contract(service = "svc-2")]
pub trait Svc {
    /// Docs survive.
    async fn get_a(&self, params: P) -> Result<P, RpcError>;
    #[method(name = "getB")]
    async fn other(&self, params: P) -> Result<P, clamator::HandlerError>;
    #[notification]
    async fn ping(&self, params: P);
    #[notification(name = "pong")]
    async fn pong_it(&self, params: P);
}

struct Impl;
impl Svc for Impl {
    async fn get_a(&self, p: P) -> Result<P, RpcError> { Ok(p) }
    async fn other(&self, p: P) -> Result<P, clamator::HandlerError> { Ok(p) }
    async fn ping(&self, _p: P) {}
    async fn pong_it(&self, _p: P) {}
}

fn main() {
    let names: Vec<String> = SvcContract::descriptor().methods().iter().map(|m| m.name.clone()).collect();
    assert_eq!(names, ["getA", "getB", "ping", "pong"]);
    let _server = SvcServer::new(Impl);
    let bus = clamator::memory::MemoryBus::new();
    let _client = SvcClient::new(clamator::memory::MemoryRpcClient::new(&bus));
}
