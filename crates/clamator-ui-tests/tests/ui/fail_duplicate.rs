use clamator::RpcError;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct P {
    pub a: f64,
}

#[clamator::contract(service = "a")]
pub trait A {
    async fn echo_text(&self, params: P) -> Result<P, RpcError>;
    #[method(name = "echoText")]
    async fn other(&self, params: P) -> Result<P, RpcError>;
}

fn main() {}
