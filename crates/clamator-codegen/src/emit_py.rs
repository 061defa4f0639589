//! Python emitter: Pydantic v2 models and the §5.4 tail (client, service ABC, METHODS,
//! contract) for the released `clamator-protocol` 0.1.9.

use std::fmt::Write as _;

use serde_json::Value;

use crate::schema::{pascal, snake, topo_order, Def, Field, Ty};
use crate::{Prepared, GENERATED_BY};

const KEYWORDS: &[&str] = &[
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    "model_config",
];

/// The Python method name of a wire method: `camelToSnake`, and a trailing `_` for a Python
/// keyword (`class` → `class_`), which `handler_attr` names too.
fn py_method(wire: &str) -> String {
    let mut name = snake(wire);
    if KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

fn py_lit(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn ty(t: &Ty) -> String {
    match t {
        Ty::Any => "Any".into(),
        Ty::Null => "None".into(),
        Ty::Bool => "bool".into(),
        Ty::Int { .. } => "int".into(),
        Ty::Num { .. } => "float".into(),
        Ty::Str { format, .. } => match format.as_deref() {
            Some("date-time") => "datetime".into(),
            Some("date") => "date".into(),
            Some("uuid") => "UUID".into(),
            _ => "str".into(),
        },
        Ty::Array(t) => format!("list[{}]", ty(t)),
        Ty::Map(t) => format!("dict[str, {}]", ty(t)),
        Ty::Named(n) => n.clone(),
        Ty::Literal(v) => format!("Literal[{}]", py_lit(v)),
        Ty::Nullable(t) => format!("{} | None", ty(t)),
    }
}

fn fmt_num(n: f64) -> String {
    if n == crate::schema::U64_MAX {
        return "18446744073709551615".into();
    }
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn constraints(t: &Ty) -> Vec<String> {
    let mut out = Vec::new();
    match t {
        Ty::Int { min, max } | Ty::Num { min, max } => {
            out.extend(min.map(|m| format!("ge={}", fmt_num(m))));
            out.extend(max.map(|m| format!("le={}", fmt_num(m))));
        }
        Ty::Str {
            min_len,
            max_len,
            pattern,
            ..
        } => {
            out.extend(min_len.map(|m| format!("min_length={m}")));
            out.extend(max_len.map(|m| format!("max_length={m}")));
            out.extend(
                pattern
                    .as_ref()
                    .map(|p| format!("pattern={}", py_lit(&Value::from(p.as_str())))),
            );
        }
        Ty::Nullable(inner) => out.extend(constraints(inner)),
        _ => {}
    }
    out
}

fn field(f: &Field) -> String {
    let mut name = snake(&f.wire);
    if KEYWORDS.contains(&name.as_str())
        || !name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        name.push('_');
    }
    let mut args = constraints(&f.ty);
    if name != f.wire {
        args.insert(
            0,
            format!("alias={}", py_lit(&Value::from(f.wire.as_str()))),
        );
    }
    if let Some(d) = &f.description {
        args.push(format!("description={}", py_lit(&Value::from(d.as_str()))));
    }
    let (annotation, default) = if f.required {
        (ty(&f.ty), "...".to_owned())
    } else {
        let t = match &f.ty {
            Ty::Nullable(_) | Ty::Any | Ty::Null => ty(&f.ty),
            other => format!("{} | None", ty(other)),
        };
        (t, "None".to_owned())
    };
    if args.is_empty() {
        if f.required {
            format!("    {name}: {annotation}\n")
        } else {
            format!("    {name}: {annotation} = None\n")
        }
    } else {
        let default = if f.required {
            default
        } else {
            format!("default={default}")
        };
        format!(
            "    {name}: {annotation} = Field({default}, {})\n",
            args.join(", ")
        )
    }
}

fn def(d: &Def, roots: &[&str], out: &mut String) {
    // Method params and results must be models (the 0.1.9 dispatcher calls `model_validate`).
    if roots.contains(&d.name()) {
        let root_ty = match d {
            Def::Enum { values, .. } => {
                let vals: Vec<String> = values
                    .iter()
                    .map(|v| py_lit(&Value::from(v.as_str())))
                    .collect();
                Some(format!("Literal[{}]", vals.join(", ")))
            }
            Def::Union {
                variants,
                discriminator,
                ..
            } => {
                let members: Vec<String> = variants.iter().map(ty).collect();
                Some(match discriminator {
                    Some(tag) => format!(
                        "Annotated[{}, Field(discriminator={})]",
                        members.join(" | "),
                        py_lit(&Value::from(snake(tag)))
                    ),
                    None => members.join(" | "),
                })
            }
            _ => None,
        };
        if let Some(root_ty) = root_ty {
            let _ = writeln!(out, "class {}(RootModel[{root_ty}]):\n    pass", d.name());
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
            let extra = if *strict { "extra=\"forbid\", " } else { "" };
            let _ = writeln!(out, "class {name}(BaseModel):");
            if let Some(d) = description {
                out.push_str(&docstring(d, "    "));
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "    model_config = ConfigDict({extra}populate_by_name=True)"
            );
            fields.iter().for_each(|f| out.push_str(&field(f)));
        }
        Def::Enum { name, values } => {
            let vals: Vec<String> = values
                .iter()
                .map(|v| py_lit(&Value::from(v.as_str())))
                .collect();
            let _ = writeln!(out, "{name} = Literal[{}]", vals.join(", "));
        }
        Def::Union {
            name,
            variants,
            discriminator,
        } => {
            let members: Vec<String> = variants.iter().map(ty).collect();
            match discriminator {
                Some(tag) => {
                    let _ = writeln!(
                        out,
                        "{name} = Annotated[{}, Field(discriminator={})]",
                        members.join(" | "),
                        py_lit(&Value::from(snake(tag)))
                    );
                }
                None => {
                    let _ = writeln!(out, "{name} = {}", members.join(" | "));
                }
            }
        }
        Def::Alias { name, ty: t } => {
            let _ = writeln!(out, "class {name}(RootModel[{}]):\n    pass", ty(t));
        }
    }
}

/// A docstring at `indent`, escaped so that no text can end it early.
fn docstring(text: &str, indent: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    let mut lines = escaped.lines();
    let first = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        format!("{indent}\"\"\"{first}\"\"\"\n")
    } else {
        let mut out = format!("{indent}\"\"\"{first}\n");
        for l in rest {
            if l.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{indent}{l}");
            }
        }
        let _ = writeln!(out, "{indent}\"\"\"");
        out
    }
}

pub(crate) fn emit(p: &Prepared<'_>) -> String {
    let doc = p.doc;
    let mut out = String::new();
    let source = doc.source.as_deref().unwrap_or("a contract document");
    let _ = writeln!(out, "# AUTO-GENERATED by {GENERATED_BY} from {source}.");
    out.push_str("# DO NOT EDIT. Re-run codegen to update.\n");
    out.push_str("from __future__ import annotations\n");
    out.push_str("from abc import ABC, abstractmethod\n");
    out.push_str("from datetime import date, datetime  # noqa: F401\n");
    out.push_str("from typing import Annotated, Any, Literal  # noqa: F401\n");
    out.push_str("from uuid import UUID  # noqa: F401\n\n");
    out.push_str("from pydantic import BaseModel, ConfigDict, Field, RootModel  # noqa: F401\n\n");
    out.push_str("from clamator_protocol import ClamatorClient, Contract, MethodEntry\n");
    let defs = topo_order(&p.lowered.defs);
    let roots: Vec<&str> = p
        .methods
        .iter()
        .flat_map(|(_, params, result)| std::iter::once(params.as_str()).chain(result.as_deref()))
        .collect();
    for d in &defs {
        out.push_str("\n\n");
        def(d, &roots, &mut out);
    }
    out.push_str("\n\n");
    let models: Vec<&str> = defs
        .iter()
        .filter(|d| {
            matches!(d, Def::Object { .. } | Def::Alias { .. }) || roots.contains(&d.name())
        })
        .map(|d| d.name())
        .collect();
    if !models.is_empty() {
        let _ = writeln!(
            out,
            "for _model in ({},):\n    _model.model_rebuild()\n\n",
            models.join(", ")
        );
    }
    let class = pascal(&doc.service);
    let _ = writeln!(out, "class {class}Client:");
    if let Some(d) = &doc.description {
        out.push_str(&docstring(d, "    "));
        out.push('\n');
    }
    out.push_str(
        "    def __init__(self, client: ClamatorClient) -> None:\n        self._client = client\n",
    );
    for (m, params, result) in &p.methods {
        let fname = py_method(&m.name);
        out.push('\n');
        let dump = "params.model_dump(mode='json', by_alias=True, exclude_unset=True)";
        match result {
            Some(result) => {
                let _ = writeln!(
                    out,
                    "    async def {fname}(self, params: {params}, *, timeout_ms: int | None = None) -> {result}:"
                );
                if let Some(d) = &m.description {
                    out.push_str(&docstring(d, "        "));
                }
                let _ = writeln!(
                    out,
                    "        raw = await self._client.call({}, {}, {dump}, timeout_ms=timeout_ms)",
                    py_lit(&Value::from(doc.service.as_str())),
                    py_lit(&Value::from(m.name.as_str()))
                );
                let _ = writeln!(out, "        return {result}.model_validate(raw)");
            }
            None => {
                let _ = writeln!(
                    out,
                    "    async def {fname}(self, params: {params}) -> None:"
                );
                if let Some(d) = &m.description {
                    out.push_str(&docstring(d, "        "));
                }
                let _ = writeln!(
                    out,
                    "        await self._client.notify({}, {}, {dump})",
                    py_lit(&Value::from(doc.service.as_str())),
                    py_lit(&Value::from(m.name.as_str()))
                );
            }
        }
    }
    let _ = writeln!(out, "\n\nclass {class}Service(ABC):");
    if let Some(d) = &doc.description {
        out.push_str(&docstring(d, "    "));
        out.push('\n');
    }
    for (i, (m, params, result)) in p.methods.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let ret = result.as_deref().unwrap_or("None");
        let head = format!(
            "    @abstractmethod\n    async def {}(self, params: {params}) -> {ret}:",
            py_method(&m.name)
        );
        match &m.description {
            Some(d) => {
                let _ = writeln!(out, "{head}");
                out.push_str(&docstring(d, "        "));
            }
            None => {
                let _ = writeln!(out, "{head} ...");
            }
        }
    }
    out.push_str("\n\nMETHODS = {\n");
    for (m, params, result) in &p.methods {
        let _ = writeln!(
            out,
            "    {}: MethodEntry(params_model={params}, result_model={}, handler_attr={}),",
            py_lit(&Value::from(m.name.as_str())),
            result.as_deref().unwrap_or("None"),
            py_lit(&Value::from(py_method(&m.name)))
        );
    }
    out.push_str("}\n\n");
    let _ = writeln!(
        out,
        "{}_contract = Contract(\n    service={},\n    methods=METHODS,\n)",
        snake(&doc.service.replace('-', "_")),
        py_lit(&Value::from(doc.service.as_str()))
    );
    out
}
