//! The CNI spec versions nsnet speaks, and what each one allows.
//!
//! 0.3.0 and 0.3.1 are the same protocol (0.3.1 fixed a typo); 0.4.0 added
//! CHECK; 1.0.0 dropped the `version` field of `ips`; 1.1.0 added STATUS, GC,
//! `cniVersions` and interface MTUs. Older versions (0.1.0, 0.2.0) have another
//! result format altogether and are refused.

use std::fmt;
use std::str::FromStr;

/// A supported spec version, ordered by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

/// Every version nsnet accepts, oldest first (what VERSION answers).
pub const SUPPORTED: [Version; 5] = [
    Version::V0_3_0,
    Version::V0_3_1,
    Version::V0_4_0,
    Version::V1_0_0,
    Version::V1_1_0,
];

/// The newest version: used where no config says which one to speak.
pub const LATEST: Version = Version::V1_1_0;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error(
        "incompatible CNI versions: config is {given:?}, nsnet supports {}",
        supported_list()
    )]
    Unsupported { given: String },
    #[error(
        "none of the config's cniVersions {given:?} is supported; nsnet supports {}",
        supported_list()
    )]
    NoneSupported { given: Vec<String> },
    #[error("config version {version} does not allow {verb} (it needs {needs} or later)")]
    VerbTooNew {
        version: Version,
        verb: &'static str,
        needs: Version,
    },
}

/// `["0.3.0", …]` for messages.
pub fn supported_list() -> String {
    let names: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
    format!("{names:?}")
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// Results before 1.0.0 carry `"version": "4"|"6"` in each `ips` entry.
    pub fn ips_have_version(self) -> bool {
        self < Version::V1_0_0
    }

    /// Interfaces carry their MTU from 1.1.0 on.
    pub fn interfaces_have_mtu(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Fails unless a config of this version may ask for `verb`: CHECK came
    /// with 0.4.0, STATUS and GC with 1.1.0 (as libcni's plugin skeleton rules).
    pub fn allows(self, verb: &'static str) -> Result<(), VersionError> {
        let needs = match verb {
            "CHECK" => Version::V0_4_0,
            "STATUS" | "GC" => Version::V1_1_0,
            _ => return Ok(()),
        };
        if self < needs {
            return Err(VersionError::VerbTooNew {
                version: self,
                verb,
                needs,
            });
        }
        Ok(())
    }

    /// The highest supported version of a config's `cniVersions` list.
    pub fn highest_of(list: &[String]) -> Result<Version, VersionError> {
        list.iter()
            .filter_map(|v| v.parse::<Version>().ok())
            .max()
            .ok_or_else(|| VersionError::NoneSupported {
                given: list.to_vec(),
            })
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, VersionError> {
        SUPPORTED
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| VersionError::Unsupported {
                given: s.to_owned(),
            })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions_parse_and_old_ones_do_not() {
        for v in SUPPORTED {
            assert_eq!(v.as_str().parse::<Version>(), Ok(v));
        }
        for bad in ["0.1.0", "0.2.0", "1.2.0", "1.0", "", "x"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn verbs_need_their_version() {
        assert!(Version::V0_3_1.allows("CHECK").is_err());
        assert!(Version::V0_4_0.allows("CHECK").is_ok());
        assert!(Version::V1_0_0.allows("GC").is_err());
        assert!(Version::V1_1_0.allows("STATUS").is_ok());
        assert!(Version::V0_3_0.allows("ADD").is_ok());
    }

    #[test]
    fn the_highest_known_of_a_list_wins() {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Version::highest_of(&list(&["1.0.0", "1.1.0", "9.9.9"])),
            Ok(Version::V1_1_0)
        );
        assert!(Version::highest_of(&list(&["0.2.0"])).is_err());
    }

    #[test]
    fn result_shape_follows_the_version() {
        assert!(Version::V0_4_0.ips_have_version());
        assert!(!Version::V1_0_0.ips_have_version());
        assert!(Version::V1_1_0.interfaces_have_mtu());
        assert!(!Version::V1_0_0.interfaces_have_mtu());
    }
}
