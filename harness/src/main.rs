//! The `netpol-harness` binary: parses the command line, runs it, and turns errors into a
//! one-line message on stderr and an exit status (see [`netpol_harness::cli`]).

use clap::Parser;
use netpol_harness::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match cli::run(cli, &mut stdout) {
        Ok(status) => ExitCode::from(status.code()),
        // A reader that stops early (`| head`) is not an error.
        Err(cli::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            let code = error.exit_code();
            eprintln!("error: {:#}", anyhow::Error::from(error));
            ExitCode::from(code)
        }
    }
}
