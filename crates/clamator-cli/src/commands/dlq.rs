//! `clamator dlq list|replay|drop <service> …`.

use std::process::ExitCode;

use super::pretty;
use crate::backend::Target;
use crate::cli::DlqAction;

pub(crate) async fn exec(action: &DlqAction, target: &Target) -> Result<ExitCode, String> {
    let (DlqAction::List { service, .. }
    | DlqAction::Replay { service, .. }
    | DlqAction::Drop { service, .. }) = action;
    let services = target.services().await;
    if !services.iter().any(|s| s == service) {
        return Err(format!(
            "no service {service:?} under prefix {:?} (services there: {})",
            target.prefix,
            if services.is_empty() {
                "none".to_owned()
            } else {
                services.join(", ")
            }
        ));
    }
    match action {
        DlqAction::List { service, json } => list(target, service, *json).await,
        DlqAction::Replay { service, ids, all } | DlqAction::Drop { service, ids, all } => {
            if ids.is_empty() && !*all {
                return Err("give dead-letter ids, or --all".into());
            }
            let replay = matches!(action, DlqAction::Replay { .. });
            let done = if target.is_nats() {
                let js = target.jetstream().await?;
                let (p, ids) = (&target.prefix, ids.as_slice());
                if replay {
                    clamator_cli::nats::dlq_replay(&js, p, service, ids).await
                } else {
                    clamator_cli::nats::dlq_drop(&js, p, service, ids).await
                }
                .map_err(|e| e.to_string())?
            } else {
                let mut conn = target.raw().await?;
                let (p, ids) = (&target.prefix, ids.as_slice());
                if replay {
                    clamator_cli::dlq::replay(&mut conn, p, service, ids).await
                } else {
                    clamator_cli::dlq::drop(&mut conn, p, service, ids).await
                }
                .map_err(|e| e.to_string())?
            };
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

async fn list(target: &Target, service: &str, json: bool) -> Result<ExitCode, String> {
    if target.is_nats() {
        let js = target.jetstream().await?;
        let letters = clamator_cli::nats::dlq_list(&js, &target.prefix, service)
            .await
            .map_err(|e| e.to_string())?;
        if json {
            out!("{}", pretty(&letters));
            return Ok(ExitCode::SUCCESS);
        }
        out!(
            "{} dead letter(s) in {}",
            letters.len(),
            clamator::nats::dead_letter_stream(&target.prefix, service)
        );
        for l in &letters {
            let shown: String = l.envelope.chars().take(120).collect();
            let seq = l.sequence.map_or("?".into(), |s| s.to_string());
            out!("{}  sequence {seq}  {}\n    {shown}", l.id, l.reason);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut conn = target.raw().await?;
    let letters = clamator_cli::dlq::list(&mut conn, &target.prefix, service)
        .await
        .map_err(|e| e.to_string())?;
    if json {
        out!("{}", pretty(&letters));
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{} dead letter(s) in {}",
        letters.len(),
        clamator::redis::dead_letter_stream(&target.prefix, service)
    );
    for l in &letters {
        let envelope = l
            .fields
            .iter()
            .find(|(k, _)| k == "envelope")
            .map_or("", |(_, v)| v.as_str());
        let shown: String = envelope.chars().take(120).collect();
        out!("{}  entry {}  {}\n    {shown}", l.id, l.entry_id, l.reason);
    }
    Ok(ExitCode::SUCCESS)
}
