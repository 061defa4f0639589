//! A TCP relay between a test's client or server and its broker, whose connections a test cuts:
//! one side's connection drops while everyone else's stays up (what a flaky network, a NAT
//! timeout or a load balancer does), and it can be kept down for a while.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Relays `127.0.0.1:<port>` to a target port, one pair of threads per connection.
///
/// [`cut`](Self::cut) drops every open connection (both directions, at once);
/// [`hold`](Self::hold) makes new connections close as soon as they are accepted until
/// [`release`](Self::release). Dropping the proxy stops it.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    open: Mutex<Vec<TcpStream>>,
    held: AtomicBool,
    stopped: AtomicBool,
}

impl Shared {
    fn cut(&self) {
        for s in self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl TcpProxy {
    /// Starts relaying a free port to `127.0.0.1:<target>`.
    pub fn to(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared::default());
        let accept = Arc::clone(&shared);
        std::thread::spawn(move || {
            for incoming in listener.incoming() {
                if accept.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = incoming else { continue };
                if accept.held.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
                    client.try_clone(),
                    upstream.try_clone(),
                    client.try_clone(),
                    upstream.try_clone(),
                ) else {
                    continue;
                };
                {
                    let mut open = accept.open.lock().unwrap_or_else(PoisonError::into_inner);
                    open.push(c3);
                    open.push(u3);
                }
                std::thread::spawn(move || pipe(client, upstream));
                std::thread::spawn(move || pipe(u2, c2));
            }
        });
        Self { port, shared }
    }

    /// The port to connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Drops every open connection; new ones are relayed again at once (unless held).
    pub fn cut(&self) {
        self.shared.cut();
    }

    /// Drops every open connection and refuses new ones until [`release`](Self::release).
    pub fn hold(&self) {
        self.shared.held.store(true, Ordering::SeqCst);
        self.shared.cut();
    }

    /// Relays new connections again.
    pub fn release(&self) {
        self.shared.held.store(false, Ordering::SeqCst);
    }

    /// [`hold`](Self::hold) for `down`, then [`release`](Self::release) (blocks the calling
    /// thread).
    pub fn cut_for(&self, down: Duration) {
        self.hold();
        std::thread::sleep(down);
        self.release();
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.cut();
        // wake the accept loop so it sees `stopped`
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
