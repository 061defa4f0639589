//! Structural comparison of contracts written in different languages (`clamator codegen
//! check --contract A --against B`): the JSON Schemas of schemars, Pydantic and
//! zod-to-json-schema say the same thing in different words, so both sides are first reduced
//! to one normal form — `$ref`s resolved, `type: [T, "null"]` and `anyOf`/`oneOf` as one
//! union, `const` as a one-value enum, number formats as bounds (`uint32` is `0..=4294967295`)
//! — and titles, descriptions, defaults, examples and key order are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::schema::{format_bounds as bounds_of_format, tighter};
use crate::ContractDoc;

/// One difference between two contracts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The service.
    pub service: String,
    /// The method, when the difference is inside one.
    pub method: Option<String>,
    /// Where: `params`, `result`, then a JSON path (`/lines/[]/quantity`).
    pub path: String,
    /// What differs (`maximum: 100 vs none`).
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Some(m) if self.path.is_empty() => write!(f, "{}.{m}: {}", self.service, self.what),
            Some(m) => write!(f, "{}.{m} {}: {}", self.service, self.path, self.what),
            None => write!(f, "{}: {}", self.service, self.what),
        }
    }
}

/// A schema in normal form.
#[derive(Debug, Clone, PartialEq)]
enum Norm {
    Any,
    Null,
    Bool,
    Int {
        min: Option<f64>,
        max: Option<f64>,
    },
    Num {
        min: Option<f64>,
        max: Option<f64>,
    },
    Str {
        format: Option<String>,
        min_len: Option<u64>,
        max_len: Option<u64>,
        pattern: Option<String>,
    },
    Enum(BTreeSet<String>),
    Array {
        items: Box<Norm>,
        min: Option<u64>,
        max: Option<u64>,
    },
    Object {
        props: BTreeMap<String, (bool, Norm)>,
        extra: Option<Box<Norm>>,
    },
    Union(Vec<Norm>),
    Recursive(String),
}

struct Normalizer<'a> {
    root: &'a Value,
    stack: Vec<String>,
}

impl<'a> Normalizer<'a> {
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        let root: &'a Value = self.root;
        root.pointer(pointer)
    }

    fn norm(&mut self, s: &Value) -> Norm {
        let Some(obj) = s.as_object() else {
            return if *s == Value::Bool(false) {
                Norm::Union(vec![])
            } else {
                Norm::Any
            };
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if self.stack.iter().any(|seen| seen == r) {
                return Norm::Recursive(r.rsplit('/').next().unwrap_or(r).to_owned());
            }
            let Some(target) = self.resolve(r) else {
                return Norm::Recursive(format!("unresolved {r}"));
            };
            self.stack.push(r.to_owned());
            let n = self.norm(target);
            self.stack.pop();
            return n;
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = obj.get(key).and_then(Value::as_array) {
                return union(alts.iter().map(|a| self.norm(a)).collect());
            }
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            if all.len() == 1 {
                return self.norm(&all[0]);
            }
        }
        if let Some(c) = obj.get("const") {
            return Norm::Enum(BTreeSet::from([c.to_string()]));
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            let mut set: BTreeSet<String> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(Value::to_string)
                .collect();
            let nullable = values.iter().any(Value::is_null);
            let e = Norm::Enum(std::mem::take(&mut set));
            return if nullable {
                union(vec![e, Norm::Null])
            } else {
                e
            };
        }
        match obj.get("type") {
            Some(Value::Array(types)) => union(
                types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| self.norm_type(t, obj))
                    .collect(),
            ),
            Some(Value::String(t)) => self.norm_type(t, obj),
            _ if obj.contains_key("properties") => self.norm_type("object", obj),
            _ => Norm::Any,
        }
    }

    fn norm_type(&mut self, t: &str, obj: &serde_json::Map<String, Value>) -> Norm {
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        let int = |k: &str| obj.get(k).and_then(Value::as_u64);
        let format = obj.get("format").and_then(Value::as_str);
        match t {
            "null" => Norm::Null,
            "boolean" => Norm::Bool,
            "integer" | "number" => {
                let mut min = tighter(
                    num("minimum"),
                    num("exclusiveMinimum").map(|m| m + 1.0),
                    false,
                );
                let mut max = tighter(
                    num("maximum"),
                    num("exclusiveMaximum").map(|m| m - 1.0),
                    true,
                );
                if let Some((lo, hi)) = format.and_then(bounds_of_format) {
                    min = tighter(min, Some(lo), false);
                    max = tighter(max, Some(hi), true);
                }
                if t == "integer" {
                    Norm::Int { min, max }
                } else {
                    Norm::Num { min, max }
                }
            }
            "string" => Norm::Str {
                format: format.map(str::to_owned),
                min_len: int("minLength").filter(|n| *n > 0),
                max_len: int("maxLength"),
                pattern: obj
                    .get("pattern")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            "array" => Norm::Array {
                items: Box::new(obj.get("items").map_or(Norm::Any, |i| self.norm(i))),
                min: int("minItems").filter(|n| *n > 0),
                max: int("maxItems"),
            },
            "object" => {
                let required: BTreeSet<&str> = obj
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut props = BTreeMap::new();
                for (k, v) in obj
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    props.insert(k.clone(), (required.contains(k.as_str()), self.norm(v)));
                }
                // `additionalProperties: false` (strict) and absent (ignored) differ in whether
                // unknown keys are refused, which generators spell inconsistently (zod writes
                // `false` for objects that strip): only a schema for extra values counts.
                let extra = match obj.get("additionalProperties") {
                    Some(v @ Value::Object(_)) => Some(Box::new(self.norm(v))),
                    _ => None,
                };
                Norm::Object { props, extra }
            }
            _ => Norm::Any,
        }
    }
}

fn union(mut alts: Vec<Norm>) -> Norm {
    let mut flat = Vec::new();
    for a in alts.drain(..) {
        match a {
            Norm::Union(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    // One-value enums of one union are one enum (`Literal["a"] | Literal["b"]`).
    if flat.len() > 1 && flat.iter().all(|a| matches!(a, Norm::Enum(_))) {
        let mut all = BTreeSet::new();
        for a in flat {
            if let Norm::Enum(v) = a {
                all.extend(v);
            }
        }
        return Norm::Enum(all);
    }
    if flat.len() == 1 {
        return flat.remove(0);
    }
    Norm::Union(flat)
}

fn kind(n: &Norm) -> &'static str {
    match n {
        Norm::Any => "any",
        Norm::Null => "null",
        Norm::Bool => "boolean",
        Norm::Int { .. } => "integer",
        Norm::Num { .. } => "number",
        Norm::Str { .. } => "string",
        Norm::Enum(_) => "enum",
        Norm::Array { .. } => "array",
        Norm::Object { .. } => "object",
        Norm::Union(_) => "union",
        Norm::Recursive(_) => "recursive reference",
    }
}

fn show<T: fmt::Debug>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
}

fn diff(a: &Norm, b: &Norm, path: &str, out: &mut Vec<(String, String)>) {
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            out.push((path.to_owned(), format!("{name}: {x} vs {y}")));
        }
    };
    match (a, b) {
        (Norm::Int { min: a1, max: a2 }, Norm::Int { min: b1, max: b2 })
        | (Norm::Num { min: a1, max: a2 }, Norm::Num { min: b1, max: b2 }) => {
            field("minimum", show(a1), show(b1));
            field("maximum", show(a2), show(b2));
        }
        (
            Norm::Str {
                format: f1,
                min_len: l1,
                max_len: m1,
                pattern: p1,
            },
            Norm::Str {
                format: f2,
                min_len: l2,
                max_len: m2,
                pattern: p2,
            },
        ) => {
            field("format", show(f1), show(f2));
            field("minLength", show(l1), show(l2));
            field("maxLength", show(m1), show(m2));
            field("pattern", show(p1), show(p2));
        }
        (Norm::Enum(x), Norm::Enum(y)) => {
            if x != y {
                let list =
                    |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                let mut parts = Vec::new();
                let only_a: Vec<&String> = x.difference(y).collect();
                let only_b: Vec<&String> = y.difference(x).collect();
                if !only_a.is_empty() {
                    parts.push(format!("{} only in contract", list(only_a)));
                }
                if !only_b.is_empty() {
                    parts.push(format!("{} only in other", list(only_b)));
                }
                out.push((path.to_owned(), format!("values: {}", parts.join("; "))));
            }
        }
        (
            Norm::Array {
                items: i1,
                min: a1,
                max: a2,
            },
            Norm::Array {
                items: i2,
                min: b1,
                max: b2,
            },
        ) => {
            field("minItems", show(a1), show(b1));
            field("maxItems", show(a2), show(b2));
            diff(i1, i2, &format!("{path}/[]"), out);
        }
        (
            Norm::Object {
                props: p1,
                extra: e1,
            },
            Norm::Object {
                props: p2,
                extra: e2,
            },
        ) => {
            for (k, (r1, n1)) in p1 {
                let at = format!("{path}/{k}");
                match p2.get(k) {
                    None => out.push((at, "only in contract".into())),
                    Some((r2, n2)) => {
                        if r1 != r2 {
                            let req = |r: &bool| if *r { "required" } else { "optional" };
                            out.push((at.clone(), format!("{} vs {}", req(r1), req(r2))));
                        }
                        diff(n1, n2, &at, out);
                    }
                }
            }
            for k in p2.keys().filter(|k| !p1.contains_key(*k)) {
                out.push((format!("{path}/{k}"), "only in other".into()));
            }
            match (e1, e2) {
                (Some(x), Some(y)) => diff(x, y, &format!("{path}/{{*}}"), out),
                (None, None) => {}
                _ => out.push((
                    path.to_owned(),
                    format!(
                        "map values: {} vs {}",
                        e1.as_ref().map_or("none", |n| kind(n)),
                        e2.as_ref().map_or("none", |n| kind(n))
                    ),
                )),
            }
        }
        (Norm::Union(x), Norm::Union(y)) => {
            let nullable = |v: &Vec<Norm>| v.contains(&Norm::Null);
            if nullable(x) != nullable(y) {
                out.push((
                    path.to_owned(),
                    format!("nullable: {} vs {}", nullable(x), nullable(y)),
                ));
            }
            let (xs, ys): (Vec<&Norm>, Vec<&Norm>) = (
                x.iter().filter(|n| **n != Norm::Null).collect(),
                y.iter().filter(|n| **n != Norm::Null).collect(),
            );
            if xs.len() != ys.len() {
                out.push((
                    path.to_owned(),
                    format!("{} alternatives vs {}", xs.len(), ys.len()),
                ));
                return;
            }
            for (i, (p, q)) in xs.iter().zip(&ys).enumerate() {
                let at = if xs.len() == 1 {
                    path.to_owned()
                } else {
                    format!("{path}/<{i}>")
                };
                diff(p, q, &at, out);
            }
        }
        (Norm::Union(x), other) | (other, Norm::Union(x))
            if x.len() == 2 && x.contains(&Norm::Null) =>
        {
            // `T | null` against `T`
            let inner = x
                .iter()
                .find(|n| **n != Norm::Null)
                .expect("two members, one null");
            let a_nullable = matches!(a, Norm::Union(_));
            out.push((
                path.to_owned(),
                format!("nullable: {a_nullable} vs {}", !a_nullable),
            ));
            if a_nullable {
                diff(inner, other, path, out)
            } else {
                diff(other, inner, path, out)
            }
        }
        (x, y) if x == y => {}
        (Norm::Any, _) | (_, Norm::Any) => {
            out.push((path.to_owned(), format!("type: {} vs {}", kind(a), kind(b))));
        }
        (x, y) if std::mem::discriminant(x) == std::mem::discriminant(y) => {
            out.push((path.to_owned(), format!("{x:?} vs {y:?}")));
        }
        _ => out.push((path.to_owned(), format!("type: {} vs {}", kind(a), kind(b)))),
    }
}

fn normal(schema: &Value) -> Norm {
    Normalizer {
        root: schema,
        stack: Vec::new(),
    }
    .norm(schema)
}

/// Compares two sets of contracts structurally; every difference names the service, the
/// method and the JSON path. Services or methods on one side only are differences too.
///
/// ```
/// use serde_json::json;
/// let doc = |max: u64| clamator_codegen::ContractDoc {
///     service: "shop".into(),
///     description: None,
///     methods: vec![clamator_codegen::DocMethod {
///         name: "buy".into(),
///         notification: false,
///         params: json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": max}}, "required": ["n"]}),
///         result: Some(json!({"type": "string", "title": "ignored"})),
///         description: None,
///     }],
///     source: None,
/// };
/// assert!(clamator_codegen::compare(&[doc(10)], &[doc(10)]).is_empty());
/// let d = clamator_codegen::compare(&[doc(10)], &[doc(20)]);
/// assert_eq!(d[0].to_string(), "shop.buy params/n: maximum: 10.0 vs 20.0");
/// ```
pub fn compare(ours: &[ContractDoc], theirs: &[ContractDoc]) -> Vec<Difference> {
    let mut out = Vec::new();
    let find = |docs: &[ContractDoc], s: &str| docs.iter().find(|d| d.service == s).cloned();
    for a in ours {
        let Some(b) = find(theirs, &a.service) else {
            out.push(Difference {
                service: a.service.clone(),
                method: None,
                path: String::new(),
                what: "service only in contract".into(),
            });
            continue;
        };
        for m in &a.methods {
            let Some(n) = b.methods.iter().find(|x| x.name == m.name) else {
                out.push(Difference {
                    service: a.service.clone(),
                    method: Some(m.name.clone()),
                    path: String::new(),
                    what: "method only in contract".into(),
                });
                continue;
            };
            let mut found = Vec::new();
            if m.notification != n.notification {
                let k = |x: bool| if x { "notification" } else { "request" };
                found.push((
                    String::new(),
                    format!("{} vs {}", k(m.notification), k(n.notification)),
                ));
            }
            diff(&normal(&m.params), &normal(&n.params), "params", &mut found);
            if let (Some(r1), Some(r2)) = (&m.result, &n.result) {
                diff(&normal(r1), &normal(r2), "result", &mut found);
            }
            out.extend(found.into_iter().map(|(path, what)| Difference {
                service: a.service.clone(),
                method: Some(m.name.clone()),
                path,
                what,
            }));
        }
        for n in b
            .methods
            .iter()
            .filter(|n| !a.methods.iter().any(|m| m.name == n.name))
        {
            out.push(Difference {
                service: a.service.clone(),
                method: Some(n.name.clone()),
                path: String::new(),
                what: "method only in other".into(),
            });
        }
    }
    for b in theirs
        .iter()
        .filter(|b| !ours.iter().any(|a| a.service == b.service))
    {
        out.push(Difference {
            service: b.service.clone(),
            method: None,
            path: String::new(),
            what: "service only in other".into(),
        });
    }
    out
}
