//! Importers: contracts authored in another language, read by running that language, written
//! as contract documents (`<service>.openrpc.json`) that the emitters and
//! `clamator::include_contract!` read.
//!
//! * [`python`]: `clamator_protocol.Contract` objects of the released Python package (0.1.9),
//!   Pydantic v2 models, through `model_json_schema()`.
//! * [`typescript`]: `{service, methods}` contract objects of a TypeScript module (Zod
//!   `params` / `result`, `notification: true`, as `defineContract` returns them), through
//!   `zod-to-json-schema` with the original codegen's options.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{CodegenError, ContractDoc, DocMethod};

const PYTHON_IMPORTER: &str = include_str!("python.py");
const TYPESCRIPT_IMPORTER: &str = include_str!("typescript.cjs");

/// How to run the user's TypeScript.
#[derive(Debug, Clone)]
pub struct TsImport {
    /// The Node.js binary (`node` on `PATH` by default; Node 18 or newer).
    pub node: PathBuf,
    /// A `node_modules` directory holding `typescript` and `zod-to-json-schema` (the contract's
    /// own imports, such as `zod`, resolve from its own location first, then from here).
    pub node_modules: PathBuf,
}

impl Default for TsImport {
    fn default() -> Self {
        Self {
            node: PathBuf::from("node"),
            node_modules: PathBuf::from("node_modules"),
        }
    }
}

/// Imports the TypeScript contract(s) of `spec`: `FILE.ts:EXPORT` (one exported contract
/// object) or `FILE.ts` (every exported `{service, methods}` object).
///
/// The module is transpiled with the `typescript` package and evaluated; `@clamator/protocol`
/// (not on the npm registry) resolves to a shim with the original `defineContract` checks when
/// it is not installed. Each schema is `zodToJsonSchema(schema, {target: "jsonSchema7",
/// $refStrategy: "none"})`, as the original codegen hashes them.
pub fn typescript(spec: &str, how: &TsImport) -> Result<Vec<ContractDoc>, CodegenError> {
    let out = Command::new(&how.node)
        .arg("-e")
        .arg(TYPESCRIPT_IMPORTER)
        .arg(spec)
        .arg(&how.node_modules)
        .output()
        .map_err(|e| CodegenError::Import(format!("cannot run {}: {e}", how.node.display())))?;
    parse_output(spec, &how.node, &out)
}

/// The importer's stdout as contracts, or its last stderr line as the error.
fn parse_output(
    spec: &str,
    runner: &Path,
    out: &std::process::Output,
) -> Result<Vec<ContractDoc>, CodegenError> {
    let bad = |why: String| CodegenError::Import(why);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("no output")
            .to_owned();
        return Err(bad(format!("{spec} ({}): {message}", runner.display())));
    }
    let parsed: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| bad(format!("{spec}: the importer printed no JSON: {e}")))?;
    parsed["contracts"]
        .as_array()
        .ok_or_else(|| bad(format!("{spec}: no contracts in the importer's output")))?
        .iter()
        .map(|c| contract_doc(c, spec))
        .collect()
}

/// How to run the user's Python.
#[derive(Debug, Clone)]
pub struct PythonImport {
    /// The interpreter (`python3` on `PATH` by default): one that has `clamator_protocol` and
    /// the contract module's own dependencies installed, usually the project's virtualenv.
    pub python: PathBuf,
    /// Directories put in front of `PYTHONPATH` (where the contract module lives); the current
    /// directory is searched too.
    pub python_path: Vec<PathBuf>,
}

impl Default for PythonImport {
    fn default() -> Self {
        Self {
            python: PathBuf::from("python3"),
            python_path: Vec::new(),
        }
    }
}

/// Imports the Python contract(s) named by `spec`: `MODULE:ATTR` (one `Contract` object) or
/// `MODULE` (every `Contract` defined at the module's top level).
///
/// Each method's params and result schemas are the Pydantic models' `model_json_schema()`
/// (validation mode, by alias: the wire names), nested models under `$defs`. A failure names
/// what went wrong in the user's terms (module not importable, attribute missing or not a
/// `Contract`, a model without a JSON Schema).
pub fn python(spec: &str, how: &PythonImport) -> Result<Vec<ContractDoc>, CodegenError> {
    let bad = |why: String| CodegenError::Import(why);
    if spec.is_empty() || spec.starts_with(':') {
        return Err(bad(format!(
            "{spec:?}: expected MODULE or MODULE:ATTR (e.g. my_contracts.shop:shop_contract)"
        )));
    }
    let mut path: Vec<PathBuf> = how.python_path.clone();
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        path.extend(std::env::split_paths(&existing));
    }
    let joined = std::env::join_paths(&path).map_err(|e| bad(format!("--python-path: {e}")))?;
    let out = Command::new(&how.python)
        .arg("-c")
        .arg(PYTHON_IMPORTER)
        .arg(spec)
        .env("PYTHONPATH", joined)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .map_err(|e| bad(format!("cannot run {}: {e}", how.python.display())))?;
    parse_output(spec, &how.python, &out)
}

fn contract_doc(c: &Value, spec: &str) -> Result<ContractDoc, CodegenError> {
    let bad = |why: String| CodegenError::Import(format!("{spec}: {why}"));
    let service = c["service"]
        .as_str()
        .ok_or_else(|| bad("a contract has no service name".into()))?
        .to_owned();
    // Python's Contract does not check names (TypeScript's defineContract does): check here.
    if !clamator_protocol::is_valid_service(&service) {
        return Err(bad(format!(
            "invalid service name {service:?} (must match ^[a-z][a-z0-9-]*$)"
        )));
    }
    let mut methods = Vec::new();
    for m in c["methods"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or_default().to_owned();
        if !clamator_protocol::is_valid_method(&name) {
            return Err(bad(format!(
                "{service}: invalid method name {name:?} (must match ^[a-z][a-zA-Z0-9]*$)"
            )));
        }
        let notification = m["notification"] == true;
        methods.push(DocMethod {
            name,
            notification,
            params: m["params"].clone(),
            result: (!notification).then(|| m["result"].clone()),
            description: None,
        });
    }
    Ok(ContractDoc {
        service,
        description: None,
        methods,
        source: None,
    })
}

/// Writes `<dir>/<service>.openrpc.json` for each contract (pretty JSON, trailing newline);
/// returns the paths written.
pub fn write_documents(docs: &[ContractDoc], dir: &Path) -> Result<Vec<PathBuf>, CodegenError> {
    std::fs::create_dir_all(dir).map_err(|source| CodegenError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for doc in docs {
        let path = dir.join(format!("{}.openrpc.json", doc.service));
        let text = serde_json::to_string_pretty(&crate::openrpc::doc_to_openrpc(doc))
            .unwrap_or_default()
            + "\n";
        std::fs::write(&path, text).map_err(|source| CodegenError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
