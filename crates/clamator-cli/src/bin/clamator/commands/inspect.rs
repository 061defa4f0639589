//! `clamator inspect [--json]`.

use std::process::ExitCode;

use super::pretty;
use crate::cli::InspectArgs;
use crate::target::Target;

pub(crate) async fn exec(args: &InspectArgs, target: &Target) -> Result<ExitCode, String> {
    let report = target
        .broker()
        .await?
        .inspect()
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        out!("{}", pretty(&report));
    } else {
        out_nonl!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
