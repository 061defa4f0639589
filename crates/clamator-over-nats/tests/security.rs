//! Credentials and TLS against private `nats-server`s: a user/password in the URL, a wrong
//! password refused at `start` (the password never shown), TLS with a private CA, and an
//! untrusted certificate refused.

use std::time::Duration;

use clamator_over_nats::async_nats::ConnectOptions;
use clamator_over_nats::{NatsConnection, NatsRpcClient, NatsRpcServer};
use clamator_protocol::{RpcClient, RpcError, RpcService};
use clamator_test_support::nats::NatsServer;
use serde_json::{json, Value};

fn echo() -> RpcService {
    RpcService::builder("echo")
        .raw_method("say", json!({}), json!({}), |p: Value| async move {
            Ok::<_, RpcError>(p)
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_in_the_url_and_a_wrong_one_refused() {
    let nats = NatsServer::start_with(&["--user", "app", "--pass", "s3cret-pw"]);
    let url = format!("nats://app:s3cret-pw@127.0.0.1:{}", nats.port());
    let server = NatsRpcServer::builder()
        .url(&url)
        .service(echo())
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = NatsRpcClient::builder().url(&url).build().unwrap();
    client.start().await.unwrap();
    let out = client
        .call_value(
            "echo",
            "say",
            json!({"hi": 1}),
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(out, json!({"hi": 1}));

    let wrong = format!("nats://app:not-it@127.0.0.1:{}", nats.port());
    let refused = NatsRpcClient::builder().url(&wrong).build().unwrap();
    let err = refused.start().await.unwrap_err().to_string();
    assert!(err.contains("nats connect failed"), "{err}");
    assert!(err.to_lowercase().contains("auth"), "{err}");
    assert!(!err.contains("not-it") && err.contains("app:***@"), "{err}");
    let debug = format!("{refused:?}");
    assert!(!debug.contains("not-it"), "{debug}");
    client.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_and_an_untrusted_certificate_refused() {
    let dir = std::env::temp_dir().join(format!("clamator-nats-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    clamator_test_support::generate_certs(&dir);
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let nats = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        cert.to_str().unwrap(),
        "--tlskey",
        key.to_str().unwrap(),
    ]);
    let url = format!("tls://127.0.0.1:{}", nats.port());
    // One connection value for the server and the client.
    let trusted = NatsConnection::url(&url).options(
        ConnectOptions::new()
            .add_root_certificates(dir.join("ca.crt"))
            .require_tls(true),
    );
    let server = NatsRpcServer::builder()
        .connection(trusted.clone())
        .service(echo())
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = NatsRpcClient::builder()
        .connection(trusted)
        .build()
        .unwrap();
    client.start().await.unwrap();
    let out = client
        .call_value(
            "echo",
            "say",
            json!({"tls": true}),
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(out, json!({"tls": true}));

    // Without the CA the server's certificate is not trusted.
    let untrusted = NatsRpcClient::builder()
        .connection(NatsConnection::url(&url).options(ConnectOptions::new().require_tls(true)))
        .build()
        .unwrap();
    let err = untrusted.start().await.unwrap_err().to_string();
    assert!(err.contains("nats connect failed"), "{err}");
    client.stop().await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
