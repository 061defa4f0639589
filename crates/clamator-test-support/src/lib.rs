//! Test support for clamator: a private `redis-server` (or `valkey-server`) on a free port,
//! killed on drop, that tests can kill, pause and restart to simulate outages.
//!
//! The engine is Redis unless `CLAMATOR_TEST_SERVER=valkey` (then the binary is
//! `$CLAMATOR_VALKEY_SERVER`, else `.tools/valkey/bin/valkey-server` of this workspace, which
//! `scripts/setup-valkey.sh` installs), or a test asks for one with [`RedisServer::builder`].

pub mod nats;
pub mod proxy;

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

    /// Starts the server and waits until it answers `PING`. A port found free can be taken by
    /// another test before the server binds it (or, in cluster mode, its bus port `port + 10000`
    /// can be in use): a server that exits before it is ready is started again on another port.
    pub fn start(self) -> RedisServer {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let cluster = self.extra_args.iter().any(|a| a == "--cluster-enabled");
        let mut exits = Vec::new();
        for _ in 0..5 {
            let port = loop {
                let port = free_port();
                // the cluster bus listens on port + 10000
                if !cluster
                    || (port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok())
                {
                    break port;
                }
            };
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
                extra_args: self.extra_args.clone(),
                dir,
                engine: self.engine,
                persistent: self.persistent,
            };
            server.spawn(&[]);
            match server.wait_ready_or_exit() {
                None => return server,
                Some(status) => {
                    let log =
                        std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                    let last = log.lines().last().unwrap_or("").to_owned();
                    exits.push(format!("port {port}: exited with {status}: {last}"));
                }
            }
        }
        panic!(
            "{} did not start on 5 free ports ({})",
            self.engine.binary().display(),
            exits.join("; ")
        );
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
            // its log, for the reason when it does not start (see `start`)
            .stdout(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("server.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
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

    /// [`RedisServer::wait_ready`], or the exit status of a server that ended before it was
    /// ready (its port taken between `free_port` and its bind).
    fn wait_ready_or_exit(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(status);
            }
            if self.answers_ping() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server on port {} did not become ready", self.port);
    }

    /// Whether the server answers `PING` with `PONG` (or `NOAUTH`).
    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).is_ok()
            && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
    }

    /// Waits until the server answers `PING` with `PONG` (or `NOAUTH`), i.e. it has finished
    /// loading its data.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.answers_ping() {
                return;
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

impl Engine {
    /// The command-line client that goes with the server (`redis-cli`, `valkey-cli`).
    pub fn cli(self) -> PathBuf {
        match self {
            Self::Redis => PathBuf::from("redis-cli"),
            Self::Valkey => self.binary().with_file_name("valkey-cli"),
        }
    }
}

impl RedisServer {
    /// Runs the engine's command-line client against this server and returns its output
    /// (`redis-cli -p <port> <args>`); panics when it cannot run.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(self.engine.cli())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{} must be installed ({e})", self.engine.cli().display()));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node id.
    pub id: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// A master (not failed).
    pub master: bool,
    /// Marked failed (`fail`) or unreachable by this observer (`fail?`).
    pub failed: bool,
    /// The id of its master, for a replica.
    pub master_id: Option<String>,
    /// The slot ranges it serves (inclusive).
    pub slots: Vec<(u16, u16)>,
}

/// A Redis Cluster of private servers on free loopback ports, torn down on drop: `masters`
/// masters, each with `replicas` replicas, `cluster-node-timeout` of 1 s so failovers are quick.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the servers, joins them with `redis-cli --cluster create … --cluster-replicas`,
    /// and waits until every node sees the cluster as `ok` with every slot served.
    pub fn start(masters: usize, replicas: usize) -> Self {
        Self::start_with(masters, replicas, Engine::from_env(), &[])
    }

    /// [`RedisCluster::start`] on this engine, with these extra arguments for every node
    /// (e.g. `--tls-port` and certificates; the nodes keep a plain port for the test support).
    /// A TLS port is given as `{tls-port}`: each node gets a free one.
    pub fn start_with(masters: usize, replicas: usize, engine: Engine, extra: &[&str]) -> Self {
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| {
                let tls_port = free_port().to_string();
                let extra: Vec<&str> = extra
                    .iter()
                    .map(|a| {
                        if *a == "{tls-port}" {
                            tls_port.as_str()
                        } else {
                            a
                        }
                    })
                    .collect();
                // the bus port defaults to port + 10000, out of range for an ephemeral port
                // above 55535 (Linux hands out up to 60999): choose it too
                let bus = free_port().to_string();
                RedisServer::builder()
                    .args(&[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus,
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                        // a replica of a killed master takes over however long it was cut off
                        "--cluster-replica-validity-factor",
                        "0",
                    ])
                    .args(&extra)
                    .engine(engine)
                    .start()
            })
            .collect();
        let engine = nodes[0].engine();
        let mut create = Command::new(engine.cli());
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let status = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        cluster.wait_ok(Duration::from_secs(30));
        cluster.wait_replicas_in_sync(Duration::from_secs(30));
        cluster
    }

    /// Seed URLs: every node's `redis://127.0.0.1:<port>`.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The servers, masters and replicas alike, in start order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The server on `port`.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
    }

    /// The server on `port`.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
    }

    /// A running node (for asking about the cluster).
    fn observer(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.pid().is_some() && n.cli(&["PING"]).trim() == "PONG")
            .expect("a running node")
    }

    /// `CLUSTER NODES` as one running node sees it.
    pub fn topology(&self) -> Vec<ClusterNode> {
        parse_cluster_nodes(&self.observer().cli(&["CLUSTER", "NODES"]))
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> u16 {
        self.observer()
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The master that serves `key`'s slot.
    /// A node's view can lag a handover for a moment (no master for the slot): this asks again
    /// for up to 10 s before it panics.
    pub fn master_of(&self, key: &str) -> ClusterNode {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(master) = self.try_master_of(key) {
                return master;
            }
            assert!(
                Instant::now() < deadline,
                "no master serves the slot of {key}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The live master that serves `key`'s slot, if any (none while a failed master's replica
    /// has not taken over yet).
    pub fn try_master_of(&self, key: &str) -> Option<ClusterNode> {
        let slot = self.slot(key);
        self.topology()
            .into_iter()
            .find(|n| n.master && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
    }

    /// The replicas of a master.
    pub fn replicas_of(&self, master_id: &str) -> Vec<ClusterNode> {
        self.topology()
            .into_iter()
            .filter(|n| n.master_id.as_deref() == Some(master_id) && !n.failed)
            .collect()
    }

    /// Waits until every running node says `cluster_state:ok` and the masters serve all
    /// 16384 slots.
    pub fn wait_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let running: Vec<&RedisServer> =
                self.nodes.iter().filter(|n| n.pid().is_some()).collect();
            let ok = running
                .iter()
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let served: usize = self
                .topology()
                .iter()
                .filter(|n| n.master && !n.failed)
                .flat_map(|n| n.slots.iter().map(|(a, b)| usize::from(b - a) + 1))
                .sum();
            if ok && served == 16384 {
                return;
            }
            assert!(Instant::now() < deadline, "cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every replica reports its link to its master up.
    pub fn wait_replicas_in_sync(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let topology = self.topology();
            let synced = topology.iter().filter(|n| !n.master && !n.failed).all(|n| {
                self.node(n.port)
                    .cli(&["INFO", "replication"])
                    .contains("master_link_status:up")
            });
            if synced {
                return;
            }
            assert!(Instant::now() < deadline, "replicas did not sync");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `CLUSTER FAILOVER` on a replica of the master serving `key`; waits until that replica is
    /// a master and the cluster is ok. Returns (old master, new master) ports.
    pub fn failover(&self, key: &str) -> (u16, u16) {
        let old = self.master_of(key);
        let replica = self
            .replicas_of(&old.id)
            .into_iter()
            .next()
            .expect("the master has a replica");
        assert_eq!(
            self.node(replica.port).cli(&["CLUSTER", "FAILOVER"]).trim(),
            "OK"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        // mid-failover a node may see the old master demoted before the new one's slots:
        // no master for the slot is a moment of the handover, not an error
        while self.try_master_of(key).map(|m| m.port) != Some(replica.port) {
            assert!(Instant::now() < deadline, "failover did not complete");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_ok(Duration::from_secs(30));
        (old.port, replica.port)
    }

    /// Moves one slot (its keys, with their consumer groups and pending entries) from its
    /// master to `to`, as `redis-cli --cluster reshard` does: `SETSLOT IMPORTING/MIGRATING`,
    /// `MIGRATE` of every key, `SETSLOT NODE` on both and on every other master.
    pub fn move_slot(&self, slot: u16, to: &ClusterNode) {
        let topology = self.topology();
        let from = topology
            .iter()
            .find(|n| n.master && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .expect("a master serves the slot")
            .clone();
        assert_ne!(from.id, to.id, "the slot is on that node already");
        let s = slot.to_string();
        let source = self.node(from.port);
        let target = self.node(to.port);
        target.cli(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &from.id]);
        source.cli(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &to.id]);
        loop {
            let keys = source.cli(&["CLUSTER", "GETKEYSINSLOT", &s, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.port.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            let out = source.cli(&args);
            assert!(out.contains("OK"), "MIGRATE failed: {out}");
        }
        for node in topology.iter().filter(|n| n.master && !n.failed) {
            self.node(node.port)
                .cli(&["CLUSTER", "SETSLOT", &s, "NODE", &to.id]);
        }
        self.wait_ok(Duration::from_secs(30));
    }
}

/// Parses `CLUSTER NODES`.
pub fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let port = f[1].split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let flags: Vec<&str> = f[2].split(',').collect();
            let failed = flags.iter().any(|x| *x == "fail" || *x == "fail?");
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|x| (x, x)),
                })
                .collect();
            Some(ClusterNode {
                id: f[0].to_owned(),
                port,
                master: flags.contains(&"master") && !failed,
                failed,
                master_id: (f[3] != "-").then(|| f[3].to_owned()),
                slots,
            })
        })
        .collect()
}

/// A `redis-server --sentinel` process.
#[derive(Debug)]
struct SentinelProcess {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A master, its replicas and three Sentinels monitoring it as `mymaster` (quorum 2,
/// `down-after-milliseconds` 1000), on free loopback ports, torn down on drop.
#[derive(Debug)]
pub struct RedisSentinels {
    nodes: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
}

impl RedisSentinels {
    /// The name the Sentinels monitor the master under.
    pub const MASTER: &'static str = "mymaster";

    /// Starts a master with `replicas` replicas and three Sentinels; waits until every
    /// Sentinel knows the replicas and the other Sentinels.
    pub fn start(replicas: usize) -> Self {
        let master = RedisServer::start();
        let mport = master.port().to_string();
        let mut nodes = vec![master];
        for _ in 0..replicas {
            nodes.push(RedisServer::start_with(&[
                "--replicaof",
                "127.0.0.1",
                &mport,
            ]));
        }
        let engine = nodes[0].engine();
        let sentinels: Vec<SentinelProcess> = (0..3)
            .map(|i| {
                let port = free_port();
                let dir = std::env::temp_dir().join(format!(
                    "clamator-sentinel-{port}-{}-{i}",
                    std::process::id()
                ));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("create sentinel dir");
                let conf = dir.join("sentinel.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor {m} 127.0.0.1 {mport} 2\n\
                         sentinel down-after-milliseconds {m} 1000\n\
                         sentinel failover-timeout {m} 5000\n",
                        dir.display(),
                        m = Self::MASTER,
                    ),
                )
                .expect("write sentinel.conf");
                let child = Command::new(engine.binary())
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start a sentinel");
                SentinelProcess { port, child, dir }
            })
            .collect();
        let set = Self { nodes, sentinels };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = set.sentinels.iter().all(|s| {
                let info = set.sentinel_cli(s.port, &["SENTINEL", "MASTER", Self::MASTER]);
                field_after(&info, "num-slaves") == Some(replicas.to_string())
                    && field_after(&info, "num-other-sentinels") == Some("2".into())
            });
            let synced = set.nodes[1..].iter().all(|n| {
                n.cli(&["INFO", "replication"])
                    .contains("master_link_status:up")
            });
            if ready && synced {
                return set;
            }
            assert!(Instant::now() < deadline, "sentinels did not see the set");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn sentinel_cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new(self.nodes[0].engine().cli())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("run the cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The Sentinels' URLs.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The master's port as the Sentinels say (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub fn master_port(&self) -> u16 {
        let out = self.sentinel_cli(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER],
        );
        out.lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .expect("the sentinel names a master")
    }

    /// The server on `port`.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of this set")
    }

    /// Waits until the Sentinels name a master other than `old` that answers as a master.
    pub fn wait_new_master(&self, old: u16, within: Duration) -> u16 {
        let deadline = Instant::now() + within;
        loop {
            let now = self.master_port();
            if now != old
                && self
                    .nodes
                    .iter()
                    .find(|n| n.port() == now)
                    .is_some_and(|n| n.cli(&["ROLE"]).starts_with("master"))
            {
                return now;
            }
            assert!(Instant::now() < deadline, "no new master within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `SENTINEL FAILOVER` (a replica is promoted, the master demoted); waits for it. Returns
    /// (old, new) master ports.
    pub fn failover(&self) -> (u16, u16) {
        let old = self.master_port();
        let out = self.sentinel_cli(
            self.sentinels[0].port,
            &["SENTINEL", "FAILOVER", Self::MASTER],
        );
        assert_eq!(out.trim(), "OK", "SENTINEL FAILOVER: {out}");
        let new = self.wait_new_master(old, Duration::from_secs(30));
        (old, new)
    }
}

/// In a flat `key\nvalue\n…` listing, the value after `key`.
fn field_after(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim() == key {
            return lines.next().map(|v| v.trim().to_owned());
        }
    }
    None
}

/// A CA and a server certificate for 127.0.0.1 signed by it (`ca.crt`, `server.crt`,
/// `server.key` in `dir`), by `openssl`.
pub fn generate_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=clamator-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}
