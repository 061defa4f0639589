//! The deadline of the call a handler is serving, when the caller sent one.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// The deadline of the call the current handler serves, if the transport knows it (the Rust
/// Redis client sends its timeout with every request; the memory transport knows it too).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_secs(5);
/// clamator_protocol::with_deadline(Some(deadline), async {
///     assert_eq!(clamator_protocol::deadline(), Some(deadline));
///     assert!(clamator_protocol::remaining().unwrap() <= Duration::from_secs(5));
/// }).await;
/// assert_eq!(clamator_protocol::deadline(), None);
/// # }
/// ```
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// Time left until [`deadline`] (zero once passed), if there is one.
pub fn remaining() -> Option<Duration> {
    deadline().map(|d| d.saturating_duration_since(Instant::now()))
}

/// Runs `fut` with `deadline` visible to [`deadline`] and [`remaining`].
pub async fn with_deadline<F: Future>(deadline: Option<Instant>, fut: F) -> F::Output {
    DEADLINE.scope(deadline, fut).await
}
