//! A Rust service implementing a contract authored elsewhere, from its committed document.
#![allow(missing_docs)]

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::{HandlerError, RpcClient, RpcError};

mod arith {
    clamator::include_contract!("../../contracts/arith.openrpc.json");
}

struct Impl;

impl arith::Arith for Impl {
    async fn add(&self, p: arith::AddParams) -> Result<arith::AddResult, HandlerError> {
        Ok(arith::AddResult { sum: p.a + p.b })
    }
    async fn divide(&self, p: arith::AddParams) -> Result<arith::DivideResult, HandlerError> {
        if p.b == 0.0 {
            return Err(RpcError::new(-32000, "division by zero").into());
        }
        Ok(arith::DivideResult { q: p.a / p.b })
    }
    async fn echo_text(&self, p: arith::EchoText) -> Result<arith::EchoText, HandlerError> {
        Ok(arith::EchoText { text: p.text })
    }
    async fn slow_add(&self, p: arith::SlowAddParams) -> Result<arith::AddResult, HandlerError> {
        Ok(arith::AddResult { sum: p.a + p.b })
    }
}

#[tokio::test]
async fn serves_and_calls_a_contract_from_its_document() {
    let bus = MemoryBus::new();
    let server = MemoryRpcServer::builder(&bus)
        .service(arith::ArithServer::new(Impl))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = MemoryRpcClient::new(&bus);
    client.start().await.unwrap();
    let typed = arith::ArithClient::new(client.clone());
    assert_eq!(
        typed
            .add(arith::AddParams { a: 2.0, b: 3.0 })
            .await
            .unwrap()
            .sum,
        5.0
    );
    let e = typed
        .divide(arith::AddParams { a: 1.0, b: 0.0 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(-32000));
    // the document's additionalProperties: false holds
    let e = client
        .call_value(
            "arith",
            "add",
            serde_json::json!({"a": 1, "b": 2, "c": 3}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(-32602));
    let names: Vec<String> = arith::ArithContract::descriptor()
        .methods()
        .iter()
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(names, ["add", "divide", "echoText", "slowAdd"]);
}
