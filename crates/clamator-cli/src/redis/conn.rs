//! The CLI's own connection: one node, or a Redis Cluster (commands routed per key, `SCAN` run
//! on every master).

use clamator::redis::redis::{
    self,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    Cmd, Pipeline, RedisFuture, Value,
};

/// A connection to one node or to a cluster.
#[derive(Clone)]
pub enum RawConn {
    /// One node.
    Node(MultiplexedConnection),
    /// A cluster: the routed connection, and one connection per master for `SCAN`.
    Cluster {
        /// Routed per key.
        conn: ClusterConnection,
        /// One per master, in `CLUSTER NODES` order.
        masters: Vec<MultiplexedConnection>,
    },
}

impl std::fmt::Debug for RawConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node(_) => f.write_str("RawConn::Node"),
            Self::Cluster { masters, .. } => {
                write!(f, "RawConn::Cluster({} masters)", masters.len())
            }
        }
    }
}

impl ConnectionLike for RawConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster { conn, .. } => conn.req_packed_command(cmd),
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
            Self::Cluster { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster { .. } => 0,
        }
    }
}

/// The `host:port` of every master in `CLUSTER NODES` output.
fn masters_of(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = f.get(2)?;
            if !flags.split(',').any(|x| x == "master") || flags.contains("fail") {
                return None;
            }
            let addr = f.get(1)?.split('@').next()?;
            let (host, port) = addr.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

impl RawConn {
    /// Connects to one node.
    pub async fn node(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self::Node(client.get_multiplexed_async_connection().await?))
    }

    /// Connects to a cluster through its seed nodes, and to each of its masters (with the first
    /// seed's credentials and TLS settings).
    pub async fn cluster(seeds: &[String]) -> redis::RedisResult<Self> {
        let mut conn = ClusterClient::new(seeds.iter().map(String::as_str))?
            .get_async_connection()
            .await?;
        let nodes: String = redis::FromRedisValue::from_redis_value(
            conn.route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
            .await?,
        )?;
        let first = redis::IntoConnectionInfo::into_connection_info(seeds[0].as_str())?;
        let mut masters = Vec::new();
        for (host, port) in masters_of(&nodes) {
            let addr = match first.addr() {
                redis::ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => redis::ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => redis::ConnectionAddr::Tcp(host, port),
            };
            let client = redis::Client::open(first.clone().set_addr(addr))?;
            masters.push(client.get_multiplexed_async_connection().await?);
        }
        Ok(Self::Cluster { conn, masters })
    }

    /// Connects to the master that these Sentinels monitor as `master` (with the credentials of
    /// the first Sentinel URL).
    pub async fn sentinel(sentinels: &[String], master: &str) -> redis::RedisResult<Self> {
        let first = redis::IntoConnectionInfo::into_connection_info(sentinels[0].as_str())?;
        let node = redis::sentinel::SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone());
        // redis takes a `String` here, or `impl AsRef<str>` when its `tls-rustls` feature is on
        // (a workspace build that includes clamator-py): a `String` fits both.
        #[allow(clippy::unnecessary_to_owned)]
        let mut client = redis::sentinel::SentinelClient::build(
            sentinels.to_vec(),
            master.to_owned(),
            Some(node),
            redis::sentinel::SentinelServerType::Master,
        )?;
        let master = client.async_get_client().await?;
        Ok(Self::Node(master.get_multiplexed_async_connection().await?))
    }

    /// Every stream whose name matches `pattern` (on every master of a cluster), sorted:
    /// `SCAN … MATCH pattern COUNT 1000 TYPE stream`, so that walking a keyspace of a million
    /// unrelated keys takes about a thousand round trips (at `COUNT 10`, a hundred thousand) and
    /// only streams come back.
    pub async fn scan_streams(&mut self, pattern: &str) -> redis::RedisResult<Vec<String>> {
        let nodes = match self {
            Self::Node(c) => vec![c.clone()],
            Self::Cluster { masters, .. } => masters.clone(),
        };
        let mut keys: Vec<String> = Vec::new();
        for mut node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .arg("TYPE")
                    .arg("stream")
                    .query_async(&mut node)
                    .await?;
                keys.extend(page);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// Keys a `SCAN` call looks at.
const SCAN_COUNT: u32 = 1000;

#[cfg(test)]
mod tests {
    use super::masters_of;

    #[test]
    fn masters_come_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7002@17002 master,fail - 0 0 3 disconnected
d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected
";
        assert_eq!(
            masters_of(nodes),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
    }
}
