//! The README's "Redis and Python in five minutes", from its text: its `[dependencies]` and
//! `src/main.rs` built as a new crate outside the workspace (clamator pointed at this checkout),
//! run against a private redis-server until SIGINT; its `clamator call` line run by a shell;
//! its `client.py` and `server.py` run on the released Python 0.1.9 packages (`.venv`, from
//! `scripts/setup-python.sh`). The client reaches the Rust server, then the Python server.
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clamator_test_support::{workspace_root, RedisServer};

const SECTION: &str = "## Redis and Python in five minutes";

/// The body of the first fenced block of `lang` after `marker` (itself after the section).
fn block(readme: &str, marker: &str, lang: &str) -> String {
    let section = &readme[readme
        .find(SECTION)
        .unwrap_or_else(|| panic!("README has no {SECTION:?}"))..];
    let from = section
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in the README's walkthrough"));
    let rest = &section[from..];
    let fence = format!("```{lang}\n");
    let start = rest
        .find(&fence)
        .unwrap_or_else(|| panic!("no ```{lang} block after {marker:?}"))
        + fence.len();
    let len = rest[start..].find("```").expect("unterminated block");
    rest[start..start + len].to_owned()
}

/// Waits for a line containing `want` on the child's stdout.
fn wait_for_line(child: &mut Child, want: &str, what: &str) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let want = want.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&want) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not print its ready line within 60 s"));
}

fn python(root: &Path, dir: &Path, script: &str) -> Command {
    let mut command = Command::new(root.join(".venv/bin/python"));
    command.arg(dir.join(script)).current_dir(dir);
    command
}

fn output_of(mut command: Command, what: &str) -> String {
    let out = command
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_readme_redis_and_python_walkthrough_runs_from_its_text() {
    let root: PathBuf = workspace_root().canonicalize().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let deps = block(&readme, "```toml", "toml");
    let main_rs = block(&readme, "`src/main.rs`", "rust,ignore"); // built here, not as a doctest: it runs until Ctrl-C
    let shell = block(&readme, "Run it", "sh");
    let client_py = block(&readme, "`client.py`", "python");
    let server_py = block(&readme, "`server.py`", "python");

    let redis = RedisServer::start();
    let local = "redis://localhost:6379";
    for (name, text) in [("client.py", &client_py), ("server.py", &server_py)] {
        assert!(text.contains(local), "{name} no longer names {local}");
    }

    // The crate: the README's dependencies, clamator pointed at this checkout.
    let readme_path = "path = \"../clamator-rs/crates/clamator\"";
    assert!(
        deps.contains(readme_path),
        "README's clamator line changed: {deps}"
    );
    let deps = deps.replace(
        readme_path,
        &format!(
            "path = {:?}",
            root.join("crates/clamator").display().to_string()
        ),
    );
    let dir = std::env::temp_dir().join(format!("clamator-walkthrough-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"walkthrough\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n{deps}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), &main_rs).unwrap();
    std::fs::write(
        dir.join("client.py"),
        client_py.replace(local, &redis.url()),
    )
    .unwrap();
    std::fs::write(
        dir.join("server.py"),
        server_py.replace(local, &redis.url()),
    )
    .unwrap();
    // The versions the workspace is tested with (cargo drops what the crate does not use).
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = root.join("target/fresh-crate");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    output_of(build, "building the README's server in a new crate");

    // The Rust server, until SIGINT.
    let mut server = Command::new(target.join("debug/walkthrough"))
        .env("REDIS_URL", redis.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for_line(&mut server, "Ctrl-C stops", "the README's Rust server");

    // The CLI line of the README, as a shell runs it (the built `clamator` on PATH).
    let call = shell
        .lines()
        .find(|l| l.starts_with("clamator "))
        .expect("a `clamator` line in the walkthrough");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_clamator")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", call])
        .env("PATH", path)
        .env("REDIS_URL", redis.url());
    let printed = output_of(sh, call);
    let printed: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(printed, serde_json::json!({"sum": 5.0}), "{call}");

    // The Python 0.1.9 client, against the Rust server.
    let started = Instant::now();
    let printed = output_of(python(&root, &dir, "client.py"), "client.py → Rust server");
    assert_eq!(printed.trim(), "{'sum': 5.0}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "client.py took {:?}",
        started.elapsed()
    );

    // Ctrl-C stops the Rust server cleanly.
    let pid = nix_pid(&server);
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status =
        wait_timeout(&mut server, Duration::from_secs(15)).expect("server stops on SIGINT");
    assert!(status.success(), "the Rust server exited with {status}");

    // The Python 0.1.9 server answers the same client.
    let mut py_server = python(&root, &dir, "server.py")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its request waits in the stream until server.py reads it.
    let printed = output_of(
        python(&root, &dir, "client.py"),
        "client.py → Python server",
    );
    assert!(
        py_server.try_wait().unwrap().is_none(),
        "server.py exited early"
    );
    let _ = py_server.kill();
    let _ = py_server.wait();
    assert_eq!(printed.trim(), "{'sum': 5.0}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn nix_pid(child: &Child) -> String {
    child.id().to_string()
}

fn wait_timeout(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}
