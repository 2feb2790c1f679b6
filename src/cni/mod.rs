//! The CNI plugin face of nsnet (CNI spec 1.1.0; configs of 0.3.0 to 1.1.0).
//!
//! The `nsnet` binary acts as a CNI plugin when `CNI_COMMAND` is set: runtimes
//! run `$CNI_PATH/nsnet` (a copy or a link) for configs of `"type": "nsnet"`.
//! A CNI network is the nsnet network named by the config's `name`, defined in
//! nsnet's store on the first ADD from the config's subnet, gateway and bridge;
//! an attachment (container id + interface) is an nsnet endpoint with the id
//! `cni:CONTAINERID:IFNAME`, so DEL and GC find its lease, ports and host veth
//! without the namespace, which may be gone.
//!
//! Everything the runtime gives (environment, JSON) is parsed into validated
//! types first ([`env`], [`config`]); the verbs ([`add`], [`check`],
//! [`cleanup`], [`status`]) run [`crate::ops`]. Stdout carries only the result
//! or the spec's error object; logs go to stderr, or to the config's `logFile`.
//!
//! Error codes: the spec's (1 incompatible version, 2 unsupported field, 3
//! unknown container, 4 invalid environment, 5 I/O, 6 decoding, 7 invalid
//! config, 11 try again later, 50 STATUS: not available), a delegated IPAM
//! plugin's own, and nsnet's from 100 up: [`PERMISSION_DENIED`],
//! [`ADDRESS_UNAVAILABLE`], [`ALREADY_ATTACHED`], [`DRIFT`]; 999 only for a
//! delegate that failed without saying why.

pub mod add;
pub mod check;
pub mod cleanup;
pub mod config;
pub mod delegate;
pub mod env;
pub mod result;
pub mod status;
pub mod version;

use crate::ops;
use config::{ConfigError, LogConf, NetConf};
use delegate::DelegateError;
use env::{Command, EnvError, Invocation};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;
use version::{Version, VersionError, LATEST, SUPPORTED};

/// nsnet lacks the privileges it needs (CAP_NET_ADMIN, CAP_SYS_ADMIN).
pub const PERMISSION_DENIED: u32 = 100;
/// No address (or no host port) left, or the one asked for is taken.
pub const ADDRESS_UNAVAILABLE: u32 = 101;
/// ADD for an attachment that exists, or an interface name taken in the container.
pub const ALREADY_ATTACHED: u32 = 102;
/// CHECK found the attachment differs from what ADD set up.
pub const DRIFT: u32 = 103;
/// STATUS: the plugin cannot serve ADD now (the spec's code).
pub const NOT_AVAILABLE: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("reading the network configuration from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Delegate(#[from] DelegateError),
    #[error(transparent)]
    Ops(#[from] ops::Error),
    #[error(transparent)]
    Add(#[from] add::AddError),
    #[error(transparent)]
    Check(#[from] check::CheckError),
    #[error(transparent)]
    Status(#[from] status::StatusError),
}

impl From<crate::netns::Error> for Error {
    fn from(e: crate::netns::Error) -> Self {
        Error::Ops(ops::Error::Netns(e))
    }
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        Error::Ops(ops::Error::Store(e))
    }
}

fn store_code(e: &crate::store::Error) -> u32 {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match e {
        crate::store::Error::Db { cause: source, .. }
            if matches!(
                source.sqlite_error_code(),
                Some(DatabaseBusy | DatabaseLocked)
            ) =>
        {
            11
        }
        _ => 5,
    }
}

fn ops_code(e: &ops::Error) -> u32 {
    use crate::ipam::Error as Ipam;
    use crate::netns::Error as Netns;
    use crate::store::Refused;
    match e {
        ops::Error::NotPrivileged(_) => PERMISSION_DENIED,
        ops::Error::Netns(Netns::NotFound(_) | Netns::NoSuchProcess(_)) => 3,
        ops::Error::Netns(Netns::NotNetns(_)) | ops::Error::HostNamespace { .. } => 4,
        ops::Error::InterfaceExists { .. } => ALREADY_ATTACHED,
        ops::Error::Invalid(_) | ops::Error::UnknownNetwork(_) => 7,
        ops::Error::Store(s) => store_code(s),
        ops::Error::Ipam(Ipam::Store(_)) => 5,
        ops::Error::Ipam(Ipam::Exhausted(_) | Ipam::ExhaustedBounds { .. } | Ipam::InUse(_)) => {
            ADDRESS_UNAVAILABLE
        }
        ops::Error::Ipam(_) => 7,
        ops::Error::Refused { source, .. } => match source {
            Refused::Ipam(Ipam::Exhausted(_) | Ipam::ExhaustedBounds { .. } | Ipam::InUse(_))
            | Refused::Port(_) => ADDRESS_UNAVAILABLE,
            Refused::Ipam(Ipam::Store(_)) => 5,
            Refused::Ipam(_) => 7,
        },
        _ => 5,
    }
}

impl Error {
    /// The code of the spec's error object.
    pub fn code(&self) -> u32 {
        match self {
            Error::Env(_) => 4,
            Error::Stdin(_) => 5,
            Error::Config(ConfigError::Json(_) | ConfigError::NotObject) => 6,
            Error::Config(ConfigError::Version(_)) | Error::Version(_) => 1,
            Error::Config(ConfigError::Unsupported { .. }) => 2,
            Error::Config(_) => 7,
            Error::Delegate(d) => match d {
                DelegateError::NoCniPath(_) => 4,
                DelegateError::NotFound { .. } => 7,
                DelegateError::Spawn { .. } => 5,
                DelegateError::Plugin { code, .. } => *code,
                DelegateError::Failed { .. } => 999,
                DelegateError::BadResult { .. } => 6,
            },
            Error::Ops(e) => ops_code(e),
            Error::Add(e) => e.code(),
            Error::Check(e) => e.code(),
            Error::Status(_) => NOT_AVAILABLE,
        }
    }

    /// The error object's `msg` and `details`.
    fn describe(&self) -> (String, String) {
        match self {
            Error::Delegate(DelegateError::Plugin {
                plugin,
                msg,
                details,
                ..
            }) => (format!("IPAM plugin {plugin}: {msg}"), details.clone()),
            Error::Check(check::CheckError::Drift {
                attachment,
                network,
                problems,
            }) => (
                format!("attachment {attachment} to network {network} has drifted"),
                problems.join("; "),
            ),
            _ => (self.to_string(), String::new()),
        }
    }
}

/// Where nsnet keeps its records: the config's `stateDir`/`configDir`, else
/// `NSNET_STATE_DIR`/`NSNET_CONFIG_DIR` as for the CLI, else the defaults.
fn context(lookup: &impl Fn(&str) -> Option<OsString>, conf: &NetConf) -> ops::Context {
    let dir = |given: &Option<std::path::PathBuf>, var: &str, default: &str| {
        given.clone().unwrap_or_else(|| {
            lookup(var)
                .filter(|v| !v.is_empty())
                .map_or_else(|| default.into(), std::path::PathBuf::from)
        })
    };
    ops::Context {
        state_dir: dir(&conf.state_dir, "NSNET_STATE_DIR", "/run/nsnet"),
        config_dir: dir(&conf.config_dir, "NSNET_CONFIG_DIR", "/var/lib/nsnet"),
    }
}

/// Logs to the config's `logFile` (level `logLevel`, default info) or to
/// stderr (warnings only); never to stdout. Later calls change nothing.
fn init_logging(log: Option<&LogConf>) {
    let file = log.and_then(|l| l.file.as_ref()).and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let level = log
        .and_then(|l| l.level.as_deref())
        .unwrap_or(if file.is_some() { "info" } else { "warn" });
    // A level name ("debug", "info", ...); anything else logs at info.
    let filter = level
        .parse::<tracing::level_filters::LevelFilter>()
        .unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_target(false)
        .with_ansi(false);
    let _ = match file {
        Some(f) => builder.with_writer(std::sync::Mutex::new(f)).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// Entry point when the binary runs with `CNI_COMMAND` set.
pub fn main() -> ExitCode {
    let lookup = |k: &str| std::env::var_os(k);
    let mut version = LATEST;
    let outcome = run(&lookup, &mut std::io::stdin().lock(), &mut version);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match outcome {
        Ok(answer) => {
            if let Some(v) = answer {
                if writeln!(out, "{v}").and_then(|_| out.flush()).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            init_logging(None);
            let (msg, details) = e.describe();
            tracing::error!(
                "{msg}{}",
                if details.is_empty() {
                    String::new()
                } else {
                    format!(" ({details})")
                }
            );
            let mut obj = json!({"cniVersion": version.as_str(), "code": e.code(), "msg": msg});
            if !details.is_empty() {
                obj["details"] = details.into();
            }
            let _ = writeln!(out, "{obj}").and_then(|_| out.flush());
            ExitCode::FAILURE
        }
    }
}

/// Serves one invocation; `version` is set as soon as the config's is known, so
/// that an error is written in it.
pub fn run(
    lookup: &impl Fn(&str) -> Option<OsString>,
    stdin: &mut impl Read,
    version: &mut Version,
) -> Result<Option<Value>, Error> {
    let command = env::command(lookup)?;
    let mut input = Vec::new();
    stdin.read_to_end(&mut input).map_err(Error::Stdin)?;
    // Answer in the config's version whenever it can be read at all.
    if let Some(v) = config::parse_json(&input)
        .ok()
        .and_then(|o| config::version_of(&o).ok())
    {
        *version = v;
    }
    if command == Command::Version {
        return Ok(Some(json!({
            "cniVersion": version.as_str(),
            "supportedVersions": SUPPORTED.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        })));
    }
    let inv = Invocation::from_env(lookup)?;
    let conf = NetConf::parse(&input, &inv.args)?;
    init_logging(Some(&conf.log));
    conf.version.allows(command.as_str())?;
    let ctx = context(lookup, &conf);
    tracing::debug!(
        "{command}: netns {:?}, state {}, config {}",
        inv.netns,
        ctx.state_dir.display(),
        ctx.config_dir.display()
    );
    let started = Instant::now();
    let what = match &inv.attachment {
        Some(a) => format!("{command} {a} on network {}", conf.name),
        None => format!("{command} on network {}", conf.name),
    };
    if let (Some(name), Some(ns)) = (
        inv.args.get("K8S_POD_NAME"),
        inv.args.get("K8S_POD_NAMESPACE"),
    ) {
        tracing::debug!("{what}: pod {ns}/{name}");
    }
    let answer = match command {
        Command::Add => Some(add::add(&ctx, &inv, &conf)?.encode(conf.version)),
        Command::Del => cleanup::del(&ctx, &inv, &conf).map(|()| None)?,
        Command::Check => check::check(&ctx, &inv, &conf).map(|()| None)?,
        Command::Gc => cleanup::gc(&ctx, &inv, &conf).map(|()| None)?,
        Command::Status => status::status(&ctx, &inv, &conf).map(|()| None)?,
        Command::Version => None,
    };
    tracing::info!(
        "{what} (CNI_NETNS {:?}): done in {:.1} ms",
        inv.netns
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn call(vars: &[(&str, &str)], stdin: &str) -> (Result<Option<Value>, Error>, Version) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| map.get(k).map(OsString::from);
        let mut version = LATEST;
        let r = run(&lookup, &mut stdin.as_bytes(), &mut version);
        (r, version)
    }

    #[test]
    fn version_lists_what_nsnet_speaks() {
        let (r, v) = call(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.4.0"}"#);
        let out = r.unwrap().unwrap();
        assert_eq!(v, Version::V0_4_0);
        assert_eq!(out["cniVersion"], "0.4.0");
        assert_eq!(
            out["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
        let (r, _) = call(&[("CNI_COMMAND", "VERSION")], "");
        assert_eq!(r.unwrap().unwrap()["cniVersion"], "1.1.0");
    }

    #[test]
    fn bad_input_gets_the_spec_codes() {
        let add = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/none"),
            ("CNI_IFNAME", "eth0"),
        ];
        let code = |vars: &[(&str, &str)], stdin: &str| call(vars, stdin).0.unwrap_err().code();
        let ok = r#"{"cniVersion":"1.0.0","name":"n","type":"nsnet"}"#;
        assert_eq!(code(&add, "{"), 6);
        assert_eq!(
            code(&add, r#"{"cniVersion":"0.2.0","name":"n","type":"nsnet"}"#),
            1
        );
        assert_eq!(code(&add, r#"{"cniVersion":"1.0.0","type":"nsnet"}"#), 7);
        assert_eq!(
            code(
                &add,
                r#"{"cniVersion":"1.0.0","name":"n","type":"nsnet","macspoofchk":true}"#
            ),
            2
        );
        assert_eq!(code(&add[..3], ok), 4);
        assert_eq!(code(&[("CNI_COMMAND", "JUMP")], ok), 4);
        let mut bad_if = add.to_vec();
        bad_if[3] = ("CNI_IFNAME", "eth0/1");
        assert_eq!(code(&bad_if, ok), 4);
        let check = [
            ("CNI_COMMAND", "CHECK"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/x"),
            ("CNI_IFNAME", "eth0"),
        ];
        assert_eq!(
            code(
                &check,
                r#"{"cniVersion":"0.3.1","name":"n","type":"nsnet"}"#
            ),
            1
        );
        assert_eq!(code(&[("CNI_COMMAND", "GC")], ok), 1);
    }

    #[test]
    fn an_error_is_answered_in_the_configs_version() {
        let (r, v) = call(
            &[("CNI_COMMAND", "ADD")],
            r#"{"cniVersion":"0.3.1","name":"n","type":"nsnet"}"#,
        );
        assert_eq!(r.unwrap_err().code(), 4);
        assert_eq!(v, Version::V0_3_1);
    }
}
