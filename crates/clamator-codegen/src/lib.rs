//! # clamator-codegen
//!
//! Contract documents (OpenRPC 1.x with `x-clamator-*` extensions) for clamator contracts, and
//! code generation from them: Python modules for the released `clamator-protocol` /
//! `clamator-over-redis` 0.1.9 (Pydantic v2), self-contained TypeScript modules (Zod), Rust
//! modules (serde structs + a `#[clamator::contract]` trait), and a manifest of schema hashes
//! with a drift check. Output is deterministic.

mod compare;
mod emit_py;
mod emit_rust;
mod emit_ts;
pub mod import;
mod openrpc;
pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use compare::{compare, Difference};
pub use openrpc::{
    doc_to_openrpc, from_openrpc, to_openrpc, ContractDoc, DocMethod, OPENRPC_VERSION,
};
use schema::{Lowerer, Ty};

/// The `generatedBy` of manifests and the header of generated files.
pub const GENERATED_BY: &str = concat!("clamator-codegen (Rust) v", env!("CARGO_PKG_VERSION"));

/// Codegen failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// A contract document is not usable.
    #[error("invalid contract document: {0}")]
    Document(String),
    /// Importing a contract from another language failed.
    #[error("import: {0}")]
    Import(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A contract lowered for the emitters.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub(crate) doc: &'a ContractDoc,
    pub(crate) lowered: Lowerer,
    /// (method, params type name, result type name or None)
    pub(crate) methods: Vec<(&'a DocMethod, String, Option<String>)>,
}

fn type_name(ty: &Ty) -> String {
    match ty {
        Ty::Named(n) => n.clone(),
        _ => unreachable!("lower_named returns named types"),
    }
}

/// The name of a method's params or result type: the schema's `title` (the Rust type or
/// Pydantic model it came from) when it is a usable identifier, so that one type used by
/// several methods stays one type in every language; else `<Method>Params` / `<Method>Result`.
fn root_name(schema: &Value, fallback: String) -> String {
    match schema.get("title").and_then(Value::as_str) {
        Some(title)
            if title.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && title.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            title.to_owned()
        }
        _ => fallback,
    }
}

pub(crate) fn prepare(doc: &ContractDoc) -> Prepared<'_> {
    let mut lowered = Lowerer::default();
    let methods = doc
        .methods
        .iter()
        .map(|m| {
            let n = schema::upper_first(&m.name);
            let hint = root_name(&m.params, format!("{n}Params"));
            let params = type_name(&lowered.lower_named(&m.params, &m.params, &hint));
            let result = m.result.as_ref().map(|r| {
                let hint = root_name(r, format!("{n}Result"));
                type_name(&lowered.lower_named(r, r, &hint))
            });
            (m, params, result)
        })
        .collect();
    Prepared {
        doc,
        lowered,
        methods,
    }
}

/// Which outputs to produce.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Directory for `<service>.py`.
    pub python: Option<PathBuf>,
    /// Directory for `<service>.ts`.
    pub typescript: Option<PathBuf>,
    /// Write the TypeScript in the original `@clamator/codegen` shape instead, importing each
    /// contract object from this path (`{service}` replaced): see
    /// [`typescript_original`].
    pub ts_contract_import: Option<String>,
    /// Directory for `<service>.rs`.
    pub rust: Option<PathBuf>,
    /// Path of `manifest.json`.
    pub manifest: Option<PathBuf>,
}

/// The generated Python module of a contract.
pub fn python(doc: &ContractDoc) -> String {
    emit_py::emit(&prepare(doc))
}

/// The generated TypeScript module of a contract.
pub fn typescript(doc: &ContractDoc) -> String {
    emit_ts::emit(&prepare(doc))
}

/// The TypeScript module the original `@clamator/codegen` writes for a contract: types
/// inferred from the contract object `<camel>Contract` that it imports from `contract_import`
/// (`{service}` replaced by the service name), `ClamatorClient` from `@clamator/protocol`,
/// the typed client class and the service interface. For code generated for the original
/// packages: it runs on `@clamator-rs/*` (with `@clamator/protocol` resolved to
/// `@clamator-rs/protocol`, e.g. an npm alias).
pub fn typescript_original(doc: &ContractDoc, contract_import: &str) -> String {
    emit_ts::emit_original(&prepare(doc), contract_import)
}

/// The generated Rust module of a contract.
pub fn rust(doc: &ContractDoc) -> String {
    emit_rust::emit(&prepare(doc))
}

/// The Rust items of a contract (types and trait) without the file header, for macros that
/// expand a document in place (`clamator::include_contract!`).
pub fn rust_items(doc: &ContractDoc) -> String {
    emit_rust::items(&prepare(doc))
}

/// Lowercase hex SHA-256 of the compact JSON of a schema.
pub fn schema_hash(schema: &Value) -> String {
    let digest = Sha256::digest(serde_json::to_string(schema).unwrap_or_default().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest: `generatedBy` and `contracts.<service>.<method>.paramsHash/resultHash`.
pub fn manifest(docs: &[ContractDoc]) -> String {
    let mut contracts = serde_json::Map::new();
    let mut sorted: Vec<&ContractDoc> = docs.iter().collect();
    sorted.sort_by(|a, b| a.service.cmp(&b.service));
    for doc in sorted {
        let mut methods = serde_json::Map::new();
        for m in &doc.methods {
            methods.insert(
                m.name.clone(),
                json!({"paramsHash": schema_hash(&m.params), "resultHash": m.result.as_ref().map(schema_hash)}),
            );
        }
        contracts.insert(doc.service.clone(), Value::Object(methods));
    }
    let manifest = json!({"generatedBy": GENERATED_BY, "contracts": contracts});
    serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n"
}

/// Writes the contract document of a Rust contract to `<dir>/<service>.openrpc.json` (creating
/// `dir`) and returns its path: the one line that gives a Rust-first contract its typed Python
/// and TypeScript clients (`clamator codegen --contracts DIR --python … --typescript …`) and the
/// dashboard its `--docs`.
///
/// ```
/// #[clamator::model]
/// pub struct AddParams { pub a: f64, pub b: f64 }
///
/// #[clamator::contract(service = "arith")]
/// pub trait Arith {
///     async fn add(&self, params: AddParams) -> Result<f64, clamator::RpcError>;
/// }
/// # let dir = std::env::temp_dir().join(format!("clamator-export-{}", std::process::id()));
/// let path = clamator_codegen::export(&ArithContract::descriptor(), &dir)?;
/// assert!(path.ends_with("arith.openrpc.json"));
/// assert_eq!(clamator_codegen::read_docs(&path)?[0].service, "arith");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), clamator_codegen::CodegenError>(())
/// ```
pub fn export(
    contract: &clamator_protocol::Contract,
    dir: impl AsRef<Path>,
) -> Result<PathBuf, CodegenError> {
    let path = dir
        .as_ref()
        .join(format!("{}.openrpc.json", contract.service()));
    let text = serde_json::to_string_pretty(&to_openrpc(contract)).unwrap_or_default() + "\n";
    write(&[(path.clone(), text)])?;
    Ok(path)
}

/// Reads every `*.json` contract document in `dir` (sorted by file name), or one file.
pub fn read_docs(path: &Path) -> Result<Vec<ContractDoc>, CodegenError> {
    let io = |path: &Path, source| CodegenError::Io {
        path: path.to_owned(),
        source,
    };
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).map_err(|e| io(f, e))?;
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| CodegenError::Document(format!("{}: {e}", f.display())))?;
            let mut doc = from_openrpc(&value)
                .map_err(|e| CodegenError::Document(format!("{}: {e}", f.display())))?;
            doc.source = f.file_name().map(|n| n.to_string_lossy().into_owned());
            Ok(doc)
        })
        .collect()
}

/// The files codegen writes for `docs`, as (path, contents), in a stable order.
pub fn render(docs: &[ContractDoc], out: &Outputs) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for doc in docs {
        let file = doc.service.replace('-', "_");
        if let Some(dir) = &out.python {
            files.push((dir.join(format!("{file}.py")), python(doc)));
        }
        if let Some(dir) = &out.typescript {
            let text = match &out.ts_contract_import {
                Some(import) => typescript_original(doc, import),
                None => typescript(doc),
            };
            files.push((dir.join(format!("{}.ts", doc.service)), text));
        }
        if let Some(dir) = &out.rust {
            files.push((dir.join(format!("{file}.rs")), rust(doc)));
        }
    }
    if let Some(path) = &out.manifest {
        files.push((path.clone(), manifest(docs)));
    }
    files
}

/// Writes the rendered files (creating directories).
pub fn write(files: &[(PathBuf, String)]) -> Result<(), CodegenError> {
    for (path, text) in files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CodegenError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        std::fs::write(path, text).map_err(|source| CodegenError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Compares the rendered files with what is on disk; returns one line per drift (a missing or
/// different file, and for the manifest the methods whose hashes changed).
pub fn check(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut drift = Vec::new();
    for (path, want) in files {
        match std::fs::read_to_string(path) {
            Err(_) => drift.push(format!("{}: missing (run codegen)", path.display())),
            Ok(have) if &have == want => {}
            Ok(have) => {
                let detail = manifest_drift(&have, want);
                drift.push(format!(
                    "{}: differs from the contract documents{detail}",
                    path.display()
                ));
            }
        }
    }
    drift
}

fn manifest_drift(have: &str, want: &str) -> String {
    let (Ok(have), Ok(want)) = (
        serde_json::from_str::<Value>(have),
        serde_json::from_str::<Value>(want),
    ) else {
        return String::new();
    };
    let flat = |v: &Value| -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for (svc, methods) in v["contracts"].as_object().into_iter().flatten() {
            for (m, h) in methods.as_object().into_iter().flatten() {
                out.insert(format!("{svc}.{m}"), h.clone());
            }
        }
        out
    };
    let (h, w) = (flat(&have), flat(&want));
    let changed: Vec<String> = w
        .keys()
        .chain(h.keys())
        .filter(|k| h.get(*k) != w.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if changed.is_empty() {
        String::new()
    } else {
        format!(" (schema hashes changed: {})", changed.join(", "))
    }
}
