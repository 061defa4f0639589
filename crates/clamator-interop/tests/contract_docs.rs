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
