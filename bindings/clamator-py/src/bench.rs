//! The bridge measurement (issue 31): the same trivial round trip through the two ways of
//! joining tokio and asyncio, in both directions.
//!
//! - per-call futures (`pyo3-async-runtimes`): `future_into_py` per client call, and
//!   `into_future` of a handler coroutine per server call, the GIL taken on tokio threads;
//! - the batched bridge this package uses ([`crate::bridge`]): events queued, the loop woken
//!   through a socket, drained in batches, answered by synchronous calls.
//!
//! `python/clamator_rs/_bench_bridge.py` drives them and prints calls/s for each.

use std::sync::Arc;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::Semaphore;

use clamator_engine::Sink;

use crate::bridge::{Bridge, Event, Outcome};
use crate::engine::runtime;

fn init_runtime() -> PyResult<()> {
    let runtime = runtime()?;
    // Ignored when already set: the measurement runs on the package's own runtime.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
    Ok(())
}

/// Client direction, per-call future: an awaitable that tokio completes with `payload`.
#[pyfunction]
fn bench_future_echo<'py>(py: Python<'py>, payload: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
    init_runtime()?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        Python::attach(|py| Ok(PyBytes::new(py, &payload).unbind()))
    })
}

/// Client direction, batched bridge: tokio reports `("d", token, 0, payload, …)`.
#[pyfunction]
fn bench_bridge_echo(bridge: &Bridge, token: u64, payload: Vec<u8>) -> PyResult<()> {
    let shared = bridge.shared();
    runtime()?.spawn(async move {
        shared.done(token, Outcome::Ok(Some(payload)));
    });
    Ok(())
}

/// Server direction, per-call future: tokio calls the coroutine function `handler(bytes)` `n`
/// times, `concurrency` at once, each through `into_future`; the awaitable returns seconds.
#[pyfunction]
fn bench_future_handlers<'py>(
    py: Python<'py>,
    handler: Py<PyAny>,
    n: usize,
    concurrency: usize,
) -> PyResult<Bound<'py, PyAny>> {
    init_runtime()?;
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let handler = Arc::new(handler);
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let started = Instant::now();
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let permit = Arc::clone(&slots).acquire_owned().await.expect("open");
            let (handler, locals) = (Arc::clone(&handler), locals.clone());
            tasks.push(tokio::spawn(async move {
                let awaited = Python::attach(|py| {
                    let coroutine = handler.call1(py, (PyBytes::new(py, &i.to_le_bytes()),))?;
                    pyo3_async_runtimes::into_future_with_locals(&locals, coroutine.into_bound(py))
                });
                let out = match awaited {
                    Ok(future) => future.await.map(drop),
                    Err(e) => Err(e),
                };
                drop(permit);
                out
            }));
        }
        for task in tasks {
            task.await.expect("no panic")?;
        }
        Ok(started.elapsed().as_secs_f64())
    })
}

/// Server direction, batched bridge: tokio pushes `n` requests (`concurrency` at once) as
/// `("q", token, …)` and waits for `bench_bridge_complete(token)`; reports `("d", done_token,
/// 0, seconds as text)` at the end.
#[pyclass(frozen, module = "clamator_rs._native")]
#[derive(Debug)]
struct BenchDriver {
    open: std::sync::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>>,
}

#[pymethods]
impl BenchDriver {
    #[new]
    fn new() -> Self {
        Self {
            open: std::sync::Mutex::default(),
        }
    }

    fn run(
        slf: Py<Self>,
        bridge: &Bridge,
        done_token: u64,
        n: u64,
        concurrency: usize,
    ) -> PyResult<()> {
        let shared = bridge.shared();
        let service: Arc<str> = Arc::from("bench");
        let method: Arc<str> = Arc::from("echo");
        runtime()?.spawn(async move {
            let started = Instant::now();
            let slots = Arc::new(Semaphore::new(concurrency.max(1)));
            let mut tasks = Vec::new();
            for token in 0..n {
                let permit = Arc::clone(&slots).acquire_owned().await.expect("open");
                let (tx, rx) = tokio::sync::oneshot::channel();
                slf.get().open.lock().expect("lock").insert(token, tx);
                shared.push(Event::Request {
                    token,
                    service: Arc::clone(&service),
                    method: Arc::clone(&method),
                    params: token.to_le_bytes().to_vec(),
                    is_request: true,
                    id: None,
                    remaining: None,
                });
                tasks.push(tokio::spawn(async move {
                    let _ = rx.await;
                    drop(permit);
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
            let seconds = started.elapsed().as_secs_f64().to_string().into_bytes();
            shared.done(done_token, Outcome::Ok(Some(seconds)));
        });
        Ok(())
    }

    fn complete(&self, token: u64) {
        if let Some(tx) = self.open.lock().expect("lock").remove(&token) {
            let _ = tx.send(());
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bench_future_echo, m)?)?;
    m.add_function(wrap_pyfunction!(bench_bridge_echo, m)?)?;
    m.add_function(wrap_pyfunction!(bench_future_handlers, m)?)?;
    m.add_class::<BenchDriver>()?;
    Ok(())
}
