//! Issue 14: a TypeScript contract module written with the original DSL (`defineContract`,
//! Zod) is imported (`clamator_codegen::import::typescript`, what `clamator codegen import
//! --ts` runs) and checked structurally against the Python sibling of the same contract. The
//! fixture type-checks with `tsc` (scripts/check-ts.sh); `@clamator/protocol`, not on the npm
//! registry, resolves to a shim (a `tsc` path mapping; the importer's runtime shim).

use std::process::Command;

use clamator_codegen::import::TsImport;

mod common;

fn how() -> TsImport {
    let root = common::root();
    // installs typescript, zod and zod-to-json-schema (pinned) and type-checks the fixture
    let status = Command::new("bash")
        .arg(root.join("scripts/check-ts.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/check-ts.sh failed");
    TsImport {
        node: "node".into(),
        node_modules: root.join("interop/ts/node_modules"),
    }
}

fn fixture() -> String {
    common::root()
        .join("interop/ts/import_fixtures/shop.ts")
        .display()
        .to_string()
}

#[test]
fn the_typescript_contract_matches_its_python_sibling() {
    let how = how();
    let ts =
        clamator_codegen::import::typescript(&format!("{}:shopContract", fixture()), &how).unwrap();
    assert_eq!(ts.len(), 1);
    let kinds: Vec<(&str, bool)> = ts[0]
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.notification))
        .collect();
    assert_eq!(
        kinds,
        [("placeOrder", false), ("count", false), ("cancelled", true)]
    );
    // zod-to-json-schema's shape, as the original codegen hashes it
    let params = &ts[0].methods[0].params;
    assert_eq!(params["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(params["additionalProperties"], false);
    // the whole module (no export name) finds the same contract
    let all = clamator_codegen::import::typescript(&fixture(), &how).unwrap();
    assert_eq!(all, ts);

    let python = clamator_codegen::read_docs(&common::root().join("interop/imported")).unwrap();
    let drift = clamator_codegen::compare(&python, &ts);
    assert!(
        drift.is_empty(),
        "the TypeScript and Python shop contracts differ: {drift:#?}"
    );
}

#[test]
fn drift_between_the_languages_is_named() {
    let how = how();
    let dir = std::env::temp_dir().join(format!("clamator-ts-drift-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::fs::read_to_string(fixture()).unwrap();
    let changed = source
        .replace(
            "z.number().int().min(1).max(100)",
            "z.number().int().min(1).max(99)",
        )
        .replace(
            "z.enum(['accepted', 'queued'])",
            "z.enum(['accepted', 'queued', 'rejected'])",
        )
        .replace(
            "cancelled: defineNotification({\n    params:",
            "cancelled: defineMethod({\n    result: z.object({}),\n    params:",
        )
        .replace("city: z.string(),", "city: z.string().optional(),");
    assert_ne!(changed, source);
    let file = dir.join("shop.ts");
    std::fs::write(&file, changed).unwrap();
    let ts = clamator_codegen::import::typescript(&file.display().to_string(), &how).unwrap();
    let python = clamator_codegen::read_docs(&common::root().join("interop/imported")).unwrap();
    let drift: Vec<String> = clamator_codegen::compare(&python, &ts)
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    for want in [
        "shop.placeOrder params/lines/[]/quantity: maximum: 100.0 vs 99.0",
        "shop.placeOrder params/shipping/<1>/address/city: required vs optional",
        r#"shop.placeOrder result/status: values: "rejected" only in other"#,
        r#"shop.count result/status: values: "rejected" only in other"#,
        "shop.cancelled: notification vs request",
    ] {
        assert!(
            drift.iter().any(|d| d == want),
            "missing {want:?} in {drift:#?}"
        );
    }
}

#[test]
fn import_errors_name_the_problem() {
    let how = how();
    for (spec, want) in [
        (format!("{}:nope", fixture()), "has no export \"nope\""),
        ("/no/such/file.ts".to_owned(), "no such file"),
    ] {
        let e = clamator_codegen::import::typescript(&spec, &how).unwrap_err();
        assert!(e.to_string().contains(want), "{spec}: {e}");
    }
    // a contract the original defineContract refuses is refused here too
    let dir = std::env::temp_dir().join(format!("clamator-ts-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.ts");
    std::fs::write(
        &file,
        "import { z } from 'zod';\nimport { defineContract } from '@clamator/protocol';\nexport const c = defineContract('Bad', { m: { params: z.object({}), result: z.string() } });\n",
    )
    .unwrap();
    // zod resolves from the tools directory when the module has no node_modules of its own
    let e = clamator_codegen::import::typescript(&file.display().to_string(), &how).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        e.to_string().contains("invalid service name \"Bad\""),
        "{e}"
    );
}

/// Python generated from the TypeScript contract (as a Python team joining a TypeScript system
/// would do) imports into the released packages, names the union's members from their tags,
/// and validates what the Zod contract validates.
#[test]
fn python_generated_from_the_typescript_contract_works() {
    let how = how();
    let ts = clamator_codegen::import::typescript(&fixture(), &how).unwrap();
    let python_code = clamator_codegen::python(&ts[0]);
    assert!(
        python_code.contains("class PlaceOrderParamsShippingPickup(BaseModel):")
            && python_code.contains("class PlaceOrderParamsShippingDelivery(BaseModel):"),
        "{python_code}"
    );
    let dir = std::env::temp_dir().join(format!("clamator-ts-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shop.py"), python_code).unwrap();
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
import shop
from clamator_protocol import Contract
assert isinstance(shop.shop_contract, Contract)
ok = {"customerId": "c", "lines": [{"sku": "t", "quantity": 2, "unitPrice": 1.5}],
      "shipping": {"kind": "pickup", "store": "S1"}}
p = shop.PlaceOrderParams.model_validate(ok)
assert type(p.shipping).__name__ == "PlaceOrderParamsShippingPickup", type(p.shipping)
for bad in ({"kind": "boat", "store": "S1"}, {"kind": "pickup"}):
    try:
        shop.PlaceOrderParams.model_validate({**ok, "shipping": bad})
        raise SystemExit(f"accepted {bad}")
    except Exception as e:
        if isinstance(e, SystemExit): raise
try:
    shop.PlaceOrderParams.model_validate({**ok, "lines": [{"sku": "t", "quantity": 101, "unitPrice": 1}]})
    raise SystemExit("accepted quantity 101")
except Exception as e:
    if isinstance(e, SystemExit): raise
print("ok")
"#;
    let out = Command::new(common::setup_python())
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
