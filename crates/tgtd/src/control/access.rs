//! Who may manage this tgtd: the control socket's file mode is the first gate (0600, or 0660 with
//! `--control-group`), and the peer's credentials (SO_PEERCRED) the second, so a socket whose mode
//! was loosened, or a descriptor handed to another process, still obeys the same rule: root, the
//! daemon's own user, and members of the control group, if one is configured.

use rtgt_mgmt::{ErrorCode, MgmtError};

/// The credentials the kernel reports for the process at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// The rule, fixed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlAccess {
    /// The user tgtd runs as.
    pub daemon_uid: u32,
    /// `--control-group`: its members may manage tgtd too.
    pub group: Option<u32>,
}

impl ControlAccess {
    /// The rule for this process: its own effective uid, and the control group if given.
    pub fn for_this_process(group: Option<u32>) -> Self {
        ControlAccess { daemon_uid: nix::unistd::geteuid().as_raw(), group }
    }

    /// Whether `peer` may issue commands. `supplementary` lists the peer's other groups (from
    /// /proc; empty when unknown), so group membership is the one the kernel applies to the socket
    /// file rather than what /etc/group says now.
    pub fn permits(&self, peer: &Peer, supplementary: &[u32]) -> bool {
        if peer.uid == 0 || peer.uid == self.daemon_uid {
            return true;
        }
        match self.group {
            Some(g) => peer.gid == g || supplementary.contains(&g),
            None => false,
        }
    }

    /// Decide for a connected peer, reading its supplementary groups only when they matter.
    pub fn check(&self, peer: &Peer) -> Result<(), MgmtError> {
        let groups = match (self.group, peer.pid) {
            (Some(_), Some(pid)) if !self.permits(peer, &[]) => supplementary_groups(pid),
            _ => Vec::new(),
        };
        if self.permits(peer, &groups) {
            Ok(())
        } else {
            Err(refusal(peer.uid))
        }
    }
}

/// The answer a refused peer gets (tgtadm prints it after "tgtadm: ").
pub fn refusal(uid: u32) -> MgmtError {
    MgmtError::with_message(ErrorCode::PermissionDenied, format!("uid {uid} is not allowed to manage this tgtd"))
}

/// The "Groups:" line of /proc/PID/status; empty when the process is gone or the line unreadable.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return Vec::new() };
    parse_groups(&status)
}

fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|rest| rest.split_whitespace().filter_map(|g| g.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer { uid, gid, pid: None }
    }

    #[test]
    fn root_and_the_daemon_user_only_without_a_group() {
        let access = ControlAccess { daemon_uid: 1000, group: None };
        assert!(access.permits(&peer(0, 0), &[]));
        assert!(access.permits(&peer(1000, 1000), &[]));
        assert!(!access.permits(&peer(1001, 1000), &[1000]), "a group alone does not admit");
        assert!(!access.permits(&peer(65534, 65534), &[]));
    }

    #[test]
    fn the_control_group_admits_by_primary_or_supplementary_group() {
        let access = ControlAccess { daemon_uid: 0, group: Some(100) };
        assert!(access.permits(&peer(1001, 100), &[]));
        assert!(access.permits(&peer(1001, 1001), &[27, 100]));
        assert!(!access.permits(&peer(1001, 1001), &[27]));
        assert!(access.permits(&peer(0, 0), &[]));
    }

    #[test]
    fn refusal_names_the_uid() {
        let e = refusal(65534);
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert_eq!(e.to_string(), "permission denied: uid 65534 is not allowed to manage this tgtd");
    }

    #[test]
    fn groups_line_is_parsed() {
        let status = "Name:\ttgtadm\nUid:\t1001\t1001\t1001\t1001\nGroups:\t27 100 1001 \nVmRSS:\t1 kB\n";
        assert_eq!(parse_groups(status), vec![27, 100, 1001]);
        assert_eq!(parse_groups("Groups:\t\n"), Vec::<u32>::new());
        assert_eq!(parse_groups("Name: x\n"), Vec::<u32>::new());
    }
}
