//! Test support for clamator: a private `redis-server` (or `valkey-server`) on a free port,
//! killed on drop, that tests can kill, pause and restart to simulate outages.
//!
//! The engine is Redis unless `CLAMATOR_TEST_SERVER=valkey` (then the binary is
//! `$CLAMATOR_VALKEY_SERVER`, else `.tools/valkey/bin/valkey-server` of this workspace, which
//! `scripts/setup-valkey.sh` installs), or a test asks for one with [`RedisServer::builder`].

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which server binary a [`RedisServer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// `redis-server` from `PATH`.
    Redis,
    /// `valkey-server` (see the crate docs for where it is found).
    Valkey,
}

impl Engine {
    /// The engine chosen by `CLAMATOR_TEST_SERVER` (`redis`, the default, or `valkey`).
    pub fn from_env() -> Self {
        match std::env::var("CLAMATOR_TEST_SERVER").as_deref() {
            Ok("valkey") => Self::Valkey,
            _ => Self::Redis,
        }
    }

    /// The path of the server binary.
    pub fn binary(self) -> PathBuf {
        match self {
            Self::Redis => PathBuf::from("redis-server"),
            Self::Valkey => std::env::var_os("CLAMATOR_VALKEY_SERVER")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join(".tools/valkey/bin/valkey-server")),
        }
    }

    /// Whether the binary can be run here.
    pub fn is_available(self) -> bool {
        Command::new(self.binary())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The root of this workspace.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `redis-server` (or `valkey-server`) process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    extra_args: Vec<String>,
    dir: PathBuf,
    engine: Engine,
    persistent: bool,
}

/// Options of a [`RedisServer`]; see [`RedisServer::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisServerBuilder {
    extra_args: Vec<String>,
    engine: Engine,
    persistent: bool,
}

impl RedisServerBuilder {
    /// Extra command-line arguments (e.g. `--requirepass x`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|s| (*s).to_owned()));
        self
    }

    /// The server binary (default: [`Engine::from_env`]).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Keep data across [`RedisServer::restart`]: AOF with `appendfsync always`.
    pub fn persistent(mut self) -> Self {
        self.persistent = true;
        self
    }

    /// Starts the server and waits until it answers `PING`.
    pub fn start(self) -> RedisServer {
        let port = free_port();
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clamator-redis-{port}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create redis dir");
        let mut server = RedisServer {
            port,
            child: None,
            extra_args: self.extra_args,
            dir,
            engine: self.engine,
            persistent: self.persistent,
        };
        server.spawn(&[]);
        server.wait_ready();
        server
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts a server on a free port with persistence off.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Starts a server with extra arguments (e.g. `--requirepass x`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::builder().args(extra_args).start()
    }

    /// Options: extra arguments, engine, persistence.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder {
            extra_args: Vec::new(),
            engine: Engine::from_env(),
            persistent: false,
        }
    }

    fn spawn(&mut self, once: &[&str]) {
        let (appendonly, fsync) = if self.persistent {
            ("yes", "always")
        } else {
            ("no", "everysec")
        };
        let child = Command::new(self.engine.binary())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                fsync,
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .args(once)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be installed ({e}); redis: apt-get install redis-server, valkey: bash scripts/setup-valkey.sh",
                    self.engine.binary().display()
                )
            });
        self.child = Some(child);
    }

    /// Waits until the server answers `PING` with `PONG` (or `NOAUTH`), i.e. it has finished
    /// loading its data.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                if stream.write_all(b"PING\r\n").is_ok() {
                    let mut line = String::new();
                    if BufReader::new(&stream).read_line(&mut line).is_ok()
                        && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
                    {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server on port {} did not become ready", self.port);
    }

    /// Waits until the server accepts connections (it may still be loading).
    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server on port {} is not listening",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL): every connection drops; without persistence all data is
    /// lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty unless persistent) and waits until it
    /// has loaded its data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(&[]);
        self.wait_ready();
    }

    /// Starts the server again with extra arguments for this run only, and returns as soon as
    /// it accepts connections (it may still be loading, answering `LOADING`).
    pub fn restart_listening_with(&mut self, once: &[&str]) {
        self.kill();
        self.spawn(once);
        self.wait_listening();
    }

    /// Sends raw commands (each a list of arguments) and returns the raw RESP replies, one
    /// line per reply's first line. For setting up data without a client library.
    pub fn raw(&self, commands: &[Vec<String>]) -> Vec<String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the test server");
        let mut out = Vec::new();
        for command in commands {
            write!(out, "*{}\r\n", command.len()).unwrap();
            for arg in command {
                write!(out, "${}\r\n{arg}\r\n", arg.len()).unwrap();
            }
        }
        stream.write_all(&out).expect("write commands");
        let mut reader = BufReader::new(stream);
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(read_reply(&mut reader));
        }
        replies
    }

    /// Writes `count` small string keys `fill:<n>` (to make loading after a restart take time
    /// with `--key-load-delay`).
    pub fn fill(&self, count: usize) {
        for chunk in (0..count).collect::<Vec<_>>().chunks(5000) {
            let commands: Vec<Vec<String>> = chunk
                .iter()
                .map(|i| vec!["SET".into(), format!("fill:{i}"), "x".repeat(32)])
                .collect();
            self.raw(&commands);
        }
    }
}

/// Reads one RESP reply and returns its first line (nested replies are consumed).
fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a reply");
    let line = line.trim_end().to_owned();
    match line.as_bytes().first() {
        Some(b'$') => {
            let n: i64 = line[1..].parse().unwrap_or(-1);
            if n >= 0 {
                let mut buf = vec![0; usize::try_from(n).unwrap_or(0) + 2];
                reader.read_exact(&mut buf).expect("read a bulk string");
            }
        }
        Some(b'*') => {
            let n: i64 = line[1..].parse().unwrap_or(-1);
            for _ in 0..n.max(0) {
                read_reply(reader);
            }
        }
        _ => {}
    }
    line
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
