//! The interop contracts' OpenRPC documents in `contracts/` are what the Rust contracts
//! produce. `CLAMATOR_BLESS=1 cargo test -p clamator-interop --test contract_docs` rewrites them.

use clamator::Contract;
use clamator_interop::{ArithContract, NotificationsContract};

fn check(contract: &Contract, file: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contracts")
        .join(file);
    let want =
        serde_json::to_string_pretty(&clamator_codegen::to_openrpc(contract)).unwrap() + "\n";
    if std::env::var_os("CLAMATOR_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is out of date with the Rust contract: run `CLAMATOR_BLESS=1 cargo test -p clamator-interop --test contract_docs`, then `bash scripts/codegen.sh`",
        path.display()
    );
}

#[test]
fn committed_documents_are_current() {
    check(&ArithContract::descriptor(), "arith.openrpc.json");
    check(
        &NotificationsContract::descriptor(),
        "notifications.openrpc.json",
    );
}

/// Issue 14: document → generated Rust → document is a fixed point (structurally, and in
/// every method's schema hash): codegen loses nothing a contract says.
#[test]
fn document_to_rust_to_document_is_a_fixed_point() {
    use clamator_interop::generated::{arith, notifications};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    for (contract, file) in [
        (arith::ArithContract::descriptor(), "arith.openrpc.json"),
        (
            notifications::NotificationsContract::descriptor(),
            "notifications.openrpc.json",
        ),
    ] {
        let committed = clamator_codegen::read_docs(&root.join(file)).unwrap();
        let again =
            clamator_codegen::from_openrpc(&clamator_codegen::to_openrpc(&contract)).unwrap();
        let drift = clamator_codegen::compare(&committed, std::slice::from_ref(&again));
        assert!(drift.is_empty(), "{file}: {drift:#?}");
        for (a, b) in committed[0].methods.iter().zip(&again.methods) {
            assert_eq!(
                serde_json::to_string_pretty(&a.params).unwrap(),
                serde_json::to_string_pretty(&b.params).unwrap(),
                "{file} {} params",
                a.name
            );
            assert_eq!(a.result, b.result, "{file} {} result", a.name);
            assert_eq!(a.description, b.description, "{file} {}", a.name);
        }
    }
}
