//! Private `nats-server -js` processes: one server, or a JetStream cluster, on free ports with
//! their own store directories, that tests kill (SIGKILL) and restart.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::free_port;

/// The `nats-server` binary: `$CLAMATOR_NATS_SERVER`, else `nats-server` from `PATH`
/// (`scripts/ensure-deps.sh` installs it where it is missing).
pub fn nats_server_binary() -> PathBuf {
    std::env::var_os("CLAMATOR_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// A `nats-server` with JetStream, owned by a test.
#[derive(Debug)]
pub struct NatsServer {
    name: String,
    port: u16,
    cluster_port: Option<u16>,
    routes: Vec<u16>,
    store: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A name no other server started by this machine's tests has: process id and a counter.
fn unique(what: &str) -> String {
    format!(
        "{what}-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    )
}

fn fresh_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clamator-{}", unique(what)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a store dir");
    dir
}

impl NatsServer {
    /// Starts a single server on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with extra arguments (`--user`, `--tls`, …).
    pub fn start_with(args: &[&str]) -> Self {
        let mut server = Self {
            name: unique("n"),
            port: free_port(),
            cluster_port: None,
            routes: Vec::new(),
            store: fresh_dir("nats"),
            extra: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        server.spawn_on_a_free_port();
        server
    }

    /// First start: a port from [`free_port`] may be taken by someone else before
    /// `nats-server` binds it (another test's server, an outgoing connection); then our
    /// server exits and another one answers on the port. Detected by [`Self::spawn`], and
    /// the client port moves (the cluster port, named in the other nodes' routes, cannot).
    fn spawn_on_a_free_port(&mut self) {
        for _ in 0..5 {
            match self.spawn() {
                Ok(()) => return,
                Err(why) => {
                    eprintln!("nats-server {}: {why}; trying another port", self.name);
                    self.kill();
                    self.port = free_port();
                }
            }
        }
        panic!("nats-server {} could not start on a free port", self.name);
    }

    /// Launches the process and waits until *it* answers on the client port: the first
    /// line must be an `INFO` naming this server and this port, and the process must run.
    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(nats_server_binary());
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-n", &self.name])
            .arg("-sd")
            .arg(&self.store);
        if let Some(cluster_port) = self.cluster_port {
            let routes = self
                .routes
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",");
            cmd.args(["--cluster_name", "clamator-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cluster_port}")])
                .args(["--routes", &routes]);
        }
        let child = cmd
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be installed ({e}): bash scripts/ensure-deps.sh",
                    nats_server_binary().display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "exited at start ({status}); port {} taken?",
                    self.port
                ));
            }
            match self.probe() {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    return Err(format!(
                        "port {} answered by another server than ours",
                        self.port
                    ))
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(format!("did not answer on port {}: {e}", self.port)),
            }
        }
    }

    /// Reads the greeting on the client port: `Ok(true)` when it is this server's `INFO`.
    fn probe(&self) -> std::io::Result<bool> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        if !line.starts_with("INFO ") {
            // Not a NATS greeting: someone else's listener, or ours before it is ready.
            return Ok(false);
        }
        Ok(line.contains(&format!("\"server_name\":\"{}\"", self.name))
            && line.contains(&format!("\"port\":{},", self.port)))
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: connections drop; what JetStream had synced to its store survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits until it has exited: JetStream writes everything to its store first.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// The store directory (`-sd`): `<store>/jetstream/$G/streams/<stream>/` holds a stream
    /// of the default account, `msgs/` its messages and `obs/` its consumers' state.
    pub fn store_dir(&self) -> &std::path::Path {
        &self.store
    }

    /// Starts it again on the same port with the same store (what JetStream stored is back).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(why) = self.spawn() {
            panic!("nats-server {} did not restart: {why}", self.name);
        }
    }

    /// Starts it again on the same port with an empty store: a lost disk (every stream and
    /// consumer gone).
    pub fn restart_empty(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
        std::fs::create_dir_all(&self.store).expect("recreate the store dir");
        if let Err(why) = self.spawn() {
            panic!("nats-server {} did not restart: {why}", self.name);
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A JetStream cluster of `n` `nats-server`s routed to each other.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` nodes (3 for R3 streams) and waits until JetStream has a meta leader.
    pub fn start(n: usize) -> Self {
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes: Vec<NatsServer> = (0..n)
            .map(|i| NatsServer {
                name: format!("node{i}"),
                port: free_port(),
                cluster_port: Some(cluster_ports[i]),
                routes: cluster_ports.clone(),
                store: fresh_dir("nats-cluster"),
                extra: Vec::new(),
                child: None,
            })
            .collect();
        for node in &mut nodes {
            node.spawn_on_a_free_port();
        }
        Self { nodes }
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node_mut(&mut self, i: usize) -> &mut NatsServer {
        &mut self.nodes[i]
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use super::*;

    /// The CI flake this guards against: a port from `free_port` taken by another listener
    /// before `nats-server` binds it used to pass the readiness check (a TCP connect), and
    /// the test then talked to someone else's server.
    #[test]
    fn a_port_answered_by_another_server_is_detected_and_ours_moves() {
        let foreign = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = foreign.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in foreign.incoming() {
                let _ = stream.and_then(|mut s| {
                    s.write_all(b"INFO {\"server_name\":\"someone-else\",\"port\":1} \r\n")
                });
            }
        });
        let mut server = NatsServer {
            name: unique("n"),
            port: taken,
            cluster_port: None,
            routes: Vec::new(),
            store: fresh_dir("nats"),
            extra: Vec::new(),
            child: None,
        };
        server.spawn_on_a_free_port();
        assert_ne!(
            server.port(),
            taken,
            "still on the port someone else answers"
        );
        assert!(
            server.probe().unwrap(),
            "the port now answers with our own INFO"
        );
    }
}
