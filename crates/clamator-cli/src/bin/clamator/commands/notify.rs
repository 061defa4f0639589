//! `clamator notify <service.method> [params]`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clamator::RpcClient;

use crate::cli::{read_params, split_method, NotifyArgs};
use crate::target::Target;

pub(crate) async fn exec(args: &NotifyArgs, target: &Target) -> Result<ExitCode, String> {
    let (service, method) = split_method(&args.method)?;
    let params = read_params(args.params.as_deref())?;
    let broker = target.broker().await?;
    if !args.create {
        broker.check_served(service).await?;
    }
    let client = target.client(Duration::from_secs(30)).await?;
    let sent = client.notify_value(service, method, params).await;
    client.stop().await;
    sent.map_err(|e| e.to_string())?;
    if let Some(why) = broker.unread_warning(service).await {
        eprintln!("warning: sent, but it may never be read: {why}");
    }
    // A notification has no reply: say that it went, to a person (scripts get silence).
    if std::io::stdout().is_terminal() {
        out!("sent");
    }
    Ok(ExitCode::SUCCESS)
}
