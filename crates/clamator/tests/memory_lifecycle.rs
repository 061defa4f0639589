//! Lifecycle promises of the memory transport under concurrency and misuse (issue 10): racing
//! starts and stops, dropping the last handle, and taking part in tokio's cooperative budget.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator::memory::{MemoryBus, MemoryRpcClient, MemoryRpcServer};
use clamator::{service::LifecycleState, RpcClient, RpcError, RpcService};
use serde_json::{json, Value};

/// `echo`; `slow` sets `started`, sleeps 300 ms and sets `finished`.
fn service(started: Arc<AtomicBool>, finished: Arc<AtomicBool>) -> RpcService {
    RpcService::builder("svc")
        .raw_method("echo", json!({}), json!({}), |p: Value| async move {
            Ok::<_, RpcError>(p)
        })
        .raw_method("slow", json!({}), json!({}), move |p: Value| {
            let finished = finished.clone();
            started.store(true, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                finished.store(true, Ordering::SeqCst);
                Ok::<_, RpcError>(p)
            }
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_of_one_server_both_succeed() {
    for _ in 0..200 {
        let bus = MemoryBus::new();
        // many services: registering them takes long enough for two starts to overlap
        let mut builder = MemoryRpcServer::builder(&bus);
        for i in 0..200 {
            builder = builder.service(
                RpcService::builder(format!("s{i}"))
                    .raw_method("echo", json!({}), json!({}), |p: Value| async move {
                        Ok::<_, RpcError>(p)
                    })
                    .build()
                    .unwrap(),
            );
        }
        let server = builder.build().unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let starts: Vec<_> = (0..2)
            .map(|_| {
                let (server, barrier) = (server.clone(), barrier.clone());
                let handle = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    barrier.wait();
                    handle.block_on(server.start())
                })
            })
            .collect();
        for start in starts {
            start
                .join()
                .unwrap()
                .expect("a concurrent start of the same server failed");
        }
        assert_eq!(server.state(), LifecycleState::Started);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stop_caller_returns_after_the_drain() {
    let bus = MemoryBus::new();
    let (started, finished) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let server = MemoryRpcServer::builder(&bus)
        .service(service(started.clone(), finished.clone()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let client = MemoryRpcClient::new(&bus);
    client.start().await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call_value("svc", "slow", json!({}), None).await }
    });
    while !started.load(Ordering::SeqCst) {
        tokio::task::yield_now().await;
    }
    let first = tokio::spawn({
        let server = server.clone();
        async move { server.stop().await }
    });
    while server.state() != LifecycleState::Stopping {
        tokio::task::yield_now().await;
    }
    server.stop().await;
    assert!(
        finished.load(Ordering::SeqCst),
        "the second stop returned before the drain finished"
    );
    first.await.unwrap();
    assert!(call.await.unwrap().is_ok());
}

#[tokio::test]
async fn dropping_the_last_server_handle_unregisters_its_services() {
    let bus = MemoryBus::new();
    let server = MemoryRpcServer::builder(&bus)
        .service(service(Arc::default(), Arc::default()))
        .build()
        .unwrap();
    server.start().await.unwrap();
    let clone = server.clone();
    drop(server);
    assert_eq!(bus.services(), ["svc"], "a clone still holds it");
    drop(clone);
    assert!(bus.services().is_empty(), "a dropped server still serves");
    let client = MemoryRpcClient::new(&bus);
    client.start().await.unwrap();
    let e = client
        .call_value("svc", "echo", json!({}), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Method not found"), "{e}");
}

#[test]
fn a_loop_of_calls_that_finish_at_once_lets_other_tasks_run() {
    // On a current-thread runtime, `timeout(200ms, loop { call })` must fire: every call
    // takes part in tokio's cooperative budget like any tokio resource.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let bus = MemoryBus::new();
            let server = MemoryRpcServer::builder(&bus)
                .service(service(Arc::default(), Arc::default()))
                .build()
                .unwrap();
            server.start().await.unwrap();
            let client = MemoryRpcClient::new(&bus);
            client.start().await.unwrap();
            let ticked = Arc::new(AtomicBool::new(false));
            let t = ticked.clone();
            tokio::spawn(async move { t.store(true, Ordering::SeqCst) });
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    client
                        .call_value("svc", "echo", json!({}), None)
                        .await
                        .unwrap();
                }
            })
            .await;
            done_tx.send(ticked.load(Ordering::SeqCst)).unwrap();
        });
    });
    let other_task_ran = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the call loop starved the runtime: the 200 ms timeout never fired");
    assert!(other_task_ran, "another task on the same runtime never ran");
}
