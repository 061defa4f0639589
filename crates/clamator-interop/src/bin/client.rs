//! `clamator-interop-client`: reads one JSON config on stdin
//! (`{"redisUrl","redisCluster"?:[url…],"keyPrefix","defaultTimeoutMs","calls":[{"method","params","notification"}],"concurrent"?}`),
//! runs the calls over Redis and prints `{"results":[…]}` on stdout. With `concurrent: N` the
//! call list runs N times in parallel; results are flattened batch by batch.

use std::time::Duration;

use clamator::redis::RedisRpcClient;
use clamator::{CallError, RpcClient};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    redis_url: Option<String>,
    redis_cluster: Option<Vec<String>>,
    key_prefix: String,
    default_timeout_ms: Option<u64>,
    calls: Vec<Call>,
    concurrent: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
struct Call {
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    notification: bool,
}

fn outcome(result: Result<Option<Value>, CallError>) -> Value {
    match result {
        Ok(Some(result)) => json!({"ok": true, "kind": "result", "result": result}),
        Ok(None) => json!({"ok": true, "kind": "notification"}),
        Err(CallError::Rpc(e)) => {
            json!({"ok": false, "kind": "rpc-error", "code": e.code, "message": e.message, "data": e.data})
        }
        Err(CallError::Transport(e)) => {
            json!({"ok": false, "kind": "transport-error", "message": e.to_string()})
        }
        Err(e) => json!({"ok": false, "kind": "unknown-error", "message": e.to_string()}),
    }
}

async fn run_one(client: &RedisRpcClient, call: &Call) -> Value {
    let Some((service, method)) = call.method.split_once('.') else {
        return json!({"ok": false, "kind": "unknown-error", "message": format!("bad method {}", call.method)});
    };
    let result = if call.notification {
        client
            .notify_value(service, method, call.params.clone())
            .await
            .map(|()| None)
    } else {
        client
            .call_value(service, method, call.params.clone(), None)
            .await
            .map(Some)
    };
    outcome(result)
}

async fn run_list(client: &RedisRpcClient, calls: &[Call]) -> Vec<Value> {
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        out.push(run_one(client, call).await);
    }
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    tokio::io::stdin().read_to_string(&mut input).await?;
    let config: Config = serde_json::from_str(&input)?;
    let mut builder = RedisRpcClient::builder()
        .key_prefix(&config.key_prefix)
        .default_timeout(Duration::from_millis(
            config.default_timeout_ms.unwrap_or(5000),
        ));
    if let Some(url) = &config.redis_url {
        builder = builder.url(url);
    }
    if let Some(seeds) = &config.redis_cluster {
        builder = builder.connection(clamator::redis::RedisConnection::cluster(seeds.clone()));
    }
    let client = builder.build()?;
    client.start().await?;
    let results: Vec<Value> = match config.concurrent {
        Some(n) if n > 1 => {
            let batches = (0..n).map(|_| run_list(&client, &config.calls));
            futures::future::join_all(batches)
                .await
                .into_iter()
                .flatten()
                .collect()
        }
        _ => run_list(&client, &config.calls).await,
    };
    client.stop().await;
    println!("{}", json!({ "results": results }));
    Ok(())
}
