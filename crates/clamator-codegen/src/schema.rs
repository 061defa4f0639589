//! Lowering of JSON Schema (draft-07 / 2019-09 subsets as written by schemars and
//! zod-to-json-schema) into named type definitions shared by every emitter.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// Any JSON value.
    Any,
    /// `null`.
    Null,
    /// A boolean.
    Bool,
    /// An integer with optional inclusive bounds.
    Int {
        /// Minimum.
        min: Option<f64>,
        /// Maximum.
        max: Option<f64>,
    },
    /// A number with optional inclusive bounds.
    Num {
        /// Minimum.
        min: Option<f64>,
        /// Maximum.
        max: Option<f64>,
    },
    /// A string with an optional format and length bounds.
    Str {
        /// `format` (`date-time`, `date`, `uuid`, `email`, …).
        format: Option<String>,
        /// `minLength`.
        min_len: Option<u64>,
        /// `maxLength`.
        max_len: Option<u64>,
        /// `pattern`.
        pattern: Option<String>,
    },
    /// An array.
    Array(Box<Ty>),
    /// An object used as a map from strings.
    Map(Box<Ty>),
    /// A named definition.
    Named(String),
    /// A single constant.
    Literal(Value),
    /// `T` or `null`.
    Nullable(Box<Ty>),
}

/// A property of an object definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Name on the wire.
    pub wire: String,
    /// Its type.
    pub ty: Ty,
    /// Whether it must be present.
    pub required: bool,
    /// Its description, if any.
    pub description: Option<String>,
}

/// A named definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Def {
    /// An object with known properties.
    Object {
        /// Name.
        name: String,
        /// Properties in schema order.
        fields: Vec<Field>,
        /// `additionalProperties: false`.
        strict: bool,
        /// The schema's `description` (a Rust doc comment, a Python docstring).
        description: Option<String>,
    },
    /// A string enum.
    Enum {
        /// Name.
        name: String,
        /// The values.
        values: Vec<String>,
    },
    /// A union of types, tagged when every member is an object with a constant property.
    Union {
        /// Name.
        name: String,
        /// Members.
        variants: Vec<Ty>,
        /// The tag property, when there is one.
        discriminator: Option<String>,
    },
    /// Another name for a type (e.g. a result that is a plain number).
    Alias {
        /// Name.
        name: String,
        /// The type.
        ty: Ty,
    },
}

impl Def {
    /// The definition's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Object { name, .. }
            | Self::Enum { name, .. }
            | Self::Union { name, .. }
            | Self::Alias { name, .. } => name,
        }
    }

    /// Names of the definitions this one uses.
    pub fn deps(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Self::Object { fields, .. } => fields.iter().for_each(|f| collect(&f.ty, &mut out)),
            Self::Union { variants, .. } => variants.iter().for_each(|v| collect(v, &mut out)),
            Self::Alias { ty, .. } => collect(ty, &mut out),
            Self::Enum { .. } => {}
        }
        out
    }
}

fn collect(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Named(n) => out.push(n.clone()),
        Ty::Array(t) | Ty::Map(t) | Ty::Nullable(t) => collect(t, out),
        _ => {}
    }
}

/// Upper-cases the first character (`echoText` → `EchoText`).
pub fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `excavator-engine` / `processStream` → `ExcavatorEngine` / `ProcessStream`.
pub fn pascal(s: &str) -> String {
    s.split(['-', '_']).map(upper_first).collect()
}

/// The original codegen's `camelToSnake` (spec §5.7), pass for pass: (1) `_` between
/// `[a-z0-9]` and `[A-Z]`, (2) between `[A-Z]` and `[A-Z][a-z]`, (3) between two capitals,
/// each a left-to-right scan of non-overlapping matches as JavaScript's `replace(/…/g)` does,
/// then lower case. `processId` → `process_id`, `getURL` → `get_u_rl`, `aBCD` → `a_b_cd`.
/// A `-` (in service names) becomes `_`.
pub fn snake(s: &str) -> String {
    fn pass(chars: &[char], width: usize, hit: impl Fn(&[char]) -> bool) -> Vec<char> {
        let mut out = Vec::with_capacity(chars.len() + 4);
        let mut i = 0;
        while i < chars.len() {
            if i + width <= chars.len() && hit(&chars[i..i + width]) {
                // insert `_` after the first character of the match, resume after the match
                out.push(chars[i]);
                out.push('_');
                out.extend_from_slice(&chars[i + 1..i + width]);
                i += width;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }
    let up = |c: char| c.is_ascii_uppercase();
    let chars: Vec<char> = s.replace('-', "_").chars().collect();
    let chars = pass(&chars, 2, |m| {
        (m[0].is_ascii_lowercase() || m[0].is_ascii_digit()) && up(m[1])
    });
    let chars = pass(&chars, 3, |m| {
        up(m[0]) && up(m[1]) && m[2].is_ascii_lowercase()
    });
    let chars = pass(&chars, 2, |m| up(m[0]) && up(m[1]));
    chars.into_iter().collect::<String>().to_ascii_lowercase()
}

/// The range of an integer `format` (schemars writes one per Rust integer type); `int64` and
/// `uint64`-free formats give `None` (`int64` is treated as an unbounded integer, as Python's
/// `int` and TypeScript's `number` are).
pub(crate) fn format_bounds(format: &str) -> Option<(f64, f64)> {
    Some(match format {
        "uint8" => (0.0, 255.0),
        "int8" => (-128.0, 127.0),
        "uint16" => (0.0, 65_535.0),
        "int16" => (-32_768.0, 32_767.0),
        "uint32" | "uint" => (0.0, 4_294_967_295.0),
        "int32" => (-2_147_483_648.0, 2_147_483_647.0),
        "uint64" => (0.0, U64_MAX),
        _ => return None,
    })
}

/// `u64::MAX` as the nearest `f64` (2^64): emitters print it as `18446744073709551615`.
pub(crate) const U64_MAX: f64 = 18_446_744_073_709_551_615.0;

/// The tighter of two optional bounds (`max`: the smaller one).
pub(crate) fn tighter(a: Option<f64>, b: Option<f64>, max: bool) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if max { x.min(y) } else { x.max(y) }),
        (x, None) | (None, x) => x,
    }
}

/// Lowers schemas into definitions; definitions keep the order they were first met in.
#[derive(Debug, Default)]
pub struct Lowerer {
    /// The definitions, in order.
    pub defs: Vec<Def>,
    seen: BTreeMap<String, Value>,
}

fn definitions(root: &Value) -> Option<&Map<String, Value>> {
    root.get("$defs")
        .or_else(|| root.get("definitions"))
        .and_then(Value::as_object)
}

impl Lowerer {
    /// Lowers `schema` (whose `$ref`s point into `root`); objects, enums and unions become
    /// definitions named from `hint`.
    pub fn lower_named(&mut self, schema: &Value, root: &Value, hint: &str) -> Ty {
        let ty = self.lower(schema, root, hint);
        match ty {
            Ty::Named(_) => ty,
            other => {
                self.add(
                    Def::Alias {
                        name: hint.to_owned(),
                        ty: other,
                    },
                    &Value::Null,
                );
                Ty::Named(hint.to_owned())
            }
        }
    }

    fn add(&mut self, def: Def, schema: &Value) -> String {
        let name = def.name().to_owned();
        if self.seen.contains_key(&name) {
            return name;
        }
        self.seen.insert(name.clone(), schema.clone());
        self.defs.push(def);
        name
    }

    /// A free name: `hint`, or `hint2`, `hint3`… when taken by a different schema.
    fn name_for(&self, hint: &str, schema: &Value) -> String {
        let mut name = hint.to_owned();
        let mut n = 2;
        while let Some(existing) = self.seen.get(&name) {
            if existing == schema {
                break;
            }
            name = format!("{hint}{n}");
            n += 1;
        }
        name
    }

    #[allow(clippy::too_many_lines)]
    fn lower(&mut self, schema: &Value, root: &Value, hint: &str) -> Ty {
        let Some(obj) = schema.as_object() else {
            return Ty::Any;
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r).to_owned();
            if let Some(target) = definitions(root).and_then(|d| d.get(&name)) {
                if !self.seen.contains_key(&name) {
                    let target = target.clone();
                    let ty = self.lower(&target, root, &name);
                    if ty != Ty::Named(name.clone()) {
                        self.add(
                            Def::Alias {
                                name: name.clone(),
                                ty,
                            },
                            &target,
                        );
                    }
                }
            }
            return Ty::Named(name);
        }
        if let Some(c) = obj.get("const") {
            return Ty::Literal(c.clone());
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            if values.len() == 1 {
                return Ty::Literal(values[0].clone());
            }
            let strings: Option<Vec<String>> = values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
            if let Some(values) = strings {
                let name = self.name_for(hint, schema);
                return Ty::Named(self.add(Def::Enum { name, values }, schema));
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(members) = obj.get(key).and_then(Value::as_array) {
                return self.union(members, root, hint, schema);
            }
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            if all.len() == 1 {
                return self.lower(&all[0], root, hint);
            }
        }
        match obj.get("type") {
            Some(Value::Array(types)) => {
                let non_null: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                let nullable = non_null.len() < types.len();
                let inner = if non_null.len() == 1 {
                    let mut single = obj.clone();
                    single.insert("type".into(), non_null[0].clone());
                    self.lower(&Value::Object(single), root, hint)
                } else {
                    Ty::Any
                };
                if nullable {
                    Ty::Nullable(Box::new(inner))
                } else {
                    inner
                }
            }
            Some(Value::String(t)) => self.typed(t, obj, schema, root, hint),
            _ if obj.contains_key("properties") => self.typed("object", obj, schema, root, hint),
            _ => Ty::Any,
        }
    }

    fn typed(
        &mut self,
        t: &str,
        obj: &Map<String, Value>,
        schema: &Value,
        root: &Value,
        hint: &str,
    ) -> Ty {
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        match t {
            "null" => Ty::Null,
            "boolean" => Ty::Bool,
            "integer" => {
                // A width (`uint32` from schemars' u32) is a bound the other languages must
                // keep: a Python `int` with `ge=0` alone lets 2^40 through to a Rust u32.
                let width = obj
                    .get("format")
                    .and_then(Value::as_str)
                    .and_then(format_bounds);
                let exclusive = |k: &str, step: f64| num(k).map(|v| v + step);
                Ty::Int {
                    min: tighter(
                        tighter(num("minimum"), exclusive("exclusiveMinimum", 1.0), false),
                        width.map(|w| w.0),
                        false,
                    ),
                    max: tighter(
                        tighter(num("maximum"), exclusive("exclusiveMaximum", -1.0), true),
                        width.map(|w| w.1),
                        true,
                    ),
                }
            }
            "number" => Ty::Num {
                min: num("minimum"),
                max: num("maximum"),
            },
            "string" => Ty::Str {
                format: obj.get("format").and_then(Value::as_str).map(str::to_owned),
                min_len: obj.get("minLength").and_then(Value::as_u64),
                max_len: obj.get("maxLength").and_then(Value::as_u64),
                pattern: obj
                    .get("pattern")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            "array" => {
                let items = obj.get("items").cloned().unwrap_or(Value::Bool(true));
                Ty::Array(Box::new(self.lower(&items, root, &format!("{hint}Item"))))
            }
            "object" => {
                let props = obj.get("properties").and_then(Value::as_object);
                let additional = obj.get("additionalProperties");
                match (props, additional) {
                    (None, Some(extra)) if extra.is_object() => {
                        Ty::Map(Box::new(self.lower(extra, root, &format!("{hint}Value"))))
                    }
                    (None, _) if additional != Some(&Value::Bool(false)) => {
                        Ty::Map(Box::new(Ty::Any))
                    }
                    _ => self.object(props, obj, schema, root, hint),
                }
            }
            _ => Ty::Any,
        }
    }

    fn object(
        &mut self,
        props: Option<&Map<String, Value>>,
        obj: &Map<String, Value>,
        schema: &Value,
        root: &Value,
        hint: &str,
    ) -> Ty {
        let name = self.name_for(hint, schema);
        if self.seen.contains_key(&name) {
            return Ty::Named(name);
        }
        // Reserve the name first so recursive references resolve to it.
        self.seen.insert(name.clone(), schema.clone());
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fields = props
            .into_iter()
            .flatten()
            .map(|(wire, s)| Field {
                wire: wire.clone(),
                ty: self.lower(s, root, &format!("{name}{}", pascal(wire))),
                required: required.contains(&wire.as_str()),
                description: s
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
            .collect();
        let strict = obj.get("additionalProperties") == Some(&Value::Bool(false));
        self.defs.push(Def::Object {
            name: name.clone(),
            fields,
            strict,
            description: obj
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
        Ty::Named(name)
    }

    fn union(&mut self, members: &[Value], root: &Value, hint: &str, schema: &Value) -> Ty {
        let non_null: Vec<&Value> = members
            .iter()
            .filter(|m| m.get("type") != Some(&Value::from("null")))
            .collect();
        let nullable = non_null.len() < members.len();
        let inner = if non_null.len() == 1 {
            self.lower(non_null[0], root, hint)
        } else {
            // Members without a title are named from their tag value when the union is tagged
            // (`ItemKind` with `kind: "book"` → `ItemKindBook`), else numbered.
            let tags = tag_values(&non_null, root);
            let variants: Vec<Ty> = non_null
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let title = m.get("title").and_then(Value::as_str).map(pascal);
                    let vhint = title.unwrap_or_else(|| match &tags {
                        Some(values) => format!("{hint}{}", pascal(&values[i])),
                        None => format!("{hint}{}", i + 1),
                    });
                    self.lower(m, root, &vhint)
                })
                .collect();
            let discriminator = self.discriminator(&variants);
            let name = self.name_for(hint, schema);
            Ty::Named(self.add(
                Def::Union {
                    name,
                    variants,
                    discriminator,
                },
                schema,
            ))
        };
        if nullable {
            Ty::Nullable(Box::new(inner))
        } else {
            inner
        }
    }

    /// A property that every member object has, required, with a constant value.
    fn discriminator(&self, variants: &[Ty]) -> Option<String> {
        let objects: Vec<&Vec<Field>> = variants
            .iter()
            .map(|v| match v {
                Ty::Named(n) => self.defs.iter().find_map(|d| match d {
                    Def::Object { name, fields, .. } if name == n => Some(fields),
                    _ => None,
                }),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let first = objects.first()?;
        first
            .iter()
            .filter(|f| f.required && matches!(f.ty, Ty::Literal(_)))
            .map(|f| f.wire.clone())
            .find(|tag| {
                objects.iter().all(|fields| {
                    fields
                        .iter()
                        .any(|f| &f.wire == tag && f.required && matches!(f.ty, Ty::Literal(_)))
                })
            })
    }
}

/// The constant each member of a union gives one shared property (the tag), when there is such
/// a property and the values are distinct identifiers-to-be; members may be `$ref`s.
fn tag_values(members: &[&Value], root: &Value) -> Option<Vec<String>> {
    let resolve = |m: &Value| -> Option<Value> {
        match m.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next()?;
                definitions(root)?.get(name).cloned()
            }
            None => Some(m.clone()),
        }
    };
    let objects: Vec<Value> = members.iter().map(|m| resolve(m)).collect::<Option<_>>()?;
    let constant = |o: &Value, prop: &str| -> Option<String> {
        let p = o.get("properties")?.get(prop)?;
        let v = p
            .get("const")
            .or_else(|| match p.get("enum")?.as_array()?.as_slice() {
                [one] => Some(one),
                _ => None,
            })?;
        v.as_str().map(str::to_owned)
    };
    let first = objects.first()?.get("properties")?.as_object()?;
    for prop in first.keys() {
        let values: Option<Vec<String>> = objects.iter().map(|o| constant(o, prop)).collect();
        if let Some(values) = values {
            let mut unique = values.clone();
            unique.sort();
            unique.dedup();
            if unique.len() == values.len() && values.iter().all(|v| !pascal(v).is_empty()) {
                return Some(values);
            }
        }
    }
    None
}

/// Orders definitions so that every definition comes after those it uses (cycles keep their
/// first-met order).
pub fn topo_order(defs: &[Def]) -> Vec<&Def> {
    let mut out: Vec<&Def> = Vec::new();
    let mut visiting = Vec::new();
    fn visit<'a>(d: &'a Def, defs: &'a [Def], out: &mut Vec<&'a Def>, visiting: &mut Vec<String>) {
        if out.iter().any(|o| o.name() == d.name()) || visiting.iter().any(|v| v == d.name()) {
            return;
        }
        visiting.push(d.name().to_owned());
        for dep in d.deps() {
            if let Some(dd) = defs.iter().find(|x| x.name() == dep) {
                visit(dd, defs, out, visiting);
            }
        }
        visiting.pop();
        out.push(d);
    }
    for d in defs {
        visit(d, defs, &mut out, &mut visiting);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake("processId"), "process_id");
        assert_eq!(snake("aBC"), "a_b_c");
        assert_eq!(snake("lower"), "lower");
        assert_eq!(snake("echoText"), "echo_text");
        assert_eq!(pascal("excavator-engine"), "ExcavatorEngine");
        assert_eq!(pascal("processStream"), "ProcessStream");
        assert_eq!(upper_first("echoText"), "EchoText");
    }
}

#[cfg(test)]
mod snake_tests {
    use super::snake;

    #[test]
    fn camel_to_snake_matches_the_original_three_passes() {
        // spec §5.7 examples and the cases the issue found wrong (`getURL`, `aBCD`)
        for (input, want) in [
            ("processId", "process_id"),
            ("aBC", "a_b_c"),
            ("lower", "lower"),
            ("getURL", "get_u_rl"),
            ("aBCD", "a_b_cd"),
            ("HTTPServer", "h_tt_p_server"),
            ("echoText", "echo_text"),
            ("v2Api", "v2_api"),
            ("excavator-engine", "excavator_engine"),
            ("sleepMs", "sleep_ms"),
        ] {
            assert_eq!(snake(input), want, "{input}");
        }
    }
}
