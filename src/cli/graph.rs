//! `nsnet graph`: the live topology as a tree, Graphviz input, an SVG picture or JSON,
//! or served live to a browser (`--serve`, [`super::serve`]).

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use nsnet::graph;
use nsnet::ops::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A tree for the terminal.
    Text,
    /// Graphviz input (`nsnet graph --format dot | dot -Tpng > net.png`).
    Dot,
    /// A picture laid out and drawn by nsnet itself.
    Svg,
    /// The topology as data.
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Serve a live view on http://[ADDR:]PORT/ (address 127.0.0.1 unless
    /// given): the picture, updated as the topology changes, details on click,
    /// and doctor. Read-only; Ctrl-C stops it.
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = super::serve::parse_listen,
          conflicts_with_all = ["format", "output"])]
    serve: Option<std::net::SocketAddr>,
}

pub fn run(ctx: &Context, args: &GraphArgs) -> Result<ExitCode> {
    nsnet::privilege::require_admin().context("graph")?;
    if let Some(addr) = args.serve {
        return super::serve::run(ctx, addr);
    }
    let topo = graph::collect(ctx).context("graph")?;
    let rendered = match args.format {
        Format::Text => graph::text::render(&topo),
        Format::Dot => graph::dot::render(&topo),
        Format::Svg => graph::svg::render(&topo),
        Format::Json => serde_json::to_string_pretty(&topo)? + "\n",
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("graph: writing {}", path.display()))?,
        None => print!("{rendered}"),
    }
    Ok(ExitCode::SUCCESS)
}
