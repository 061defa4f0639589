//! `clamator completions <shell>` and `clamator man [--out-dir DIR]`.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<ExitCode, String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "clamator", &mut script);
    out_nonl!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn man(out_dir: Option<&Path>) -> Result<ExitCode, String> {
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        clap_mangen::generate_to(Cli::command(), dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| e.to_string())?;
    out_nonl!("{}", String::from_utf8_lossy(&page));
    Ok(ExitCode::SUCCESS)
}
