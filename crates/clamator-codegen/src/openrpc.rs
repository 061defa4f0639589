//! Contract documents in OpenRPC 1.x, with clamator specifics in `x-clamator-*` extensions.
//!
//! Each contract is one document: `info.title` is the service, every method is
//! `<service>.<method>` with its params object schema (as one by-name param per property, and
//! whole in `x-clamator-params`), its result, and `x-clamator-kind` (`request` or
//! `notification`). Codegen reads `x-clamator-params` / `result.schema`, so a schema survives
//! the round trip exactly.

use clamator_protocol::{Contract, MethodKind};
use serde_json::{json, Map, Value};

use crate::CodegenError;

/// The OpenRPC version written.
pub const OPENRPC_VERSION: &str = "1.3.2";

/// One method read from a contract document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocMethod {
    /// Wire method name (without the service).
    pub name: String,
    /// Whether it is a notification.
    pub notification: bool,
    /// Params JSON Schema.
    pub params: Value,
    /// Result JSON Schema (`None` for notifications).
    pub result: Option<Value>,
    /// What it does (OpenRPC `description`, else `summary`), if described.
    pub description: Option<String>,
}

/// A contract read from a document.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractDoc {
    /// Service name.
    pub service: String,
    /// What the service does (`info.description`), if described.
    pub description: Option<String>,
    /// Methods, in document order.
    pub methods: Vec<DocMethod>,
    /// The file it came from (for headers), if any.
    pub source: Option<String>,
}

/// The OpenRPC document of a contract.
///
/// ```
/// let c = clamator_protocol::Contract::builder("arith")
///     .method("add", serde_json::json!({"type": "object"}), serde_json::json!({"type": "number"}))
///     .build().unwrap();
/// let doc = clamator_codegen::to_openrpc(&c);
/// assert_eq!(doc["methods"][0]["name"], "arith.add");
/// assert_eq!(clamator_codegen::from_openrpc(&doc).unwrap().service, "arith");
/// ```
pub fn to_openrpc(contract: &Contract) -> Value {
    let doc = ContractDoc {
        service: contract.service().to_owned(),
        description: contract.description().map(str::to_owned),
        methods: contract
            .methods()
            .iter()
            .map(|m| DocMethod {
                name: m.name.clone(),
                notification: m.kind == MethodKind::Notification,
                params: m.params_schema.clone(),
                result: m.result_schema.clone(),
                description: m.description.clone(),
            })
            .collect(),
        source: None,
    };
    doc_to_openrpc(&doc)
}

/// The OpenRPC document of a contract read from a document or imported from another language
/// (the inverse of [`from_openrpc`]).
pub fn doc_to_openrpc(doc: &ContractDoc) -> Value {
    let mut components = Components::default();
    let methods: Vec<Value> = doc
        .methods
        .iter()
        .map(|m| {
            // The by-name params and the result refer to `components/schemas` (resolvable at
            // the document root, for OpenRPC tools); `x-clamator-params` / `x-clamator-result`
            // keep the schemas exactly as the contract gave them (self-contained: codegen and
            // hashes read those).
            let params_doc = components.hoist(&m.params);
            let required: Vec<&str> = m.params["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let params: Vec<Value> = params_doc["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .map(|(name, schema)| {
                            json!({"name": name, "required": required.contains(&name.as_str()), "schema": schema})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut method = Map::new();
            method.insert("name".into(), json!(format!("{}.{}", doc.service, m.name)));
            if let Some(d) = &m.description {
                let short = summary(d);
                if short != *d {
                    method.insert("description".into(), json!(d));
                }
                method.insert("summary".into(), json!(short));
            }
            method.insert("paramStructure".into(), json!("by-name"));
            method.insert("params".into(), Value::Array(params));
            if let (false, Some(result)) = (m.notification, &m.result) {
                let hoisted = components.hoist(result);
                method.insert("result".into(), json!({"name": "result", "schema": hoisted}));
            }
            method.insert(
                "x-clamator-kind".into(),
                json!(if m.notification { "notification" } else { "request" }),
            );
            method.insert("x-clamator-params".into(), m.params.clone());
            if let (false, Some(result)) = (m.notification, &m.result) {
                method.insert("x-clamator-result".into(), result.clone());
            }
            Value::Object(method)
        })
        .collect();
    let mut info = Map::new();
    info.insert("title".into(), json!(doc.service));
    if let Some(d) = &doc.description {
        info.insert("description".into(), json!(d));
    }
    info.insert("version".into(), json!("0.1.0"));
    info.insert("x-clamator-service".into(), json!(doc.service));
    let mut out = json!({
        "openrpc": OPENRPC_VERSION,
        "info": info,
        "methods": methods,
    });
    if !components.schemas.is_empty() {
        out["components"] = json!({ "schemas": components.schemas });
    }
    out
}

/// The named definitions of every method's schemas, gathered at the document root.
#[derive(Default)]
struct Components {
    schemas: Map<String, Value>,
}

impl Components {
    /// `schema` without its `definitions` / `$defs`, which move to `components/schemas`
    /// (a name already taken by a different schema gets a suffix), with every `$ref` pointing
    /// there.
    fn hoist(&mut self, schema: &Value) -> Value {
        let mut defs: Vec<(String, String, &Value)> = Vec::new(); // (old pointer, name, schema)
        for key in ["$defs", "definitions"] {
            for (name, def) in schema
                .get(key)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                defs.push((format!("#/{key}/{name}"), name.clone(), def));
            }
        }
        // Each definition keeps its name unless a different schema already has it (compared
        // after the references are rewritten, so one definition shared by two methods is one).
        let mut targets: Vec<String> = defs.iter().map(|d| d.1.clone()).collect();
        let renames = loop {
            let renames: Vec<(String, String)> = defs
                .iter()
                .zip(&targets)
                .map(|(d, t)| (d.0.clone(), format!("#/components/schemas/{t}")))
                .collect();
            let mut changed = false;
            for (i, d) in defs.iter().enumerate() {
                let rewritten = rewrite(d.2, &renames);
                if self
                    .schemas
                    .get(&targets[i])
                    .is_some_and(|have| *have != rewritten)
                {
                    let mut n = 2;
                    while self
                        .schemas
                        .get(&format!("{}{n}", d.1))
                        .is_some_and(|have| *have != rewritten)
                    {
                        n += 1;
                    }
                    targets[i] = format!("{}{n}", d.1);
                    changed = true;
                }
            }
            if !changed {
                break renames;
            }
        };
        for (d, t) in defs.iter().zip(&targets) {
            self.schemas
                .entry(t.clone())
                .or_insert_with(|| rewrite(d.2, &renames));
        }
        let mut out = rewrite(schema, &renames);
        if let Some(obj) = out.as_object_mut() {
            obj.remove("$defs");
            obj.remove("definitions");
        }
        out
    }
}

fn rewrite(v: &Value, renames: &[(String, String)]) -> Value {
    match v {
        Value::Object(obj) => Value::Object(
            obj.iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x.as_str()) {
                        ("$ref", Some(r)) => renames
                            .iter()
                            .find(|(from, _)| from == r)
                            .map_or_else(|| x.clone(), |(_, to)| Value::from(to.as_str())),
                        _ => rewrite(x, renames),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| rewrite(x, renames)).collect()),
        other => other.clone(),
    }
}

/// The first paragraph of a description, on one line (OpenRPC `summary`).
pub(crate) fn summary(description: &str) -> String {
    description
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads a contract document written by [`to_openrpc`] (or by hand in the same shape).
pub fn from_openrpc(doc: &Value) -> Result<ContractDoc, CodegenError> {
    let bad = |why: String| CodegenError::Document(why);
    let service = doc["info"]["x-clamator-service"]
        .as_str()
        .or_else(|| doc["info"]["title"].as_str())
        .ok_or_else(|| bad("info.title (the service name) is missing".into()))?
        .to_owned();
    if !clamator_protocol::is_valid_service(&service) {
        return Err(bad(format!("invalid service name {service:?}")));
    }
    let mut methods = Vec::new();
    for m in doc["methods"]
        .as_array()
        .ok_or_else(|| bad("methods is missing".into()))?
    {
        let full = m["name"]
            .as_str()
            .ok_or_else(|| bad("a method has no name".into()))?;
        let name = full
            .strip_prefix(&format!("{service}."))
            .unwrap_or(full)
            .to_owned();
        if !clamator_protocol::is_valid_method(&name) {
            return Err(bad(format!("invalid method name {name:?}")));
        }
        let notification = m["x-clamator-kind"] == "notification" || m.get("result").is_none();
        let params = match m.get("x-clamator-params") {
            Some(p) => p.clone(),
            None => params_from_list(m),
        };
        let result = if notification {
            None
        } else {
            Some(
                m.get("x-clamator-result")
                    .unwrap_or(&m["result"]["schema"])
                    .clone(),
            )
        };
        methods.push(DocMethod {
            name,
            notification,
            params,
            result,
            description: text(&m["description"]).or_else(|| text(&m["summary"])),
        });
    }
    Ok(ContractDoc {
        service,
        description: text(&doc["info"]["description"]),
        methods,
        source: None,
    })
}

/// Builds the params object schema from OpenRPC by-name params.
fn params_from_list(m: &Value) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in m["params"].as_array().into_iter().flatten() {
        let Some(name) = p["name"].as_str() else {
            continue;
        };
        properties.insert(name.to_owned(), p["schema"].clone());
        if p["required"] == true {
            required.push(json!(name));
        }
    }
    json!({"type": "object", "properties": properties, "required": required})
}
