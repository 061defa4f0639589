//! The bridge between tokio and one asyncio loop: tokio threads push events into a queue and
//! wake the loop through a socket it watches (`loop.add_reader`); the loop thread drains the
//! queue in batches and answers through small synchronous calls. Tokio threads never take the
//! GIL; the loop thread never waits for tokio.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use clamator_engine::Sink;
pub(crate) use clamator_engine::{Event, Outcome};

/// The queue and the write end of the wake-up socket.
#[derive(Debug)]
pub(crate) struct Shared {
    queue: Mutex<Vec<Event>>,
    wake: UnixStream,
    /// Whether a loop watches this bridge (log lines go only to such bridges).
    listening: AtomicBool,
}

impl Sink for Shared {
    /// Queues an event; the first event of a batch wakes the loop.
    fn push(&self, event: Event) {
        let was_empty = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let was_empty = queue.is_empty();
            queue.push(event);
            was_empty
        };
        if was_empty {
            // A full socket buffer means the loop has wake-ups pending already.
            let _ = (&self.wake).write(&[1]);
        }
    }

    fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }
}

/// One asyncio loop's end of the bridge: `fileno()` for `loop.add_reader`, `drain()` from the
/// reader callback.
#[pyclass(frozen, module = "clamator_rs._native")]
#[derive(Debug)]
pub(crate) struct Bridge {
    shared: Arc<Shared>,
    readable: UnixStream,
}

impl Bridge {
    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// The bridge as the engine's sink.
    pub(crate) fn sink(&self) -> Arc<dyn Sink> {
        Arc::clone(&self.shared) as Arc<dyn Sink>
    }
}

#[pymethods]
impl Bridge {
    #[new]
    fn new() -> PyResult<Self> {
        let (wake, readable) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        readable.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            wake,
            listening: AtomicBool::new(false),
        });
        clamator_engine::logs::register(&(Arc::clone(&shared) as Arc<dyn Sink>));
        Ok(Self { shared, readable })
    }

    /// Says whether a loop watches this bridge now (`loop.add_reader` / `remove_reader`).
    fn listen(&self, on: bool) {
        self.shared.listening.store(on, Ordering::Relaxed);
    }

    /// The descriptor that becomes readable when events are waiting.
    fn fileno(&self) -> i32 {
        self.readable.as_raw_fd()
    }

    /// Takes every waiting event, as tuples:
    /// `("q", token, service, method, params: bytes, is_request, id, remaining_s)` for a
    /// handler to run,
    /// `("d", token, kind, a, b, c)` for a finished operation (see `Outcome`),
    /// `("l", level, target, message)` for a log line, `("c", token)` to cancel a handler.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let mut sink = [0u8; 256];
        while matches!((&self.readable).read(&mut sink), Ok(n) if n > 0) {}
        let events = std::mem::take(
            &mut *self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        events
            .into_iter()
            .map(|event| match event {
                Event::Request {
                    token,
                    service,
                    method,
                    params,
                    is_request,
                    id,
                    remaining,
                } => (
                    "q",
                    token,
                    &*service,
                    &*method,
                    PyBytes::new(py, &params),
                    is_request,
                    id,
                    remaining,
                )
                    .into_pyobject(py),
                Event::Log {
                    level,
                    target,
                    message,
                } => ("l", level, target, message).into_pyobject(py),
                Event::Cancel { token } => ("c", token).into_pyobject(py),
                Event::Done { token, outcome } => {
                    let none = py.None().into_bound(py);
                    let (kind, a, b, c) = match outcome {
                        Outcome::Ok(None) => (0, none.clone(), none.clone(), none),
                        Outcome::Ok(Some(bytes)) => {
                            (0, PyBytes::new(py, &bytes).into_any(), none.clone(), none)
                        }
                        Outcome::Rpc {
                            code,
                            message,
                            data,
                        } => (
                            1,
                            code.into_pyobject(py)?.into_any(),
                            message.into_pyobject(py)?.into_any(),
                            PyBytes::new(py, &data).into_any(),
                        ),
                        Outcome::Transport(m) => {
                            (2, m.into_pyobject(py)?.into_any(), none.clone(), none)
                        }
                        Outcome::Protocol(m) => {
                            (3, m.into_pyobject(py)?.into_any(), none.clone(), none)
                        }
                        Outcome::Value(m) => {
                            (4, m.into_pyobject(py)?.into_any(), none.clone(), none)
                        }
                    };
                    ("d", token, kind, a, b, c).into_pyobject(py)
                }
            })
            .collect()
    }
}
