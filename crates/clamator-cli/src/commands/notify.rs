//! `clamator notify <service.method> [params]`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clamator::RpcClient;

use crate::backend::Target;
use crate::cli::{read_params, split_method, NotifyArgs};

pub(crate) async fn exec(args: &NotifyArgs, target: &Target) -> Result<ExitCode, String> {
    let (service, method) = split_method(&args.method)?;
    let params = read_params(args.params.as_deref())?;
    if !args.create {
        target.check_served(service).await?;
    }
    let client = target.client(Duration::from_secs(30)).await?;
    let sent = client.notify_value(service, method, params).await;
    client.stop().await;
    sent.map_err(|e| e.to_string())?;
    if !target.is_nats() {
        if let Some(r) = target.readers(service).await.filter(|r| r.nobody()) {
            eprintln!(
                "warning: sent, but it may never be read: {}",
                r.explain(&target.prefix, service)
            );
        }
    }
    // A notification has no reply: say that it went, to a person (scripts get silence).
    if std::io::stdout().is_terminal() {
        out!("sent");
    }
    Ok(ExitCode::SUCCESS)
}
