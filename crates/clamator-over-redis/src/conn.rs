//! Connections to one Redis node or to a Redis Cluster, behind one type.
//!
//! On one node the transport holds a `ConnectionManager` for commands and a dedicated
//! connection per blocking read. On a cluster it holds a `ClusterConnection` for commands
//! (routed per key, following `MOVED`/`ASK`) and a dedicated `ClusterConnection` per blocking
//! read, so a blocked `XREADGROUP` holds up nothing else. Pipelines cannot span hash slots on a
//! cluster: [`Conn::each`] splits them by slot and sends the parts at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clamator_protocol::TransportError;
use futures::future::join_all;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, IntoConnectionInfo, Pipeline, RedisFuture,
    RedisResult, Value,
};

use crate::settings::{Durability, BLOCK, COMMAND_TIMEOUT, CONNECT_TIMEOUT};
use clamator_protocol::transport::redact_url;

/// A connection: commands (`Node`, `Cluster`) or blocking reads (`Blocking`, `Cluster`).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One node, reconnecting by itself.
    Node(ConnectionManager),
    /// One node, dedicated to blocking reads (the caller reconnects).
    Blocking(MultiplexedConnection),
    /// A Redis Cluster, routed per key.
    Cluster(ClusterConnection),
    /// The master that Sentinel names, found again after a failover.
    Sentinel(SentinelConn),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Node(_) => "Conn::Node",
            Self::Blocking(_) => "Conn::Blocking",
            Self::Cluster(_) => "Conn::Cluster",
            Self::Sentinel(_) => "Conn::Sentinel",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Blocking(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(c) => Box::pin(c.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Blocking(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(c) => Box::pin(c.pipeline(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Blocking(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Sentinel(_) => 0,
        }
    }
}

/// The key a command of this transport works on: the first argument after the command name,
/// the second after a subcommand (`XINFO CONSUMERS <key>`, `XGROUP CREATE <key>`), the first key
/// of a script (`EVAL <body> <n> <key>`); `None` for keyless commands.
fn key_of(cmd: &Cmd) -> Option<Vec<u8>> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            redis::Arg::Simple(a) => Some(a),
            _ => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let at = match name.as_slice() {
        b"XINFO" | b"XGROUP" | b"OBJECT" => 2,
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if keys == 0 {
                return None;
            }
            3
        }
        b"TIME" | b"INFO" | b"PING" | b"CLIENT" | b"WAIT" | b"SCAN" => return None,
        _ => 1,
    };
    args.get(at).map(|k| k.to_vec())
}

/// The hash slot of a command's key; `None` for keyless commands.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    key_of(cmd).map(Slot::for_key)
}

/// Errors after which a command that was sent in a pipeline is sent again on its own: the
/// node did not run it and told where the key is (`MOVED`, `ASK`), which a single command
/// follows.
fn redirected(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("MOVED" | "ASK"))
}

async fn pipeline_results(
    conn: &mut Conn,
    cmds: &[&Cmd],
    durability: Option<Durability>,
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in cmds {
        pipe.add_command((*cmd).clone());
    }
    let Some(durability) = durability else {
        return pipe.query_async(conn).await;
    };
    pipe.add_command(durability.wait_cmd());
    let mut results: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    let reached = match results.pop() {
        Some(Ok(Value::Int(n))) => n,
        Some(Err(e)) => return Err(e),
        _ => 0,
    };
    if let Err(e) = durability.check(reached) {
        for r in &mut results {
            if r.is_ok() {
                *r = Err(e.clone());
            }
        }
    }
    Ok(results)
}

impl Conn {
    /// Whether this is a cluster connection.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `cmds` and returns each one's result, in their order. On one node: one pipeline,
    /// one round trip (`Err` when the round trip failed). On a cluster: one pipeline per hash
    /// slot, all sent at once; a slot whose round trip failed gives its error to each of its
    /// commands, and a command redirected (`MOVED`/`ASK`, a slot moving) is sent again on its
    /// own, following the redirection.
    pub(crate) async fn each(&mut self, cmds: &[Cmd]) -> RedisResult<Vec<RedisResult<Value>>> {
        self.each_replicated(cmds, None).await
    }

    /// [`Conn::each`], and with `durability` a `WAIT` after the commands of each node: when it
    /// reports fewer replicas than asked for, each command that succeeded there gives a
    /// `NOTREPLICATED` error instead (it was run, but is not yet safe from a failover).
    pub(crate) async fn each_replicated(
        &mut self,
        cmds: &[Cmd],
        durability: Option<Durability>,
    ) -> RedisResult<Vec<RedisResult<Value>>> {
        if !self.is_cluster() {
            let all: Vec<&Cmd> = cmds.iter().collect();
            return pipeline_results(self, &all, durability).await;
        }
        let mut groups: HashMap<Option<Slot>, Vec<usize>> = HashMap::new();
        for (i, cmd) in cmds.iter().enumerate() {
            groups.entry(slot_of(cmd)).or_default().push(i);
        }
        let parts = groups.into_values().map(|indexes| {
            let mut conn = self.clone();
            async move {
                let part: Vec<&Cmd> = indexes.iter().map(|&i| &cmds[i]).collect();
                let wait = durability.filter(|_| slot_of(part[0]).is_some());
                let results = match pipeline_results(&mut conn, &part, wait).await {
                    Ok(results) => results,
                    Err(e) => indexes.iter().map(|_| Err(e.clone())).collect(),
                };
                let mut out = Vec::with_capacity(indexes.len());
                for (&i, result) in indexes.iter().zip(results) {
                    let result = match result {
                        Err(e) if redirected(&e) => cmds[i].query_async(&mut conn).await,
                        other => other,
                    };
                    out.push((i, result));
                }
                out
            }
        });
        let mut results: Vec<Option<RedisResult<Value>>> = (0..cmds.len()).map(|_| None).collect();
        for (i, result) in join_all(parts).await.into_iter().flatten() {
            results[i] = Some(result);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(Value::Nil)))
            .collect())
    }

    /// A command about the server as a whole (`INFO`, `TIME`): on a cluster, one primary's
    /// answer.
    pub(crate) async fn any_node<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Self::Cluster(c) => {
                let value = c
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                    )
                    .await?;
                T::from_redis_value(value).map_err(Into::into)
            }
            _ => cmd.query_async(self).await,
        }
    }

    /// A keyless command (`CLIENT ID`, `CLIENT UNBLOCK`) on the node that owns `key`.
    pub(crate) async fn at_key<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match self {
            Self::Cluster(c) => {
                let route = redis::cluster_routing::Route::with_key(
                    key,
                    redis::cluster_routing::SlotAddr::Master,
                );
                let value = c
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                T::from_redis_value(value).map_err(Into::into)
            }
            _ => cmd.query_async(self).await,
        }
    }
}

/// What the Sentinel connections of one transport share: the Sentinel client and the
/// connection to the master it named last.
pub(crate) struct SentinelState {
    sentinels: Vec<String>,
    master_name: String,
    client: tokio::sync::Mutex<SentinelClient>,
    /// The master's address and the connection to it.
    current: Mutex<Option<(String, ConnectionManager)>>,
    /// When the master was last asked for (refreshes closer together than this are skipped).
    refreshed: Mutex<Option<Instant>>,
}

/// Refreshes of the master's address are at least this far apart.
const SENTINEL_REFRESH: Duration = Duration::from_millis(250);

impl SentinelState {
    /// A client for the master the Sentinels name now.
    async fn master_client(&self) -> RedisResult<redis::Client> {
        self.client.lock().await.async_get_client().await
    }

    fn current(&self) -> Option<(String, ConnectionManager)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the Sentinels for the master and connects to it if it moved (or on the first
    /// call). `after` is the error that made the caller ask, for the log.
    async fn refresh(&self, after: Option<&redis::RedisError>) -> RedisResult<()> {
        {
            let mut refreshed = self
                .refreshed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.current().is_some()
                && refreshed.is_some_and(|at| at.elapsed() < SENTINEL_REFRESH)
            {
                return Ok(());
            }
            *refreshed = Some(Instant::now());
        }
        let client = self.master_client().await?;
        let addr = client.get_connection_info().addr().to_string();
        if self.current().is_some_and(|(a, _)| a == addr) {
            return Ok(());
        }
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let manager = client.get_connection_manager_with_config(config).await?;
        let before = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace((addr.clone(), manager))
            .map(|(a, _)| a);
        if let Some(before) = before {
            tracing::warn!(master = %self.master_name, from = %before, to = %addr, error = ?after.map(ToString::to_string),
                "redis sentinel: the master moved; commands go to the new master");
        }
        Ok(())
    }
}

/// A command connection to the master a set of Sentinels names. A command that fails because
/// the connection is gone or the node is no longer a master (`READONLY`) makes it ask the
/// Sentinels again; the command itself fails (the transport retries as on one node).
#[derive(Clone)]
pub(crate) struct SentinelConn {
    state: Arc<SentinelState>,
}

/// Errors after which the master may have moved.
fn master_may_have_moved(e: &redis::RedisError) -> bool {
    crate::errors::is_connection_error(e) || matches!(e.code(), Some("READONLY" | "MASTERDOWN"))
}

impl SentinelConn {
    async fn manager(&self) -> RedisResult<ConnectionManager> {
        if let Some((_, manager)) = self.state.current() {
            return Ok(manager);
        }
        self.state.refresh(None).await?;
        self.state
            .current()
            .map(|(_, m)| m)
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Io, "no master")))
    }

    async fn after<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result {
            if master_may_have_moved(e) {
                if let Err(error) = self.state.refresh(Some(e)).await {
                    tracing::debug!(%error, "redis sentinel: could not ask for the master");
                }
            }
        }
        result
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut manager = self.manager().await?;
        let result = manager.req_packed_command(cmd).await;
        self.after(result).await
    }

    async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut manager = self.manager().await?;
        let result = manager.req_packed_commands(pipeline, offset, count).await;
        self.after(result).await
    }
}

/// Opens connections of one kind of deployment (cloned once per reconnecting loop, never on
/// a hot path).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Connector {
    /// One node.
    Node(redis::Client),
    /// A Redis Cluster: one client for commands, one for blocking reads (a longer response
    /// timeout).
    Cluster(ClusterClients),
    /// The master a set of Sentinels names.
    Sentinel(Arc<SentinelState>),
}

/// The clients of a cluster [`Connector`].
#[derive(Clone)]
pub(crate) struct ClusterClients {
    seeds: Vec<String>,
    commands: ClusterClient,
    blocking: ClusterClient,
}

impl Connector {
    /// Where it connects, for error messages: `host:port` of a node, the redacted URLs of a
    /// cluster's seeds or of the Sentinels (never a password).
    fn endpoints(&self) -> String {
        match self {
            Self::Node(c) => c.get_connection_info().addr().to_string(),
            Self::Cluster(c) => c
                .seeds
                .iter()
                .map(|s| redact_url(s))
                .collect::<Vec<_>>()
                .join(", "),
            Self::Sentinel(s) => format!(
                "master {:?} of the Sentinels {}",
                s.master_name,
                s.sentinels
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A connection error that names where it tried to connect.
    fn connect_error(&self, context: &'static str, e: &redis::RedisError) -> TransportError {
        TransportError::connection(
            context,
            format!("{}: {}", self.endpoints(), crate::errors::describe(e)),
        )
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(c) => f
                .debug_tuple("Node")
                .field(&format_args!("{}", c.get_connection_info().addr()))
                .finish(),
            Self::Cluster(c) => f
                .debug_tuple("Cluster")
                .field(&c.seeds.iter().map(|s| redact_url(s)).collect::<Vec<_>>())
                .finish(),
            Self::Sentinel(s) => f
                .debug_struct("Sentinel")
                .field("master", &s.master_name)
                .field(
                    "sentinels",
                    &s.sentinels
                        .iter()
                        .map(|s| redact_url(s))
                        .collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

/// How often and how long a cluster connection retries a command (a failover, a moved slot)
/// before it reports the error: 8 times, 50 ms doubling to 1 s.
fn cluster_client(seeds: &[String], response_timeout: Duration) -> RedisResult<ClusterClient> {
    ClusterClientBuilder::new(seeds.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(response_timeout)
        .retries(8)
        .min_retry_wait(50)
        .max_retry_wait(1000)
        .build()
}

impl Connector {
    /// A cluster reached through these seed nodes (`redis://[user:password@]host:port`).
    pub(crate) fn cluster(seeds: Vec<String>) -> Result<Self, TransportError> {
        if seeds.is_empty() {
            return Err(TransportError::Config(
                "redis_cluster needs at least one seed node URL".into(),
            ));
        }
        let shown = || {
            seeds
                .iter()
                .map(|s| redact_url(s))
                .collect::<Vec<_>>()
                .join(",")
        };
        let commands = cluster_client(&seeds, COMMAND_TIMEOUT).map_err(|e| {
            TransportError::Config(format!("invalid redis cluster seeds {}: {e}", shown()))
        })?;
        let blocking = cluster_client(&seeds, BLOCK + COMMAND_TIMEOUT).map_err(|e| {
            TransportError::Config(format!("invalid redis cluster seeds {}: {e}", shown()))
        })?;
        Ok(Self::Cluster(ClusterClients {
            seeds,
            commands,
            blocking,
        }))
    }

    /// The master named `master_name` by these Sentinels (`redis://[user:password@]host:port`
    /// each). The master is reached with the credentials of the first Sentinel URL.
    pub(crate) fn sentinel(
        sentinels: Vec<String>,
        master_name: String,
    ) -> Result<Self, TransportError> {
        if sentinels.is_empty() || master_name.is_empty() {
            return Err(TransportError::Config(
                "redis_sentinel needs at least one Sentinel URL and the master's name".into(),
            ));
        }
        let shown = sentinels
            .iter()
            .map(|s| redact_url(s))
            .collect::<Vec<_>>()
            .join(",");
        let invalid = |e: redis::RedisError| {
            TransportError::Config(format!("invalid redis sentinel URLs {shown}: {e}"))
        };
        let first = sentinels[0]
            .as_str()
            .into_connection_info()
            .map_err(invalid)?;
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone());
        let client = SentinelClient::build(
            sentinels.clone(),
            master_name.clone(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(invalid)?;
        Ok(Self::Sentinel(Arc::new(SentinelState {
            sentinels,
            master_name,
            client: tokio::sync::Mutex::new(client),
            current: Mutex::new(None),
            refreshed: Mutex::new(None),
        })))
    }

    /// `host:port` of the server (the first seed of a cluster), for spans.
    pub(crate) fn server_address(&self) -> Option<String> {
        match self {
            Self::Node(c) => Some(c.get_connection_info().addr().to_string()),
            Self::Cluster(c) => {
                let first = c.seeds.first()?;
                let client = redis::Client::open(first.as_str()).ok()?;
                Some(client.get_connection_info().addr().to_string())
            }
            Self::Sentinel(s) => s.current().map(|(addr, _)| addr),
        }
    }

    /// The shared, auto-reconnecting connection for non-blocking commands.
    pub(crate) async fn commands(&self) -> Result<Conn, TransportError> {
        match self {
            Self::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                client
                    .get_connection_manager_with_config(config)
                    .await
                    .map(Conn::Node)
                    .map_err(|e| self.connect_error("redis connect failed", &e))
            }
            Self::Cluster(c) => c
                .commands
                .get_async_connection()
                .await
                .map(Conn::Cluster)
                .map_err(|e| self.connect_error("redis cluster connect failed", &e)),
            Self::Sentinel(s) => {
                s.refresh(None)
                    .await
                    .map_err(|e| self.connect_error("redis sentinel: no master", &e))?;
                Ok(Conn::Sentinel(SentinelConn {
                    state: Arc::clone(s),
                }))
            }
        }
    }

    /// A dedicated connection for blocking reads: its response timeout outlasts `BLOCK`.
    pub(crate) async fn blocking(&self) -> Result<Conn, TransportError> {
        match self {
            Self::Node(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(Some(BLOCK + COMMAND_TIMEOUT))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Blocking)
                    .map_err(|e| self.connect_error("redis connect failed", &e))
            }
            Self::Cluster(c) => c
                .blocking
                .get_async_connection()
                .await
                .map(Conn::Cluster)
                .map_err(|e| self.connect_error("redis cluster connect failed", &e)),
            Self::Sentinel(s) => {
                let client = s
                    .master_client()
                    .await
                    .map_err(|e| self.connect_error("redis sentinel: no master", &e))?;
                Box::pin(Self::Node(client).blocking()).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_commands_the_transport_pipelines() {
        let key = |args: &[&str]| {
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            key_of(&cmd).map(|k| String::from_utf8(k).unwrap())
        };
        assert_eq!(
            key(&["XADD", "p:replies:c", "*", "type", "rpc"]).as_deref(),
            Some("p:replies:c")
        );
        assert_eq!(
            key(&["XACK", "p:cmds:s", "s", "1-1"]).as_deref(),
            Some("p:cmds:s")
        );
        assert_eq!(
            key(&["PEXPIRE", "p:replies:c", "10"]).as_deref(),
            Some("p:replies:c")
        );
        assert_eq!(
            key(&["XINFO", "CONSUMERS", "p:cmds:s", "s"]).as_deref(),
            Some("p:cmds:s")
        );
        assert_eq!(
            key(&["XGROUP", "DELCONSUMER", "p:cmds:s", "s", "c"]).as_deref(),
            Some("p:cmds:s")
        );
        assert_eq!(
            key(&["EVALSHA", "abc", "1", "p:cmds:s", "s"]).as_deref(),
            Some("p:cmds:s")
        );
        assert_eq!(key(&["EVAL", "return 0", "0"]), None);
        assert_eq!(key(&["TIME"]), None);
        // the same slot as redis-cli's CLUSTER KEYSLOT
        assert_eq!(
            slot_of(&redis::cmd("GET").arg("foo").clone()),
            Slot::new(12182)
        );
    }
}
