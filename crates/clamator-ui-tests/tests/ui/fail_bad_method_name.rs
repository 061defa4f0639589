use clamator::RpcError;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct P {
    pub a: f64,
}

#[clamator::contract(service = "a")]
pub trait A {
    #[method(name = "get-a")]
    async fn add(&self, params: P) -> Result<P, RpcError>;
}

fn main() {}
