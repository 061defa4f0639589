//! Golden files for each emitter (`tests/golden/`), from a fixture document that exercises
//! every supported schema feature. `CLAMATOR_BLESS=1 cargo test -p clamator-codegen` rewrites
//! them; review the diff. The generated Rust is compiled below, the generated Python is
//! imported by the released clamator 0.1.9 packages, and the TypeScript is type-checked by
//! `scripts/check-ts.sh`.

use std::path::{Path, PathBuf};

#[rustfmt::skip]
#[path = "golden/launch_ctl.rs"]
#[allow(dead_code, unreachable_pub)]
mod launch_ctl;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn doc() -> clamator_codegen::ContractDoc {
    let mut docs =
        clamator_codegen::read_docs(&dir().join("fixtures/launch-ctl.openrpc.json")).unwrap();
    docs.remove(0)
}

fn golden(name: &str, got: &str) {
    let path = dir().join("golden").join(name);
    if std::env::var_os("CLAMATOR_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == got,
        "{} differs from the emitter output (CLAMATOR_BLESS=1 to update):\n{got}",
        path.display()
    );
}

#[test]
fn python_golden() {
    golden("launch_ctl.py", &clamator_codegen::python(&doc()));
}

#[test]
fn typescript_golden() {
    golden("launch-ctl.ts", &clamator_codegen::typescript(&doc()));
}

/// The original `@clamator/codegen` shape (`--ts-contract-import`); its fixture
/// (`ts/packages/codegen/tests/fixtures/expected/ts/arith.ts` of the original repository) has
/// the same layout for `add` and `divide`.
#[test]
fn typescript_original_shape_golden() {
    golden(
        "launch-ctl.original.ts",
        &clamator_codegen::typescript_original(&doc(), "../contracts/{service}.js"),
    );
}

#[test]
fn rust_golden() {
    golden("launch_ctl.rs", &clamator_codegen::rust(&doc()));
}

#[test]
fn manifest_golden_and_deterministic() {
    let docs = vec![doc()];
    let m = clamator_codegen::manifest(&docs);
    assert_eq!(m, clamator_codegen::manifest(&docs));
    golden("manifest.json", &m);
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(
        v["contracts"]["launch-ctl"]["stopped"]["resultHash"],
        serde_json::Value::Null
    );
    assert_eq!(
        v["contracts"]["launch-ctl"]["count"]["paramsHash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn schema_hash_matches_the_spec_vectors() {
    // zod-to-json-schema output of z.object({a: z.number(), b: z.number()}) (spec §5.6)
    let schema: serde_json::Value = serde_json::from_str(r#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}"#).unwrap();
    assert_eq!(
        clamator_codegen::schema_hash(&schema),
        "70e6175edca7384fd05004b0efc43493bcee78a57bf4a72fd005beb890965b6a"
    );
}

#[test]
fn generated_rust_is_usable() {
    use launch_ctl::*;
    let p: StartParams = serde_json::from_value(serde_json::json!({
        "processId": "0d3c5a7e-1111-4222-8333-444455556666", "class": "batch", "mode": "dry-run",
        "target": {"kind": "pool", "pool": "p1", "size": 2}, "limits": {"cpu": 1.5}
    }))
    .unwrap();
    assert_eq!(p.class, "batch");
    assert_eq!(p.mode, StartParamsMode::DryRun);
    assert!(matches!(
        p.target,
        StartParamsTarget::Pool { size: Some(2), .. }
    ));
    // tagged like the Python/TypeScript siblings: an unknown tag, or a variant without its
    // required field, is refused (not taken for the other variant)
    for shipping in [
        serde_json::json!({"kind": "boat", "host": "h"}),
        serde_json::json!({"kind": "pool", "host": "h"}),
    ] {
        let bad = serde_json::from_value::<StartParamsTarget>(shipping.clone());
        assert!(bad.is_err(), "{shipping} accepted as {bad:?}");
    }
    let unknown = serde_json::from_value::<StartParams>(serde_json::json!({
        "processId": "x", "class": "c", "mode": "fast", "target": {"kind": "host", "host": "h"}, "bogus": 1
    }));
    assert!(
        unknown.is_err(),
        "additionalProperties: false → deny_unknown_fields"
    );
    assert_eq!(LaunchCtlContract::SERVICE, "launch-ctl");
    let names: Vec<_> = LaunchCtlContract::descriptor()
        .methods()
        .iter()
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(names, ["start", "count", "stopped"]);
    let c = LaunchCtlContract::descriptor();
    assert_eq!(
        c.description(),
        Some("Launch control.\n\nStarts and counts launches.")
    );
    assert_eq!(
        c.method("count").unwrap().description.as_deref(),
        Some("Counts launches.")
    );
    // Document → Rust → document keeps the descriptions.
    let again = clamator_codegen::from_openrpc(&clamator_codegen::to_openrpc(&c)).unwrap();
    assert_eq!(again.description, doc().description);
    for (a, b) in again.methods.iter().zip(doc().methods) {
        assert_eq!(a.description, b.description, "{}", a.name);
    }
}

#[test]
fn check_names_drift() {
    let tmp = std::env::temp_dir().join(format!("clamator-codegen-check-{}", std::process::id()));
    let out = clamator_codegen::Outputs {
        python: Some(tmp.join("py")),
        manifest: Some(tmp.join("manifest.json")),
        ..Default::default()
    };
    let files = clamator_codegen::render(&[doc()], &out);
    assert_eq!(
        clamator_codegen::check(&files).len(),
        2,
        "missing files are drift"
    );
    clamator_codegen::write(&files).unwrap();
    assert!(clamator_codegen::check(&files).is_empty());
    // change a schema: the manifest check names the method
    let mut changed = doc();
    changed.methods[1].result = Some(serde_json::json!({"type": "string"}));
    let drift = clamator_codegen::check(&clamator_codegen::render(&[changed], &out));
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(
        drift
            .iter()
            .any(|d| d.contains("schema hashes changed: launch-ctl.count")),
        "{drift:?}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn generated_python_imports_into_the_released_packages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/setup-python.sh failed");
    let script = r#"
import sys, json
sys.path.insert(0, sys.argv[1])
import launch_ctl as m
from clamator_protocol import Contract, MethodEntry
p = m.StartParams(processId="0d3c5a7e-1111-4222-8333-444455556666", class_="batch", mode="safe",
                  target={"kind": "host", "host": "h1"}, retries=3)
q = m.StartParams(process_id="0d3c5a7e-1111-4222-8333-444455556666", class_="batch", mode="safe",
                  target={"kind": "pool", "pool": "p"})
assert type(q.target).__name__ == "PoolTarget", type(q.target)
d = p.model_dump(mode="json", by_alias=True, exclude_unset=True)
assert d["processId"] and d["class"] == "batch" and "process_id" not in d, d
for bad in ({"retries": 11}, {"mode": "slow"}, {"bogus": 1}, {"class_": ""}):
    args = dict(processId="0d3c5a7e-1111-4222-8333-444455556666", class_="c", mode="fast", target={"kind": "host", "host": "h"})
    args.update(bad)
    try:
        m.StartParams(**args)
        raise SystemExit(f"accepted {bad}")
    except Exception as e:
        if isinstance(e, SystemExit): raise
assert isinstance(m.launch_ctl_contract, Contract)
assert m.METHODS["stopped"].result_model is None and m.METHODS["start"].handler_attr == "start"
assert m.CountResult.model_validate(4).root == 4
assert type(m.StartResult.model_validate({"position": 2}).root).__name__ == "Queued"
assert issubclass(m.LaunchCtlService, object) and hasattr(m.LaunchCtlClient, "start")
from inspect import getdoc
assert getdoc(m.LaunchCtlClient.start) == 'Starts a launch.\n\nQuotes \"\"\" and a backslash \\ and a */ must not end the docstring/JSDoc.', repr(getdoc(m.LaunchCtlClient.start))
assert getdoc(m.LaunchCtlService.start) == getdoc(m.LaunchCtlClient.start)
assert getdoc(m.LaunchCtlClient.count) == "Counts launches."
assert getdoc(m.LaunchCtlClient) == "Launch control.\n\nStarts and counts launches.", repr(getdoc(m.LaunchCtlClient))
assert m.LaunchCtlClient.stopped.__doc__ is None
print("ok")
"#;
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .args(["-c", script, dir().join("golden").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 14: Python keywords used as method or field names are escaped (the generated module
/// imports), method names follow the original `camelToSnake` (`getURL` → `get_u_rl`), and an
/// unsigned width keeps its upper bound (`u32` → `le=4294967295`).
#[test]
fn python_keywords_snake_case_and_unsigned_bounds() {
    use serde_json::json;
    let params = json!({"type": "object", "properties": {
        "from": {"type": "string"},
        "async": {"type": "integer", "format": "uint32", "minimum": 0},
        "getURL": {"type": "string"}
    }, "required": ["from", "async"]});
    let doc = clamator_codegen::ContractDoc {
        service: "kw".into(),
        description: None,
        methods: ["class", "import", "getURL"]
            .iter()
            .map(|name| clamator_codegen::DocMethod {
                name: (*name).into(),
                notification: false,
                params: params.clone(),
                result: Some(json!({"type": "object", "properties": {}})),
                description: None,
            })
            .collect(),
        source: None,
    };
    let dir = std::env::temp_dir().join(format!("clamator-kw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kw.py"), clamator_codegen::python(&doc)).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .status()
        .unwrap();
    assert!(status.success());
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
import kw
assert {k: e.handler_attr for k, e in kw.METHODS.items()} == {"class": "class_", "import": "import_", "getURL": "get_u_rl"}, kw.METHODS
for name in ("class_", "import_", "get_u_rl"):
    assert hasattr(kw.KwClient, name) and hasattr(kw.KwService, name), name
p = kw.ClassParams.model_validate({"from": "x", "async": 7, "getURL": "u"})
assert p.from_ == "x" and p.async_ == 7 and p.get_u_rl == "u", p
assert p.model_dump(by_alias=True, exclude_unset=True) == {"from": "x", "async": 7, "getURL": "u"}
for bad in (-1, 2**32):
    try:
        kw.ClassParams.model_validate({"from": "x", "async": bad})
        raise SystemExit(f"accepted async={bad}")
    except Exception as e:
        if isinstance(e, SystemExit): raise
kw.ClassParams.model_validate({"from": "x", "async": 2**32 - 1})
print("ok")
"#;
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
