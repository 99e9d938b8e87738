//! The `netpol-probe` binary: `serve`, `probe` and `version`.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use netpol_probes::probe::{DEFAULT_CONCURRENCY, Prober, read_targets};
use netpol_probes::serve::{ServeConfig, Server, load_spec, parse_port};
use netpol_probes::spec::PortSpec;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for input the agent cannot run (bad targets, bad ports).
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "netpol-probe",
    version,
    about = "The agent in every netpol-harness probe pod"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the pod's ports until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Probe a JSON array of targets; print one JSON result per line.
    Probe(ProbeArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A port to serve: PORT/PROTOCOL[/CHECK[/NAME]], e.g. 80/TCP/http/web; repeatable.
    #[arg(long = "port", value_parser = parse_port_arg)]
    ports: Vec<PortSpec>,
    /// A JSON or YAML list of ports (`port`, `protocol`, `name`, `check`), added to --port.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// The pod's namespace (the downward API's POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: String,
    /// The pod's name (the downward API's POD_NAME).
    #[arg(long, env = "POD_NAME")]
    name: String,
    /// An address to bind; repeatable. Default: 0.0.0.0 and ::.
    #[arg(long)]
    bind: Vec<IpAddr>,
    /// A file written once every listener is bound, removed on shutdown.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// The JSON array of targets: a file, or `-` for standard input.
    #[arg(long, default_value = "-")]
    input: PathBuf,
    /// How many probes run at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
}

fn parse_port_arg(arg: &str) -> Result<PortSpec, String> {
    parse_port(arg).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    raise_file_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("netpol-probe: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Probe(args) => runtime.block_on(probe(args)),
        Command::Version => {
            println!("netpol-probe {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("netpol-probe: {error:#}");
        ExitCode::FAILURE
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut ports = args.ports;
    if let Some(path) = &args.spec {
        match load_spec(path) {
            Ok(more) => ports.extend(more),
            Err(error) => return Ok(bad_input(&error)),
        }
    }
    let config = ServeConfig {
        identity: format!("{}/{}", args.namespace, args.name),
        ports,
        bind: args.bind,
        ready_file: args.ready_file,
    };
    if let Err(error) = config.validate() {
        return Ok(bad_input(&error));
    }
    let server = Server::bind(&config)?;
    server.run(shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for signals; serving until killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let targets = if args.input.as_os_str() == "-" {
        read_targets(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&args.input) {
            Ok(file) => read_targets(std::io::BufReader::new(file)),
            Err(error) => {
                eprintln!(
                    "netpol-probe: failed to open {}: {error}",
                    args.input.display()
                );
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
        }
    };
    let targets = match targets {
        Ok(targets) => targets,
        Err(error) => return Ok(bad_input(&error)),
    };
    let prober = Prober::new()?;
    let mut out = std::io::stdout().lock();
    let mut write_error = None;
    prober
        .run_batch(targets, args.concurrency, |result| {
            if write_error.is_some() {
                return;
            }
            let written = serde_json::to_writer(&mut out, &result)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            write_error = written.err();
        })
        .await;
    if let Some(error) = write_error {
        return Err(error).context("failed to write the results");
    }
    Ok(ExitCode::SUCCESS)
}

fn bad_input(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("netpol-probe: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Lets a large batch hold a socket per probe in flight: raises the soft limit on open files
/// to the hard limit.
fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
