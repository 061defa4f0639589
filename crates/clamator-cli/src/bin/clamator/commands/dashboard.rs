//! `clamator dashboard`: the web page of the services under a prefix (Redis or NATS).

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::DashboardArgs;
use crate::target::Target;

pub(crate) async fn exec(args: &DashboardArgs, target: &Target) -> Result<ExitCode, String> {
    if !args.listen.ip().is_loopback() && args.token.is_none() && !args.read_only {
        return Err(format!(
            "--listen {} is not loopback: give --token (or --read-only) so that \
             nobody else on the network can replay, drop or call",
            args.listen
        ));
    }
    let docs = match &args.docs {
        Some(path) => clamator_codegen::read_docs(path).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let broker = target.broker().await?;
    let client = if args.read_only {
        None
    } else {
        Some(target.client(Duration::from_secs(10)).await?)
    };
    let options = clamator_cli::dashboard::Options {
        prefix: target.prefix.clone(),
        listen: args.listen,
        read_only: args.read_only,
        token: args.token.clone(),
        interval: args.interval.max(Duration::from_millis(100)),
        alive_within: args.alive_within,
        discover_every: args.discover_every.max(Duration::from_secs(1)),
        history: 300,
        docs,
    };
    let prefix = target.prefix.clone();
    let read_only = args.read_only;
    let served = clamator_cli::dashboard::serve(
        options,
        broker,
        client.clone(),
        |addr| {
            out!(
                "dashboard for prefix {prefix} on http://{addr}/{} (Ctrl-C stops it)",
                if read_only { " (read-only)" } else { "" }
            )
        },
        crate::shutdown_signal(),
    )
    .await;
    if let Some(client) = client {
        client.stop().await;
    }
    served.map_err(|e| format!("dashboard on {}: {e}", args.listen))?;
    Ok(ExitCode::SUCCESS)
}
