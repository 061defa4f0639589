//! The process's tokio runtime, shared by every engine of every binding in the process.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The runtime and the pid that started it.
static RUNTIME: OnceLock<(Runtime, u32)> = OnceLock::new();

/// The tokio runtime, started on first use (a `start()`, never at import, so that a process may
/// fork before it uses the engine). A forked child cannot use its parent's runtime: that is an
/// error saying so. `CLAMATOR_RS_THREADS` sets its worker threads (default 1: the engine's I/O
/// keeps one thread busy long before a binding's loop runs out of handlers, and a second
/// worker costs CPU in wake-ups: ~8 % fewer calls/s and ~10 % more CPU per call measured from
/// Python with two).
pub fn runtime() -> Result<&'static Runtime, String> {
    let (runtime, pid) = RUNTIME.get_or_init(|| {
        crate::logs::install();
        let threads = std::env::var("CLAMATOR_RS_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("clamator-rs")
            .enable_all()
            .build()
            .expect("the tokio runtime starts");
        (runtime, std::process::id())
    });
    if *pid != std::process::id() {
        return Err(
            "the engine was started in this process's parent before it forked: its threads do \
             not exist here; start servers and clients only after forking"
                .into(),
        );
    }
    Ok(runtime)
}
