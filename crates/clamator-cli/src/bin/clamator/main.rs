//! `clamator`: call, notify, inspect and load-test clamator services over Redis or NATS,
//! whatever language they are written in; generate code from contract documents.
//!
//! Layout: [`cli`] (flags and commands), [`target`] (the one place that reads the connection
//! flags), [`commands`] (one module per command, each with an `exec`); the library
//! (`clamator_cli`) holds what they share, per broker.

use std::process::ExitCode;

use clap::Parser;

/// `println!` that ends the process quietly when stdout is closed (`clamator … | head -1`),
/// like every Unix tool, instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(&format!($($arg)*), true)
    };
}

/// `print!` with the same broken-pipe handling as [`out!`].
macro_rules! out_nonl {
    ($($arg:tt)*) => {
        $crate::write_out(&format!($($arg)*), false)
    };
}

pub(crate) fn write_out(text: &str, newline: bool) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

mod cli;
mod commands;
mod target;

async fn run(cli: cli::Cli) -> Result<ExitCode, String> {
    use cli::Command;
    // The broker is picked once, here, for the commands that need one.
    let conn = cli
        .command
        .conn_after()
        .map_or_else(|| cli.conn.clone(), |after| cli.conn.with(after));
    let target = || target::Target::from_args(&conn);
    match &cli.command {
        Command::Codegen(args) => commands::codegen::exec(args),
        Command::Completions { shell } => commands::man::completions(*shell),
        Command::Man { out_dir } => commands::man::man(out_dir.as_deref()),
        Command::Call(args) => commands::call::exec(args, &target()?).await,
        Command::Notify(args) => commands::notify::exec(args, &target()?).await,
        Command::Inspect(args) => commands::inspect::exec(args, &target()?).await,
        Command::Dlq { action } => commands::dlq::exec(action, &target()?).await,
        Command::Bench(args) => commands::bench::exec(args, &target()?).await,
        Command::Dashboard(args) => commands::dashboard::exec(args, &target()?).await,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    match run(cli::Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
