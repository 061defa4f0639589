//! Rust emitter: serde/schemars types and a `#[clamator::contract]` trait, so a Rust service
//! implements a contract authored elsewhere.

use std::fmt::Write as _;

use serde_json::Value;

use crate::schema::{pascal, snake, topo_order, Def, Field, Ty};
use crate::{Prepared, GENERATED_BY};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

fn ident(s: &str) -> String {
    let mut id: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        id.insert(0, '_');
    }
    if KEYWORDS.contains(&id.as_str()) {
        format!("r#{id}")
    } else {
        id
    }
}

fn ty(t: &Ty) -> String {
    match t {
        Ty::Any => "clamator::serde_json::Value".into(),
        Ty::Null => "()".into(),
        Ty::Bool => "bool".into(),
        Ty::Int { min, max } => int_type(*min, *max).into(),
        Ty::Num { .. } => "f64".into(),
        Ty::Str { .. } | Ty::Literal(Value::String(_)) => "String".into(),
        Ty::Literal(_) => "clamator::serde_json::Value".into(),
        Ty::Array(t) => format!("Vec<{}>", ty(t)),
        Ty::Map(t) => format!("std::collections::BTreeMap<String, {}>", ty(t)),
        Ty::Named(n) => n.clone(),
        Ty::Nullable(t) => format!("Option<{}>", ty(t)),
    }
}

/// The smallest Rust integer type that holds every value in `[min, max]` (unbounded: `i64`,
/// or `u64` from 0): schemars writes each type's range back, so a Rust contract round-trips.
fn int_type(min: Option<f64>, max: Option<f64>) -> &'static str {
    let unsigned = min.is_some_and(|m| m >= 0.0);
    let max = max.unwrap_or(f64::INFINITY);
    let min = min.unwrap_or(f64::NEG_INFINITY);
    if unsigned {
        match max {
            m if m <= 255.0 => "u8",
            m if m <= 65_535.0 => "u16",
            m if m <= 4_294_967_295.0 => "u32",
            _ => "u64",
        }
    } else {
        match (min, max) {
            (lo, hi) if lo >= -128.0 && hi <= 127.0 => "i8",
            (lo, hi) if lo >= -32_768.0 && hi <= 32_767.0 => "i16",
            (lo, hi) if lo >= -2_147_483_648.0 && hi <= 2_147_483_647.0 => "i32",
            _ => "i64",
        }
    }
}

/// What an item without a description in the document gets instead of placeholder text (a
/// doc comment would come back as a description in the contract's schemas).
const UNDOCUMENTED: &str = "#[allow(missing_docs)]\n";

const DERIVE: &str = "#[clamator::model]\n#[derive(Debug, Clone, PartialEq)]";

/// `///` lines at `indent`.
fn doc_comment(text: &str, indent: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                format!("{indent}///\n")
            } else {
                format!("{indent}/// {l}\n")
            }
        })
        .collect()
}

fn field(f: &Field, out: &mut String) {
    field_at(f, "    ", "pub ", out);
}

/// A field at `indent`, with `vis` (`"pub "` in structs, `""` in enum variants).
fn field_at(f: &Field, indent: &str, vis: &str, out: &mut String) {
    let name = ident(&snake(&f.wire));
    // No placeholder text where the document has none: a doc comment becomes a description.
    if let Some(d) = &f.description {
        out.push_str(&doc_comment(d, indent));
    }
    let mut attrs = Vec::new();
    if name.trim_start_matches("r#") != f.wire {
        attrs.push(format!(
            "rename = {}",
            serde_json::to_string(&f.wire).unwrap_or_default()
        ));
    }
    let t = if f.required {
        ty(&f.ty)
    } else {
        attrs.push("default".into());
        attrs.push("skip_serializing_if = \"Option::is_none\"".into());
        match &f.ty {
            Ty::Nullable(_) => ty(&f.ty),
            other => format!("Option<{}>", ty(other)),
        }
    };
    if !attrs.is_empty() {
        let _ = writeln!(out, "{indent}#[serde({})]", attrs.join(", "));
    }
    let _ = writeln!(out, "{indent}{vis}{name}: {t},");
}

/// A tagged union as a Rust enum tagged the same way (`#[serde(tag = "kind")]`): a variant per
/// member, named from its tag value, holding the member's fields but the tag. A payload with
/// an unknown tag, or with a variant's required field missing, is refused (`-32602`) as the
/// Python and TypeScript siblings refuse it. `None` when a member is not an object with the
/// tag as a literal.
fn tagged_union(name: &str, variants: &[Ty], tag: &str, all: &[Def]) -> Option<String> {
    let mut out = format!(
        "{UNDOCUMENTED}{DERIVE}\n#[serde(tag = {})]\npub enum {name} {{\n",
        serde_json::to_string(tag).unwrap_or_default()
    );
    for v in variants {
        let Ty::Named(member) = v else { return None };
        let fields = all.iter().find_map(|d| match d {
            Def::Object { name, fields, .. } if name == member => Some(fields),
            _ => None,
        })?;
        let value = fields.iter().find_map(|f| match (&f.wire, &f.ty) {
            (w, Ty::Literal(Value::String(v))) if w == tag => Some(v.clone()),
            _ => None,
        })?;
        let _ = writeln!(
            out,
            "    #[serde(rename = {})]\n    {} {{",
            serde_json::to_string(&value).unwrap_or_default(),
            ident(&pascal(&value))
        );
        for f in fields.iter().filter(|f| f.wire != tag) {
            field_at(f, "        ", "", &mut out);
        }
        out.push_str("    },\n");
    }
    out.push_str("}\n");
    Some(out)
}

fn def(d: &Def, all: &[Def], out: &mut String) {
    if let Def::Union {
        name,
        variants,
        discriminator: Some(tag),
    } = d
    {
        if let Some(code) = tagged_union(name, variants, tag, all) {
            out.push_str(&code);
            return;
        }
    }
    match d {
        Def::Object {
            name,
            fields,
            strict,
            description,
        } => {
            if let Some(d) = description {
                out.push_str(&doc_comment(d, ""));
            }
            if description.is_none() || fields.iter().any(|f| f.description.is_none()) {
                out.push_str(UNDOCUMENTED);
            }
            let _ = writeln!(out, "{DERIVE}");
            if *strict {
                out.push_str("#[serde(deny_unknown_fields)]\n");
            }
            let _ = writeln!(out, "pub struct {name} {{");
            // A string constant (`kind: Literal["x"]`, `z.literal("x")`) is a one-value enum, so
            // the Rust service refuses any other string as its siblings do (a `String` would
            // take anything).
            let mut constants = String::new();
            for f in fields {
                let (literal, nullable) = match &f.ty {
                    Ty::Literal(Value::String(v)) => (Some(v), false),
                    Ty::Nullable(inner) => match inner.as_ref() {
                        Ty::Literal(Value::String(v)) => (Some(v), true),
                        _ => (None, false),
                    },
                    _ => (None, false),
                };
                let Some(value) = literal else {
                    field(f, out);
                    continue;
                };
                let const_name = format!("{name}{}", pascal(&f.wire));
                let _ = writeln!(
                    constants,
                    "\n{UNDOCUMENTED}{DERIVE}\npub enum {const_name} {{\n    #[serde(rename = {})]\n    {},\n}}",
                    serde_json::to_string(value).unwrap_or_default(),
                    ident(&pascal(value))
                );
                let named = Ty::Named(const_name);
                let ty = if nullable {
                    Ty::Nullable(Box::new(named))
                } else {
                    named
                };
                field(&Field { ty, ..f.clone() }, out);
            }
            out.push_str("}\n");
            out.push_str(&constants);
        }
        Def::Enum { name, values } => {
            // No doc comments on the variants: schemars would turn the enum into a `oneOf`.
            let _ = writeln!(out, "{UNDOCUMENTED}{DERIVE}\npub enum {name} {{");
            for v in values {
                let _ = writeln!(
                    out,
                    "    #[serde(rename = {})]\n    {},",
                    serde_json::to_string(v).unwrap_or_default(),
                    ident(&pascal(v))
                );
            }
            out.push_str("}\n");
        }
        Def::Union { name, variants, .. } => {
            let _ = writeln!(
                out,
                "{UNDOCUMENTED}{DERIVE}\n#[serde(untagged)]\npub enum {name} {{"
            );
            for (i, v) in variants.iter().enumerate() {
                let vname = match v {
                    Ty::Named(n) => n.clone(),
                    _ => format!("Variant{}", i + 1),
                };
                let _ = writeln!(out, "    {vname}({}),", ty(v));
            }
            out.push_str("}\n");
        }
        Def::Alias { name, ty: t } => {
            let _ = writeln!(out, "{UNDOCUMENTED}pub type {name} = {};", ty(t));
        }
    }
}

pub(crate) fn emit(p: &Prepared<'_>) -> String {
    let source = p.doc.source.as_deref().unwrap_or("a contract document");
    let mut out = format!("// AUTO-GENERATED by {GENERATED_BY} from {source}.\n");
    out.push_str("// DO NOT EDIT. Re-run codegen to update.\n");
    out.push_str("#![allow(clippy::all, missing_docs, unused_imports)]\n");
    out.push_str(&items(p));
    out
}

/// The items alone (no header, no inner attributes), for `include_contract!`.
pub(crate) fn items(p: &Prepared<'_>) -> String {
    let doc = p.doc;
    let mut out = String::new();
    for d in topo_order(&p.lowered.defs) {
        out.push('\n');
        def(d, &p.lowered.defs, &mut out);
    }
    out.push('\n');
    // No placeholder text where the document has none: a doc comment becomes a description.
    if let Some(d) = &doc.description {
        out.push_str(&doc_comment(d, ""));
    }
    if doc.description.is_none() || doc.methods.iter().any(|m| m.description.is_none()) {
        out.push_str("#[allow(missing_docs)]\n");
    }
    let _ = writeln!(
        out,
        "#[clamator::contract(service = {})]\npub trait {} {{",
        serde_json::to_string(&doc.service).unwrap_or_default(),
        pascal(&doc.service)
    );
    for (i, (m, params, result)) in p.methods.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let wire = serde_json::to_string(&m.name).unwrap_or_default();
        let fname = ident(&snake(&m.name));
        if let Some(d) = &m.description {
            out.push_str(&doc_comment(d, "    "));
        }
        match result {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "    #[method(name = {wire})]\n    async fn {fname}(&self, params: {params}) -> Result<{r}, clamator::HandlerError>;"
                );
            }
            None => {
                let _ = writeln!(out, "    #[notification(name = {wire})]\n    async fn {fname}(&self, params: {params});");
            }
        }
    }
    out.push_str("}\n");
    out
}
