//! The `clamator` binary against a real server on a private redis-server.
#![allow(missing_docs)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use clamator::redis::{redis, RedisRpcServer};
use clamator_interop::{ArithServer, Fixture, NotificationsServer};
use clamator_test_support::RedisServer;
use serde_json::{json, Value};

fn clamator(redis: &RedisServer, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["--redis-url", &redis.url(), "--prefix", "cli"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn call_notify_inspect_bench() {
    let redis = RedisServer::start();
    let fixture = Fixture::default();
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(redis.url())
        .instance_id("srv1")
        .service(ArithServer::new(fixture.clone()))
        .service(NotificationsServer::new(fixture.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();

    let out = tokio::task::block_in_place(|| {
        clamator(&redis, &["call", "arith.add", r#"{"a":2,"b":3}"#], None)
    });
    assert!(out.status.success());
    assert_eq!(stdout_json(&out), json!({"sum": 5.0}));

    // params from stdin
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &["call", "arith.echoText", "-"],
            Some(r#"{"text":"hé"}"#),
        )
    });
    assert_eq!(stdout_json(&out), json!({"text": "hé"}));

    // an error object, exit 1
    let out = tokio::task::block_in_place(|| {
        clamator(&redis, &["call", "arith.divide", r#"{"a":1,"b":0}"#], None)
    });
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout_json(&out),
        json!({"code": -32000, "message": "division by zero", "data": null})
    );

    // a timeout, exit 2 with the reason
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &[
                "call",
                "arith.slowAdd",
                r#"{"a":1,"b":2,"sleepMs":2000}"#,
                "--timeout",
                "100ms",
            ],
            None,
        )
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("call timeout"));

    // bad params JSON is a usage error
    let out =
        tokio::task::block_in_place(|| clamator(&redis, &["call", "arith.add", "{nope"], None));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));

    // notify reaches the handler
    let before = fixture.handled();
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &["notify", "notifications.ping", r#"{"tag":"x"}"#],
            None,
        )
    });
    assert!(out.status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while fixture.handled() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "notification not handled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // bench --json
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &[
                "bench",
                "--method",
                "arith.add",
                "--params",
                r#"{"a":1,"b":1}"#,
                "--calls",
                "500",
                "--concurrency",
                "8",
                "--json",
            ],
            None,
        )
    });
    assert!(out.status.success());
    let report = stdout_json(&out);
    assert_eq!(report["calls"], 500);
    assert_eq!(report["ok"], 500);
    for k in ["calls_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(report[k].as_f64().unwrap() > 0.0, "{k}: {report}");
    }
    assert_eq!(report["errors"], json!({}));
    // errors are counted by kind
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &[
                "bench",
                "--method",
                "arith.divide",
                "--params",
                r#"{"a":1,"b":0}"#,
                "--calls",
                "20",
                "--json",
            ],
            None,
        )
    });
    assert_eq!(stdout_json(&out)["errors"], json!({"rpc -32000": 20}));

    // inspect --json
    let out = tokio::task::block_in_place(|| clamator(&redis, &["inspect", "--json"], None));
    let report = stdout_json(&out);
    let arith = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "arith")
        .unwrap()
        .clone();
    assert_eq!(arith["stream"], "cli:cmds:arith");
    assert_eq!(arith["groups"][0]["name"], "arith");
    assert_eq!(arith["groups"][0]["consumers"][0]["name"], "arith:srv1");
    // acked entries are deleted: the stream holds only what is pending (the slow call)
    assert_eq!(arith["length"], arith["groups"][0]["pending"]);
    let out = tokio::task::block_in_place(|| clamator(&redis, &["inspect"], None));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("service arith") && text.contains("arith:srv1"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dlq_list_replay_drop() {
    let redis = RedisServer::start();
    let fixture = Fixture::default();
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(redis.url())
        .service(ArithServer::new(fixture.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for (i, reason) in ["delivered 5 times", "delivered 6 times"]
        .iter()
        .enumerate()
    {
        let envelope = format!(
            r#"{{"jsonrpc":"2.0","method":"arith.add","params":{{"a":{i},"b":1}},"id":"d{i}"}}"#
        );
        let _: String = redis::cmd("XADD")
            .arg("cli:dead:arith")
            .arg("*")
            .arg("dead-reason")
            .arg(*reason)
            .arg("dead-entry-id")
            .arg(format!("1-{i}"))
            .arg("dead-deliveries")
            .arg(5 + i)
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(envelope)
            .arg("reply-to")
            .arg("cli:replies:dlq")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let out =
        tokio::task::block_in_place(|| clamator(&redis, &["dlq", "list", "arith", "--json"], None));
    let letters = stdout_json(&out);
    assert_eq!(letters.as_array().unwrap().len(), 2);
    assert_eq!(letters[0]["reason"], "delivered 5 times");
    assert_eq!(letters[0]["fields"][0], json!(["type", "rpc"]));
    // issue 13 #11: a number, not a string
    assert_eq!(letters[0]["deliveries"], json!(5), "{letters}");
    let first = letters[0]["id"].as_str().unwrap().to_owned();
    let out = tokio::task::block_in_place(|| clamator(&redis, &["inspect", "--json"], None));
    assert_eq!(stdout_json(&out)["services"][0]["dead_letters"], 2);

    // replay one: the server runs it and replies to the original reply-to
    let out =
        tokio::task::block_in_place(|| clamator(&redis, &["dlq", "replay", "arith", &first], None));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 1"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let n: u64 = redis::cmd("XLEN")
            .arg("cli:replies:dlq")
            .query_async(&mut conn)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replayed entry not answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(fixture.handled(), 1);
    // usage error without ids
    let out = tokio::task::block_in_place(|| clamator(&redis, &["dlq", "drop", "arith"], None));
    assert_eq!(out.status.code(), Some(2));
    let out =
        tokio::task::block_in_place(|| clamator(&redis, &["dlq", "drop", "arith", "--all"], None));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dropped 1"));
    let n: u64 = redis::cmd("XLEN")
        .arg("cli:dead:arith")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    server.stop().await;
}

#[test]
fn an_empty_or_glob_prefix_is_refused_by_every_redis_command() {
    let redis = RedisServer::start();
    for prefix in ["", "app*"] {
        for args in [
            &["call", "arith.add", "{}", "--timeout", "300ms"][..],
            &["notify", "notifications.ping", "{}"],
            &["inspect"],
            &["dlq", "list", "arith"],
            &[
                "bench",
                "--method",
                "arith.add",
                "--calls",
                "1",
                "--timeout",
                "300ms",
            ],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_clamator"))
                .args(["--redis-url", &redis.url(), "--prefix", prefix])
                .args(args)
                .env_remove("CLAMATOR_PREFIX")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{prefix:?} {args:?}: {stderr}");
            assert!(
                stderr.contains("key prefix"),
                "{prefix:?} {args:?}: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_least_privilege_acl_is_enough_for_the_cli() {
    // README, "Least-privilege ACL": the client's commands plus what inspect and dlq read
    let rules = "+xadd +xread +xrange +xtrim +pexpire +del +scan +xlen +xinfo|groups +xinfo|consumers +xpending +xdel";
    let mut args = vec![
        "--user",
        "ops",
        "on",
        ">pw",
        "~cli:*",
        "resetchannels",
        "-@all",
    ];
    args.extend(rules.split(' '));
    let redis = RedisServer::start_with(&args);
    let fixture = Fixture::default();
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(redis.url())
        .service(ArithServer::new(fixture.clone()))
        .service(NotificationsServer::new(fixture.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let url = format!("redis://ops:pw@127.0.0.1:{}", redis.port());
    for (cmd, code) in [
        (&["call", "arith.add", r#"{"a":1,"b":2}"#][..], 0),
        (&["notify", "notifications.ping", "{}"], 0),
        (&["inspect", "--json"], 0),
        (&["dlq", "list", "arith"], 0),
        (
            &[
                "bench",
                "--method",
                "arith.add",
                "--params",
                r#"{"a":1,"b":2}"#,
                "--calls",
                "20",
                "--json",
            ],
            0,
        ),
    ] {
        let out = tokio::task::block_in_place(|| {
            Command::new(env!("CARGO_BIN_EXE_clamator"))
                .args(["--redis-url", &url, "--prefix", "cli"])
                .args(cmd)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        });
        assert_eq!(
            out.status.code(),
            Some(code),
            "{cmd:?}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.stop().await;
}

/// Issue 13 #9: `clamator inspect | head -1` must not panic when the reader goes away.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let redis = RedisServer::start();
    for _ in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args(["--redis-url", &redis.url(), "--prefix", "cli", "inspect"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is written
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    }
}

/// Issue 13 #7: a duration without a unit is refused instead of meaning milliseconds.
#[test]
fn durations_need_a_unit() {
    let redis = RedisServer::start();
    let out = clamator(&redis, &["call", "arith.add", "{}", "--timeout", "5"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs a unit"), "{stderr}");
}

/// Issue 13 #11: a bench whose every call fails says so and exits non-zero; the top-level help
/// names every command.
#[tokio::test(flavor = "multi_thread")]
async fn a_bench_without_one_success_fails_and_the_help_names_every_command() {
    let redis = RedisServer::start();
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(redis.url())
        .service(ArithServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &[
                "bench",
                "--method",
                "arith.nosuch",
                "--calls",
                "20",
                "--json",
            ],
            None,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no call succeeded"), "{stderr}");
    server.stop().await;

    let help = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .arg("--help")
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&help.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    for command in ["call", "notify", "inspect", "bench", "codegen", "dlq"] {
        assert!(first.contains(command), "{first}");
    }
}

/// Issue 13 #6 and #8: a call that times out, and a notification nobody will read, say why.
/// Issue 30: a call or notification to a service nobody serves fails at once, naming the
/// services that exist, and creates no key unless `--create`.
#[tokio::test(flavor = "multi_thread")]
async fn timeouts_and_unread_notifications_say_who_consumes_the_stream() {
    let redis = RedisServer::start();
    let exists = |key: &str| redis.raw(&[vec!["EXISTS".into(), key.into()]])[0].clone();
    // nothing ever served `nosvc` under this prefix: refused before sending, in under 2 s
    let started = std::time::Instant::now();
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &["call", "nosvc.add", "{}", "--timeout", "30s"],
            None,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("no stream cli:cmds:nosvc")
            && stderr.contains("--prefix")
            && stderr.contains("no service has a stream under prefix \"cli\"")
            && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    assert_eq!(
        exists("cli:cmds:nosvc"),
        ":0",
        "a refused call created its stream"
    );
    let out =
        tokio::task::block_in_place(|| clamator(&redis, &["notify", "nosvc.ping", "{}"], None));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(
        exists("cli:cmds:nosvc"),
        ":0",
        "a refused notify created its stream"
    );

    // --create sends anyway: the call waits, times out and says nobody made the group
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &["call", "nosvc.add", "{}", "--timeout", "300ms", "--create"],
            None,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("call timeout") && stderr.contains("no consumer group nosvc"),
        "{stderr}"
    );
    let out = tokio::task::block_in_place(|| {
        clamator(&redis, &["notify", "nosvc.ping", "{}", "--create"], None)
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("no consumer group nosvc"),
        "{stderr}"
    );

    // a live server busy past the timeout: its consumer is named with its pending entries
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(redis.url())
        .instance_id("busy")
        .service(ArithServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let out = tokio::task::block_in_place(|| {
        clamator(&redis, &["call", "arithh.add", r#"{"a":1,"b":2}"#], None)
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("services under prefix \"cli\": arith"),
        "{stderr}"
    );
    assert_eq!(exists("cli:cmds:arithh"), ":0");
    let slow = r#"{"a":1,"b":2,"sleepMs":4000}"#;
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &["call", "arith.slowAdd", slow, "--timeout", "300ms"],
            None,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("consumer arith:busy idle"), "{stderr}");
    assert!(stderr.contains("1 pending"), "{stderr}");

    // after it stopped: its consumer is there, idle, with nothing pending
    server.stop().await;
    let out = tokio::task::block_in_place(|| {
        clamator(
            &redis,
            &[
                "call",
                "arith.add",
                r#"{"a":1,"b":2}"#,
                "--timeout",
                "300ms",
            ],
            None,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("consumer arith:busy idle") && stderr.contains("0 pending"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped or stuck"), "{stderr}");
}

/// Issue 13 #12: shell completions and a man page, without Redis or a prefix.
#[test]
fn completions_and_man_page_cover_every_command() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args(args)
            .env_remove("CLAMATOR_PREFIX")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let commands = [
        "call",
        "notify",
        "inspect",
        "codegen",
        "dlq",
        "bench",
        "completions",
        "man",
    ];

    let bash = run(&["completions", "bash"]);
    for command in commands {
        assert!(
            bash.contains(&format!("clamator__subcmd__{command}")),
            "{command}"
        );
    }
    // The script is valid bash, and completing `clamator d` offers `dlq`.
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{bash}\nCOMP_WORDS=(clamator d); COMP_CWORD=1; _clamator clamator d clamator; echo \"${{COMPREPLY[@]}}\""
        ))
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && offered.split_whitespace().any(|w| w == "dlq"),
        "bash completion offered {offered:?}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(run(&["completions", "zsh"]).starts_with("#compdef clamator"));
    assert!(run(&["completions", "fish"]).contains("complete -c clamator"));
    let bad = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values: bash"));

    let man = run(&["man"]);
    assert!(man.contains(".TH clamator 1"), "{man}");
    for command in commands {
        assert!(
            man.contains(&format!("clamator\\-{command}")),
            "man page lacks {command}"
        );
    }
    // The pages the top page refers to exist with --out-dir.
    let dir = std::env::temp_dir().join(format!("clamator-man-{}", std::process::id()));
    run(&["man", "--out-dir", dir.to_str().unwrap()]);
    let mut pages = vec![dir.join("clamator.1")];
    for command in commands {
        pages.push(dir.join(format!("clamator-{command}.1")));
    }
    pages.push(dir.join("clamator-dlq-replay.1"));
    for page in &pages {
        let text =
            std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains(".TH clamator"), "{}", page.display());
        // groff renders each without complaint where it is installed (Debian: with man-db).
        if let Ok(mut groff) = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            use std::io::Write as _;
            groff
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = groff.wait_with_output().unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "groff on {}: {}",
                page.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13 #11: a refused password is shown in the server's words (redis-rs reports every
/// refusal as "Password authentication failed - AuthenticationFailed"), never the password.
#[test]
fn a_wrong_password_shows_the_servers_reason() {
    let redis = RedisServer::start_with(&[
        "--requirepass",
        "right-one",
        "--user",
        "ops",
        "on",
        ">pw",
        "~*",
        "+@all",
    ]);
    let cases = [
        (
            format!("redis://:wrong-one@127.0.0.1:{}", redis.port()),
            "WRONGPASS",
        ),
        (
            format!("redis://ops:nope@127.0.0.1:{}", redis.port()),
            "WRONGPASS",
        ),
    ];
    for (url, want) in cases {
        for args in [&["inspect"][..], &["call", "arith.add", "{}"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_clamator"))
                .args(["--redis-url", &url, "--prefix", "cli"])
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains(want) && stderr.contains("refused the credentials"),
                "{args:?}: {stderr}"
            );
            assert!(
                !stderr.contains("wrong-one") && !stderr.contains("nope"),
                "the password leaked: {stderr}"
            );
        }
    }
    // A password given to a server that has none configured.
    let open = RedisServer::start();
    let url = format!("redis://:pw@127.0.0.1:{}", open.port());
    let out = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["--redis-url", &url, "--prefix", "cli", "inspect"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without any password configured"),
        "{stderr}"
    );
}

/// Issue 14: `codegen import --python` writes the document, `codegen check` compares
/// contracts and exits 1 naming each difference.
#[test]
fn codegen_import_and_check_from_the_command_line() {
    let root = clamator_test_support::workspace_root();
    let status = Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .status()
        .unwrap();
    assert!(status.success());
    let out_dir = std::env::temp_dir().join(format!("clamator-import-{}", std::process::id()));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args(args)
            .current_dir(&root)
            .output()
            .unwrap()
    };
    let out = run(&[
        "codegen",
        "import",
        "--python",
        "shop:shop_contract",
        "--python-path",
        "interop/py/import_fixtures",
        "--python-bin",
        ".venv/bin/python",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("shop.openrpc.json"));
    let out = run(&[
        "codegen",
        "check",
        "--contract",
        "interop/imported",
        "--against",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // against the arith/notifications contracts: every service is on one side only
    let out = run(&[
        "codegen",
        "check",
        "--contract",
        "interop/imported",
        "--against",
        "contracts",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("drift: shop: service only in contract"),
        "{stdout}"
    );
    assert!(
        stdout.contains("drift: arith: service only in other"),
        "{stdout}"
    );
    // an import that cannot work says why, exit 2
    let out = run(&[
        "codegen",
        "import",
        "--python",
        "shop:nope",
        "--python-path",
        "interop/py/import_fixtures",
        "--python-bin",
        ".venv/bin/python",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no attribute 'nope'"));
    // plain `codegen` without --docs or a subcommand
    let out = run(&["codegen"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --docs"));
    let _ = std::fs::remove_dir_all(&out_dir);
}

fn clamator_on_cluster(seeds: &str, prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["--redis-cluster", seeds, "--prefix", prefix])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn call_inspect_dlq_and_bench_on_a_cluster() {
    use clamator_test_support::RedisCluster;
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3, 0))
        .await
        .unwrap();
    // a prefix whose two command streams live on different masters (inspect must SCAN both)
    let prefix = (0..)
        .map(|i| format!("clu{i}"))
        .find(|p| {
            cluster.master_of(&format!("{p}:cmds:arith")).port
                != cluster.master_of(&format!("{p}:cmds:notifications")).port
        })
        .unwrap();
    let seeds = cluster.seeds().join(",");
    let fixture = Fixture::default();
    let server = RedisRpcServer::builder()
        .key_prefix(&prefix)
        .connection(clamator::redis::RedisConnection::cluster(cluster.seeds()))
        .service(ArithServer::new(fixture.clone()))
        .service(NotificationsServer::new(fixture.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();

    let out = tokio::task::block_in_place(|| {
        clamator_on_cluster(&seeds, &prefix, &["call", "arith.add", r#"{"a":2,"b":3}"#])
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out), json!({"sum": 5.0}));

    let out = tokio::task::block_in_place(|| {
        clamator_on_cluster(&seeds, &prefix, &["inspect", "--json"])
    });
    let report = stdout_json(&out);
    let services: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["arith", "notifications"], "{report}");

    // a dead letter, replayed from the CLI, is answered on a reply stream of another slot
    let dead = format!("{prefix}:dead:arith");
    let reply_to = format!("{prefix}:replies:dlq");
    let node = cluster.node(cluster.master_of(&dead).port);
    let envelope = r#"{"jsonrpc":"2.0","method":"arith.add","params":{"a":1,"b":1},"id":"d1"}"#;
    node.cli(&[
        "XADD",
        &dead,
        "*",
        "dead-reason",
        "test",
        "dead-entry-id",
        "1-1",
        "type",
        "rpc",
        "envelope",
        envelope,
        "reply-to",
        &reply_to,
    ]);
    let out = tokio::task::block_in_place(|| {
        clamator_on_cluster(&seeds, &prefix, &["dlq", "list", "arith", "--json"])
    });
    assert_eq!(stdout_json(&out).as_array().unwrap().len(), 1);
    let out = tokio::task::block_in_place(|| {
        clamator_on_cluster(&seeds, &prefix, &["dlq", "replay", "arith", "--all"])
    });
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("replayed 1"),
        "{out:?}"
    );
    let replies = cluster.node(cluster.master_of(&reply_to).port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while replies.cli(&["XLEN", &reply_to]).trim() != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "replayed entry not answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(node.cli(&["XLEN", &dead]).trim(), "0");

    let out = tokio::task::block_in_place(|| {
        clamator_on_cluster(
            &seeds,
            &prefix,
            &[
                "bench",
                "--method",
                "arith.add",
                "--params",
                r#"{"a":1,"b":1}"#,
                "--calls",
                "300",
                "--concurrency",
                "8",
                "--json",
            ],
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["ok"], 300);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn call_and_inspect_through_sentinel() {
    use clamator_test_support::RedisSentinels;
    let set = tokio::task::spawn_blocking(|| RedisSentinels::start(0))
        .await
        .unwrap();
    let sentinels = set.sentinel_urls();
    let server = RedisRpcServer::builder()
        .key_prefix("sen")
        .connection(clamator::redis::RedisConnection::sentinel(
            RedisSentinels::MASTER,
            sentinels.clone(),
        ))
        .service(ArithServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args([
                "--redis-sentinel",
                &sentinels.join(","),
                "--sentinel-master",
                RedisSentinels::MASTER,
                "--prefix",
                "sen",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| run(&["call", "arith.add", r#"{"a":2,"b":3}"#]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out), json!({"sum": 5.0}));
    let out = tokio::task::block_in_place(|| run(&["inspect", "--json"]));
    assert_eq!(stdout_json(&out)["services"][0]["service"], "arith");
    // --redis-sentinel without --sentinel-master is a usage error
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args([
                "--redis-sentinel",
                &sentinels[0],
                "--prefix",
                "sen",
                "inspect",
            ])
            .output()
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sentinel-master"));
    server.stop().await;
}

/// `--min-replicas N`: without a replica the call fails saying its request was not replicated
/// (exit 2); with one it is answered.
#[tokio::test(flavor = "multi_thread")]
async fn min_replicas_waits_for_a_replica() {
    let master = RedisServer::start();
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(master.url())
        .service(ArithServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let add = [
        "--min-replicas",
        "1",
        "call",
        "arith.add",
        r#"{"a":2,"b":3}"#,
    ];
    let out = tokio::task::block_in_place(|| clamator(&master, &add, None));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not replicated in time"), "{stderr}");

    let port = master.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica did not sync"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = tokio::task::block_in_place(|| clamator(&master, &add, None));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out), json!({"sum": 5.0}));
    server.stop().await;
}

/// Issue 30's smaller CLI items: `dlq replay/drop` of unknown ids names them and exits non-zero,
/// `dlq list` of an unknown service says so, `bench --duration` alone runs for that duration,
/// `bench --concurrency 0` is refused (issue 29), a scheme-less URL suggests `redis://`, and
/// `codegen --help` lists no connection flags.
#[tokio::test(flavor = "multi_thread")]
async fn the_small_cli_items_of_the_public_face() {
    let redis = RedisServer::start();
    let server = RedisRpcServer::builder()
        .key_prefix("cli")
        .url(redis.url())
        .service(ArithServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let run = |args: &[&str]| tokio::task::block_in_place(|| clamator(&redis, args, None));

    let out = run(&["dlq", "replay", "arith", "1-1", "2-2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1-1") && stderr.contains("2-2"), "{stderr}");
    let out = run(&["dlq", "drop", "arith", "3-3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("3-3"), "{stderr}");
    let out = run(&["dlq", "list", "arithh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("arithh") && stderr.contains("arith"),
        "{stderr}"
    );

    let started = std::time::Instant::now();
    let out = run(&[
        "bench",
        "--method",
        "arith.add",
        "--params",
        r#"{"a":1,"b":2}"#,
        "--duration",
        "1500ms",
        "--json",
    ]);
    let took = started.elapsed();
    let report = stdout_json(&out);
    assert!(
        report["elapsed_s"].as_f64().unwrap() >= 1.4 && took < std::time::Duration::from_secs(10),
        "{report} in {took:?}"
    );
    assert!(report["ok"].as_u64().unwrap() > 0, "{report}");
    let out = run(&["bench", "--method", "arith.add", "--concurrency", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--concurrency"), "{stderr}");
    server.stop().await;

    let out = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["--redis-url", &format!("127.0.0.1:{}", redis.port())])
        .args(["--prefix", "cli", "inspect"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("redis://127.0.0.1:{}", redis.port())),
        "{stderr}"
    );

    let help = Command::new(env!("CARGO_BIN_EXE_clamator"))
        .args(["codegen", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        !help.contains("--redis-url") && !help.contains("--nats-url"),
        "{help}"
    );
}

/// Connection flags are taken after the command as well as before it
/// (`clamator call --redis-url … --prefix … arith.add …`, as before issue 30), and a command
/// that needs no broker still lists none in its help.
#[tokio::test(flavor = "multi_thread")]
async fn connection_flags_after_the_command_are_taken() {
    let redis = RedisServer::start();
    let server = RedisRpcServer::builder()
        .key_prefix("after")
        .url(redis.url())
        .service(ArithServer::new(Fixture::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_clamator"))
            .env_remove("REDIS_URL")
            .env_remove("CLAMATOR_PREFIX")
            .args(["call", "--redis-url", &redis.url(), "--prefix", "after"])
            .args(["arith.add", r#"{"a": 2, "b": 3}"#])
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout_json(&out), json!({"sum": 5.0}));
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_clamator"))
            .env_remove("REDIS_URL")
            .args([
                "--prefix",
                "after",
                "inspect",
                "--redis-url",
                &redis.url(),
                "--json",
            ])
            .output()
            .unwrap()
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
    for command in ["codegen", "completions", "man"] {
        let help = Command::new(env!("CARGO_BIN_EXE_clamator"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            !help.contains("--redis-url") && !help.contains("--nats-url"),
            "{command}: {help}"
        );
    }
}
