//! Contract descriptors: a service name and its methods with their JSON Schemas.

use std::sync::Arc;

use schemars::JsonSchema;
use serde_json::Value;

use crate::error::ContractError;
use crate::names::{is_valid_method, is_valid_service};

/// Whether a contract method expects a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// A request/response method.
    Request,
    /// A fire-and-forget notification.
    Notification,
}

/// The params of a method declared without any (`async fn ping(&self)` in a
/// `#[clamator::contract]` trait): `{}` on the wire, an object with no properties in the schema.
/// Unknown keys are ignored, as Pydantic does for a model without fields.
///
/// ```
/// use clamator_protocol::{decode_params, NoParams};
/// assert_eq!(serde_json::to_string(&NoParams {}).unwrap(), "{}");
/// assert!(decode_params::<NoParams>(&serde_json::json!({})).is_ok());
/// assert!(decode_params::<NoParams>(&serde_json::json!(7)).is_err());
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NoParams {}

impl JsonSchema for NoParams {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoParams".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "object", "properties": {}})
    }
}

/// One method of a contract.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MethodDescriptor {
    /// The wire method name (camelCase).
    pub name: String,
    /// Request or notification.
    pub kind: MethodKind,
    /// JSON Schema (draft-07) of the params.
    pub params_schema: Value,
    /// JSON Schema (draft-07) of the result; `None` for notifications.
    pub result_schema: Option<Value>,
    /// Whether calling it twice has the effect of calling it once (`#[method(idempotent)]`):
    /// `RetryIdempotentLayer` retries such calls.
    pub idempotent: bool,
    /// What the method does: the doc comment of a `#[clamator::contract]` method, or
    /// [`ContractBuilder::describe`]. Goes into contract documents (OpenRPC `summary` and
    /// `description`) and generated Python docstrings / TypeScript JSDoc.
    pub description: Option<String>,
}

#[derive(Debug)]
struct ContractInner {
    service: String,
    description: Option<String>,
    methods: Vec<MethodDescriptor>,
}

/// A service contract: the service name and its methods, in declaration order.
///
/// Cheap to clone. Built by the `#[clamator::contract]` macro, or by hand:
///
/// ```
/// use clamator_protocol::{Contract, MethodKind};
/// let contract = Contract::builder("arith")
///     .method("add", serde_json::json!({"type": "object"}), serde_json::json!({"type": "object"}))
///     .notification("ping", serde_json::json!({"type": "object"}))
///     .build()
///     .unwrap();
/// assert_eq!(contract.service(), "arith");
/// assert_eq!(contract.method("ping").unwrap().kind, MethodKind::Notification);
/// assert!(Contract::builder("Arith").build().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Contract {
    inner: Arc<ContractInner>,
}

impl Contract {
    /// Starts a contract for `service`.
    pub fn builder(service: impl Into<String>) -> ContractBuilder {
        ContractBuilder {
            service: service.into(),
            description: None,
            methods: Vec::new(),
        }
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// What the service does (the contract trait's doc comment), if described.
    pub fn description(&self) -> Option<&str> {
        self.inner.description.as_deref()
    }

    /// The methods, in declaration order.
    pub fn methods(&self) -> &[MethodDescriptor] {
        &self.inner.methods
    }

    /// The method called `name` (wire name), if any.
    pub fn method(&self, name: &str) -> Option<&MethodDescriptor> {
        self.inner.methods.iter().find(|m| m.name == name)
    }
}

/// Builds a [`Contract`]; names are checked by [`ContractBuilder::build`].
#[derive(Debug)]
#[must_use]
pub struct ContractBuilder {
    service: String,
    description: Option<String>,
    methods: Vec<MethodDescriptor>,
}

impl ContractBuilder {
    /// Adds a request/response method with explicit schemas.
    pub fn method(mut self, name: impl Into<String>, params: Value, result: Value) -> Self {
        self.methods.push(MethodDescriptor {
            name: name.into(),
            kind: MethodKind::Request,
            params_schema: params,
            result_schema: Some(result),
            idempotent: false,
            description: None,
        });
        self
    }

    /// Adds a notification with an explicit params schema.
    pub fn notification(mut self, name: impl Into<String>, params: Value) -> Self {
        self.methods.push(MethodDescriptor {
            name: name.into(),
            kind: MethodKind::Notification,
            params_schema: params,
            result_schema: None,
            idempotent: false,
            description: None,
        });
        self
    }

    /// Marks the method added last as idempotent (see [`MethodDescriptor::idempotent`]).
    pub fn idempotent(mut self) -> Self {
        if let Some(m) = self.methods.last_mut() {
            m.idempotent = true;
        }
        self
    }

    /// Sets the description of the method added last (see [`MethodDescriptor::description`]);
    /// blank text leaves it unset.
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        if let Some(m) = self.methods.last_mut() {
            m.description = (!text.trim().is_empty()).then_some(text);
        }
        self
    }

    /// Sets the description of the service (the contract trait's doc comment).
    pub fn service_description(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.description = (!text.trim().is_empty()).then_some(text);
        self
    }

    /// Adds a request/response method whose schemas come from `P` and `R`.
    pub fn typed_method<P: JsonSchema, R: JsonSchema>(self, name: impl Into<String>) -> Self {
        self.method(name, schema_for::<P>(), schema_for::<R>())
    }

    /// Adds a notification whose schema comes from `P`.
    pub fn typed_notification<P: JsonSchema>(self, name: impl Into<String>) -> Self {
        self.notification(name, schema_for::<P>())
    }

    /// Checks the name rules and builds the contract.
    pub fn build(self) -> Result<Contract, ContractError> {
        if !is_valid_service(&self.service) {
            return Err(ContractError::InvalidService(self.service));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if !is_valid_method(&m.name) {
                return Err(ContractError::InvalidMethod(m.name.clone()));
            }
            if self.methods[..i].iter().any(|o| o.name == m.name) {
                return Err(ContractError::DuplicateMethod(m.name.clone()));
            }
        }
        Ok(Contract {
            inner: Arc::new(ContractInner {
                service: self.service,
                description: self.description,
                methods: self.methods,
            }),
        })
    }
}

/// The draft-07 JSON Schema of `T`, as used in contract descriptors.
pub fn schema_for<T: JsonSchema>() -> Value {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}
