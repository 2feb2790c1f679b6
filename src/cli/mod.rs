//! The command line: what the user typed (clap), turned into validated requests
//! for [`nsnet::ops`], and the answers printed. No logic of its own.

mod cluster;
mod demo;
mod docs;
mod doctor;
mod graph;
mod link;
mod maint;
mod netns;
mod network;
mod output;
mod pod;
mod port;
mod run;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Container networking from kernel objects: namespaces, veth pairs, bridges, nftables.
#[derive(Debug, Parser)]
#[command(name = "nsnet", version, about, propagate_version = true)]
pub struct Cli {
    /// Runtime state (endpoints, leases, pods); dies with the kernel objects at reboot.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "NSNET_STATE_DIR",
        default_value = "/run/nsnet"
    )]
    pub state_dir: PathBuf,
    /// Definitions that survive a reboot (networks).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "NSNET_CONFIG_DIR",
        default_value = "/var/lib/nsnet"
    )]
    pub config_dir: PathBuf,
    /// Debug logs on stderr, with seconds since start on each line.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Named network namespaces (shared with `ip netns`).
    #[command(subcommand)]
    Netns(netns::NetnsCommand),
    /// Point-to-point veth links between namespaces.
    #[command(subcommand)]
    Link(link::LinkCommand),
    /// Bridge networks with IPAM, gateway and NAT.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Published ports.
    #[command(subcommand)]
    Port(port::PortCommand),
    /// Clusters: this node's pod network and routes to the other nodes' pods.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Pods: containers sharing one network, IPC, UTS and PID namespace.
    #[command(subcommand)]
    Pod(pod::PodCommand),
    /// Run a command in a network mode (bridge network, host, none, container:, pod:).
    Run(run::RunArgs),
    /// Replay the container-networking walk-through in a throwaway sandbox.
    Demo(demo::DemoArgs),
    /// Show the live topology (text, Graphviz dot, SVG or JSON).
    Graph(graph::GraphArgs),
    /// Walk the path from FROM to TO and name what blocks it, with the fix.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completions(docs::CompletionsArgs),
    /// Print the manual page, or write one per subcommand with --output DIR.
    Man(docs::ManArgs),
    /// Maintenance: gc, check, firewall reload.
    #[command(flatten)]
    Maint(maint::MaintArgs),
    /// Candidates for shell completion (used by the scripts of `completions`).
    #[command(name = "__complete", hide = true)]
    Complete(docs::CompleteArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    init_logging(cli.verbose);
    let ctx = nsnet::ops::Context {
        state_dir: cli.state_dir.clone(),
        config_dir: cli.config_dir.clone(),
    };
    let result = match &cli.command {
        Command::Netns(cmd) => netns::run(&ctx, cmd),
        Command::Link(cmd) => link::run(cmd),
        Command::Network(cmd) => network::run(&ctx, cmd),
        Command::Port(cmd) => port::run(&ctx, cmd),
        Command::Cluster(cmd) => cluster::run(&ctx, cmd),
        Command::Pod(cmd) => pod::run(&ctx, cmd),
        Command::Run(args) => run::run(&ctx, args),
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Graph(args) => graph::run(&ctx, args),
        Command::Doctor(args) => doctor::run(&ctx, args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Complete(args) => docs::complete(&ctx, args),
        Command::Maint(args) => maint::run(&ctx, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nsnet: {}", error_line(&e));
            exit_code(&e)
        }
    }
}

/// nsnet's exit codes (README, "Exit status"), shell and Docker style.
pub mod exit {
    /// The answer is no: a path is blocked (`doctor`), records drift (`check`).
    pub const NO: u8 = 1;
    /// The command line is wrong: unknown option, bad value, missing argument.
    pub const USAGE: u8 = 2;
    /// nsnet itself failed (the message says what and why).
    pub const FAILED: u8 = 125;
    /// The command was found but cannot run (not executable, bad working directory).
    pub const CANNOT_RUN: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// The exit code for a failure: 126/127 when the user's command could not be
/// started (like a shell), 125 for every other failure of nsnet's own.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if cause.downcast_ref::<output::Usage>().is_some() {
            return ExitCode::from(exit::USAGE);
        }
        if let Some(nsnet::ops::Error::CannotRun { source, .. }) = cause.downcast_ref() {
            return ExitCode::from(cannot_run_code(source));
        }
        if let Some(nsnet::ops::Error::BadWorkdir { .. }) = cause.downcast_ref() {
            return ExitCode::from(exit::CANNOT_RUN);
        }
    }
    ExitCode::from(exit::FAILED)
}

/// 127 when the command does not exist, 126 when it exists but cannot run.
pub fn cannot_run_code(e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::NotFound {
        exit::NOT_FOUND
    } else {
        exit::CANNOT_RUN
    }
}

/// Bad values get one line, like every other nsnet error; help, version and
/// missing arguments keep clap's full text with its usage.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            // Keep the allowed values of a choice flag on the line.
            let values = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("[possible values: "))
                .map(|v| format!(" (possible values: {})", v.trim_end_matches(']')))
                .unwrap_or_default();
            eprintln!("nsnet: {}{values}", first.trim_start_matches("error: "));
            ExitCode::from(exit::USAGE)
        }
        _ => {
            let _ = e.print();
            ExitCode::from(e.exit_code().clamp(0, 255) as u8)
        }
    }
}

fn init_logging(verbose: bool) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    if verbose {
        // Seconds since start on each line: `-v` doubles as a per-step profile.
        builder
            .with_timer(tracing_subscriber::fmt::time::Uptime::default())
            .init();
    } else {
        builder.without_time().init();
    }
}

/// One line from an error chain. Our errors print their cause inline, so a cause
/// whose text the line already ends with (give or take std's "(os error N)") is
/// not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let plain = text.split(" (os error").next().unwrap_or(&text);
        if line.ends_with(&text) || line.ends_with(plain) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
