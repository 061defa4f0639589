//! Services: a contract plus one handler per method, and the dispatch pipeline
//! (method lookup → params validation → handler → error mapping → result serialisation).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::contract::{Contract, ContractBuilder, MethodKind};
use crate::envelope::{Envelope, Id, Response};
use crate::error::{ContractError, HandlerError, RpcError};
use crate::validation::{decode_params, ParamsError};

/// A boxed, `Send`, `'static` future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What names a call in logs: its request id, and the transport's id of the message that
/// carried it (the Redis stream entry id), when there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallIds {
    /// The JSON-RPC request id.
    pub id: Option<Id>,
    /// The transport's message id (Redis: the stream entry id).
    pub message_id: Option<String>,
}

/// Why a method invocation failed, before it is mapped to an error object.
#[derive(Debug)]
#[non_exhaustive]
pub enum MethodFailure {
    /// The params did not decode into the params type (`-32602`).
    InvalidParams(ParamsError),
    /// The handler failed.
    Handler(HandlerError),
    /// The handler's result could not be serialised (`-32603 Result validation failed`).
    InvalidResult(String),
}

type RequestFn = dyn Fn(Value) -> BoxFuture<Result<Value, MethodFailure>> + Send + Sync;
type NotificationFn = dyn Fn(Value) -> BoxFuture<Result<(), MethodFailure>> + Send + Sync;

#[derive(Clone)]
enum Handler {
    Request(Arc<RequestFn>),
    Notification(Arc<NotificationFn>),
}

/// A method's handler, its name (for logs), and whether its params schema demands a JSON
/// object (serde structs also accept arrays; clamator, like the originals, does not).
#[derive(Clone)]
struct Entry {
    handler: Handler,
    name: Arc<str>,
    expects_object: bool,
}

struct ServiceInner {
    contract: Contract,
    /// Looked up on every call: FxHash (method names are not attacker-chosen keys of a
    /// long-lived map that grows; a lookup miss is just `-32601`).
    handlers: HashMap<String, Entry, rustc_hash::FxBuildHasher>,
    /// Metric handles per method (`ServerMetricsLayer`), registered on first use so that a
    /// recorder installed before the first call is the one used. Not in `Entry`: a call
    /// without metrics clones nothing more.
    metrics: HashMap<
        String,
        std::sync::OnceLock<Arc<crate::observe::MethodMetrics>>,
        rustc_hash::FxBuildHasher,
    >,
}

/// Why the pipeline answers before running a handler.
enum Early {
    NotFound,
    NotAnObject(ParamsError),
    NotificationAsRequest,
}

/// A served service: a [`Contract`] with a handler for every method.
///
/// Built by the macro-generated `<Name>Server::new(impl)` (through [`IntoRpcService`]), or by hand
/// with closures:
///
/// ```
/// use clamator_protocol::{RpcService, RpcError};
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct AddParams { a: f64, b: f64 }
/// #[derive(serde::Serialize, schemars::JsonSchema)]
/// struct AddResult { sum: f64 }
///
/// let service = RpcService::builder("arith")
///     .method("add", |p: AddParams| async move { Ok::<_, RpcError>(AddResult { sum: p.a + p.b }) })
///     .raw_notification("ping", serde_json::json!({"type": "object"}), |_params| async {})
///     .build()
///     .unwrap();
/// assert_eq!(service.name(), "arith");
/// assert_eq!(service.contract().methods().len(), 2);
/// ```
#[derive(Clone)]
pub struct RpcService {
    inner: Arc<ServiceInner>,
}

impl fmt::Debug for RpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcService")
            .field("contract", &self.inner.contract)
            .finish_non_exhaustive()
    }
}

/// Converts something into an [`RpcService`]: implemented by [`RpcService`] itself and by the
/// macro-generated `<Name>Server` wrappers.
pub trait IntoRpcService {
    /// The service.
    fn into_rpc_service(self) -> RpcService;
}

impl IntoRpcService for RpcService {
    fn into_rpc_service(self) -> RpcService {
        self
    }
}

fn wrap_request<P, R, E, F, Fut>(f: F) -> Arc<RequestFn>
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    HandlerError: From<E>,
    F: Fn(P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
{
    Arc::new(
        move |params: Value| -> BoxFuture<Result<Value, MethodFailure>> {
            match decode_params::<P>(&params) {
                Err(e) => Box::pin(std::future::ready(Err(MethodFailure::InvalidParams(e)))),
                Ok(p) => {
                    let fut = f(p);
                    Box::pin(async move {
                        let result = fut.await.map_err(|e| MethodFailure::Handler(e.into()))?;
                        serde_json::to_value(result)
                            .map_err(|e| MethodFailure::InvalidResult(e.to_string()))
                    })
                }
            }
        },
    )
}

fn wrap_notification<P, F, Fut>(f: F) -> Arc<NotificationFn>
where
    P: DeserializeOwned + Send + 'static,
    F: Fn(P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(
        move |params: Value| -> BoxFuture<Result<(), MethodFailure>> {
            match decode_params::<P>(&params) {
                Err(e) => Box::pin(std::future::ready(Err(MethodFailure::InvalidParams(e)))),
                Ok(p) => Box::pin(f(p).map(Ok)),
            }
        },
    )
}

/// Builds an [`RpcService`] from closures, or fills in the handlers of an existing [`Contract`].
#[must_use]
pub struct RpcServiceBuilder {
    contract: ContractSource,
    handlers: Vec<(String, Handler)>,
}

enum ContractSource {
    Building(ContractBuilder),
    Given(Contract),
}

impl fmt::Debug for RpcServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.handlers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RpcServiceBuilder")
            .field("handlers", &names)
            .finish_non_exhaustive()
    }
}

impl RpcService {
    /// Starts a hand-built service called `service`; its contract is derived from the
    /// handlers added.
    pub fn builder(service: impl Into<String>) -> RpcServiceBuilder {
        RpcServiceBuilder {
            contract: ContractSource::Building(Contract::builder(service)),
            handlers: Vec::new(),
        }
    }

    /// Starts a service implementing `contract`; every contract method needs a handler
    /// (added with [`RpcServiceBuilder::handle`], [`RpcServiceBuilder::handle_notification`] or the
    /// `raw_` variants, without schemas).
    pub fn for_contract(contract: Contract) -> RpcServiceBuilder {
        RpcServiceBuilder {
            contract: ContractSource::Given(contract),
            handlers: Vec::new(),
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.inner.contract.service()
    }

    /// The contract.
    pub fn contract(&self) -> &Contract {
        &self.inner.contract
    }

    /// Runs the dispatch pipeline on an envelope addressed to this service and returns the
    /// response to send, if any (spec §4.3, with the Rust differences in the README):
    ///
    /// 1. responses → no reply;
    /// 2. unknown method → `-32601 Method not found` (notifications: dropped, logged at debug);
    /// 3. a request to a notification method → `-32600 Invalid Request`, handler not run;
    /// 4. params decoding failure → `-32602 Invalid params` with `{"errors": [...]}` (WARN);
    /// 5. handler `RpcError` → verbatim; any other failure, panics included → `-32603
    ///    Internal error` with `{"name", "message"}` (ERROR);
    /// 6. result serialisation failure → `-32603 Result validation failed` (ERROR);
    /// 7. notifications never produce a reply.
    ///
    /// The service segment of the envelope's method is not consulted: the caller has already
    /// routed the envelope to this service.
    pub fn dispatch(&self, envelope: Envelope) -> BoxFuture<Option<Response>> {
        self.dispatch_with_deadline(envelope, None)
    }

    /// [`RpcService::dispatch`], with the call's deadline visible to the handler through
    /// [`crate::deadline`] / [`crate::remaining`].
    pub fn dispatch_with_deadline(
        &self,
        envelope: Envelope,
        deadline: Option<std::time::Instant>,
    ) -> BoxFuture<Option<Response>> {
        let (method, params, id) = match envelope {
            Envelope::Response(_) => return Box::pin(std::future::ready(None)),
            Envelope::Request(r) => (r.method, r.params, Some(r.id)),
            Envelope::Notification(n) => (n.method, n.params, None),
        };
        let reply_id = id.as_ref().map(Id::to_value);
        let request = id.is_some();
        let ids = CallIds {
            id,
            message_id: None,
        };
        let outcome = self.invoke(&method, params, request, ids, deadline);
        Box::pin(async move {
            let outcome = outcome.await;
            reply_id.map(|id| match outcome {
                Ok(result) => Response::success(id, result),
                Err(error) => Response::error(id, error),
            })
        })
    }

    /// Calls the request method `method` in-process: the same pipeline as
    /// [`RpcService::dispatch`] for a request (steps 2–6), without building envelopes. The
    /// memory transport uses it; the outcome is what the caller of a request would get.
    pub fn call(
        &self,
        method: &str,
        params: Value,
        deadline: Option<std::time::Instant>,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send + 'static {
        self.invoke(method, params, true, CallIds::default(), deadline)
    }

    /// Steps 2–6 of the pipeline for a request (`request`; `ids` name it in the logs) or a
    /// notification (whose outcome is `null` or the error that was logged; no
    /// one is answered with it). Failures are logged as the originals do.
    pub fn invoke(
        &self,
        method: &str,
        params: Value,
        request: bool,
        ids: CallIds,
        deadline: Option<std::time::Instant>,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send + 'static {
        let prepared = self
            .prepare(method, &params, request)
            .map_err(|early| self.early_error(method, &ids, early));
        let service = self.clone();
        async move {
            let entry = prepared?;
            run(entry.handler, params, deadline, ids.id.clone())
                .await
                .map_err(|failure| {
                    log_failure(service.name(), &entry.name, &ids, &failure);
                    failure_to_error(failure)
                })
        }
    }

    /// The metric handles of `method` (`None` for a method it does not have: those are
    /// counted under `method="<unknown>"`, so callers cannot create label values).
    pub(crate) fn method_metrics(
        &self,
        method: &str,
    ) -> Option<Arc<crate::observe::MethodMetrics>> {
        let slot = self.inner.metrics.get(method)?;
        Some(Arc::clone(slot.get_or_init(|| {
            Arc::new(crate::observe::MethodMetrics::new(self.name(), method))
        })))
    }

    /// Steps 2–4: the method's entry, or why the pipeline answers without running a handler.
    fn prepare(&self, method: &str, params: &Value, request: bool) -> Result<Entry, Early> {
        let entry = self.inner.handlers.get(method).ok_or(Early::NotFound)?;
        if entry.expects_object && !params.is_object() {
            return Err(Early::NotAnObject(ParamsError::not_an_object(
                params.clone(),
            )));
        }
        if request && matches!(entry.handler, Handler::Notification(_)) {
            return Err(Early::NotificationAsRequest);
        }
        Ok(entry.clone())
    }

    /// The error a request gets for an [`Early`] answer (logged as the originals do; a
    /// notification's is only logged).
    fn early_error(&self, method: &str, ids: &CallIds, early: Early) -> RpcError {
        match early {
            Early::NotFound => {
                tracing::debug!(service = self.name(), %method, "method not found: {}.{method}", self.name());
                RpcError::method_not_found()
            }
            Early::NotAnObject(e) => {
                let failure = MethodFailure::InvalidParams(e);
                log_failure(self.name(), method, ids, &failure);
                failure_to_error(failure)
            }
            Early::NotificationAsRequest => {
                let reason = format!(
                    "{}.{method} is a notification: send it without an id",
                    self.name()
                );
                RpcError::invalid_request(json!({ "reason": reason }))
            }
        }
    }
}

/// Steps 5–6: the handler, inside the unwind guard (a panic anywhere in it, decoding
/// included, becomes `-32603`), with the deadline visible to it.
async fn run(
    handler: Handler,
    params: Value,
    deadline: Option<std::time::Instant>,
    id: Option<crate::Id>,
) -> Result<Value, MethodFailure> {
    // The handler is called inside both scopes, so that its synchronous part sees them too.
    let call = crate::deadline::with_request_id(
        id,
        crate::with_deadline(deadline, async move { handler.call(params).await }),
    );
    AssertUnwindSafe(call)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(panic_failure(&*p)))
}

impl Handler {
    /// Runs the handler; a notification's outcome is `null`.
    fn call(&self, params: Value) -> BoxFuture<Result<Value, MethodFailure>> {
        match self {
            Self::Request(f) => f(params),
            Self::Notification(f) => {
                let fut = f(params);
                Box::pin(async move { fut.await.map(|()| Value::Null) })
            }
        }
    }
}

fn panic_failure(payload: &(dyn std::any::Any + Send)) -> MethodFailure {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned());
    MethodFailure::Handler(HandlerError::internal("panic", message))
}

fn log_failure(service: &str, method: &str, ids: &CallIds, failure: &MethodFailure) {
    let rpc_id = ids
        .id
        .as_ref()
        .map_or_else(|| "null".to_owned(), ToString::to_string);
    let message_id = ids.message_id.as_deref().unwrap_or("-");
    match failure {
        MethodFailure::InvalidParams(e) => tracing::warn!(
            service, method, rpc_id, message_id, errors = %e,
            "RPC params validation failed: {service}.{method} id={rpc_id} message={message_id} \
             (the caller's params do not match the contract; it was answered -32602 with the paths)"
        ),
        MethodFailure::Handler(HandlerError::Rpc(e)) => tracing::debug!(
            service,
            method,
            rpc_id,
            message_id,
            code = e.code,
            "RPC handler returned an error: {service}.{method} id={rpc_id}"
        ),
        MethodFailure::Handler(e) => tracing::error!(
            service, method, rpc_id, message_id, error = %e,
            "RPC handler raised: {service}.{method} id={rpc_id} message={message_id} \
             (answered -32603; return an RpcError for failures callers should handle)"
        ),
        MethodFailure::InvalidResult(e) => tracing::error!(
            service, method, rpc_id, message_id, error = %e,
            "RPC result validation failed: {service}.{method} id={rpc_id} message={message_id} \
             (the handler's result does not serialise; fix its type)"
        ),
    }
}

/// The error object a failure is answered with.
fn failure_to_error(failure: MethodFailure) -> RpcError {
    match failure {
        MethodFailure::InvalidParams(e) => RpcError::invalid_params(e.to_data()),
        MethodFailure::Handler(e) => e.into_rpc_error(),
        MethodFailure::InvalidResult(msg) => RpcError::result_validation_failed(json!({
            "errors": [{"type": "serialization", "loc": [], "msg": msg, "input": null}]
        })),
    }
}

impl RpcServiceBuilder {
    fn push(mut self, name: impl Into<String>, handler: Handler) -> Self {
        self.handlers.push((name.into(), handler));
        self
    }

    fn declare(mut self, f: impl FnOnce(ContractBuilder) -> ContractBuilder) -> Self {
        if let ContractSource::Building(b) = self.contract {
            self.contract = ContractSource::Building(f(b));
        }
        self
    }

    /// Adds a typed request/response method; its schemas come from `P` and `R`.
    pub fn method<P, R, E, F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        P: DeserializeOwned + JsonSchema + Send + 'static,
        R: Serialize + JsonSchema + Send + 'static,
        HandlerError: From<E>,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let name = name.into();
        let declared = name.clone();
        self.declare(|b| b.typed_method::<P, R>(declared))
            .push(name, Handler::Request(wrap_request(f)))
    }

    /// Adds a typed notification; its schema comes from `P`.
    pub fn notification<P, F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        P: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let declared = name.clone();
        self.declare(|b| b.typed_notification::<P>(declared))
            .push(name, Handler::Notification(wrap_notification(f)))
    }

    /// Adds a dynamic request/response method over raw JSON values with explicit schemas.
    pub fn raw_method<E, F, Fut>(
        self,
        name: impl Into<String>,
        params: Value,
        result: Value,
        f: F,
    ) -> Self
    where
        HandlerError: From<E>,
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
    {
        let name = name.into();
        let declared = name.clone();
        self.declare(|b| b.method(declared, params, result))
            .push(name, Handler::Request(wrap_request(f)))
    }

    /// Adds a dynamic notification over raw JSON values with an explicit schema.
    pub fn raw_notification<F, Fut>(self, name: impl Into<String>, params: Value, f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let declared = name.clone();
        self.declare(|b| b.notification(declared, params))
            .push(name, Handler::Notification(wrap_notification(f)))
    }

    /// Adds the handler of a request method declared in the contract given to
    /// [`RpcService::for_contract`] (schemas are not touched).
    pub fn handle<P, R, E, F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        HandlerError: From<E>,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.push(name, Handler::Request(wrap_request(f)))
    }

    /// Adds the handler of a notification declared in the contract given to
    /// [`RpcService::for_contract`].
    pub fn handle_notification<P, F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.push(name, Handler::Notification(wrap_notification(f)))
    }

    /// Checks names, duplicates and that handlers and contract agree, and builds the service.
    pub fn build(self) -> Result<RpcService, ContractError> {
        let contract = match self.contract {
            ContractSource::Building(b) => b.build()?,
            ContractSource::Given(c) => c,
        };
        let mut handlers =
            HashMap::with_capacity_and_hasher(self.handlers.len(), rustc_hash::FxBuildHasher);
        for (name, handler) in self.handlers {
            let Some(desc) = contract.method(&name) else {
                return Err(ContractError::UnknownMethod(name));
            };
            let kind_ok = matches!(
                (&handler, desc.kind),
                (Handler::Request(_), MethodKind::Request)
                    | (Handler::Notification(_), MethodKind::Notification)
            );
            if !kind_ok {
                return Err(ContractError::KindMismatch(name));
            }
            let expects_object =
                desc.params_schema.get("type").and_then(Value::as_str) == Some("object");
            let entry = Entry {
                handler,
                name: Arc::from(name.as_str()),
                expects_object,
            };
            if handlers.insert(name.clone(), entry).is_some() {
                return Err(ContractError::DuplicateMethod(name));
            }
        }
        if let Some(m) = contract
            .methods()
            .iter()
            .find(|m| !handlers.contains_key(&m.name))
        {
            return Err(ContractError::MissingHandler(m.name.clone()));
        }
        let metrics = handlers
            .keys()
            .map(|k| (k.clone(), std::sync::OnceLock::new()))
            .collect();
        Ok(RpcService {
            inner: Arc::new(ServiceInner {
                contract,
                handlers,
                metrics,
            }),
        })
    }
}
