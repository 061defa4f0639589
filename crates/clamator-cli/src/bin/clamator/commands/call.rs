//! `clamator call <service.method> [params]`.

use std::process::ExitCode;

use clamator::{CallError, RpcClient};

use super::pretty;
use crate::cli::{read_params, split_method, CallArgs};
use crate::target::Target;

pub(crate) async fn exec(args: &CallArgs, target: &Target) -> Result<ExitCode, String> {
    let (service, method) = split_method(&args.method)?;
    let params = read_params(args.params.as_deref())?;
    let broker = target.broker().await?;
    if !args.create {
        broker.check_served(service).await?;
    }
    let client = target.client(args.timeout).await?;
    let outcome = client
        .call_value(service, method, params, Some(args.timeout))
        .await;
    client.stop().await;
    match outcome {
        Ok(result) => {
            out!("{}", pretty(&result));
            Ok(ExitCode::SUCCESS)
        }
        Err(CallError::Rpc(e)) => {
            out!("{}", pretty(&e));
            Ok(ExitCode::from(1))
        }
        Err(e) if e.is_timeout() => Err(format!(
            "{e} after {:?}{}",
            args.timeout,
            broker.timeout_hint(service).await
        )),
        Err(e) => Err(e.to_string()),
    }
}
