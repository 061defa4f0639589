//! The `clamator` binary over NATS JetStream (`--nats-url`) against a real server on a private
//! `nats-server -js`: call, notify, bench, inspect, dlq, and what a timeout says.
#![allow(missing_docs)]

use std::process::{Command, Output};
use std::time::Duration;

use clamator::nats::async_nats::{self, jetstream};
use clamator::nats::NatsRpcServer;
use clamator_interop::{ArithServer, Fixture, NotificationsServer};
use clamator_test_support::nats::NatsServer;
use futures::StreamExt;
use serde_json::{json, Value};

fn clamator(nats: &NatsServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["--nats-url", &nats.url(), "--prefix", "cli"])
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run(nats: &NatsServer, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| clamator(nats, args))
}

fn server(nats: &NatsServer, fixture: &Fixture) -> NatsRpcServer {
    NatsRpcServer::builder()
        .url(nats.url())
        .key_prefix("cli")
        .ack_wait(Duration::from_millis(500))
        .max_deliveries(1)
        .service(ArithServer::new(fixture.clone()))
        .service(NotificationsServer::new(fixture.clone()))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn call_notify_bench_inspect_and_dlq_over_nats() {
    let nats = NatsServer::start();
    let fixture = Fixture::default();
    let s = server(&nats, &fixture);
    s.start().await.unwrap();

    let out = run(&nats, &["call", "arith.add", r#"{"a":2,"b":3}"#]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json_of(&out), json!({"sum": 5.0}));
    let out = run(&nats, &["call", "arith.add", r#"{"a":"x","b":3}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["code"], -32602);

    let before = fixture.handled();
    let out = run(&nats, &["notify", "notifications.ping", r#"{"tag":"x"}"#]);
    assert!(out.status.success(), "{out:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fixture.handled() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the notification was not handled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let out = run(
        &nats,
        &[
            "bench",
            "--method",
            "arith.add",
            "--params",
            r#"{"a":1,"b":2}"#,
            "--calls",
            "300",
            "--concurrency",
            "16",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let report = json_of(&out);
    assert_eq!(report["ok"], 300, "{report}");

    let out = run(&nats, &["inspect", "--json"]);
    let services = json_of(&out);
    let arith = services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "arith")
        .unwrap_or_else(|| panic!("{services}"));
    assert_eq!(arith["stream"], "cli_cmds_arith");
    assert_eq!(arith["consumer"]["ack_wait_ms"], 500);
    // Servers keep pulls open (several right after load, one when idle).
    assert!(
        arith["consumer"]["waiting_pulls"].as_u64() >= Some(1),
        "{arith}"
    );
    let out = run(&nats, &["inspect"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("WAITING-PULLS") && table.contains("notifications"),
        "{table}"
    );

    // A dead letter made the real way: delivered once to a "server" that never acked (a raw
    // pull), then delivery 2 > max_deliveries 1 at the clamator server.
    s.stop().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let request = r#"{"jsonrpc":"2.0","method":"arith.add","params":{"a":40,"b":2},"id":"dl-1"}"#;
    js.publish("cli.cmds.arith", request.into())
        .await
        .unwrap()
        .await
        .unwrap();
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream("cli_cmds_arith")
        .await
        .unwrap()
        .get_consumer("arith")
        .await
        .unwrap();
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    batch.next().await.unwrap().unwrap(); // delivery 1, never acked
    drop(batch);

    // Meanwhile a call times out, and the error says no server answered (none runs).
    let out = run(
        &nats,
        &["call", "arith.add", r#"{"a":1,"b":1}"#, "--timeout", "1s"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("call timeout") && err.contains("no server of \"arith\" answered"),
        "{err}"
    );
    // A service nobody ever served: named at once.
    let out = run(&nats, &["call", "nosvc.ping", "{}"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cli_cmds_nosvc") && err.contains("no server has served"),
        "{err}"
    );

    let s = server(&nats, &fixture);
    s.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let letters = loop {
        let out = run(&nats, &["dlq", "list", "arith", "--json"]);
        let letters = json_of(&out);
        if letters.as_array().is_some_and(|l| {
            l.iter()
                .any(|d| d["envelope"].as_str().unwrap().contains("dl-1"))
        }) {
            break letters;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {letters}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let letter = letters
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["envelope"].as_str().unwrap().contains("dl-1"))
        .unwrap();
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("max_deliveries 1"),
        "{letter}"
    );
    let out = run(&nats, &["dlq", "list", "arith"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("dead letter(s) in cli_dead_arith"));

    // Replay: the request runs (a fresh delivery) and leaves the dead-letter stream.
    let before = fixture.handled();
    let out = run(
        &nats,
        &["dlq", "replay", "arith", &letter["id"].to_string()],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 1"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fixture.handled() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the replayed request did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = run(&nats, &["dlq", "list", "arith", "--json"]);
    let left = json_of(&out);
    assert!(
        left.as_array()
            .unwrap()
            .iter()
            .all(|d| !d["envelope"].as_str().unwrap().contains("dl-1")),
        "{left}"
    );
    let out = run(&nats, &["dlq", "drop", "arith", "--all"]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&nats, &["dlq", "list", "arith", "--json"]);
    assert_eq!(json_of(&out), json!([]));

    // `inspect` names the servers that run the service (they answer `<prefix>.status`).
    let out = run(&nats, &["inspect", "--json"]);
    let report = json_of(&out);
    let arith = report
        .as_array()
        .and_then(|a| a.iter().find(|s| s["service"] == "arith"))
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        arith["servers"].as_array().map(Vec::len),
        Some(1),
        "{arith}"
    );
    s.stop().await;
    let out = run(&nats, &["inspect", "--json"]);
    let report = json_of(&out);
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["servers"].as_array().is_some_and(Vec::is_empty)),
        "a stopped server no longer answers: {report}"
    );
}

#[test]
fn credentials_in_the_nats_url_are_used_and_a_wrong_password_is_named_not_shown() {
    let nats = NatsServer::start_with(&["--user", "ops", "--pass", "pw-1"]);
    let run = |url: String| {
        Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args(["--nats-url", &url, "--prefix", "cli", "inspect", "--json"])
            .output()
            .unwrap()
    };
    let out = run(format!("nats://ops:pw-1@127.0.0.1:{}", nats.port()));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json_of(&out), json!([]));
    let out = run(format!("nats://ops:wrong-pw@127.0.0.1:{}", nats.port()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("authorization") && err.contains("ops:***@"),
        "{err}"
    );
    assert!(!err.contains("wrong-pw"), "{err}");
}
