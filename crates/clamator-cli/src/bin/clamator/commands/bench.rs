//! `clamator bench --method <service.method> …`: a closed-loop load test.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clamator_cli::bench;

use crate::cli::{read_params, split_method, BenchArgs};
use crate::target::Target;

/// Calls a run makes when neither `--calls` nor `--duration` says.
const DEFAULT_CALLS: usize = 10_000;

pub(crate) async fn exec(args: &BenchArgs, target: &Target) -> Result<ExitCode, String> {
    let (service, method) = split_method(&args.method)?;
    let params = read_params(Some(args.params.as_str())).map_err(|e| format!("--params: {e}"))?;
    // `--duration` alone runs for that long; `--calls` alone makes that many calls; both:
    // whichever comes first.
    let calls = match (args.calls, args.duration) {
        (Some(n), _) => n,
        (None, Some(_)) => usize::MAX,
        (None, None) => DEFAULT_CALLS,
    };
    let spec = bench::BenchSpec {
        service: service.to_owned(),
        method: method.to_owned(),
        params,
        calls,
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
        duration: args.duration,
        timeout: Some(args.timeout),
    };
    target.broker().await?.check_served(service).await?;
    let client = target.client(args.timeout).await?;
    let progress = Arc::new(AtomicUsize::new(0));
    let bar = std::io::stderr().is_terminal().then(|| {
        let (bar, template) = if calls == usize::MAX {
            (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} {pos} calls  {per_sec}  {elapsed}",
            )
        } else {
            (
                indicatif::ProgressBar::new(calls as u64),
                "{bar:40} {pos}/{len} calls  {per_sec}  eta {eta}",
            )
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let (bar2, progress2) = (bar.clone(), Arc::clone(&progress));
        tokio::spawn(async move {
            loop {
                bar2.set_position(progress2.load(Ordering::Relaxed) as u64);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        bar
    });
    let report = bench::run(&client, &spec, progress).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    client.stop().await;
    if args.json {
        out!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        out!("{report}");
    }
    if report.calls > 0 && report.ok == 0 {
        // The latencies above are of successful calls: there are none.
        eprintln!(
            "error: no call succeeded ({} calls; errors: {:?})",
            report.calls, report.errors
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
