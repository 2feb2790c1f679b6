//! Maintenance commands: gc, check, firewall reload.
use super::output::{print_json, print_lines};
use anyhow::{Context as _, Result};
use clap::Subcommand;
use nsnet::names::NetworkName;
use nsnet::ops::{maint, Context};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum MaintArgs {
    /// Reconcile the store with the kernel: remove what is left of endpoints,
    /// pods and operations that are gone.
    Gc {
        /// Print the report as JSON: removed (kind, object, reason), kept, errors.
        #[arg(long)]
        json: bool,
    },
    /// List every difference between the store and the kernel (exit 1 on drift).
    Check {
        /// Only this network.
        network: Option<NetworkName>,
        /// Print the differences as JSON: an array of {object, problem}.
        #[arg(long)]
        json: bool,
    },
    /// nsnet's firewall table.
    #[command(subcommand)]
    Firewall(FirewallCommand),
}

#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// Re-install table inet nsnet and all its elements from the store.
    Reload,
}

pub fn run(ctx: &Context, args: &MaintArgs) -> Result<ExitCode> {
    match args {
        MaintArgs::Gc { json } => {
            let report = maint::gc(ctx).context("gc")?;
            if *json {
                print_json(&report)?;
            } else {
                print_lines(
                    report
                        .removed
                        .iter()
                        .map(|r| r.to_string())
                        .chain(report.restored.iter().map(|r| format!("restored {r}"))),
                );
                print_lines(report.repaired.iter().map(|r| format!("repaired {r}")));
                for k in &report.kept {
                    eprintln!("nsnet: gc: kept {k}");
                }
            }
            if !report.errors.is_empty() {
                anyhow::bail!("gc: {}", report.errors.join("; "));
            }
            Ok(ExitCode::SUCCESS)
        }
        MaintArgs::Check { network, json } => {
            let drift = maint::check(ctx, network.as_ref()).context("check")?;
            if *json {
                print_json(&drift)?;
            } else {
                print_lines(drift.iter().map(|d| d.to_string()));
            }
            Ok(if drift.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::exit::NO)
            })
        }
        MaintArgs::Firewall(FirewallCommand::Reload) => {
            print_lines(maint::reload(ctx).context("firewall reload")?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
