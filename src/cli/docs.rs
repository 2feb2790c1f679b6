//! Shell completions and manual pages, generated from the clap definition of
//! [`super::Cli`]: the one place each command and flag is defined.

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write nsnet.1 and one page per subcommand (nsnet-network-create.1, ...)
    /// into DIR; without it, print nsnet.1.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// `nsnet completions bash > /etc/bash_completion.d/nsnet`.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut super::Cli::command(), "nsnet", &mut out);
    write_stdout(&out)
}

/// `nsnet man | man -l -`, or `nsnet man --output /usr/local/share/man/man1`.
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    let cmd = super::Cli::command();
    match &args.output {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(cmd, dir))
                .with_context(|| format!("man: writing pages to {}", dir.display()))?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            write_stdout(&out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`nsnet man | head`) is not an error worth reporting.
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
    Ok(ExitCode::SUCCESS)
}
