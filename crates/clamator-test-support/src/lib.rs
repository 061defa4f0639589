//! Test support for clamator: a private `redis-server` on a free port, killed on drop, that
//! tests can stop and restart to simulate outages.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    extra_args: Vec<String>,
    dir: PathBuf,
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts `redis-server` on a free port with persistence off.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts `redis-server` with extra arguments (e.g. `--requirepass x`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("clamator-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create redis dir");
        let mut server = Self {
            port,
            child: None,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
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
        panic!("redis-server on port {} did not become ready", self.port);
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): every connection drops and all data is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: persistence is off).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
