use clamator::RpcError;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct P {
    pub a: f64,
}

#[clamator::contract(service = "a")]
pub trait A {
    async fn add(&self, params: P) -> P;
}

fn main() {}
