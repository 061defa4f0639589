//! `clamator inspect [--json]`.

use std::process::ExitCode;

use super::pretty;
use crate::backend::Target;
use crate::cli::InspectArgs;

pub(crate) async fn exec(args: &InspectArgs, target: &Target) -> Result<ExitCode, String> {
    if target.is_nats() {
        let js = target.jetstream().await?;
        let services = clamator_cli::nats::inspect(&js, &target.prefix)
            .await
            .map_err(|e| e.to_string())?;
        if args.json {
            out!("{}", pretty(&services));
        } else {
            out_nonl!("{}", clamator_cli::nats::Table(&services));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut conn = target.raw().await?;
    let report = clamator_cli::inspect::inspect(&mut conn, &target.prefix)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        out!("{}", pretty(&report));
    } else {
        out_nonl!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
