use clamator::RpcError;

#[clamator::model]
pub struct P {
    pub a: f64,
}

pub struct NotAnError;

#[clamator::contract(service = "a")]
pub trait A {
    async fn ok(&self, params: P) -> Result<P, RpcError>;
    async fn add(&self, params: P) -> Result<P, NotAnError>;
}

fn main() {}
