//! Connections to one Redis node or to a Redis Cluster, behind one type.
//!
//! On one node the transport holds a `ConnectionManager` for commands and a dedicated
//! connection per blocking read. On a cluster it holds a `ClusterConnection` for commands
//! (routed per key, following `MOVED`/`ASK`) and a dedicated `ClusterConnection` per blocking
//! read, so a blocked `XREADGROUP` holds up nothing else. Pipelines cannot span hash slots on a
//! cluster: [`Conn::each`] splits them by slot and sends the parts at once.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use clamator_protocol::TransportError;
use futures::future::join_all;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value,
};

use crate::config::{redact_url, BLOCK, COMMAND_TIMEOUT, CONNECT_TIMEOUT};

/// A connection: commands (`Node`, `Cluster`) or blocking reads (`Blocking`, `Cluster`).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One node, reconnecting by itself.
    Node(ConnectionManager),
    /// One node, dedicated to blocking reads (the caller reconnects).
    Blocking(MultiplexedConnection),
    /// A Redis Cluster, routed per key.
    Cluster(ClusterConnection),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Node(_) => "Conn::Node",
            Self::Blocking(_) => "Conn::Blocking",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Blocking(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
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
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Blocking(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
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

async fn pipeline_results(conn: &mut Conn, cmds: &[&Cmd]) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for cmd in cmds {
        pipe.add_command((*cmd).clone());
    }
    pipe.query_async(conn).await
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
        if !self.is_cluster() {
            let all: Vec<&Cmd> = cmds.iter().collect();
            return pipeline_results(self, &all).await;
        }
        let mut groups: HashMap<Option<Slot>, Vec<usize>> = HashMap::new();
        for (i, cmd) in cmds.iter().enumerate() {
            groups.entry(slot_of(cmd)).or_default().push(i);
        }
        let parts = groups.into_values().map(|indexes| {
            let mut conn = self.clone();
            async move {
                let part: Vec<&Cmd> = indexes.iter().map(|&i| &cmds[i]).collect();
                let results = match pipeline_results(&mut conn, &part).await {
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
}

/// The clients of a cluster [`Connector`].
#[derive(Clone)]
pub(crate) struct ClusterClients {
    seeds: Vec<String>,
    commands: ClusterClient,
    blocking: ClusterClient,
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

    /// `host:port` of the server (the first seed of a cluster), for spans.
    pub(crate) fn server_address(&self) -> Option<String> {
        match self {
            Self::Node(c) => Some(c.get_connection_info().addr().to_string()),
            Self::Cluster(c) => {
                let first = c.seeds.first()?;
                let client = redis::Client::open(first.as_str()).ok()?;
                Some(client.get_connection_info().addr().to_string())
            }
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
                    .map_err(|e| TransportError::connection("redis connect failed", e))
            }
            Self::Cluster(c) => c
                .commands
                .get_async_connection()
                .await
                .map(Conn::Cluster)
                .map_err(|e| TransportError::connection("redis cluster connect failed", e)),
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
                    .map_err(|e| TransportError::connection("redis connect failed", e))
            }
            Self::Cluster(c) => c
                .blocking
                .get_async_connection()
                .await
                .map(Conn::Cluster)
                .map_err(|e| TransportError::connection("redis cluster connect failed", e)),
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
