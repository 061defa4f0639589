//! Wire error objects and the Rust-side error types.
//!
//! * [`RpcError`] is the wire error object `{code, message, data}`: handlers return it to send a
//!   chosen error, and callers receive it when the peer answered with an error.
//! * [`CallError`] is what a client call fails with: an [`RpcError`] from the peer, a
//!   [`ProtocolError`] (something about the messages was wrong) or a [`TransportError`] (the
//!   message could not be delivered or answered in time), so callers tell them apart by type.
//! * [`HandlerError`] is what a handler may fail with: an [`RpcError`] (sent verbatim) or any
//!   other error (sent as `-32603 Internal error` with data `{"name", "message"}`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The reserved JSON-RPC 2.0 error codes (spec §1.5).
pub mod codes {
    /// `-32700 Parse error`: the message is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// `-32600 Invalid Request`: JSON, but not a valid envelope.
    pub const INVALID_REQUEST: i64 = -32600;
    /// `-32601 Method not found`.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// `-32602 Invalid params`: the params failed the method's params schema.
    pub const INVALID_PARAMS: i64 = -32602;
    /// `-32603 Internal error` (also used for `Result validation failed`).
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// The wire error object: `{"code": <int>, "message": <str>, "data": <any or null>}`.
///
/// Handlers return it to answer with an error of their choice; it reaches the caller verbatim.
/// `-32000..=-32099` is documented by the originals both as application-defined and as reserved
/// for transports; the interop suite uses `-32000` as an application code.
///
/// ```
/// use clamator_protocol::RpcError;
/// let err = RpcError::new(-32000, "division by zero");
/// assert_eq!(
///     serde_json::to_string(&err).unwrap(),
///     r#"{"code":-32000,"message":"division by zero","data":null}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Extra data; `null` when there is none (always written).
    #[serde(default)]
    pub data: Value,
}

/// Alias naming [`RpcError`] by its role on the wire.
pub type ErrorObject = RpcError;

impl RpcError {
    /// An error with `data: null`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: Value::Null,
        }
    }

    /// Sets `data`.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// `-32601 Method not found`, data null.
    pub fn method_not_found() -> Self {
        Self::new(codes::METHOD_NOT_FOUND, "Method not found")
    }

    /// `-32602 Invalid params` with the given data.
    pub fn invalid_params(data: Value) -> Self {
        Self::new(codes::INVALID_PARAMS, "Invalid params").with_data(data)
    }

    /// `-32603 Internal error` with the given data.
    pub fn internal(data: Value) -> Self {
        Self::new(codes::INTERNAL_ERROR, "Internal error").with_data(data)
    }

    /// `-32603 Result validation failed` with the given data.
    pub fn result_validation_failed(data: Value) -> Self {
        Self::new(codes::INTERNAL_ERROR, "Result validation failed").with_data(data)
    }

    /// `-32600 Invalid Request` with the given data.
    pub fn invalid_request(data: Value) -> Self {
        Self::new(codes::INVALID_REQUEST, "Invalid Request").with_data(data)
    }

    /// `-32700 Parse error` with the given data.
    pub fn parse_error(data: Value) -> Self {
        Self::new(codes::PARSE_ERROR, "Parse error").with_data(data)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc error {}: {}", self.code, self.message)?;
        if !self.data.is_null() {
            write!(f, " (data: {})", self.data)?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// Why `parse_envelope` rejected a value: the reasons of spec §1.3, in decision order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidRequestReason {
    /// The value is an array.
    Batch,
    /// The value is not an object.
    NotAnObject,
    /// `jsonrpc` is not the string `"2.0"`.
    JsonRpcVersion,
    /// `method` has no dot, or an empty side.
    MethodFormat,
    /// The service segment fails the service rule.
    InvalidService,
    /// The method segment fails the method rule.
    InvalidMethod,
    /// A request id is neither a string nor an integer.
    IdType,
    /// A success response has no id.
    ResponseWithoutId,
    /// An error response's `error` lacks an integer `code` or a string `message`.
    ErrorShape,
    /// None of request, notification, success or error.
    Shape,
}

impl InvalidRequestReason {
    /// The reason text, identical to the Python and TypeScript implementations.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch requests not supported",
            Self::NotAnObject => "not an object",
            Self::JsonRpcVersion => "jsonrpc must equal \"2.0\"",
            Self::MethodFormat => "method must be \"<service>.<method>\"",
            Self::InvalidService => "invalid service segment",
            Self::InvalidMethod => "invalid method segment",
            Self::IdType => "id must be string or number",
            Self::ResponseWithoutId => "response must have id",
            Self::ErrorShape => "error must have numeric code + string message",
            Self::Shape => "envelope must be request, notification, or response",
        }
    }
}

/// A value that is not a valid clamator envelope.
///
/// Displays as `-32600 Invalid Request: <reason>`, the text of the originals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-32600 Invalid Request: {}", reason.as_str())]
pub struct InvalidRequest {
    /// Why the value was rejected.
    pub reason: InvalidRequestReason,
}

/// Errors in what was sent or received, as opposed to failures to deliver it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The service name fails `^[a-z][a-z0-9-]*$`; nothing was sent.
    #[error("invalid service \"{0}\"")]
    InvalidService(String),
    /// The method name fails `^[a-z][a-zA-Z0-9]*$`; nothing was sent.
    #[error("invalid method \"{0}\"")]
    InvalidMethod(String),
    /// The params could not be encoded as JSON; nothing was sent.
    #[error("could not encode params: {0}")]
    EncodeParams(#[source] serde_json::Error),
    /// The reply is not a valid response envelope.
    #[error("invalid response envelope: {0}")]
    InvalidResponse(#[source] InvalidRequest),
    /// The reply is not JSON.
    #[error("invalid response envelope: not JSON: {0}")]
    ResponseNotJson(#[source] serde_json::Error),
    /// The reply is a valid envelope but not a response.
    #[error("unexpected response kind: {0}")]
    UnexpectedResponseKind(&'static str),
    /// The result does not match the contract's result type (typed clients only).
    #[error("result does not match the contract's result type: {0}")]
    DecodeResult(#[source] serde_json::Error),
}

/// Where a client or server is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifecycleState {
    /// Built, not started.
    Idle,
    /// `start` is running.
    Starting,
    /// Started.
    Started,
    /// `stop` is running (intake stopped, draining).
    Stopping,
    /// Stopped; it cannot be started again.
    Stopped,
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        })
    }
}

/// The boxed cause of a connection problem.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message could not be delivered or answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No reply arrived within the call's timeout.
    #[error("call timeout")]
    Timeout,
    /// The transport is not started.
    #[error("transport not started (state={state})")]
    NotStarted {
        /// The state it is in.
        state: LifecycleState,
    },
    /// The transport was stopped while the call was pending.
    #[error("transport stopped")]
    Stopped,
    /// `start` was called after `stop`.
    #[error("transport has been stopped")]
    AlreadyStopped,
    /// The connection to the broker failed or was lost.
    #[error("{context}: {source}")]
    Connection {
        /// What was being done (e.g. `xadd failed`).
        context: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The broker refused a command for a reason that will not pass by retrying (the user
    /// lacks a permission, a key has the wrong type).
    #[error("{context}: {source}")]
    Rejected {
        /// What was being done (e.g. `xreadgroup failed`).
        context: &'static str,
        /// The broker's message.
        #[source]
        source: BoxError,
    },
    /// The message exceeds a size limit.
    #[error("message too large: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The transport was configured wrongly.
    #[error("invalid transport configuration: {0}")]
    Config(String),
}

impl TransportError {
    /// Whether this is a call timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// Whether the connection to the broker failed or was lost.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Connection { .. })
    }

    /// Whether the transport was stopped (before or during the call).
    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped | Self::AlreadyStopped)
    }

    /// Wraps a connection-level error.
    pub fn connection(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Connection {
            context,
            source: source.into(),
        }
    }

    /// Wraps a refusal by the broker.
    pub fn rejected(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Rejected {
            context,
            source: source.into(),
        }
    }
}

/// What a client call fails with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The peer answered with an error object.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// Something in what was sent or received is malformed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The call could not be delivered or answered.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Client middleware failed the call with an error of its own.
    #[error("middleware: {0}")]
    Middleware(BoxError),
}

impl CallError {
    /// The peer's error object, if the peer answered with one.
    pub fn as_rpc(&self) -> Option<&RpcError> {
        match self {
            Self::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// The error code of the peer's error object, if any.
    pub fn code(&self) -> Option<i64> {
        self.as_rpc().map(|e| e.code)
    }

    /// Whether the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(t) if t.is_timeout())
    }

    /// Whether the transport's connection failed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Transport(t) if t.is_connection_lost())
    }
}

impl From<InvalidRequest> for CallError {
    fn from(e: InvalidRequest) -> Self {
        Self::Protocol(ProtocolError::InvalidResponse(e))
    }
}

/// What a handler fails with.
///
/// Any `std::error::Error` converts into it (so `?` works in handlers):
/// an [`RpcError`], or a [`CallError::Rpc`] from a nested call, is sent verbatim; anything
/// else becomes `-32603 Internal error` with data `{"name": <type name>, "message": <Display>}`.
///
/// ```
/// use clamator_protocol::{HandlerError, RpcError};
/// let e: HandlerError = RpcError::new(-32001, "denied").into();
/// assert_eq!(e.into_rpc_error().code, -32001);
/// let io = std::io::Error::other("disk on fire");
/// let e: HandlerError = io.into();
/// assert_eq!(
///     e.into_rpc_error().data,
///     serde_json::json!({"name": "Error", "message": "disk on fire"})
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError {
    /// An error object to send verbatim.
    Rpc(RpcError),
    /// Any other failure: sent as `-32603 Internal error`.
    Internal {
        /// The error's name (its Rust type name without the path, or `panic`).
        name: String,
        /// Its message.
        message: String,
    },
}

impl HandlerError {
    /// An internal error with an explicit name and message.
    pub fn internal(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Internal {
            name: name.into(),
            message: message.into(),
        }
    }

    /// A boxed error (`Box<dyn Error + Send + Sync>`, or an `anyhow::Error` through its
    /// `Into<BoxError>`): an [`RpcError`] or [`CallError::Rpc`] inside is sent verbatim,
    /// anything else becomes `-32603` with data `{"name": "Error", "message": <Display>}` (the
    /// concrete type's name is not known behind the box).
    ///
    /// ```
    /// use clamator_protocol::{BoxError, HandlerError, RpcError};
    /// let boxed: BoxError = Box::new(RpcError::new(-32001, "denied"));
    /// assert_eq!(HandlerError::from_boxed(boxed).into_rpc_error().code, -32001);
    /// let boxed: BoxError = "no such user".into();
    /// assert_eq!(
    ///     HandlerError::from_boxed(boxed).into_rpc_error().data,
    ///     serde_json::json!({"name": "Error", "message": "no such user"})
    /// );
    /// ```
    #[allow(clippy::needless_pass_by_value)] // a conversion: it takes the error
    pub fn from_boxed(err: BoxError) -> Self {
        Self::from_dyn(&*err)
    }

    /// An error behind a `dyn Error` (what `Box<dyn Error>` and `anyhow::Error` deref to): an
    /// [`RpcError`] or [`CallError::Rpc`] is sent verbatim, anything else becomes `-32603` with
    /// data `{"name": "Error", "message": <the error and its sources, joined by ": ">}`.
    pub fn from_dyn(err: &(dyn std::error::Error + Send + Sync + 'static)) -> Self {
        if let Some(rpc) = err.downcast_ref::<RpcError>() {
            return Self::Rpc(rpc.clone());
        }
        if let Some(CallError::Rpc(rpc)) = err.downcast_ref::<CallError>() {
            return Self::Rpc(rpc.clone());
        }
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        Self::internal("Error", message)
    }

    /// The error object sent to the caller.
    pub fn into_rpc_error(self) -> RpcError {
        match self {
            Self::Rpc(e) => e,
            Self::Internal { name, message } => {
                RpcError::internal(serde_json::json!({ "name": name, "message": message }))
            }
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rpc(e) => e.fmt(f),
            Self::Internal { name, message } => write!(f, "{name}: {message}"),
        }
    }
}

fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

impl<E> From<E> for HandlerError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        let any: &dyn std::any::Any = &err;
        if let Some(rpc) = any.downcast_ref::<RpcError>() {
            return Self::Rpc(rpc.clone());
        }
        if let Some(call) = any.downcast_ref::<CallError>() {
            return match call {
                CallError::Rpc(rpc) => Self::Rpc(rpc.clone()),
                CallError::Protocol(p) => Self::internal("ProtocolError", p.to_string()),
                CallError::Transport(t) => Self::internal("TransportError", t.to_string()),
                CallError::Middleware(m) => Self::internal("MiddlewareError", m.to_string()),
            };
        }
        Self::Internal {
            name: short_type_name::<E>().to_owned(),
            message: err.to_string(),
        }
    }
}

/// Errors building or running a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Two services with one name were given to one server.
    #[error("service \"{0}\" already registered on this server")]
    DuplicateService(String),
    /// The service is already served on this in-process bus by another server.
    #[error("service \"{0}\" already registered on this bus")]
    ServiceTaken(String),
    /// `start` was called after `stop`.
    #[error("server has been stopped")]
    AlreadyStopped,
    /// The server was built without services.
    #[error("server has no services")]
    NoServices,
    /// A transport-level failure while starting.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A contract definition that breaks the name or shape rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The service name fails the service rule.
    #[error("invalid service name \"{0}\" (must match ^[a-z][a-z0-9-]*$)")]
    InvalidService(String),
    /// A method name fails the method rule.
    #[error("invalid method name \"{0}\" (must match ^[a-z][a-zA-Z0-9]*$)")]
    InvalidMethod(String),
    /// A method name appears twice.
    #[error("duplicate method \"{0}\"")]
    DuplicateMethod(String),
    /// A handler was given for a method the contract does not declare.
    #[error("method \"{0}\" is not in the contract")]
    UnknownMethod(String),
    /// A request handler was given for a notification, or the reverse.
    #[error("handler for \"{0}\" does not match the method's kind (request or notification)")]
    KindMismatch(String),
    /// A contract method has no handler.
    #[error("method \"{0}\" has no handler")]
    MissingHandler(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct MyErr;

    #[test]
    fn handler_error_mapping() {
        let e: HandlerError = MyErr.into();
        assert_eq!(
            e.into_rpc_error(),
            RpcError::internal(serde_json::json!({"name": "MyErr", "message": "boom"}))
        );
        let nested: HandlerError = CallError::Transport(TransportError::Timeout).into();
        assert_eq!(
            nested.into_rpc_error().data,
            serde_json::json!({"name": "TransportError", "message": "call timeout"})
        );
        let rpc = RpcError::new(-32001, "denied").with_data(serde_json::json!({"why": "x"}));
        let passed: HandlerError = CallError::Rpc(rpc.clone()).into();
        assert_eq!(passed.into_rpc_error(), rpc);
    }

    #[test]
    fn messages() {
        assert_eq!(TransportError::Timeout.to_string(), "call timeout");
        assert_eq!(
            TransportError::NotStarted {
                state: LifecycleState::Idle
            }
            .to_string(),
            "transport not started (state=idle)"
        );
        assert_eq!(
            InvalidRequest {
                reason: InvalidRequestReason::Batch
            }
            .to_string(),
            "-32600 Invalid Request: batch requests not supported"
        );
        assert_eq!(
            ContractError::InvalidService("A".into()).to_string(),
            "invalid service name \"A\" (must match ^[a-z][a-z0-9-]*$)"
        );
    }
}
