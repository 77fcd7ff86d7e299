//! The effective capabilities and user of this process, read from `/proc/self/status`, so that
//! `check-config` can say before capture starts whether opening an AF_PACKET socket (CAP_NET_RAW)
//! or changing interface settings such as promiscuous mode (CAP_NET_ADMIN) will be allowed.
//!
//! Reports only; it never changes capabilities and does not print.

/// Capability number of CAP_NET_ADMIN (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
/// Capability number of CAP_NET_RAW (linux/capability.h).
const CAP_NET_RAW: u32 = 13;

/// Effective capabilities of this process. `is_root` is the effective uid; it is reported apart
/// because root without CAP_NET_RAW (a container or unit that drops it) still cannot capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub net_raw: bool,
    pub net_admin: bool,
    pub is_root: bool,
}

/// Effective capabilities of this process from `/proc/self/status` (`CapEff`, `Uid`). When the
/// file cannot be read or a line is missing, the corresponding flags are `false`.
pub fn capabilities() -> Capabilities {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    capabilities_from_status(&status)
}

fn capabilities_from_status(status: &str) -> Capabilities {
    let (net_raw, net_admin) = status_field(status, "CapEff:")
        .map(parse_cap_eff)
        .unwrap_or((false, false));
    // `Uid:` lists real, effective, saved and filesystem uids; the effective one decides.
    let is_root = status_field(status, "Uid:")
        .and_then(|uids| uids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0");
    Capabilities {
        net_raw,
        net_admin,
        is_root,
    }
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .map(str::trim)
}

/// `(net_raw, net_admin)` from the hexadecimal `CapEff` mask; an unparsable mask grants nothing.
fn parse_cap_eff(hex: &str) -> (bool, bool) {
    match u64::from_str_radix(hex.trim(), 16) {
        Ok(mask) => (has_bit(mask, CAP_NET_RAW), has_bit(mask, CAP_NET_ADMIN)),
        Err(_) => (false, false),
    }
}

fn has_bit(mask: u64, bit: u32) -> bool {
    mask & (1_u64 << bit) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_masks() {
        // Full root set of a recent kernel.
        assert_eq!(parse_cap_eff("000001ffffffffff"), (true, true));
        // This machine's root set (CAP_SYS_RESOURCE dropped): both network bits still set.
        assert_eq!(parse_cap_eff("000001fffeffffff"), (true, true));
        // An unprivileged process.
        assert_eq!(parse_cap_eff("0000000000000000"), (false, false));
        // CAP_NET_RAW alone: bit 13 = 0x2000 (the systemd unit's AmbientCapabilities).
        assert_eq!(parse_cap_eff("0000000000002000"), (true, false));
        // CAP_NET_ADMIN alone: bit 12 = 0x1000.
        assert_eq!(parse_cap_eff("0000000000001000"), (false, true));
        // Everything except CAP_NET_RAW.
        assert_eq!(parse_cap_eff("000001ffffffdfff"), (false, true));
        // Surrounding whitespace as in the status file; garbage grants nothing.
        assert_eq!(parse_cap_eff("\t0000000000003000\n"), (true, true));
        assert_eq!(parse_cap_eff(""), (false, false));
        assert_eq!(parse_cap_eff("zz"), (false, false));
        assert_eq!(parse_cap_eff("1ffffffffffffffffff"), (false, false));
    }

    #[test]
    fn status_file_gives_caps_and_effective_uid() {
        let status = "Name:\tvoqa-agent\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
                      CapInh:\t0000000000000000\nCapPrm:\t0000000000002000\n\
                      CapEff:\t0000000000002000\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(
            capabilities_from_status(status),
            Capabilities {
                net_raw: true,
                net_admin: false,
                is_root: true
            }
        );
        let unprivileged = "Uid:\t0\t1000\t1000\t1000\nCapEff:\t0000000000000000\n";
        assert_eq!(
            capabilities_from_status(unprivileged),
            Capabilities {
                net_raw: false,
                net_admin: false,
                is_root: false
            }
        );
        assert_eq!(
            capabilities_from_status(""),
            Capabilities {
                net_raw: false,
                net_admin: false,
                is_root: false
            }
        );
    }

    #[test]
    fn live_capabilities_match_our_uid() {
        let caps = capabilities();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let effective_uid = status_field(&status, "Uid:")
            .and_then(|uids| uids.split_whitespace().nth(1).map(str::to_owned));
        assert_eq!(caps.is_root, effective_uid.as_deref() == Some("0"));
        if caps.is_root {
            // The test environment runs as full root; a root without CAP_NET_RAW would also
            // fail capture, which is what this check is for.
            assert!(caps.net_raw, "root test run without CAP_NET_RAW");
        }
    }
}
