//! `nsnet doctor FROM TO[:PORT[/PROTO]]`: walk the path a packet would take and
//! name the first thing that blocks it, with the fix.

use anyhow::{Context as _, Result};
use clap::Args;
use nsnet::doctor::{self, Destination, Place};
use nsnet::ops::Context;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A namespace, a pod, `host`, or an address of one of them.
    #[arg(value_name = "FROM")]
    from: Place,
    /// A namespace, pod, `host` or address, with an optional port:
    /// `b`, `b:80`, `10.0.0.2:53/udp`, `[2001:db8::2]:80`.
    #[arg(value_name = "TO[:PORT[/PROTO]]")]
    to: Destination,
    /// The diagnosis as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit 0: the path is clear; 1: it is blocked; 2: bad input.
pub fn run(ctx: &Context, args: &DoctorArgs) -> Result<ExitCode> {
    nsnet::privilege::require_admin().context("doctor")?;
    let report = match doctor::diagnose(ctx, &args.from, &args.to) {
        Ok(r) => r,
        Err(doctor::Error::BadInput(msg)) => {
            eprintln!("nsnet: doctor: {msg}");
            return Ok(ExitCode::from(super::exit::USAGE));
        }
        Err(e) => return Err(e).context("doctor"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.clear {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::NO)
    })
}
