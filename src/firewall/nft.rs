//! The `nft` program, for the few things nsnet does not do over nfnetlink
//! (`nfnl`): declaring the base ruleset (a script, one transaction), reading a
//! table or the whole ruleset as JSON (maintenance commands and doctor only; the
//! hot path never lists), other firewalls' chains (`foreign`), and `--check`.
//! One runner, so every caller reports a missing or failing `nft` the same way.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `nft ARGS` with `stdin` as its input; its output, or its error text
/// (stderr, trimmed; or why it could not run).
pub fn run(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft ({e}); install the nftables package"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Runs `script` through `nft -f -`: one transaction, all or nothing.
pub fn script(script: &str) -> Result<(), String> {
    run(&["-f", "-"], Some(script)).map(|_| ())
}

/// Whether nft would accept `script` (`nft --check -f -`, which changes nothing).
pub fn check(script: &str) -> Result<(), String> {
    run(&["--check", "-f", "-"], Some(script)).map(|_| ())
}

/// `nft -j list ARGS` parsed; `None` when what it names does not exist.
pub fn list_json(args: &[&str]) -> Result<Option<serde_json::Value>, String> {
    let mut all = vec!["-j", "list"];
    all.extend_from_slice(args);
    match run(&all, None) {
        Ok(out) => serde_json::from_str(&out)
            .map(Some)
            .map_err(|e| format!("nft -j list {}: {e}", args.join(" "))),
        Err(e) if e.contains("No such file or directory") => Ok(None),
        Err(e) => Err(format!("nft list {}: {e}", args.join(" "))),
    }
}
