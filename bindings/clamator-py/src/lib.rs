//! clamator for Python: the Rust engine behind the clamator 0.1.9 Python API, as the
//! `clamator-rs` wheel (`import clamator_rs`). The Python sources (`python/clamator_rs`) keep
//! the 0.1.9 classes; this module is what they drive: servers whose handlers are Python
//! coroutines, clients whose calls are awaited in Python, over memory, Redis Streams or NATS
//! JetStream, joined to asyncio by a batched bridge (see `bridge`).

mod bench;
mod bridge;
mod engine;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<bridge::Bridge>()?;
    m.add_class::<engine::Bus>()?;
    m.add_class::<engine::EngineServer>()?;
    m.add_class::<engine::EngineClient>()?;
    bench::register(m)?;
    Ok(())
}
