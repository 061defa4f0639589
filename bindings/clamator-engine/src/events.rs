//! What the engine tells a binding's loop.

use std::sync::Arc;

/// What the engine hands to the loop.
#[derive(Debug)]
pub enum Event {
    /// A request or notification for a handler of the binding (server side).
    Request {
        /// Answer it with [`crate::EngineServer::complete`] and this token.
        token: u64,
        /// The service.
        service: Arc<str>,
        /// The method.
        method: Arc<str>,
        /// The params, as JSON.
        params: Vec<u8>,
        /// A request (an answer is expected), not a notification.
        is_request: bool,
        /// The request id (for the handler's log lines and `request_id()`), as text.
        id: Option<String>,
        /// Seconds left until the caller stops waiting, when it said (`deadline()`).
        remaining: Option<f64>,
    },
    /// The server gave up on request `token` (abandoned after the stop grace): cancel its
    /// handler.
    Cancel {
        /// The request's token.
        token: u64,
    },
    /// An operation the loop started (start, stop, call, notify) has finished.
    Done {
        /// The operation's token.
        token: u64,
        /// How it ended.
        outcome: Outcome,
    },
    /// A line of the engine's log (see [`crate::logs`]).
    Log {
        /// Python's numeric levels: 40 error, 30 warn, 20 info, 10 debug.
        level: u8,
        /// The crate that logged it (`clamator_over_redis`, …).
        target: String,
        /// The message and its fields.
        message: String,
    },
}

/// How an operation ended, in the terms the bindings' APIs raise.
#[derive(Debug)]
pub enum Outcome {
    /// Finished; a call's result as JSON bytes.
    Ok(Option<Vec<u8>>),
    /// The peer answered with an error object (`RpcError(code, message, data)`).
    Rpc {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
        /// Its data, as JSON.
        data: Vec<u8>,
    },
    /// A transport failure (`ClamatorTransportError(message)`).
    Transport(String),
    /// A malformed reply (`ClamatorProtocolError(message)`).
    Protocol(String),
    /// Bad configuration or names (a value error).
    Value(String),
}

/// Where the engine's events go: one binding's loop (Python: a socket `loop.add_reader`
/// watches; Node: a threadsafe function). `push` is called from the engine's threads and must
/// not block; it wakes the loop when it was idle, and the loop takes every event at once.
pub trait Sink: Send + Sync + std::fmt::Debug + 'static {
    /// Queues an event for the loop.
    fn push(&self, event: Event);

    /// Whether a loop takes events now (log lines go only to such sinks).
    fn is_listening(&self) -> bool {
        true
    }

    /// Reports the end of operation `token`.
    fn done(&self, token: u64, outcome: Outcome) {
        self.push(Event::Done { token, outcome });
    }
}
