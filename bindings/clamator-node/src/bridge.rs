//! The bridge between the engine and one JavaScript thread (the main thread or a worker): the
//! engine's threads queue events and, when the queue was empty, wake the thread once through a
//! weak threadsafe function (it does not keep the process alive); the thread drains the queue
//! in one synchronous call and answers through small synchronous calls. The engine's threads
//! never run JavaScript; the JavaScript thread never waits for the engine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use clamator_engine::{Event, Outcome, Sink};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// The wake-up: a weak threadsafe function of no arguments, not callee-handled.
type Wake = ThreadsafeFunction<(), (), (), Status, false, true>;

/// The queue and the wake-up.
pub(crate) struct Shared {
    queue: Mutex<Vec<Event>>,
    wake: Wake,
    /// Whether the thread still takes events (log lines go only to such bridges).
    listening: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Sink for Shared {
    fn push(&self, event: Event) {
        let was_empty = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let was_empty = queue.is_empty();
            queue.push(event);
            was_empty
        };
        if was_empty {
            // One wake-up per batch: the thread drains everything queued until it runs.
            self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }
}

/// One event for JavaScript. `kind`: 0 a request or notification for a handler, 1 cancel a
/// handler, 2 an operation finished, 3 a log line.
#[napi(object)]
#[derive(Debug)]
pub struct BridgeEvent {
    /// 0 request, 1 cancel, 2 done, 3 log.
    pub kind: u32,
    /// The operation's or request's token.
    pub token: f64,
    /// Request: the service.
    pub service: Option<String>,
    /// Request: the method.
    pub method: Option<String>,
    /// Request: the params as JSON; done: a call's result as JSON.
    pub json: Option<String>,
    /// Request: whether an answer is expected.
    pub is_request: Option<bool>,
    /// Request: the request id as text.
    pub id: Option<String>,
    /// Request: seconds until the caller stops waiting.
    pub remaining: Option<f64>,
    /// Done: 0 ok, 1 error object, 2 transport failure, 3 protocol failure, 4 bad value.
    pub outcome: Option<u32>,
    /// Done (error object): its code.
    pub code: Option<i64>,
    /// Done: the message; log: the line.
    pub message: Option<String>,
    /// Done (error object): its data as JSON.
    pub data: Option<String>,
    /// Log: 40 error, 30 warn, 20 info, 10 debug.
    pub level: Option<u32>,
    /// Log: the crate that logged it.
    pub target: Option<String>,
}

fn blank(kind: u32, token: u64) -> BridgeEvent {
    BridgeEvent {
        kind,
        token: token as f64,
        service: None,
        method: None,
        json: None,
        is_request: None,
        id: None,
        remaining: None,
        outcome: None,
        code: None,
        message: None,
        data: None,
        level: None,
        target: None,
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn to_js(event: Event) -> BridgeEvent {
    match event {
        Event::Request {
            token,
            service,
            method,
            params,
            is_request,
            id,
            remaining,
        } => BridgeEvent {
            service: Some(service.to_string()),
            method: Some(method.to_string()),
            json: Some(text(params)),
            is_request: Some(is_request),
            id,
            remaining,
            ..blank(0, token)
        },
        Event::Cancel { token } => blank(1, token),
        Event::Done { token, outcome } => {
            let mut e = blank(2, token);
            match outcome {
                Outcome::Ok(result) => {
                    e.outcome = Some(0);
                    e.json = result.map(text);
                }
                Outcome::Rpc {
                    code,
                    message,
                    data,
                } => {
                    e.outcome = Some(1);
                    e.code = Some(code);
                    e.message = Some(message);
                    e.data = Some(text(data));
                }
                Outcome::Transport(m) => {
                    e.outcome = Some(2);
                    e.message = Some(m);
                }
                Outcome::Protocol(m) => {
                    e.outcome = Some(3);
                    e.message = Some(m);
                }
                Outcome::Value(m) => {
                    e.outcome = Some(4);
                    e.message = Some(m);
                }
            }
            e
        }
        Event::Log {
            level,
            target,
            message,
        } => BridgeEvent {
            level: Some(u32::from(level)),
            target: Some(target),
            message: Some(message),
            ..blank(3, 0)
        },
    }
}

/// One JavaScript thread's end of the bridge: created with the function the engine calls (no
/// arguments) when events are waiting; that function calls `drain()`.
#[napi]
pub struct Bridge {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

impl Bridge {
    /// The bridge as the engine's sink.
    pub(crate) fn sink(&self) -> Arc<dyn Sink> {
        Arc::clone(&self.shared) as Arc<dyn Sink>
    }
}

#[napi]
impl Bridge {
    /// A bridge that calls `wake()` (on this thread) when events are waiting.
    #[napi(constructor)]
    pub fn new(wake: Function<(), ()>) -> Result<Self> {
        let wake = wake
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            wake,
            listening: AtomicBool::new(true),
        });
        clamator_engine::logs::register(&(Arc::clone(&shared) as Arc<dyn Sink>));
        Ok(Self { shared })
    }

    /// Takes every waiting event, oldest first.
    #[napi]
    pub fn drain(&self) -> Vec<BridgeEvent> {
        let events = std::mem::take(
            &mut *self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        events.into_iter().map(to_js).collect()
    }

    /// Says whether this thread takes log lines of the engine.
    #[napi]
    pub fn listen(&self, on: bool) {
        self.shared.listening.store(on, Ordering::Relaxed);
    }
}
