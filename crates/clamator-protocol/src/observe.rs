//! `tracing` spans per call, following OpenTelemetry's RPC semantic conventions: target
//! `clamator::rpc`, level INFO, names `rpc.client` / `rpc.server` with `otel.name`
//! `<service>/<method>`, `otel.kind`, `rpc.system = "jsonrpc"`, `rpc.service`, `rpc.method`,
//! `rpc.jsonrpc.request_id`, `rpc.jsonrpc.error_code` and `server.address` where known.
//! Fields that cost an allocation are only recorded when the span is enabled.
//!
//! Metrics (`ServerMetricsLayer`, `ClientMetricsLayer`) go through the `metrics` facade; a
//! server's handles per method are registered on first use and kept.

use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram};

use serde_json::Value;
use tracing::field::Empty;
use tracing::Span;

use crate::error::{CallError, RpcError};
use crate::transport::IncomingCall;

pub(crate) fn client_span(service: &str, method: &str, server_address: Option<&str>) -> Span {
    let span = tracing::info_span!(
        target: "clamator::rpc",
        "rpc.client",
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
        rpc.system = "jsonrpc",
        rpc.service = service,
        rpc.method = method,
        rpc.jsonrpc.error_code = Empty,
        server.address = server_address,
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("{service}/{method}"));
    }
    span
}

pub(crate) fn record_client_outcome(span: &Span, outcome: &Result<Value, CallError>) {
    if span.is_disabled() {
        return;
    }
    if let Err(e) = outcome {
        span.record("otel.status_code", "ERROR");
        if let Some(code) = e.code() {
            span.record("rpc.jsonrpc.error_code", code);
        }
    }
}

/// Whether a subscriber would record `rpc.client` spans (checked without building one:
/// building a disabled span still costs ~200 instructions when `tracing`'s `log` feature is on).
pub(crate) fn client_spans_enabled() -> bool {
    tracing::enabled!(target: "clamator::rpc", tracing::Level::INFO)
}

/// Whether a subscriber would record `rpc.server` spans (checked without building one).
pub(crate) fn server_spans_enabled() -> bool {
    tracing::enabled!(target: "clamator::rpc", tracing::Level::INFO)
}

pub(crate) fn server_span(call: &IncomingCall) -> Span {
    let service = call.service.name();
    let span = tracing::info_span!(
        target: "clamator::rpc",
        "rpc.server",
        otel.name = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "jsonrpc",
        rpc.service = service,
        rpc.method = %call.method,
        rpc.jsonrpc.request_id = Empty,
        rpc.jsonrpc.error_code = Empty,
        messaging.message.id = call.message_id.as_deref(),
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("{service}/{}", call.method));
        if let Some(id) = &call.id {
            span.record("rpc.jsonrpc.request_id", id.to_string());
        }
    }
    span
}

pub(crate) fn record_server_outcome(span: &Span, outcome: &Result<Value, RpcError>) {
    if span.is_disabled() {
        return;
    }
    if let Err(e) = outcome {
        span.record("otel.status_code", "ERROR");
        span.record("rpc.jsonrpc.error_code", e.code);
    }
}

/// The error code a failed call is answered with (what the metrics count).
pub(crate) fn error_code(error: &crate::error::BoxError) -> i64 {
    error
        .downcast_ref::<RpcError>()
        .map_or(crate::error::codes::INTERNAL_ERROR, |e| e.code)
}

/// A method's metric handles, registered once.
#[derive(Debug)]
pub(crate) struct MethodMetrics {
    service: String,
    method: String,
    ok: Counter,
    duration: Histogram,
    in_flight: Gauge,
}

pub(crate) const UNKNOWN_METHOD: &str = "<unknown>";

impl MethodMetrics {
    pub(crate) fn new(service: &str, method: &str) -> Self {
        let (s, m) = (service.to_owned(), method.to_owned());
        Self {
            ok: metrics::counter!("clamator_server_calls_total", "service" => s.clone(), "method" => m.clone(), "code" => "ok"),
            duration: metrics::histogram!("clamator_server_call_duration_seconds", "service" => s.clone(), "method" => m.clone()),
            in_flight: metrics::gauge!("clamator_server_in_flight", "service" => s.clone(), "method" => m.clone()),
            service: s,
            method: m,
        }
    }
}

/// One call being measured: in flight until finished or dropped.
pub(crate) struct CallMetrics {
    metrics: Arc<MethodMetrics>,
    started: Instant,
}

impl CallMetrics {
    pub(crate) fn start(metrics: Arc<MethodMetrics>) -> Self {
        metrics.in_flight.increment(1.0);
        Self {
            metrics,
            started: Instant::now(),
        }
    }

    pub(crate) fn finish(&self, outcome: Result<(), i64>) {
        let m = &self.metrics;
        m.duration.record(self.started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => m.ok.increment(1),
            Err(code) => metrics::counter!("clamator_server_calls_total", "service" => m.service.clone(), "method" => m.method.clone(), "code" => code.to_string()).increment(1),
        }
    }
}

impl Drop for CallMetrics {
    fn drop(&mut self) {
        self.metrics.in_flight.decrement(1.0);
    }
}

/// The metrics of a call to a method the service does not have.
pub(crate) fn unknown_method(service: &str, outcome: Result<(), i64>) {
    let code = match outcome {
        Ok(()) => "ok".to_owned(),
        Err(code) => code.to_string(),
    };
    metrics::counter!("clamator_server_calls_total", "service" => service.to_owned(), "method" => UNKNOWN_METHOD, "code" => code).increment(1);
}

/// W3C trace context in call metadata (feature `otel`).
#[cfg(feature = "otel")]
pub(crate) mod otel {
    use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::transport::Metadata;

    struct Inject<'a>(&'a mut Metadata);
    impl Injector for Inject<'_> {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key, value);
        }
    }

    struct Extract<'a>(&'a Metadata);
    impl Extractor for Extract<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key)
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| k).collect()
        }
    }

    /// Adds `traceparent` (and `tracestate`) of `span` to `metadata`, when the span is part
    /// of an OpenTelemetry trace.
    pub(crate) fn inject(span: &Span, metadata: &mut Metadata) {
        if span.is_disabled() {
            return;
        }
        TraceContextPropagator::new().inject_context(&span.context(), &mut Inject(metadata));
    }

    /// Makes the trace context in `metadata` (if any) the parent of `span`.
    pub(crate) fn extract(span: &Span, metadata: &Metadata) {
        if span.is_disabled() || metadata.get("traceparent").is_none() {
            return;
        }
        let parent = TraceContextPropagator::new().extract(&Extract(metadata));
        let _ = span.set_parent(parent);
    }
}

#[cfg(not(feature = "otel"))]
pub(crate) mod otel {
    use tracing::Span;

    use crate::transport::Metadata;

    #[inline]
    pub(crate) fn inject(_span: &Span, _metadata: &mut Metadata) {}

    #[inline]
    pub(crate) fn extract(_span: &Span, _metadata: &Metadata) {}
}
