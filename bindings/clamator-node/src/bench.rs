//! The bridge measurement (`bench/bridge.mjs`): the same trivial round trip through two ways of
//! joining the engine and Node, in both directions, at several concurrencies.
//!
//! - per call: a napi `async fn` (a Promise per client call, on napi's runtime), and one
//!   threadsafe-function call per server request whose JavaScript Promise the engine awaits;
//! - the batched bridge the packages use ([`crate::bridge`]): events queued, the thread woken
//!   once per batch, drained in one call, answered by synchronous calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use clamator_engine::{Event, Outcome};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use tokio::sync::{oneshot, Semaphore};

use crate::bridge::Bridge;

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    clamator_engine::runtime().map_err(|e| Error::new(Status::GenericFailure, e))
}

/// Client direction, per call: a Promise that the runtime resolves with `payload`.
#[napi]
pub async fn bench_async_echo(payload: String) -> String {
    payload
}

/// Client direction, batched: the runtime reports `payload` as the result of `token`.
#[napi]
pub fn bench_batched_echo(bridge: &Bridge, token: f64, payload: String) -> Result<()> {
    let sink = bridge.sink();
    runtime()?.spawn(async move {
        sink.done(token as u64, Outcome::Ok(Some(payload.into_bytes())));
    });
    Ok(())
}

type Handler = ThreadsafeFunction<String, Promise<String>, String, Status, false>;
type Done = ThreadsafeFunction<f64, (), f64, Status, false>;

/// Server direction, per call: the runtime calls `handler(payload)` `n` times, `concurrency`
/// at once, each a threadsafe-function call whose returned Promise it awaits; then
/// `done(seconds)`.
#[napi]
pub fn bench_tsfn_handlers(
    handler: Function<String, Promise<String>>,
    n: u32,
    concurrency: u32,
    done: Function<f64, ()>,
) -> Result<()> {
    let handler: Arc<Handler> = Arc::new(
        handler
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?,
    );
    let done: Done = done
        .build_threadsafe_function()
        .callee_handled::<false>()
        .build()?;
    runtime()?.spawn(async move {
        let started = Instant::now();
        let slots = Arc::new(Semaphore::new(concurrency.max(1) as usize));
        let mut tasks = Vec::with_capacity(n as usize);
        for i in 0..n {
            let permit = Arc::clone(&slots).acquire_owned().await.expect("open");
            let handler = Arc::clone(&handler);
            tasks.push(tokio::spawn(async move {
                if let Ok(promise) = handler.call_async(i.to_string()).await {
                    let _ = promise.await;
                }
                drop(permit);
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        done.call(
            started.elapsed().as_secs_f64(),
            napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking,
        );
    });
    Ok(())
}

/// Server requests of the batched measurement waiting for `benchComplete`, by token.
fn waiting() -> &'static Mutex<HashMap<u64, oneshot::Sender<()>>> {
    static WAITING: OnceLock<Mutex<HashMap<u64, oneshot::Sender<()>>>> = OnceLock::new();
    WAITING.get_or_init(Mutex::default)
}

/// Server direction, batched: the runtime queues `n` requests on `bridge`, `concurrency` at
/// once, each answered by `benchComplete(token)`; then reports the seconds as the result of
/// `doneToken`.
#[napi]
pub fn bench_batched_handlers(
    bridge: &Bridge,
    n: u32,
    concurrency: u32,
    done_token: f64,
) -> Result<()> {
    let sink = bridge.sink();
    runtime()?.spawn(async move {
        let started = Instant::now();
        let slots = Arc::new(Semaphore::new(concurrency.max(1) as usize));
        let service: Arc<str> = Arc::from("bench");
        let method: Arc<str> = Arc::from("echo");
        let mut tasks = Vec::with_capacity(n as usize);
        for i in 0..n {
            let permit = Arc::clone(&slots).acquire_owned().await.expect("open");
            let (tx, rx) = oneshot::channel();
            let token = u64::from(i) + 1;
            waiting()
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(token, tx);
            sink.push(Event::Request {
                token,
                service: Arc::clone(&service),
                method: Arc::clone(&method),
                params: i.to_string().into_bytes(),
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
        let seconds = started.elapsed().as_secs_f64().to_string();
        sink.done(done_token as u64, Outcome::Ok(Some(seconds.into_bytes())));
    });
    Ok(())
}

/// Answers a request of [`bench_batched_handlers`].
#[napi]
pub fn bench_complete(token: f64) {
    if let Some(tx) = waiting()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&(token as u64))
    {
        let _ = tx.send(());
    }
}
