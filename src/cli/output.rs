//! How every listing prints: one table writer (column widths from the content),
//! one JSON style (pretty), and the listing options `--json`, `-q` and
//! `--format`, defined once here and flattened into each `ls`.

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;

/// A mistake on the command line found after clap's parse (an unknown
/// `--format` field): exit 2, like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// `--json`, `-q`, `--format` of a listing.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Print the listing as JSON: an array of objects (fields in the README).
    #[arg(long)]
    pub json: bool,
    /// Print only the names (or ids), one per line.
    #[arg(short, long, conflicts_with_all = ["json", "format"])]
    pub quiet: bool,
    /// Print each row through TEMPLATE, e.g. '{{.Name}} {{.Subnets}}': the
    /// fields are the table's columns; `\t` is a tab. `table` and `json` work too.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "json")]
    pub format: Option<Template>,
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    Table,
    Json,
    Row(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A field, normalised (lower case, letters and digits only).
    Field(String),
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl std::str::FromStr for Template {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "table" => return Ok(Template::Table),
            "json" => return Ok(Template::Json),
            _ => {}
        }
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(unescape(&rest[..open])));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("{s:?}: a {{{{ without its }}}}"))?;
            let field = after[..close].trim();
            let name = field
                .strip_prefix('.')
                .filter(|f| {
                    !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .ok_or_else(|| {
                    format!(
                        "{s:?}: only fields are supported, as {{{{.Name}}}} (got {{{{{field}}}}})"
                    )
                })?;
            pieces.push(Piece::Field(normalise(name)));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(unescape(rest)));
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Field(_))) {
            return Err(format!(
                "{s:?} names no field: use table, json or a template such as '{{{{.Name}}}}'"
            ));
        }
        Ok(Template::Row(pieces))
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// A listing: a table's columns and rows, and the same rows as JSON.
pub struct Listing {
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
    pub json: Vec<Value>,
}

impl Listing {
    pub fn new(columns: &'static [&'static str]) -> Self {
        Listing {
            columns,
            rows: Vec::new(),
            json: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>, json: Value) {
        self.rows.push(row);
        self.json.push(json);
    }

    /// Prints it as the options say: a table, JSON, names only (`-q`: the
    /// first column) or one templated line per row.
    pub fn print(&self, how: &ListArgs) -> Result<()> {
        let template = match &how.format {
            Some(Template::Json) => return print_json(&self.json),
            Some(Template::Table) | None if how.json => return print_json(&self.json),
            Some(Template::Table) | None => None,
            Some(Template::Row(pieces)) => Some(pieces),
        };
        let lines: Vec<String> = if how.quiet {
            self.rows.iter().map(|r| r[0].clone()).collect()
        } else if let Some(pieces) = template {
            let index = |f: &str| self.columns.iter().position(|c| normalise(c) == f);
            for p in pieces {
                if let Piece::Field(f) = p {
                    if index(f).is_none() {
                        let known: Vec<String> = self
                            .columns
                            .iter()
                            .map(|c| format!("{{{{.{}}}}}", field_name(c)))
                            .collect();
                        return Err(Usage(format!(
                            "--format: no field {f:?} here; the fields are {}",
                            known.join(" ")
                        ))
                        .into());
                    }
                }
            }
            self.rows
                .iter()
                .map(|row| {
                    pieces
                        .iter()
                        .map(|p| match p {
                            Piece::Text(t) => t.as_str(),
                            Piece::Field(f) => index(f).map_or("", |i| row[i].as_str()),
                        })
                        .collect()
                })
                .collect()
        } else {
            table(self.columns, &self.rows)
        };
        print_lines(lines);
        Ok(())
    }
}

/// A column's name as a template field: `HOST PORT` -> `HostPort`.
fn field_name(column: &str) -> String {
    column
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut cs = lower.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The table's lines: each column as wide as its widest cell (the header
/// included), two spaces between columns, the last one unpadded.
pub fn table(columns: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(&mut columns.iter().copied())];
    for row in rows {
        out.push(line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Every JSON nsnet prints: pretty, with a final newline.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    print_lines([serde_json::to_string_pretty(value)?]);
    Ok(())
}

/// Prints lines, stopping quietly when stdout is closed (`nsnet check | head`):
/// the work is done, and the exit code must still say how it went.
pub fn print_lines(lines: impl IntoIterator<Item = String>) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}
