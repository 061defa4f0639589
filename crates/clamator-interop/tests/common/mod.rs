//! Process helpers shared by the interop tests: the Python venv, the TypeScript packages,
//! server processes of each language (READY on stdout, HANDLED on stderr after SIGTERM).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The language of a fixture process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Py,
    /// The `@clamator-rs/*` TypeScript packages (node/interop/*.mjs).
    Ts,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Py => "py",
            Self::Ts => "ts",
        }
    }
}

/// `node/interop/<file>` of the built TypeScript packages; a clear failure when they are not
/// built (`bash scripts/build-node.sh` builds the engine, the packages and the generated code;
/// the test command runs it before the Rust tests).
pub fn ts_driver(file: &str) -> PathBuf {
    let root = root();
    for needed in [
        "node/interop/generated/arith.js",
        "node/packages/over-redis/dist/index.js",
        "node/packages/engine-linux-x64-gnu/clamator-engine.linux-x64-gnu.node",
    ] {
        assert!(
            root.join(needed).exists(),
            "{needed} is missing: build the TypeScript packages first (bash scripts/build-node.sh)"
        );
    }
    root.join("node/interop").join(file)
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Runs `scripts/setup-python.sh` (the released Python clamator 0.1.9 in `.venv`) and returns
/// the venv's python.
///
/// `CLAMATOR_INTEROP_PYTHON=<python>` uses that interpreter instead (with
/// `CLAMATOR_PY_IMPL=rs`, the harness runs on the clamator-rs wheel installed there:
/// `scripts/test-python.sh`).
pub fn setup_python() -> PathBuf {
    if let Some(python) = std::env::var_os("CLAMATOR_INTEROP_PYTHON") {
        return PathBuf::from(python);
    }
    let root = root();
    let status = Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .status()
        .expect("run scripts/setup-python.sh");
    assert!(
        status.success(),
        "scripts/setup-python.sh failed: the Python side cannot be installed"
    );
    root.join(".venv/bin/python")
}

/// Runs `scripts/setup-valkey.sh` (valkey-server into `.tools/valkey`).
pub fn setup_valkey() {
    let status = Command::new("bash")
        .arg(root().join("scripts/setup-valkey.sh"))
        .status()
        .expect("run scripts/setup-valkey.sh");
    assert!(status.success(), "scripts/setup-valkey.sh failed");
}

/// Starts a fixture server (`clamator-interop-server` or `interop/py/server.py`) and waits for
/// its READY line.
pub fn spawn_server(
    lang: Lang,
    python: &Path,
    redis_url: &str,
    prefix: &str,
    instance: &str,
    claim_idle_ms: u64,
    extra: &[&str],
) -> Server {
    let py_dir = root().join("interop/py");
    let mut cmd = match lang {
        Lang::Rust => Command::new(env!("CARGO_BIN_EXE_clamator-interop-server")),
        Lang::Py => {
            let mut c = Command::new(python);
            c.arg(py_dir.join("server.py")).current_dir(&py_dir);
            c
        }
        Lang::Ts => {
            let mut c = Command::new("node");
            c.arg(ts_driver("server.mjs"));
            c
        }
    };
    cmd.args([
        "--redis-url",
        redis_url,
        "--prefix",
        prefix,
        "--instance-id",
        instance,
    ])
    .args(["--claim-idle-ms", &claim_idle_ms.to_string()])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn server");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = err_pipe.read_to_string(&mut buf);
        sink.lock().unwrap().push_str(&buf);
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("READY") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{lang:?} server {instance} did not print READY: {}",
            stderr.lock().unwrap()
        );
    }
    Server {
        child: Some(child),
        stderr,
        reader: Some(reader),
    }
}

/// A fixture server process, killed on drop.
pub struct Server {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// SIGTERM, wait (5 s, then SIGKILL) and return HANDLED.
    pub fn terminate(mut self) -> Option<u64> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let text = self.stderr.lock().unwrap().clone();
        text.lines().rev().find_map(|l| {
            l.trim()
                .strip_prefix("HANDLED:")
                .and_then(|n| n.parse().ok())
        })
    }

    /// SIGKILL: no cleanup, no ack.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
