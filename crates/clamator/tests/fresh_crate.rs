//! The README quickstart, exactly as printed, in a new crate outside the workspace whose only
//! dependencies are the README's `[dependencies]` block (`clamator` pointed at this checkout):
//! it must build and print 5 (issue 13 item 1). A second binary of that crate expands a
//! contract document with `include_contract!` and uses `clamator::serde_json` (item 2): no
//! serde, schemars or serde_json dependency needed either.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The body of the first fenced block of `lang` after `heading` in the README.
fn block_after(readme: &str, heading: &str, lang: &str) -> String {
    let from = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[from..];
    let fence = format!("```{lang}\n");
    let start = rest
        .find(&fence)
        .unwrap_or_else(|| panic!("no ```{lang} block after {heading:?}"))
        + fence.len();
    let len = rest[start..].find("```").expect("unterminated block");
    rest[start..start + len].to_owned()
}

#[test]
fn the_readme_quickstart_builds_and_runs_in_a_new_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let deps = block_after(&readme, "## Depend on it", "toml");
    let code = block_after(&readme, "## Quickstart", "rust");

    let lines: Vec<&str> = deps.lines().collect();
    assert_eq!(lines[0], "[dependencies]", "{deps}");
    let names: Vec<&str> = lines[1..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('=').next().unwrap().trim())
        .collect();
    assert_eq!(
        names,
        ["clamator", "tokio"],
        "the quickstart needs only clamator and tokio"
    );
    let clamator_path = root.join("crates/clamator");
    let deps = deps.replace(
        "path = \"../clamator-rs/crates/clamator\"",
        &format!("path = {:?}", clamator_path.display().to_string()),
    );
    assert!(
        deps.contains("path ="),
        "README's clamator line changed: {deps}"
    );

    let dir = std::env::temp_dir().join(format!("clamator-fresh-crate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fresh-quickstart\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n{deps}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), &code).unwrap();
    std::fs::create_dir_all(dir.join("src/bin")).unwrap();
    std::fs::copy(
        root.join("contracts/arith.openrpc.json"),
        dir.join("arith.openrpc.json"),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/bin/generated.rs"),
        r#"clamator::include_contract!("arith.openrpc.json");

struct Calc;
impl Arith for Calc {
    async fn add(&self, p: AddParams) -> Result<AddResult, clamator::HandlerError> {
        Ok(AddResult { sum: p.a + p.b })
    }
    async fn divide(&self, p: AddParams) -> Result<DivideResult, clamator::HandlerError> {
        Ok(DivideResult { q: p.a / p.b })
    }
    async fn echo_text(&self, p: EchoText) -> Result<EchoText, clamator::HandlerError> {
        Ok(EchoText { text: p.text })
    }
    async fn slow_add(&self, p: SlowAddParams) -> Result<AddResult, clamator::HandlerError> {
        Ok(AddResult { sum: p.a + p.b })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
    use clamator::RpcClient;
    let bus = MemoryBus::new();
    let server = MemoryRpcServer::builder(&bus).service(ArithServer::new(Calc)).build()?;
    server.start().await?;
    let client = MemoryRpcClient::new(&bus);
    client.start().await?;
    let raw = client
        .call_value("arith", "add", clamator::serde_json::json!({"a": 2, "b": 5}), None)
        .await?;
    println!("{}", raw["sum"]);
    client.stop().await;
    server.stop().await;
    Ok(())
}
"#,
    )
    .unwrap();
    // The workspace's lock file pins the same versions the workspace is tested with (cargo drops
    // the packages the new crate does not use).
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let target: PathBuf = root.join("target/fresh-crate");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |bin: &str| {
        let out = Command::new(&cargo)
            .args(["run", "--quiet", "--bin", bin])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("run cargo");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{bin} does not build/run in a new crate:\n{stderr}"
        );
        (stdout, stderr)
    };
    let (stdout, stderr) = run("fresh-quickstart");
    assert_eq!(stdout.trim(), "5", "stderr: {stderr}");
    let (stdout, stderr) = run("generated");
    assert_eq!(stdout.trim(), "7.0", "stderr: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
