//! The deadline and the request id of the call a handler is serving.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::envelope::Id;

tokio::task_local! {
    static DEADLINE: Option<Instant>;
    static REQUEST_ID: Option<Id>;
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

/// The JSON-RPC id of the request the current handler serves (`None` in a notification's
/// handler, or outside a handler): to name the call in a handler's own logs, as the server's
/// logs name it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use clamator_protocol::{RpcService, RpcError, request_id};
/// use serde_json::{json, Value};
/// let service = RpcService::builder("s")
///     .raw_method("who", json!({}), json!({}), |_| async {
///         Ok::<_, RpcError>(json!(request_id().map(|id| id.to_string())))
///     })
///     .build()
///     .unwrap();
/// # let _ = service;
/// assert_eq!(request_id(), None);
/// # }
/// ```
pub fn request_id() -> Option<Id> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

/// Runs `fut` with `id` visible to [`request_id`] (what servers do around a handler).
pub(crate) async fn with_request_id<F: Future>(id: Option<Id>, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallIds, RpcError, RpcService};
    use serde_json::{json, Value};

    /// A handler sees the id of the request it serves, in its synchronous part and after an
    /// await; a notification's handler sees none.
    #[tokio::test]
    async fn a_handler_sees_its_request_id() {
        let service = RpcService::builder("s")
            .raw_method("who", json!({}), json!({}), |_| {
                let before = request_id();
                async move {
                    tokio::task::yield_now().await;
                    Ok::<_, RpcError>(json!([
                        before.map(|i| i.to_string()),
                        request_id().map(|i| i.to_string())
                    ]))
                }
            })
            .build()
            .unwrap();
        let ids = CallIds {
            id: Some(Id::Str("call-7".into())),
            message_id: None,
        };
        let out = service
            .invoke("who", json!({}), true, ids, None)
            .await
            .unwrap();
        assert_eq!(out, json!(["call-7", "call-7"]));
        let out = service
            .invoke("who", json!({}), true, CallIds::default(), None)
            .await
            .unwrap();
        assert_eq!(out, json!([Value::Null, Value::Null]));
    }
}
