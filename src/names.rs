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
    if let Some(bad) = name
        .chars()
        .find(|c| *c == '/' || c.is_whitespace() || c.is_control() || *c == ':')
    {
        return Err(NameError::BadChar {
            what,
            name: name.to_owned(),
            bad,
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
}
