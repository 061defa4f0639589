//! The interop contracts of the original suite (spec §6.1), declared in Rust (the source of
//! the committed documents in `contracts/`) and generated back from those documents
//! ([`generated`]), and the fixture implementation of both. `clamator-interop-server` serves
//! the generated ones.

pub mod generated;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator::RpcError;
use serde::{Deserialize, Serialize};

/// `arith.add` / `arith.divide` params.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddParams {
    /// Left operand.
    pub a: f64,
    /// Right operand.
    pub b: f64,
}

/// `arith.add` / `arith.slowAdd` result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddResult {
    /// `a + b`.
    pub sum: f64,
}

/// `arith.slowAdd` params.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlowAddParams {
    /// Left operand.
    pub a: f64,
    /// Right operand.
    pub b: f64,
    /// How long the handler sleeps, in milliseconds.
    pub sleep_ms: u64,
}

/// `arith.divide` result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DivideResult {
    /// `a / b`.
    pub q: f64,
}

/// `arith.echoText` params and result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoText {
    /// The text.
    pub text: String,
}

/// `notifications.ping` params.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingParams {
    /// Optional tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The interop `arith` service.
#[clamator::contract(service = "arith")]
pub trait Arith {
    /// `a + b`.
    async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
    /// `a / b`; `RpcError(-32000, "division by zero")` when `b == 0`.
    async fn divide(&self, params: AddParams) -> Result<DivideResult, RpcError>;
    /// Echoes the text.
    async fn echo_text(&self, params: EchoText) -> Result<EchoText, RpcError>;
    /// Sleeps `sleepMs`, then `a + b`.
    async fn slow_add(&self, params: SlowAddParams) -> Result<AddResult, RpcError>;
}

/// The interop `notifications` service.
#[clamator::contract(service = "notifications")]
pub trait Notifications {
    /// Fire-and-forget.
    #[notification]
    async fn ping(&self, params: PingParams);
}

/// The fixture implementation; counts handler invocations (notifications included) and, with
/// [`Fixture::with_exec_log`], appends every execution of `add` and `slowAdd` to a file.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    handled: Arc<AtomicU64>,
    exec_log: Option<Arc<ExecLog>>,
}

#[derive(Debug)]
struct ExecLog {
    file: std::fs::File,
    instance: String,
}

impl Fixture {
    /// A fixture that appends `<unix ms>\t<pid>\t<instance>\t<method>\t<a>\t<start|end>` lines
    /// to `path` when `add` and `slowAdd` start and finish (unbuffered: a line survives a
    /// SIGKILL right after it). `scripts/chaos.sh` counts executions per call with it.
    pub fn with_exec_log(path: &std::path::Path, instance: &str) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            handled: Arc::default(),
            exec_log: Some(Arc::new(ExecLog {
                file,
                instance: instance.to_owned(),
            })),
        })
    }

    /// Handler invocations so far.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.handled.fetch_add(1, Ordering::SeqCst);
    }

    fn record(&self, method: &str, a: f64, event: &str) {
        use std::io::Write;
        if let Some(log) = self.exec_log.as_deref() {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let line = format!(
                "{ms}\t{}\t{}\t{method}\t{a}\t{event}\n",
                std::process::id(),
                log.instance
            );
            // one write of the whole line (O_APPEND): lines of parallel writers never mix
            let _ = (&log.file).write_all(line.as_bytes());
        }
    }
}

impl Arith for Fixture {
    async fn add(&self, p: AddParams) -> Result<AddResult, RpcError> {
        self.count();
        Ok(AddResult { sum: p.a + p.b })
    }

    async fn divide(&self, p: AddParams) -> Result<DivideResult, RpcError> {
        self.count();
        if p.b == 0.0 {
            return Err(RpcError::new(-32000, "division by zero"));
        }
        Ok(DivideResult { q: p.a / p.b })
    }

    async fn echo_text(&self, p: EchoText) -> Result<EchoText, RpcError> {
        self.count();
        Ok(p)
    }

    async fn slow_add(&self, p: SlowAddParams) -> Result<AddResult, RpcError> {
        self.count();
        tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
        Ok(AddResult { sum: p.a + p.b })
    }
}

impl Notifications for Fixture {
    async fn ping(&self, _p: PingParams) {
        self.count();
    }
}

mod generated_impl {
    use std::time::Duration;

    use clamator::{HandlerError, RpcError};

    use super::Fixture;
    use crate::generated::arith as g;
    use crate::generated::notifications as n;

    impl g::Arith for Fixture {
        async fn add(&self, p: g::AddParams) -> Result<g::AddResult, HandlerError> {
            self.count();
            self.record("add", p.a, "start");
            self.record("add", p.a, "end");
            Ok(g::AddResult { sum: p.a + p.b })
        }

        async fn divide(&self, p: g::AddParams) -> Result<g::DivideResult, HandlerError> {
            self.count();
            if p.b == 0.0 {
                return Err(RpcError::new(-32000, "division by zero").into());
            }
            Ok(g::DivideResult { q: p.a / p.b })
        }

        async fn echo_text(&self, p: g::EchoText) -> Result<g::EchoText, HandlerError> {
            self.count();
            Ok(g::EchoText { text: p.text })
        }

        async fn slow_add(&self, p: g::SlowAddParams) -> Result<g::AddResult, HandlerError> {
            self.count();
            self.record("slowAdd", p.a, "start");
            tokio::time::sleep(Duration::from_millis(p.sleep_ms)).await;
            self.record("slowAdd", p.a, "end");
            Ok(g::AddResult { sum: p.a + p.b })
        }
    }

    impl n::Notifications for Fixture {
        async fn ping(&self, _p: n::PingParams) {
            self.count();
        }
    }
}
