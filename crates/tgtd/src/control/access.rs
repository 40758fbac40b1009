//! Who may manage this tgtd: the control socket's file mode is the first gate (0600, or 0660 with
//! `--control-group`), and the peer's credentials (SO_PEERCRED) the second, so a socket whose mode
//! was loosened, or a descriptor handed to another process, still obeys the same rule: root, the
//! daemon's own user, and members of the control group, if one is configured. The check happens
//! when the connection is accepted, before any of the request is read.

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

    /// Whether `peer` may issue commands. `supplementary` lists the peer's other groups as the
    /// kernel recorded them when it connected (SO_PEERGROUPS), so group membership is the one the
    /// kernel applied to the socket file rather than what /etc/group says now.
    pub fn permits(&self, peer: &Peer, supplementary: &[u32]) -> bool {
        if peer.uid == 0 || peer.uid == self.daemon_uid {
            return true;
        }
        match self.group {
            Some(g) => peer.gid == g || supplementary.contains(&g),
            None => false,
        }
    }

    /// Decide for a connected peer; `supplementary` is asked for only when it matters.
    pub fn check(&self, peer: &Peer, supplementary: impl FnOnce() -> Vec<u32>) -> Result<(), MgmtError> {
        let groups = match self.group {
            Some(_) if !self.permits(peer, &[]) => supplementary(),
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

/// SO_PEERGROUPS (Linux 4.13): not in the libc crate. 59 in the generic socket option table (and
/// MIPS's); SPARC numbers it 0x3d.
#[cfg(not(target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 59;
#[cfg(target_arch = "sparc64")]
const SO_PEERGROUPS: libc::c_int = 0x003d;

/// Most groups a process can be in (the kernel's NGROUPS_MAX): bounds the buffer asked for.
const NGROUPS_MAX: usize = 65536;

/// The supplementary groups of the process at the other end of `socket`, as they were when it
/// connected (the kernel keeps them with the connection, like SO_PEERCRED): unlike
/// /proc/PID/status, immune to the peer exiting and its pid being reused, and available when the
/// peer's pid is not visible from tgtd's pid namespace.
pub fn peer_groups(socket: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * std::mem::size_of::<libc::gid_t>())
            .map_err(|_| std::io::Error::other("group list too long"))?;
        // SAFETY: `groups` holds `len` writable bytes, and `len` is a valid socklen_t the kernel
        // updates with the size it wrote (or needs, with ERANGE).
        let rc = unsafe {
            libc::getsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, SO_PEERGROUPS, groups.as_mut_ptr().cast(), &mut len)
        };
        let needed = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(needed.min(groups.len()));
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || needed <= groups.len() || needed > NGROUPS_MAX {
            return Err(err);
        }
        groups.resize(needed, 0);
    }
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
    fn peer_groups_are_the_connecting_process_groups() {
        use std::os::fd::AsFd;
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut mine: Vec<u32> = nix::unistd::getgroups().unwrap().into_iter().map(|g| g.as_raw()).collect();
        let mut seen = peer_groups(a.as_fd()).unwrap();
        mine.sort_unstable();
        seen.sort_unstable();
        assert_eq!(seen, mine);
    }

    #[test]
    fn supplementary_groups_are_read_only_when_they_decide() {
        let access = ControlAccess { daemon_uid: 0, group: Some(100) };
        let asked = std::cell::Cell::new(false);
        let groups = || {
            asked.set(true);
            vec![100]
        };
        assert!(access.check(&peer(1000, 100), groups).is_ok());
        assert!(!asked.get(), "the primary group admitted it");
        assert!(access.check(&peer(1000, 1000), groups).is_ok() && asked.get());
        assert!(access.check(&peer(1000, 1000), Vec::new).is_err());
    }
}
