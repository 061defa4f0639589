//! `clamator dlq list|replay|drop <service> …`.

use std::process::ExitCode;

use super::pretty;
use crate::cli::DlqAction;
use crate::target::Target;

pub(crate) async fn exec(action: &DlqAction, target: &Target) -> Result<ExitCode, String> {
    let (DlqAction::List { service, .. }
    | DlqAction::Replay { service, .. }
    | DlqAction::Drop { service, .. }) = action;
    let broker = target.broker().await?;
    let services = broker.services().await.unwrap_or_default();
    if !services.iter().any(|s| s == service) {
        return Err(format!(
            "no service {service:?} under prefix {:?} (services there: {})",
            broker.prefix(),
            if services.is_empty() {
                "none".to_owned()
            } else {
                services.join(", ")
            }
        ));
    }
    match action {
        DlqAction::List { service, json, .. } => {
            let letters = broker
                .dead_letters(service)
                .await
                .map_err(|e| e.to_string())?;
            if *json {
                out!("{}", pretty(&letters.to_json()));
            } else {
                out_nonl!("{letters}");
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqAction::Replay {
            service, ids, all, ..
        }
        | DlqAction::Drop {
            service, ids, all, ..
        } => {
            if ids.is_empty() && !*all {
                return Err("give dead-letter ids, or --all".into());
            }
            let replay = matches!(action, DlqAction::Replay { .. });
            let done = if replay {
                broker.replay(service, ids).await
            } else {
                broker.drop_dead_letters(service, ids).await
            }
            .map_err(|e| e.to_string())?;
            out!(
                "{} {} dead letter(s)",
                if replay { "replayed" } else { "dropped" },
                done.count
            );
            if done.unknown.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            Err(format!(
                "not dead letters of {service}: {} (`clamator dlq list {service}` shows the ids)",
                done.unknown.join(", ")
            ))
        }
    }
}
