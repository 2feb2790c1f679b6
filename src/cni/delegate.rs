//! Running a delegated IPAM plugin, as the spec describes: the executable named
//! by `ipam.type`, found in `CNI_PATH`, run with this process's environment
//! (`CNI_COMMAND` set to the verb) and the network configuration on stdin. Its
//! CNI errors are passed on with their own code.

use super::env::Command;
use super::result::CniResult;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DelegateError {
    #[error("CNI_PATH is empty: it is needed to find IPAM plugin {0}")]
    NoCniPath(String),
    #[error("IPAM plugin {plugin} not found in CNI_PATH ({})", path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"))]
    NotFound { plugin: String, path: Vec<PathBuf> },
    #[error("running IPAM plugin {plugin}: {why}")]
    Spawn { plugin: String, why: String },
    /// The plugin answered with a CNI error; its code is passed on.
    #[error("IPAM plugin {plugin}: {msg}")]
    Plugin {
        plugin: String,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("IPAM plugin {plugin} failed ({status}) without a CNI error: {stderr}")]
    Failed {
        plugin: String,
        status: String,
        stderr: String,
    },
    #[error("IPAM plugin {plugin} answered something that is not a CNI result: {why}")]
    BadResult { plugin: String, why: String },
}

/// The first executable file `plugin` in the directories of `CNI_PATH`.
fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, DelegateError> {
    if path.is_empty() {
        return Err(DelegateError::NoCniPath(plugin.to_owned()));
    }
    path.iter()
        .map(|dir| dir.join(plugin))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| DelegateError::NotFound {
            plugin: plugin.to_owned(),
            path: path.to_vec(),
        })
}

/// Runs `plugin` for `command`; returns its stdout on success.
pub fn run(
    plugin: &str,
    command: Command,
    path: &[PathBuf],
    stdin: &[u8],
) -> Result<Vec<u8>, DelegateError> {
    let exe = find(plugin, path)?;
    exec(plugin, &exe, command, stdin)
}

fn exec(
    plugin: &str,
    exe: &Path,
    command: Command,
    stdin: &[u8],
) -> Result<Vec<u8>, DelegateError> {
    let spawn_err = |e: std::io::Error| DelegateError::Spawn {
        plugin: plugin.to_owned(),
        why: e.to_string(),
    };
    tracing::debug!("running IPAM plugin {} for {command}", exe.display());
    let mut child = Process::new(exe)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits without reading its stdin is judged by its answer.
        let _ = input.write_all(stdin);
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    #[derive(serde::Deserialize)]
    struct CniError {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<CniError>(&out.stdout) {
        Ok(e) => Err(DelegateError::Plugin {
            plugin: plugin.to_owned(),
            code: e.code,
            msg: e.msg,
            details: e.details,
        }),
        Err(_) => Err(DelegateError::Failed {
            plugin: plugin.to_owned(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
    }
}

/// Runs the plugin's ADD and reads its result.
pub fn add(plugin: &str, path: &[PathBuf], stdin: &[u8]) -> Result<CniResult, DelegateError> {
    let out = run(plugin, Command::Add, path, stdin)?;
    let bad = |why: String| DelegateError::BadResult {
        plugin: plugin.to_owned(),
        why,
    };
    let value: serde_json::Value = serde_json::from_slice(&out).map_err(|e| bad(e.to_string()))?;
    let result = CniResult::parse(&value).map_err(|e| bad(e.to_string()))?;
    if result.ips.is_empty() {
        return Err(bad("it leased no address".into()));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nsnet-delegate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn results_errors_and_missing_plugins() {
        let d = tmpdir("a");
        script(
            &d,
            "good",
            r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","ips":[{"address":"10.3.0.9/24","gateway":"10.3.0.1"}]}'"#,
        );
        script(
            &d,
            "bad",
            r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"later"}'; exit 1"#,
        );
        script(&d, "crash", "echo oops >&2; exit 3");
        let path = vec![PathBuf::from("/nonexistent"), d.clone()];
        let r = add("good", &path, b"{}").unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.3.0.9/24");
        assert!(matches!(
            add("bad", &path, b"{}"),
            Err(DelegateError::Plugin { code: 11, .. })
        ));
        assert!(matches!(
            run("crash", Command::Del, &path, b"{}"),
            Err(DelegateError::Failed { stderr, .. }) if stderr == "oops"
        ));
        assert!(matches!(
            run("absent", Command::Del, &path, b"{}"),
            Err(DelegateError::NotFound { .. })
        ));
        assert!(matches!(
            run("good", Command::Del, &[], b"{}"),
            Err(DelegateError::NoCniPath(_))
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}
