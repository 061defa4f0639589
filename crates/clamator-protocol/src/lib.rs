//! # clamator-protocol
//!
//! The transport-independent core of clamator for Rust: JSON-RPC 2.0 envelopes
//! ([`parse_envelope`]), name rules, the wire error object ([`RpcError`]) and the Rust error
//! types ([`CallError`], [`ProtocolError`], [`TransportError`], [`HandlerError`]), contract
//! descriptors ([`Contract`]), services and the dispatch pipeline ([`RpcService`]), and the
//! server and client cores that transports build on ([`ServerCore`], [`RpcClient`]).
//! It does no network I/O.
//!
//! Where the Python and TypeScript 0.1.9 implementations differ, this crate takes the
//! Python side: `params: null` stays `null` (and fails validation of an object params
//! type), fractional ids are rejected, and `id: null` means notification. Error codes must be
//! integers (Python accepts `true`, TypeScript accepts fractions; we accept neither).

mod client;
mod contract;
mod deadline;
mod envelope;
mod error;
mod handle;
mod lifecycle;
pub mod middleware;
mod names;
mod observe;
mod server;
mod service;
pub mod transport;
mod validation;

pub use client::{
    build_notification, build_request, check_names, unwrap_response, RpcClient,
    DEFAULT_CALL_TIMEOUT, MAX_CALL_TIMEOUT,
};
pub use contract::{schema_for, Contract, ContractBuilder, MethodDescriptor, MethodKind, NoParams};
pub use deadline::{deadline, remaining, request_id, with_deadline};
pub use envelope::{
    parse_envelope, parse_envelope_slice, parse_envelope_str, to_json, Envelope, EnvelopeError, Id,
    Notification, Request, Response,
};
pub use error::{
    codes, BoxError, CallError, ContractError, ErrorObject, HandlerError, InvalidRequest,
    InvalidRequestReason, LifecycleState, ProtocolError, RpcError, ServerError, TransportError,
};
pub use handle::{AnyClient, AnyServer};
pub use lifecycle::{Lifecycle, StartGuard, StartStep, StopGuard};
pub use names::{
    is_valid_method, is_valid_service, snake_to_camel, METHOD_PATTERN, SERVICE_PATTERN,
};
pub use server::{ServerCore, Services, DEFAULT_SHUTDOWN_GRACE};
pub use service::{
    BoxFuture, CallIds, IntoRpcService, MethodFailure, RpcService, RpcServiceBuilder,
};
pub use transport::{
    Call, CallKind, Client, ClientBuilder, ClientTransport, Delivery, IncomingCall, Intake,
    Metadata, OutgoingCall, Replies, ReplyWaiter, Server, ServerBuilder, ServerStats,
    ServerTransport,
};
pub use validation::{decode_params, ParamsError, ValidationIssue};

/// Re-exported: middleware are `tower` layers.
pub use tower;

#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde_json;

    use crate::{BoxError, HandlerError};

    // How `#[clamator::contract]` turns a handler's error type into a `HandlerError`, by
    // autoref specialisation on the concrete type: `HandlerError: From<E>` (RpcError, any
    // `std::error::Error`, HandlerError itself) first, then error handles that deref to
    // `dyn Error` (`Box<dyn Error + Send + Sync>`, `anyhow::Error`), then `E: Into<BoxError>`
    // (`String`, `&str`).
    pub struct ErrorWrap<E>(core::cell::Cell<Option<E>>);

    impl<E> core::fmt::Debug for ErrorWrap<E> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("ErrorWrap")
        }
    }

    impl<E> ErrorWrap<E> {
        pub fn new(err: E) -> Self {
            Self(core::cell::Cell::new(Some(err)))
        }

        fn take(&self) -> E {
            self.0.take().expect("converted once")
        }
    }

    pub trait ViaFrom {
        fn convert_error(&self) -> HandlerError;
    }

    // The macro calls `(&&ErrorWrap::new(e)).convert_error()`: method probing tries the
    // impl on `&ErrorWrap` first (receiver `&&ErrorWrap`), then the one on `&&ErrorWrap`
    // (autoref), then the one on `ErrorWrap` (after a deref).
    impl<E> ViaFrom for &ErrorWrap<E>
    where
        HandlerError: From<E>,
    {
        fn convert_error(&self) -> HandlerError {
            HandlerError::from(self.take())
        }
    }

    pub trait ViaDeref {
        fn convert_error(&self) -> HandlerError;
    }

    impl<E> ViaDeref for &&ErrorWrap<E>
    where
        E: core::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static>,
    {
        fn convert_error(&self) -> HandlerError {
            HandlerError::from_dyn(&*self.take())
        }
    }

    pub trait ViaBox {
        fn convert_error(&self) -> HandlerError;
    }

    impl<E: Into<BoxError>> ViaBox for ErrorWrap<E> {
        fn convert_error(&self) -> HandlerError {
            HandlerError::from_boxed(self.take().into())
        }
    }
}
