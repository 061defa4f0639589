//! A Python peer calling a Rust service over Redis, both sides generated from one contract
//! document (`contracts/arith.openrpc.json`): the Rust types and trait by
//! `clamator::include_contract!`, the Python `ArithClient` by `clamator codegen --out-py`
//! (committed as `interop/generated/py/arith.py`). The Python side runs on the released
//! clamator 0.1.9 packages from `.venv` (`bash scripts/setup-python.sh` installs them).
//!
//! ```text
//! bash scripts/setup-python.sh              # once: .venv with clamator 0.1.9 from PyPI
//! cargo run --example python_peer            # Redis at $REDIS_URL or localhost
//! cargo run --example python_peer -- --redis URL
//! ```
//!
//! Redis only: a Python process cannot join the in-process bus.

use std::path::Path;

use clamator::redis::RedisRpcServer;
use clamator::{HandlerError, RpcError};
use clamator_examples::Args;

clamator::include_contract!("../../contracts/arith.openrpc.json");

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, p: AddParams) -> Result<AddResult, HandlerError> {
        println!("rust: add({}, {})", p.a, p.b);
        Ok(AddResult { sum: p.a + p.b })
    }
    async fn divide(&self, p: AddParams) -> Result<DivideResult, HandlerError> {
        println!("rust: divide({}, {})", p.a, p.b);
        if p.b == 0.0 {
            return Err(RpcError::new(-32000, "division by zero").into());
        }
        Ok(DivideResult { q: p.a / p.b })
    }
    async fn echo_text(&self, p: EchoText) -> Result<EchoText, HandlerError> {
        println!("rust: echoText({:?})", p.text);
        Ok(EchoText { text: p.text })
    }
    async fn slow_add(&self, p: SlowAddParams) -> Result<AddResult, HandlerError> {
        tokio::time::sleep(std::time::Duration::from_millis(p.sleep_ms)).await;
        Ok(AddResult { sum: p.a + p.b })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    clamator_examples::init_logs();
    let args = Args::parse();
    let url = args.redis_url();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(format!(
            "{} is missing: run `bash scripts/setup-python.sh` first (installs clamator 0.1.9 from PyPI)",
            python.display()
        )
        .into());
    }
    let prefix = clamator_examples::run_prefix("python-peer");
    let server = RedisRpcServer::builder()
        .key_prefix(&prefix)
        .url(&url)
        .service(ArithServer::new(Calculator))
        .build()?;
    server.start().await.map_err(|e| {
        format!(
            "{e} (is Redis running at {}? `redis-server` starts one)",
            clamator::redis::redact_url(&url)
        )
    })?;
    println!(
        "rust: serving arith on redis {} (prefix {prefix})",
        clamator::redis::redact_url(&url)
    );
    let status = tokio::process::Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python_peer.py"))
        .args([&url, &prefix])
        .status()
        .await?;
    server.stop().await;
    clamator_examples::cleanup(&url, &prefix).await;
    if !status.success() {
        return Err(format!("the Python peer failed ({status})").into());
    }
    Ok(())
}
