//! Who consumes a service's command stream: what `call` says on a timeout and `notify` warns
//! about, so that a wrong `--prefix` or a stopped server is named instead of a bare timeout.

use clamator::redis::command_stream;
use clamator::redis::redis::{self, Value};

use super::conn::RawConn;

/// A consumer of the service's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// `<service>:<instance>`.
    pub name: String,
    /// Entries delivered to it and not acked.
    pub pending: u64,
    /// Milliseconds since it last talked to Redis.
    pub idle_ms: u64,
}

/// What Redis says about the readers of `<prefix>:cmds:<service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readers {
    /// The stream does not exist: nothing ever served the service under this prefix.
    NoStream,
    /// The stream exists but no server of the service ever read it.
    NoGroup,
    /// The group's consumers (empty: no server reads it now).
    Consumers(Vec<Consumer>),
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn fields(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Array(a) => a
            .chunks(2)
            .filter_map(|p| Some((text(p.first()?)?, p.get(1)?.clone())))
            .collect(),
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

fn int(v: Option<&Value>) -> u64 {
    v.and_then(text).and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// Reads `XINFO GROUPS` / `XINFO CONSUMERS` of the service's command stream.
pub async fn readers(
    conn: &mut RawConn,
    prefix: &str,
    service: &str,
) -> redis::RedisResult<Readers> {
    let stream = command_stream(prefix, service);
    let groups: Value = match redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&stream)
        .query_async(conn)
        .await
    {
        Ok(v) => v,
        Err(e) if e.to_string().contains("no such key") => return Ok(Readers::NoStream),
        Err(e) => return Err(e),
    };
    let Value::Array(groups) = groups else {
        return Ok(Readers::NoGroup);
    };
    let has_group = groups.iter().any(|g| {
        fields(g)
            .iter()
            .any(|(k, v)| k == "name" && text(v).as_deref() == Some(service))
    });
    if !has_group {
        return Ok(Readers::NoGroup);
    }
    let consumers: Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&stream)
        .arg(service)
        .query_async(conn)
        .await?;
    let Value::Array(consumers) = consumers else {
        return Ok(Readers::Consumers(Vec::new()));
    };
    Ok(Readers::Consumers(
        consumers
            .iter()
            .map(|c| {
                let f = fields(c);
                let get = |name: &str| f.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                Consumer {
                    name: get("name").and_then(text).unwrap_or_default(),
                    pending: int(get("pending")),
                    idle_ms: int(get("idle")),
                }
            })
            .collect(),
    ))
}

impl Readers {
    /// Whether nobody will read what is sent now.
    pub fn nobody(&self) -> bool {
        match self {
            Self::NoStream | Self::NoGroup => true,
            Self::Consumers(c) => c.is_empty(),
        }
    }

    /// A sentence for the user: what Redis shows and the likely mistake.
    pub fn explain(&self, prefix: &str, service: &str) -> String {
        let stream = command_stream(prefix, service);
        match self {
            Self::NoStream => format!(
                "no stream {stream}: nothing has ever served `{service}` under prefix `{prefix}` \
                 (check --prefix / CLAMATOR_PREFIX and the service name; `clamator --prefix {prefix} inspect` lists what is there)"
            ),
            Self::NoGroup => format!(
                "no consumer group {service} on {stream}: no server of `{service}` has ever read it \
                 (is one running with prefix `{prefix}`? check --prefix / CLAMATOR_PREFIX and the service name; \
                 `clamator --prefix {prefix} inspect` lists what is there)"
            ),
            Self::Consumers(c) if c.is_empty() => format!(
                "group {service} on {stream} has no consumers: no server of `{service}` reads it now"
            ),
            Self::Consumers(c) => {
                let list: Vec<String> = c
                    .iter()
                    .map(|c| format!("consumer {} idle {} ms, {} pending", c.name, c.idle_ms, c.pending))
                    .collect();
                format!(
                    "{stream} is read by: {}; a server idle for long is stopped or stuck, one with many pending is busy (a longer --timeout may do)",
                    list.join("; ")
                )
            }
        }
    }
}

/// Why Redis refused the credentials in `url`, in the server's own words (`WRONGPASS invalid
/// username-password pair or user is disabled.`, `AUTH … called without any password
/// configured …`): redis-rs reports every refusal as `Password authentication failed -
/// AuthenticationFailed`, so this asks again on a connection without credentials and returns
/// the server's reply. `None` when the URL has no credentials or the server cannot be reached.
pub async fn auth_refusal(url: &str) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings();
    let password = settings.password()?.to_owned();
    let username = settings.username().map(str::to_owned);
    let bare =
        redis::Client::open(info.set_redis_settings(redis::RedisConnectionInfo::default())).ok()?;
    let mut conn = bare.get_multiplexed_async_connection().await.ok()?;
    let mut auth = redis::cmd("AUTH");
    if let Some(user) = username {
        auth.arg(user);
    }
    auth.arg(password);
    match auth.query_async::<Value>(&mut conn).await {
        Ok(_) => None,
        Err(e) => Some(match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => e.to_string(),
        }),
    }
}
