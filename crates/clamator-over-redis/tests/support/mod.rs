//! Helpers shared by the Redis integration tests: raw connections, reading Redis back as
//! JSON, polling with a deadline, counting connections, capturing logs.
#![allow(dead_code, unreachable_pub, clippy::needless_pass_by_value)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clamator_protocol::{RpcError, RpcService};
use clamator_test_support::RedisServer;

pub mod load;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

/// A raw connection for setting up and reading back Redis state.
pub async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Runs a command and returns its reply as JSON (strings for bulk strings, numbers for ints).
pub async fn cmd_json(r: &redis::aio::MultiplexedConnection, args: &[&str]) -> Value {
    let mut r = r.clone();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let v: redis::Value = cmd.query_async(&mut r).await.unwrap();
    redis_to_json(v)
}

pub fn redis_to_json(v: redis::Value) -> Value {
    match v {
        redis::Value::Nil => Value::Null,
        redis::Value::Int(i) => json!(i),
        redis::Value::BulkString(b) => json!(String::from_utf8_lossy(&b)),
        redis::Value::SimpleString(s) => json!(s),
        redis::Value::Okay => json!("OK"),
        redis::Value::Array(a) | redis::Value::Set(a) => {
            Value::Array(a.into_iter().map(redis_to_json).collect())
        }
        redis::Value::Map(m) => Value::Array(
            m.into_iter()
                .flat_map(|(k, v)| [redis_to_json(k), redis_to_json(v)])
                .collect(),
        ),
        other => json!(format!("{other:?}")),
    }
}

/// Polls `f` every 20 ms until it holds; fails the test after `within`.
pub async fn eventually_within<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually_within`] 10 s.
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(10), f).await;
}

/// `XGROUP CREATE <stream> <group> $ MKSTREAM`.
pub async fn create_group(r: &redis::aio::MultiplexedConnection, stream: &str, group: &str) {
    let mut r = r.clone();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut r)
        .await
        .unwrap();
}

/// Connections open on the server, not counting the one asking.
pub async fn client_count(r: &redis::aio::MultiplexedConnection) -> usize {
    let mut r = r.clone();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut r)
        .await
        .unwrap();
    list.lines().count() - 1
}

/// Number of entries pending in a group.
pub async fn pending(r: &redis::aio::MultiplexedConnection, stream: &str, group: &str) -> i64 {
    let r = r.clone();
    let summary = cmd_json(&r, &["XPENDING", stream, group]).await;
    summary[0].as_i64().unwrap_or(0)
}

/// `XLEN`.
pub async fn xlen(r: &redis::aio::MultiplexedConnection, stream: &str) -> i64 {
    let mut r = r.clone();
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut r)
        .await
        .unwrap()
}

/// `PTTL` (-2: no key, -1: no TTL).
pub async fn pttl(r: &redis::aio::MultiplexedConnection, key: &str) -> i64 {
    let mut r = r.clone();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut r)
        .await
        .unwrap()
}

/// A field of `INFO commandstats` for a command, e.g. `("xadd", "rejected_calls")`.
pub async fn command_stat(r: &redis::aio::MultiplexedConnection, cmd: &str, field: &str) -> u64 {
    let mut r = r.clone();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut r)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{cmd}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|stats| {
            stats.split(',').find_map(|kv| {
                kv.strip_prefix(&format!("{field}="))
                    .and_then(|v| v.parse().ok())
            })
        })
        .unwrap_or(0)
}

/// `XADD <stream> * type rpc envelope <request> [reply-to <to>] [extra fields...]`: a request
/// as any 0.1.9 client (or an attacker) would write it.
pub async fn raw_request(
    r: &redis::aio::MultiplexedConnection,
    stream: &str,
    envelope: &Value,
    reply_to: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let mut r = r.clone();
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("*")
        .arg("type")
        .arg("rpc")
        .arg("envelope")
        .arg(envelope.to_string());
    if let Some(to) = reply_to {
        cmd.arg("reply-to").arg(to);
    }
    for (k, v) in extra {
        cmd.arg(*k).arg(*v);
    }
    cmd.query_async(&mut r).await.unwrap()
}

/// Reads the replies in a reply stream, as JSON envelopes.
pub async fn replies(r: &redis::aio::MultiplexedConnection, stream: &str) -> Vec<Value> {
    let r = r.clone();
    let entries = cmd_json(&r, &["XRANGE", stream, "-", "+"]).await;
    entries
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    let fields = e[1].as_array()?;
                    let pos = fields.iter().position(|f| f == "envelope")?;
                    serde_json::from_str(fields.get(pos + 1)?.as_str()?).ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the `svc` test service saw.
#[derive(Debug)]
pub struct Probe {
    /// Handler runs (every method).
    pub runs: AtomicUsize,
    /// Runs of `gate` that were cancelled (their future dropped) before finishing.
    pub abandoned: AtomicUsize,
    /// Runs of `gate` that finished.
    pub finished: AtomicUsize,
    started_tx: mpsc::UnboundedSender<Value>,
    started_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    release: Semaphore,
}

impl Probe {
    pub fn new() -> Arc<Self> {
        let (started_tx, started_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            runs: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            started_tx,
            started_rx: tokio::sync::Mutex::new(started_rx),
            release: Semaphore::new(0),
        })
    }

    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// Waits until a `gate` handler has started; returns its params.
    pub async fn started(&self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), async {
            self.started_rx.lock().await.recv().await.unwrap()
        })
        .await
        .expect("a gate handler started")
    }

    /// Lets `n` waiting (or future) `gate` handlers finish.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }
}

struct AbandonGuard(Arc<Probe>, bool);

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if self.1 {
            self.0.finished.fetch_add(1, Ordering::SeqCst);
        } else {
            self.0.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Service `svc`: `echo` returns its params; `gate` reports that it started and waits for
/// [`Probe::release`]; `slow` sleeps `{"ms": n}`; `note` is a notification. All count runs.
pub fn service(probe: &Arc<Probe>) -> RpcService {
    let (p1, p2, p3, p4) = (probe.clone(), probe.clone(), probe.clone(), probe.clone());
    RpcService::builder("svc")
        .raw_method("echo", json!({}), json!({}), move |p: Value| {
            p1.runs.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, RpcError>(p) }
        })
        .raw_method("gate", json!({}), json!({}), move |p: Value| {
            let probe = p2.clone();
            async move {
                probe.runs.fetch_add(1, Ordering::SeqCst);
                let mut guard = AbandonGuard(probe.clone(), false);
                let _ = probe.started_tx.send(p.clone());
                probe.release.acquire().await.unwrap().forget();
                guard.1 = true;
                Ok::<_, RpcError>(p)
            }
        })
        .raw_method("slow", json!({}), json!({}), move |p: Value| {
            p3.runs.fetch_add(1, Ordering::SeqCst);
            async move {
                let ms = p["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, RpcError>(p)
            }
        })
        .raw_notification("note", json!({}), move |_p: Value| {
            p4.runs.fetch_add(1, Ordering::SeqCst);
            async {}
        })
        .build()
        .unwrap()
}

/// A request envelope for `svc.<method>`.
pub fn request(method: &str, id: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": format!("svc.{method}"), "params": params, "id": id})
}

/// Log lines captured by [`capture_logs`].
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures `debug` and above on this thread (use a current-thread runtime) until the guard
/// drops.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// A TCP proxy in front of a Redis server that can cut a connection right after forwarding a
/// command, before its reply comes back: the client cannot know whether it ran.
pub struct CuttingProxy {
    pub port: u16,
    /// When set, the next client write containing this text is forwarded, and then the
    /// connection is closed without the reply.
    pub cut_after: Arc<Mutex<Option<Vec<u8>>>>,
    /// How many connections were cut.
    pub cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    pub async fn start(redis_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut_after: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let cuts = Arc::new(AtomicUsize::new(0));
        let (c2, n2) = (cut_after.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (cut_after, cuts) = (c2.clone(), n2.clone());
                tokio::spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    // set before the command goes up: no reply comes down any more
                    let cutting = std::sync::atomic::AtomicBool::new(false);
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let cut = {
                                let mut c = cut_after.lock().unwrap();
                                let hit = c.as_ref().is_some_and(|pat| {
                                    buf[..n].windows(pat.len()).any(|w| w == pat.as_slice())
                                });
                                if hit {
                                    *c = None;
                                }
                                hit
                            };
                            cutting.fetch_or(cut, Ordering::SeqCst);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            if cut {
                                // let Redis run it, then drop both sides: its reply is lost
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                cuts.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if cutting.load(Ordering::SeqCst) {
                                std::future::pending::<()>().await;
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    // whichever side ends first closes the connection
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
            }
        });
        Self {
            port,
            cut_after,
            cuts,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// What a server needs (README, "Least-privilege ACL").
pub const SERVER_ACL: &[&str] = &[
    "+xgroup|create",
    "+xgroup|delconsumer",
    "+xreadgroup",
    "+xack",
    "+xdel",
    "+xadd",
    "+xclaim",
    "+xpending",
    "+xinfo|consumers",
    "+pexpire",
    "+evalsha",
    "+eval",
    "+client|id",
    "+client|unblock",
    "+time",
];
/// What a client needs.
pub const CLIENT_ACL: &[&str] = &["+xadd", "+xread", "+xrange", "+xtrim", "+pexpire", "+del"];

/// A CA and a server certificate for 127.0.0.1 (see the test support).
#[cfg(feature = "tls")]
pub fn generate_certs(dir: &std::path::Path) {
    clamator_test_support::generate_certs(dir);
}
