//! TypeScript emitter: self-contained Zod schemas, inferred types, a typed client and a service
//! interface in the shape of the original codegen (§5.5); or ([`emit_original`]) exactly the
//! original codegen's file: types inferred from the user's own contract object, imported from
//! a path, and `ClamatorClient` from `@clamator/protocol`.

use std::fmt::Write as _;

use serde_json::Value;

use crate::schema::{pascal, topo_order, Def, Ty};
use crate::{Prepared, GENERATED_BY};

fn js(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    let mut s = String::new();
    if let Some(m) = min {
        let _ = write!(s, ".min({m})");
    }
    if let Some(m) = max {
        let _ = write!(s, ".max({m})");
    }
    s
}

fn zod(t: &Ty) -> String {
    match t {
        Ty::Any => "z.unknown()".into(),
        Ty::Null => "z.null()".into(),
        Ty::Bool => "z.boolean()".into(),
        Ty::Int { min, max } => format!("z.number().int(){}", bounds(*min, *max)),
        Ty::Num { min, max } => format!("z.number(){}", bounds(*min, *max)),
        Ty::Str {
            format,
            min_len,
            max_len,
            pattern,
        } => {
            let mut s = "z.string()".to_owned();
            match format.as_deref() {
                Some("date-time") => s.push_str(".datetime({ offset: true })"),
                Some("uuid") => s.push_str(".uuid()"),
                Some("email") => s.push_str(".email()"),
                Some("uri") => s.push_str(".url()"),
                _ => {}
            }
            if let Some(m) = min_len {
                let _ = write!(s, ".min({m})");
            }
            if let Some(m) = max_len {
                let _ = write!(s, ".max({m})");
            }
            if let Some(p) = pattern {
                let _ = write!(s, ".regex(new RegExp({}))", js(&Value::from(p.as_str())));
            }
            s
        }
        Ty::Array(t) => format!("z.array({})", zod(t)),
        Ty::Map(t) => format!("z.record({})", zod(t)),
        Ty::Named(n) => n.clone(),
        Ty::Literal(v) => format!("z.literal({})", js(v)),
        Ty::Nullable(t) => format!("{}.nullable()", zod(t)),
    }
}

fn key(wire: &str) -> String {
    let ident = wire
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && wire
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        wire.to_owned()
    } else {
        js(&Value::from(wire))
    }
}

fn def(d: &Def, out: &mut String) {
    let name = d.name();
    let schema = match d {
        Def::Object { fields, strict, .. } => {
            let mut s = "z.object({\n".to_owned();
            for f in fields {
                let opt = if f.required { "" } else { ".optional()" };
                let _ = writeln!(s, "  {}: {}{opt},", key(&f.wire), zod(&f.ty));
            }
            s.push_str("})");
            if *strict {
                s.push_str(".strict()");
            }
            s
        }
        Def::Enum { values, .. } => {
            let vals: Vec<String> = values
                .iter()
                .map(|v| js(&Value::from(v.as_str())))
                .collect();
            format!("z.enum([{}])", vals.join(", "))
        }
        Def::Union {
            variants,
            discriminator,
            ..
        } => {
            let members: Vec<String> = variants.iter().map(zod).collect();
            match discriminator {
                Some(tag) => format!(
                    "z.discriminatedUnion({}, [{}])",
                    js(&Value::from(tag.as_str())),
                    members.join(", ")
                ),
                None => format!("z.union([{}])", members.join(", ")),
            }
        }
        Def::Alias { ty, .. } => zod(ty),
    };
    if let Def::Object {
        description: Some(d),
        ..
    } = d
    {
        out.push_str(&jsdoc(d, ""));
    }
    let _ = writeln!(out, "export const {name} = {schema};");
    let _ = writeln!(out, "export type {name} = z.infer<typeof {name}>;");
}

/// `excavator-engine` → `excavatorEngine` (digits after `-` keep an identifier valid).
fn camel(service: &str) -> String {
    let p = pascal(service);
    let mut c = p.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// A JSDoc block at `indent` (`*/` in the text cannot end it early).
fn jsdoc(text: &str, indent: &str) -> String {
    let text = text.replace("*/", "*\\/");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", lines[0]);
    }
    let mut out = format!("{indent}/**\n");
    for l in lines {
        if l.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {l}");
        }
    }
    let _ = writeln!(out, "{indent} */");
    out
}

pub(crate) fn emit(p: &Prepared<'_>) -> String {
    let doc = p.doc;
    let mut out = String::new();
    let source = doc.source.as_deref().unwrap_or("a contract document");
    let _ = writeln!(out, "// AUTO-GENERATED by {GENERATED_BY} from {source}.");
    out.push_str("// DO NOT EDIT. Re-run codegen to update.\n");
    out.push_str("import { z } from 'zod';\n\n");
    out.push_str("/** The client interface of `@clamator/protocol` (structural: any clamator client fits). */\n");
    out.push_str("export interface ClamatorClient {\n");
    out.push_str("  call(service: string, method: string, params: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;\n");
    out.push_str("  notify(service: string, method: string, params: unknown): Promise<void>;\n}\n");
    for d in topo_order(&p.lowered.defs) {
        out.push('\n');
        def(d, &mut out);
    }
    let class = pascal(&doc.service);
    let svc = js(&Value::from(doc.service.as_str()));
    let _ = writeln!(
        out,
        "\nexport const {}Contract = {{\n  service: {svc},\n  methods: {{",
        camel(&doc.service)
    );
    for (m, params, result) in &p.methods {
        match result {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "    {}: {{ params: {params}, result: {r} }},",
                    key(&m.name)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "    {}: {{ params: {params}, notification: true }},",
                    key(&m.name)
                );
            }
        }
    }
    out.push_str("  },\n} as const;\n");
    out.push('\n');
    if let Some(d) = &doc.description {
        out.push_str(&jsdoc(d, ""));
    }
    let _ = writeln!(
        out,
        "export class {class}Client {{\n  constructor(private client: ClamatorClient) {{}}"
    );
    for (m, params, result) in &p.methods {
        let name = js(&Value::from(m.name.as_str()));
        out.push('\n');
        if let Some(d) = &m.description {
            out.push_str(&jsdoc(d, "  "));
        }
        match result {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "  {}(params: {params}, opts?: {{ timeoutMs?: number }}): Promise<{r}> {{\n    return this.client.call({svc}, {name}, params, opts) as Promise<{r}>;\n  }}",
                    m.name
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {}(params: {params}): Promise<void> {{\n    return this.client.notify({svc}, {name}, params);\n  }}",
                    m.name
                );
            }
        }
    }
    out.push_str("}\n\n");
    if let Some(d) = &doc.description {
        out.push_str(&jsdoc(d, ""));
    }
    let _ = writeln!(out, "export interface {class}Service {{");
    for (m, params, result) in &p.methods {
        let ret = result.as_deref().unwrap_or("void");
        if let Some(d) = &m.description {
            out.push_str(&jsdoc(d, "  "));
        }
        let _ = writeln!(out, "  {}(params: {params}): Promise<{ret}>;", m.name);
    }
    out.push_str("}\n");
    out
}

/// `add` → `Add` (the original codegen's type-name stem).
fn upper_first(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The original `@clamator/codegen` TypeScript file: imports the contract object
/// `<camel>Contract` from `contract_import` (`{service}` replaced by the service name),
/// `ClamatorClient` from `@clamator/protocol` and `z` from `zod` (types only), and declares
/// `<Method>Params` / `<Method>Result` as `z.infer` of the contract's schemas, the
/// `<Pascal>Client` class and the `<Pascal>Service` interface. Code written against the
/// original generator's output keeps compiling and running.
pub(crate) fn emit_original(p: &Prepared<'_>, contract_import: &str) -> String {
    let doc = p.doc;
    let service = doc.service.as_str();
    let contract = format!("{}Contract", camel(service));
    let class = pascal(service);
    let source = doc.source.as_deref().unwrap_or("a contract document");
    let import = contract_import.replace("{service}", service);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// AUTO-GENERATED by {GENERATED_BY} (the shape of @clamator/codegen) from {source}."
    );
    out.push_str("// DO NOT EDIT. Re-run codegen to update.\n");
    let _ = writeln!(out, "import {{ {contract} }} from '{import}';");
    out.push_str("import type { ClamatorClient } from '@clamator/protocol';\n");
    out.push_str("import type { z } from 'zod';\n\n");
    for (m, _, result) in &p.methods {
        let n = upper_first(&m.name);
        let _ = writeln!(
            out,
            "export type {n}Params = z.infer<typeof {contract}.methods.{}.params>;",
            m.name
        );
        if result.is_some() {
            let _ = writeln!(
                out,
                "export type {n}Result = z.infer<typeof {contract}.methods.{}.result>;",
                m.name
            );
        }
    }
    let _ = writeln!(
        out,
        "\nexport class {class}Client {{\n  constructor(private client: ClamatorClient) {{}}"
    );
    for (m, _, result) in &p.methods {
        let n = upper_first(&m.name);
        if result.is_some() {
            let _ = writeln!(
                out,
                "  {0}(params: {n}Params, opts?: {{ timeoutMs?: number }}): Promise<{n}Result> {{\n    return this.client.call('{service}', '{0}', params, opts);\n  }}",
                m.name
            );
        } else {
            let _ = writeln!(
                out,
                "  {0}(params: {n}Params): Promise<void> {{\n    return this.client.notify('{service}', '{0}', params);\n  }}",
                m.name
            );
        }
    }
    out.push_str("}\n\n");
    let _ = writeln!(out, "export interface {class}Service {{");
    for (m, _, result) in &p.methods {
        let n = upper_first(&m.name);
        if result.is_some() {
            let _ = writeln!(
                out,
                "  {}(params: {n}Params, opts?: {{ timeoutMs?: number }}): Promise<{n}Result>;",
                m.name
            );
        } else {
            let _ = writeln!(out, "  {}(params: {n}Params): Promise<void>;", m.name);
        }
    }
    out.push_str("}\n");
    out
}
