//! Validated names. The kernel and iproute2 accept a few odd names that break
//! tools later (a namespace called `..`, an interface called `a/b`); these types
//! reject them at the edge with a message that says what is wrong.

use std::fmt;
use std::str::FromStr;

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Longest namespace name: it becomes a file name under `/run/netns`.
pub const NETNS_NAME_MAX: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} name is empty")]
    Empty { what: &'static str },
    #[error("{what} name {name:?} is too long ({len} bytes, at most {max})")]
    TooLong {
        what: &'static str,
        name: String,
        len: usize,
        max: usize,
    },
    #[error("{what} name {name:?} contains {bad:?}, which is not allowed")]
    BadChar {
        what: &'static str,
        name: String,
        bad: char,
    },
    #[error("{what} name {name:?} must start with a letter or a digit")]
    BadStart { what: &'static str, name: String },
    #[error("{what} name {name:?} is reserved")]
    Reserved { what: &'static str, name: String },
}

fn check_common(what: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            what,
            name: name.to_owned(),
            len: name.len(),
            max,
        });
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved {
            what,
            name: name.to_owned(),
        });
    }
    // `%`: the kernel reads `eth%d` as a template and names the link
    // otherwise than asked (teardown would never find it).
    if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control())
    {
        return Err(NameError::BadChar {
            what,
            name: name.to_owned(),
            bad,
        });
    }
    // A leading `-` reads as an option to `ip` in the commands doctor prints.
    if name.starts_with('-') {
        return Err(NameError::BadStart {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The name of a named network namespace (a file under `/run/netns`).
///
/// `host` is reserved: on the command line it means the namespace nsnet runs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetnsName(String);

impl NetnsName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetnsName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        check_common("namespace", s, NETNS_NAME_MAX)?;
        if s == "host" {
            return Err(NameError::Reserved {
                what: "namespace",
                name: s.to_owned(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A network interface name: 1 to 15 bytes, no `/`, `:` or whitespace
/// (the kernel's `dev_valid_name` plus `:`, which iproute2 reads as an alias).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

impl IfName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        check_common("interface", s, IFNAME_MAX)?;
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One side of a point-to-point link: the namespace nsnet runs in, or a named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsSide {
    Host,
    Named(NetnsName),
}

impl FromStr for NsSide {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s == "host" {
            Ok(Self::Host)
        } else {
            s.parse().map(Self::Named)
        }
    }
}

impl fmt::Display for NsSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host => f.write_str("host"),
            Self::Named(n) => n.fmt(f),
        }
    }
}

/// Longest network name.
pub const NETWORK_NAME_MAX: usize = 64;

/// The name of a bridge network: letters, digits, `-`, `_` and `.`, starting
/// with a letter or digit, at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkName(String);

impl NetworkName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetworkName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        check_common("network", s, NETWORK_NAME_MAX)?;
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(NameError::BadChar {
                what: "network",
                name: s.to_owned(),
                bad,
            });
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(NameError::BadStart {
                what: "network",
                name: s.to_owned(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `network connect` attaches: a named namespace, the namespace of a
/// running process (`pid:PID`), or a namespace file (any path with a `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Named(NetnsName),
    Pid(u32),
    Path(std::path::PathBuf),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target {0:?}: expected pid:PID with a number")]
    BadPid(String),
    #[error(transparent)]
    Name(#[from] NameError),
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        if let Some(pid) = s.strip_prefix("pid:") {
            // Digits only: Rust's integer parser also takes a leading `+`.
            let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
            return match pid.parse::<u32>() {
                Ok(p) if p > 0 && digits => Ok(Self::Pid(p)),
                _ => Err(TargetError::BadPid(s.to_owned())),
            };
        }
        if s.contains('/') {
            return Ok(Self::Path(s.into()));
        }
        Ok(Self::Named(s.parse()?))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(n) => n.fmt(f),
            Self::Pid(p) => write!(f, "pid:{p}"),
            Self::Path(p) => p.display().fmt(f),
        }
    }
}

/// A unicast Ethernet address, `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MacError {
    #[error("MAC address {0:?} is malformed (expected six hex pairs like 02:42:ac:11:00:02)")]
    Malformed(String),
    #[error("MAC address {0} is a multicast address")]
    Multicast(String),
    #[error("MAC address {0} is all zeros")]
    Zero(String),
}

impl FromStr for Mac {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, MacError> {
        let bad = || MacError::Malformed(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            // `from_str_radix` alone would also take a sign (`+f`).
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 == 1 {
            return Err(MacError::Multicast(s.to_owned()));
        }
        if out == [0; 6] {
            return Err(MacError::Zero(s.to_owned()));
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_accepts_fifteen_bytes_and_rejects_sixteen() {
        assert!("a23456789012345".parse::<IfName>().is_ok());
        let err = "a234567890123456".parse::<IfName>().unwrap_err();
        assert!(matches!(
            err,
            NameError::TooLong {
                len: 16,
                max: 15,
                ..
            }
        ));
        assert!(err.to_string().contains("too long"));
    }

    #[test]
    fn ifname_rejects_slash_colon_space_and_dots() {
        for bad in ["a/b", "a:b", "a b", "a\tb", ".", ".."] {
            assert!(bad.parse::<IfName>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn empty_names_are_rejected_with_a_message() {
        assert_eq!(
            "".parse::<NetnsName>().unwrap_err().to_string(),
            "namespace name is empty"
        );
        assert_eq!(
            "".parse::<IfName>().unwrap_err().to_string(),
            "interface name is empty"
        );
    }

    #[test]
    fn netns_name_rejects_slash_and_reserved_host() {
        assert!("x/y".parse::<NetnsName>().is_err());
        assert!("host".parse::<NetnsName>().is_err());
        assert!("web-1.test_ns".parse::<NetnsName>().is_ok());
        let long = "n".repeat(256);
        assert!(long.parse::<NetnsName>().is_err());
        assert!("n".repeat(255).parse::<NetnsName>().is_ok());
    }

    #[test]
    fn ns_side_parses_host_and_names() {
        assert_eq!("host".parse::<NsSide>().unwrap(), NsSide::Host);
        assert_eq!(
            "a".parse::<NsSide>().unwrap(),
            NsSide::Named("a".parse().unwrap())
        );
    }

    #[test]
    fn targets_parse_names_pids_and_paths() {
        assert_eq!("pid:42".parse::<Target>().unwrap(), Target::Pid(42));
        assert!("pid:x".parse::<Target>().is_err());
        assert!("pid:0".parse::<Target>().is_err());
        assert_eq!(
            "/proc/1/ns/net".parse::<Target>().unwrap(),
            Target::Path("/proc/1/ns/net".into())
        );
        assert_eq!(
            "web".parse::<Target>().unwrap(),
            Target::Named("web".parse().unwrap())
        );
    }

    /// Found by the names fuzz target: `pid:+2` was PID 2.
    #[test]
    fn a_pid_target_with_a_sign_is_refused() {
        for bad in ["pid:+2", "pid:-2", "pid: 2", "pid:"] {
            assert_eq!(
                bad.parse::<Target>(),
                Err(TargetError::BadPid(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!("pid:007".parse::<Target>(), Ok(Target::Pid(7)));
    }

    /// Found by the names fuzz target: `+2:42:ac:11:00:02` was a MAC address.
    #[test]
    fn a_mac_with_a_sign_is_malformed() {
        for bad in [
            "+2:42:ac:11:00:02",
            "02:+2:ac:11:00:02",
            "02:42:ac:11:00:+f",
        ] {
            assert!(
                matches!(bad.parse::<Mac>(), Err(MacError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn macs_parse_and_print() {
        let m: Mac = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:00:02",
        ] {
            assert!(
                matches!(bad.parse::<Mac>(), Err(MacError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "01:00:5e:00:00:01".parse::<Mac>(),
            Err(MacError::Multicast(_))
        ));
        assert!(matches!(
            "00:00:00:00:00:00".parse::<Mac>(),
            Err(MacError::Zero(_))
        ));
    }

    /// SECURITY.md: `eth%d` is a kernel name template (the link would get
    /// another name than the one recorded), `-n` an option to `ip`.
    #[test]
    fn templates_and_option_like_names_are_refused() {
        for bad in ["eth%d", "%d", "-n", "-all"] {
            assert!(bad.parse::<IfName>().is_err(), "{bad:?}");
            assert!(bad.parse::<NetnsName>().is_err(), "{bad:?}");
            assert!(bad.parse::<Target>().is_err(), "{bad:?}");
        }
        assert!("a-b".parse::<NetnsName>().is_ok());
        assert!("eth-1".parse::<IfName>().is_ok());
    }

    #[test]
    fn network_names_are_plain_words() {
        assert!("web-1_a.b".parse::<NetworkName>().is_ok());
        for bad in ["", "-x", ".x", "a b", "a/b", "a:b", "é"] {
            assert!(bad.parse::<NetworkName>().is_err(), "{bad:?}");
        }
        assert!("n".repeat(65).parse::<NetworkName>().is_err());
    }
}
