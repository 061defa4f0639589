//! Issue 14: a contract written in Python on the released clamator-protocol 0.1.9 is imported
//! (`clamator_codegen::import::python`, what `clamator codegen import --python` runs), a Rust
//! service is generated from the document (`include_contract!`) and served over a private
//! Redis, and the released Python client calls it with the Python contract's own models. The
//! Rust interop contracts are checked structurally against their Python siblings (generated,
//! then imported back): the cross-language drift check of our own CI.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clamator::redis::RedisRpcServer;
use clamator::HandlerError;
use clamator_codegen::import::PythonImport;
use clamator_test_support::RedisServer;
use serde_json::Value;

mod common;

clamator::include_contract!("../../interop/imported/shop.openrpc.json");

fn how() -> PythonImport {
    PythonImport {
        python: common::setup_python(),
        python_path: vec![common::root().join("interop/py/import_fixtures")],
    }
}

fn document() -> PathBuf {
    common::root().join("interop/imported/shop.openrpc.json")
}

#[test]
fn the_committed_document_is_what_the_importer_writes() {
    let docs = clamator_codegen::import::python("shop:shop_contract", &how()).unwrap();
    assert_eq!(docs.len(), 1);
    let text =
        serde_json::to_string_pretty(&clamator_codegen::doc_to_openrpc(&docs[0])).unwrap() + "\n";
    if std::env::var_os("CLAMATOR_BLESS").is_some() {
        std::fs::write(document(), &text).unwrap();
    }
    let committed = std::fs::read_to_string(document()).unwrap();
    assert!(
        committed == text,
        "{} is out of date with interop/py/import_fixtures/shop.py: run `CLAMATOR_BLESS=1 cargo test -p clamator-interop --test import_python`",
        document().display()
    );
    // what the document says about the Python contract
    let doc = &docs[0];
    let kinds: Vec<(&str, bool)> = doc
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.notification))
        .collect();
    assert_eq!(
        kinds,
        [("placeOrder", false), ("count", false), ("cancelled", true)]
    );
    let params = &doc.methods[0].params;
    assert_eq!(
        params["required"],
        serde_json::json!(["customerId", "lines", "shipping"])
    );
    assert_eq!(
        params["$defs"]["Line"]["properties"]["quantity"]["maximum"],
        100
    );
    assert_eq!(
        params["properties"]["shipping"]["discriminator"]["propertyName"],
        "kind"
    );

    // The importer's errors name the problem.
    for (spec, want) in [
        ("shop:nope", "has no attribute 'nope'"),
        ("shop:Line", "not a clamator_protocol.Contract"),
        ("no_such_module", "cannot import 'no_such_module'"),
    ] {
        let e = clamator_codegen::import::python(spec, &how()).unwrap_err();
        assert!(e.to_string().contains(want), "{spec}: {e}");
    }
}

#[test]
fn rust_interop_contracts_match_their_python_siblings() {
    let ours = clamator_codegen::read_docs(&common::root().join("contracts")).unwrap();
    let python = PythonImport {
        python: common::setup_python(),
        python_path: vec![common::root().join("interop/generated/py")],
    };
    let mut theirs = clamator_codegen::import::python("arith", &python).unwrap();
    theirs.extend(clamator_codegen::import::python("notifications", &python).unwrap());
    let drift = clamator_codegen::compare(&ours, &theirs);
    assert!(drift.is_empty(), "drift: {drift:#?}");

    // and the check sees a change: one bound and one type
    let mut changed = theirs.clone();
    let add = changed[0]
        .methods
        .iter_mut()
        .find(|m| m.name == "slowAdd")
        .unwrap();
    add.params["properties"]["sleepMs"]["maximum"] = 1000.into();
    add.params["properties"]["a"] = serde_json::json!({"type": "string"});
    let drift: Vec<String> = clamator_codegen::compare(&ours, &changed)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        drift,
        [
            "arith.slowAdd params/a: type: number vs string",
            "arith.slowAdd params/sleepMs: maximum: 1.8446744073709552e19 vs 1000.0",
        ]
    );
}

#[derive(Default)]
struct Store {
    orders: AtomicU32,
    cancelled: Mutex<Vec<String>>,
    shipping: Mutex<Vec<String>>,
}

impl Shop for Store {
    async fn place_order(&self, p: PlaceOrder) -> Result<Placed, HandlerError> {
        let total = p
            .lines
            .iter()
            .map(|l| f64::from(l.quantity) * l.unit_price)
            .sum();
        let kind = match &p.shipping {
            PlaceOrderShipping::Pickup { store } => format!("pickup at {store}"),
            PlaceOrderShipping::Delivery { address } => {
                format!("delivery to {}", address.city)
            }
        };
        self.shipping.lock().unwrap().push(kind);
        let n = self.orders.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Placed {
            order_id: format!("o-{n}"),
            total,
            status: PlacedStatus::Accepted,
        })
    }
    async fn count(&self, _: Nothing) -> Result<Placed, HandlerError> {
        Ok(Placed {
            order_id: "-".into(),
            total: f64::from(self.orders.load(Ordering::SeqCst)),
            status: PlacedStatus::Queued,
        })
    }
    async fn cancelled(&self, p: Cancelled) {
        self.cancelled.lock().unwrap().push(p.order_id);
    }
}

const CLIENT: &str = r#"
import asyncio, json, os, sys
from shop import Address, Cancelled, Delivery, Line, Pickup, PlaceOrder, Placed
from clamator_over_redis import RedisRpcClient
from clamator_protocol import RpcError

async def main():
    client = RedisRpcClient(redis_url=sys.argv[1], key_prefix=sys.argv[2], default_timeout_ms=5000)
    await client.start()
    out = {}
    order = PlaceOrder(customer_id="c1", lines=[Line(sku="tea", quantity=2, unit_price=1.5), Line(sku="cup", quantity=1, unit_price=4)],
                       shipping=Delivery(kind="delivery", address=Address(street="Main 1", city="Lyon")), tags={"gift": "yes"})
    placed = Placed.model_validate(await client.call("shop", "placeOrder", order.model_dump(mode="json", by_alias=True)))
    out["placed"] = placed.model_dump(mode="json", by_alias=True)
    pickup = PlaceOrder(customer_id="c2", lines=[Line(sku="tea", quantity=1, unit_price=2)], shipping=Pickup(kind="pickup", store="S1"))
    await client.call("shop", "placeOrder", pickup.model_dump(mode="json", by_alias=True))
    out["count"] = Placed.model_validate(await client.call("shop", "count", {})).total
    await client.notify("shop", "cancelled", Cancelled(orderId=placed.order_id).model_dump(mode="json", by_alias=True))
    try:
        await client.call("shop", "placeOrder", {"customerId": "c3"})
    except RpcError as e:
        out["invalid"] = [e.code, [err["loc"] for err in e.data["errors"]]]
    # what the Python contract refuses about the tagged union, sent as raw dicts
    line = {"sku": "tea", "quantity": 1, "unitPrice": 2}
    for name, shipping in [("boat", {"kind": "boat", "store": "S1"}),
                           ("pickup without store", {"kind": "pickup", "address": {"street": "a", "city": "b"}})]:
        try:
            await client.call("shop", "placeOrder", {"customerId": "c4", "lines": [line], "shipping": shipping})
            out[name] = "accepted"
        except RpcError as e:
            out[name] = e.code
        try:
            PlaceOrder.model_validate({"customerId": "c4", "lines": [line], "shipping": shipping})
            out[name + " (python)"] = "accepted"
        except Exception:
            out[name + " (python)"] = "refused"
    print(json.dumps(out), flush=True)
    os._exit(0)

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_server_generated_from_the_imported_document_serves_the_python_client() {
    let python = common::setup_python();
    let redis = RedisServer::start();
    let shop = Arc::new(Store::default());
    let server = RedisRpcServer::builder()
        .key_prefix("imported")
        .url(redis.url())
        .service(ShopServer::from_arc(Arc::clone(&shop)))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let out = tokio::task::spawn_blocking({
        let url = redis.url();
        move || {
            Command::new(python)
                .args(["-c", CLIENT, &url, "imported"])
                .current_dir(common::root().join("interop/py/import_fixtures"))
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got["placed"],
        serde_json::json!({"orderId": "o-1", "total": 7.0, "status": "accepted"})
    );
    assert_eq!(got["count"], 2.0);
    // a request the Python contract refuses is refused by the generated Rust service too
    assert_eq!(got["invalid"][0], -32602, "{got}");
    // The union is tagged in Rust as in Python: a wrong tag, or a variant missing its required
    // field, is refused by both (it was accepted as the other variant when the generated Rust
    // was `#[serde(untagged)]` with the tag as a plain string).
    for case in ["boat", "pickup without store"] {
        assert_eq!(got[case], -32602, "{case}: {got}");
        assert_eq!(got[format!("{case} (python)")], "refused", "{case}: {got}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop().await;
    assert_eq!(*shop.cancelled.lock().unwrap(), ["o-1"]);
    assert_eq!(
        *shop.shipping.lock().unwrap(),
        ["delivery to Lyon", "pickup at S1"]
    );
}

/// Issue 14: a string constant of the contract is a one-value enum in generated Rust, so a
/// standalone model refuses another value as Pydantic's `Literal` does.
#[test]
fn string_constants_stay_constants_in_rust() {
    let pickup: Pickup =
        serde_json::from_value(serde_json::json!({"kind": "pickup", "store": "S1"})).unwrap();
    assert_eq!(pickup.kind, PickupKind::Pickup);
    assert!(
        serde_json::from_value::<Pickup>(serde_json::json!({"kind": "boat", "store": "S1"}))
            .is_err()
    );
    assert_eq!(
        serde_json::to_value(&pickup).unwrap(),
        serde_json::json!({"kind": "pickup", "store": "S1"})
    );
}

/// Issue 14: every `$ref` an OpenRPC tool sees (outside the `x-clamator-*` copies) resolves at
/// the document root: nested models are in `components/schemas`.
#[test]
fn references_resolve_at_the_document_root() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(document()).unwrap()).unwrap();
    fn walk(v: &Value, doc: &Value, seen: &mut Vec<String>) {
        match v {
            Value::Object(obj) => {
                for (k, x) in obj {
                    if k.starts_with("x-clamator") {
                        continue;
                    }
                    if k == "$ref" {
                        let r = x.as_str().unwrap();
                        assert!(
                            r.starts_with("#/") && doc.pointer(&r[1..]).is_some(),
                            "{r} does not resolve at the document root"
                        );
                        seen.push(r.to_owned());
                    } else {
                        walk(x, doc, seen);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, doc, seen)),
            _ => {}
        }
    }
    let mut seen = Vec::new();
    walk(&doc, &doc, &mut seen);
    for name in ["Address", "Line", "Pickup", "Delivery", "Size"] {
        assert!(
            seen.contains(&format!("#/components/schemas/{name}")),
            "{name} not referenced: {seen:?}"
        );
    }
    // and the document still reads back to the same contract
    let back = clamator_codegen::from_openrpc(&doc).unwrap();
    let imported = clamator_codegen::import::python("shop:shop_contract", &how()).unwrap();
    assert_eq!(back.methods, imported[0].methods);
}
