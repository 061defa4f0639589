//! The transport-independent part of a client: the [`RpcClient`] trait every client
//! implements, request building, reply unwrapping and lifecycle.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::envelope::{Envelope, Id, Notification, Request};
use crate::error::{CallError, ProtocolError};
use crate::names::{is_valid_method, is_valid_service};

/// The default call timeout: 30 s, as in the originals.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a call waits: a year. A longer timeout (`Duration::MAX` included) waits this
/// long, so that no transport's `now + timeout` overflows its clock.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A clamator client: what typed proxies (`<Name>Client`) are built on.
///
/// Implemented by `MemoryRpcClient` and `RedisRpcClient`. Handles are cheap to clone.
pub trait RpcClient: Clone + Send + Sync + 'static {
    /// Calls `<service>.<method>` with raw JSON params; `timeout` overrides the client's
    /// default call timeout.
    fn call_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Value, CallError>> + Send;

    /// Sends the notification `<service>.<method>` with raw JSON params.
    fn notify_value(
        &self,
        service: &str,
        method: &str,
        params: Value,
    ) -> impl Future<Output = Result<(), CallError>> + Send;

    /// Calls with typed params and result.
    fn call<P, R>(
        &self,
        service: &str,
        method: &str,
        params: &P,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<R, CallError>> + Send
    where
        P: Serialize + ?Sized + Sync,
        R: DeserializeOwned,
    {
        let params = serde_json::to_value(params).map_err(ProtocolError::EncodeParams);
        async move {
            let value = self.call_value(service, method, params?, timeout).await?;
            serde_json::from_value(value).map_err(|e| ProtocolError::DecodeResult(e).into())
        }
    }

    /// Sends a notification with typed params.
    fn notify<P>(
        &self,
        service: &str,
        method: &str,
        params: &P,
    ) -> impl Future<Output = Result<(), CallError>> + Send
    where
        P: Serialize + ?Sized + Sync,
    {
        let params = serde_json::to_value(params).map_err(ProtocolError::EncodeParams);
        async move { self.notify_value(service, method, params?).await }
    }
}

/// Checks a service and method name against the name rules (what every client does before
/// sending).
///
/// ```
/// assert!(clamator_protocol::check_names("arith", "echoText").is_ok());
/// assert!(clamator_protocol::check_names("Arith", "add").is_err());
/// ```
pub fn check_names(service: &str, method: &str) -> Result<(), ProtocolError> {
    if !is_valid_service(service) {
        return Err(ProtocolError::InvalidService(service.to_owned()));
    }
    if !is_valid_method(method) {
        return Err(ProtocolError::InvalidMethod(method.to_owned()));
    }
    Ok(())
}

/// Builds a request with a fresh UUID v4 id after checking the names.
pub fn build_request(service: &str, method: &str, params: Value) -> Result<Request, ProtocolError> {
    check_names(service, method)?;
    Ok(Request {
        service: service.to_owned(),
        method: method.to_owned(),
        params,
        id: Id::random(),
    })
}

/// Builds a notification after checking the names.
pub fn build_notification(
    service: &str,
    method: &str,
    params: Value,
) -> Result<Notification, ProtocolError> {
    check_names(service, method)?;
    Ok(Notification {
        service: service.to_owned(),
        method: method.to_owned(),
        params,
    })
}

/// Turns a reply envelope into the call's outcome (spec §1.8).
pub fn unwrap_response(reply: Envelope) -> Result<Value, CallError> {
    match reply {
        Envelope::Response(r) => r.outcome.map_err(CallError::Rpc),
        other => Err(ProtocolError::UnexpectedResponseKind(other.kind()).into()),
    }
}
