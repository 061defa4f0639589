//! JSON-RPC 2.0 envelopes as clamator uses them (spec §1.1–§1.3).
//!
//! Serialisation writes keys in the originals' order (`jsonrpc, method, params, id` for
//! requests; `jsonrpc, id, result|error` for responses) as compact JSON.
//! [`parse_envelope`] follows the originals' decision order and reasons exactly, taking the
//! Python side where Python and TypeScript differ (see the crate docs).

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use crate::error::{InvalidRequest, InvalidRequestReason as Reason, RpcError};
use crate::names::{is_valid_method, is_valid_service};

/// A request id: a string or an integer (negative included), echoed verbatim.
///
/// Clients generate UUID v4 strings ([`Id::random`]); servers accept and echo any string or
/// integer id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A string id.
    Str(String),
    /// An integer id (`i64` or `u64` range).
    Num(Number),
}

impl Id {
    /// A fresh lowercase hyphenated UUID v4 string id, as the originals generate.
    pub fn random() -> Self {
        Self::Str(uuid::Uuid::new_v4().to_string())
    }

    /// The id as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Str(s) => Value::String(s.clone()),
            Self::Num(n) => Value::Number(n.clone()),
        }
    }

    /// Builds an id from a JSON value, if it is a string or an integer.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Str(s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Self::Num(n.clone())),
            _ => None,
        }
    }
}

impl fmt::Display for Id {
    /// The stringified id, the key the originals use for pending calls.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Num(n) => n.fmt(f),
        }
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Self::Num(n.into())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Str(v) => s.serialize_str(v),
            Self::Num(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(&v).ok_or_else(|| de::Error::custom("id must be string or integer"))
    }
}

/// `<service>.<method>` written without allocating.
struct FullMethod<'a>(&'a str, &'a str);

impl fmt::Display for FullMethod<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        f.write_str(".")?;
        f.write_str(self.1)
    }
}

/// A request: expects a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The service segment of `method`.
    pub service: String,
    /// The method segment of `method`.
    pub method: String,
    /// The params, passed through as given.
    pub params: Value,
    /// The id.
    pub id: Id,
}

/// A notification: no id, no response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The service segment of `method`.
    pub service: String,
    /// The method segment of `method`.
    pub method: String,
    /// The params, passed through as given.
    pub params: Value,
}

/// A success or error response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request answered, echoed verbatim (`null` only for error responses to
    /// requests whose id could not be recovered).
    pub id: Value,
    /// The result, or the error object.
    pub outcome: Result<Value, RpcError>,
}

fn base_object(capacity: usize) -> Map<String, Value> {
    let mut m = Map::with_capacity(capacity);
    m.insert(JSONRPC.to_owned(), Value::from(VERSION));
    m
}

impl Request {
    /// `<service>.<method>`.
    pub fn full_method(&self) -> String {
        FullMethod(&self.service, &self.method).to_string()
    }

    /// The envelope as a JSON value (moving the params, no copy).
    pub fn into_value(self) -> Value {
        let mut m = base_object(4);
        m.insert("method".to_owned(), Value::String(self.full_method()));
        m.insert("params".to_owned(), self.params);
        m.insert("id".to_owned(), self.id.to_value());
        Value::Object(m)
    }
}

impl Notification {
    /// `<service>.<method>`.
    pub fn full_method(&self) -> String {
        FullMethod(&self.service, &self.method).to_string()
    }

    /// The envelope as a JSON value (moving the params, no copy).
    pub fn into_value(self) -> Value {
        let mut m = base_object(3);
        m.insert("method".to_owned(), Value::String(self.full_method()));
        m.insert("params".to_owned(), self.params);
        Value::Object(m)
    }
}

impl Response {
    /// A success response.
    pub fn success(id: Value, result: Value) -> Self {
        Self {
            id,
            outcome: Ok(result),
        }
    }

    /// An error response.
    pub fn error(id: Value, error: RpcError) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }

    /// The envelope as a JSON value (moving the result, no copy).
    pub fn into_value(self) -> Value {
        let mut m = base_object(3);
        m.insert("id".to_owned(), self.id);
        match self.outcome {
            Ok(result) => m.insert("result".to_owned(), result),
            Err(e) => m.insert(
                "error".to_owned(),
                serde_json::json!({"code": e.code, "message": e.message, "data": e.data}),
            ),
        };
        Value::Object(m)
    }
}

/// Any of the four envelope kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A success or error response.
    Response(Response),
}

impl Envelope {
    /// `request`, `notification`, `success` or `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Request(_) => "request",
            Self::Notification(_) => "notification",
            Self::Response(Response { outcome: Ok(_), .. }) => "success",
            Self::Response(Response {
                outcome: Err(_), ..
            }) => "error",
        }
    }
}

const JSONRPC: &str = "jsonrpc";
const VERSION: &str = "2.0";

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry(JSONRPC, VERSION)?;
        m.serialize_key("method")?;
        m.serialize_value(&DisplayStr(FullMethod(&self.service, &self.method)))?;
        m.serialize_entry("params", &self.params)?;
        m.serialize_entry("id", &self.id)?;
        m.end()
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(JSONRPC, VERSION)?;
        m.serialize_key("method")?;
        m.serialize_value(&DisplayStr(FullMethod(&self.service, &self.method)))?;
        m.serialize_entry("params", &self.params)?;
        m.end()
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(JSONRPC, VERSION)?;
        m.serialize_entry("id", &self.id)?;
        match &self.outcome {
            Ok(result) => m.serialize_entry("result", result)?,
            Err(error) => m.serialize_entry("error", error)?,
        }
        m.end()
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Request(r) => r.serialize(s),
            Self::Notification(n) => n.serialize(s),
            Self::Response(r) => r.serialize(s),
        }
    }
}

struct DisplayStr<T>(T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

fn invalid(reason: Reason) -> InvalidRequest {
    InvalidRequest { reason }
}

/// Validates a JSON value as a clamator envelope (spec §1.3), in the originals' order:
///
/// 1. an array → `batch requests not supported`;
/// 2. not an object → `not an object`;
/// 3. `jsonrpc` is not `"2.0"` → `jsonrpc must equal "2.0"`;
/// 4. a string `method` makes it a request (non-null `id`) or a notification (absent or null
///    `id`), after the name checks; a missing `params` becomes `{}`, an explicit `null` stays
///    `null`; a request id must be a string or an integer;
/// 5. `result` without `error` is a success response (it needs a non-null id, of any type);
/// 6. `error` without `result` is an error response (`error.code` an integer, `error.message`
///    a string, `data` defaulting to null);
/// 7. anything else → `envelope must be request, notification, or response`.
///
/// ```
/// use clamator_protocol::{parse_envelope, Envelope};
/// let env = parse_envelope(serde_json::json!(
///     {"jsonrpc": "2.0", "method": "arith.add", "params": {"a": 2, "b": 3}, "id": -7}
/// )).unwrap();
/// let Envelope::Request(req) = env else { panic!() };
/// assert_eq!((req.service.as_str(), req.method.as_str()), ("arith", "add"));
/// assert_eq!(serde_json::to_value(&req.id).unwrap(), serde_json::json!(-7));
///
/// let err = parse_envelope(serde_json::json!([{}])).unwrap_err();
/// assert_eq!(err.to_string(), "-32600 Invalid Request: batch requests not supported");
/// ```
pub fn parse_envelope(value: Value) -> Result<Envelope, InvalidRequest> {
    let mut obj = match value {
        Value::Array(_) => return Err(invalid(Reason::Batch)),
        Value::Object(obj) => obj,
        _ => return Err(invalid(Reason::NotAnObject)),
    };
    if obj.get(JSONRPC).and_then(Value::as_str) != Some(VERSION) {
        return Err(invalid(Reason::JsonRpcVersion));
    }
    let has_result = obj.contains_key("result");
    let has_error = obj.contains_key("error");
    let has_id = obj.get("id").is_some_and(|v| !v.is_null());

    if let Some(Value::String(full)) = obj.get("method") {
        let (service, method) = split_method(full)?;
        let (service, method) = (service.to_owned(), method.to_owned());
        let params = obj
            .remove("params")
            .unwrap_or_else(|| Value::Object(Map::new()));
        if has_id {
            let id = obj
                .get("id")
                .and_then(Id::from_value)
                .ok_or(invalid(Reason::IdType))?;
            return Ok(Envelope::Request(Request {
                service,
                method,
                params,
                id,
            }));
        }
        return Ok(Envelope::Notification(Notification {
            service,
            method,
            params,
        }));
    }
    if has_result && !has_error {
        if !has_id {
            return Err(invalid(Reason::ResponseWithoutId));
        }
        let id = obj.remove("id").unwrap_or(Value::Null);
        let result = obj.remove("result").unwrap_or(Value::Null);
        return Ok(Envelope::Response(Response::success(id, result)));
    }
    if has_error && !has_result {
        let error = match obj.remove("error") {
            Some(Value::Object(e)) => parse_error_object(e)?,
            _ => return Err(invalid(Reason::ErrorShape)),
        };
        let id = obj.remove("id").unwrap_or(Value::Null);
        return Ok(Envelope::Response(Response::error(id, error)));
    }
    Err(invalid(Reason::Shape))
}

fn split_method(full: &str) -> Result<(&str, &str), InvalidRequest> {
    let (service, method) = full.split_once('.').ok_or(invalid(Reason::MethodFormat))?;
    if service.is_empty() || method.is_empty() {
        return Err(invalid(Reason::MethodFormat));
    }
    if !is_valid_service(service) {
        return Err(invalid(Reason::InvalidService));
    }
    if !is_valid_method(method) {
        return Err(invalid(Reason::InvalidMethod));
    }
    Ok((service, method))
}

fn parse_error_object(mut e: Map<String, Value>) -> Result<RpcError, InvalidRequest> {
    let code = e.get("code").and_then(Value::as_i64);
    let message = match e.remove("message") {
        Some(Value::String(m)) => Some(m),
        _ => None,
    };
    match (code, message) {
        (Some(code), Some(message)) => {
            let data = e.remove("data").unwrap_or(Value::Null);
            Ok(RpcError {
                code,
                message,
                data,
            })
        }
        _ => Err(invalid(Reason::ErrorShape)),
    }
}

/// Why a message text could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The text is not JSON (`-32700 Parse error`).
    #[error("-32700 Parse error: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not a valid envelope (`-32600 Invalid Request`).
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
}

impl EnvelopeError {
    /// The error object describing this failure, for an error reply.
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            Self::NotJson(e) => {
                RpcError::parse_error(serde_json::json!({ "reason": e.to_string() }))
            }
            Self::Invalid(e) => {
                RpcError::invalid_request(serde_json::json!({ "reason": e.reason.as_str() }))
            }
        }
    }
}

/// Parses a message text (JSON) and validates it with [`parse_envelope`].
pub fn parse_envelope_str(text: &str) -> Result<Envelope, EnvelopeError> {
    parse_envelope_slice(text.as_bytes())
}

/// Parses message bytes (JSON) and validates them as [`parse_envelope`] does (same decisions,
/// same reasons). An object is read member by member without building a map of it, and only
/// the members a decision needs are parsed; anything else (not an object, not JSON) goes
/// through [`parse_envelope`] on the parsed value, so error texts are the same either way.
pub fn parse_envelope_slice(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let starts_as_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if starts_as_object {
        if let Ok(members) = serde_json::from_slice::<Members<'_>>(bytes) {
            return members.decide();
        }
    }
    let value: Value = serde_json::from_slice(bytes).map_err(EnvelopeError::NotJson)?;
    Ok(parse_envelope(value)?)
}

/// The members of an envelope object that the decision procedure looks at, unparsed. A member
/// given twice keeps its last value, as when the object is read into a `Value`.
#[derive(Default)]
struct Members<'a> {
    jsonrpc: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut m = Members::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        JSONRPC => &mut m.jsonrpc,
                        "method" => &mut m.method,
                        "params" => &mut m.params,
                        "id" => &mut m.id,
                        "result" => &mut m.result,
                        "error" => &mut m.error,
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(m)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A member that is a JSON string, read as one (`None` for any other JSON type).
fn as_string(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    raw.get()
        .starts_with('"')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// A member's value (it is valid JSON: the whole message was).
fn value_of(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

impl Members<'_> {
    /// The decision procedure of [`parse_envelope`], on unparsed members.
    fn decide(self) -> Result<Envelope, EnvelopeError> {
        if self.jsonrpc.and_then(as_string).as_deref() != Some(VERSION) {
            return Err(invalid(Reason::JsonRpcVersion).into());
        }
        let has_result = self.result.is_some();
        let has_error = self.error.is_some();
        let id = self.id.filter(|raw| raw.get() != "null");
        if let Some(full) = self.method.and_then(as_string) {
            let (service, method) = split_method(&full)?;
            let (service, method) = (service.to_owned(), method.to_owned());
            let params = self
                .params
                .map_or_else(|| Value::Object(Map::new()), value_of);
            return Ok(match id {
                Some(id) => Envelope::Request(Request {
                    service,
                    method,
                    params,
                    id: Id::from_value(&value_of(id)).ok_or(invalid(Reason::IdType))?,
                }),
                None => Envelope::Notification(Notification {
                    service,
                    method,
                    params,
                }),
            });
        }
        if has_result && !has_error {
            let id = id.ok_or(invalid(Reason::ResponseWithoutId))?;
            let result = self.result.map_or(Value::Null, value_of);
            return Ok(Envelope::Response(Response::success(value_of(id), result)));
        }
        if has_error && !has_result {
            let error = match self.error.map(value_of) {
                Some(Value::Object(e)) => parse_error_object(e)?,
                _ => return Err(invalid(Reason::ErrorShape).into()),
            };
            let id = id.map_or(Value::Null, value_of);
            return Ok(Envelope::Response(Response::error(id, error)));
        }
        Err(invalid(Reason::Shape).into())
    }
}

/// Serialises an envelope part as compact JSON.
pub fn to_json<T: Serialize + ?Sized>(envelope: &T) -> String {
    // Envelopes hold only `Value`s and strings: serialising them cannot fail.
    serde_json::to_string(envelope).unwrap_or_else(|e| unreachable!("envelope serialisation: {e}"))
}
