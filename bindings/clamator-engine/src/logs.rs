//! The engine's `tracing` events (reconnects, dead letters, poison entries, recovered streams)
//! forwarded to the binding's logging (Python `logging` under `clamator_rs.<crate>`, a Node
//! `Logger`). Engine threads never call into the binding's language: a line is queued on a
//! listening sink, and the loop that drains it logs it. `CLAMATOR_RS_LOG` filters them
//! (`tracing-subscriber` EnvFilter syntax; default `warn`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::events::{Event, Sink};

/// The sinks log lines may go to (the first one that listens takes each; with none, the line
/// is dropped: no engine of this process is running).
static SINKS: Mutex<Vec<Weak<dyn Sink>>> = Mutex::new(Vec::new());

/// Lets `sink` carry log lines.
pub fn register(sink: &Arc<dyn Sink>) {
    let mut sinks = SINKS.lock().unwrap_or_else(PoisonError::into_inner);
    sinks.retain(|s| s.strong_count() > 0);
    sinks.push(Arc::downgrade(sink));
}

/// Installs the forwarding subscriber, unless the process already has one.
pub(crate) fn install() {
    let filter =
        EnvFilter::try_from_env("CLAMATOR_RS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(Forward.with_filter(filter))
        .try_init();
}

/// Python's numeric level of a `tracing` level (the Node binding maps them back).
fn numeric_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        _ => 10,
    }
}

struct Forward;

#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let meta = event.metadata();
        let target = meta
            .target()
            .split("::")
            .next()
            .unwrap_or("engine")
            .to_owned();
        let line = Event::Log {
            level: numeric_level(*meta.level()),
            target,
            message: text.message + &text.fields,
        };
        let sinks = SINKS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sink) = sinks
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.is_listening())
        {
            drop(sinks);
            sink.push(line);
        }
    }
}
