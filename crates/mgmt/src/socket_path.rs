//! Where the control socket is: one rule for tgtd, tgtadm and tgt-admin, so that the three always
//! meet. `--control-socket PATH` wins, then tgt's `-C N` (`/var/run/tgtd/socket.N`), then
//! `$RTGT_CONTROL_SOCKET`, then tgt's default `/var/run/tgtd/socket.0`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// tgt's control socket directory; `-C N` picks `socket.N` in it.
pub const SOCKET_DIR: &str = "/var/run/tgtd";
/// The environment variable that names the socket when neither `--control-socket` nor `-C` does.
pub const SOCKET_ENV: &str = "RTGT_CONTROL_SOCKET";

/// The control socket for these command-line choices; `env` is `$RTGT_CONTROL_SOCKET` as read by
/// the caller (passed in, so that tests need not change the process environment). An empty
/// variable counts as unset.
pub fn control_socket(explicit: Option<&Path>, port: Option<u32>, env: Option<&OsStr>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    if let Some(port) = port {
        return port_socket(port);
    }
    match env.filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => port_socket(0),
    }
}

/// tgt's socket for control port `port`.
pub fn port_socket(port: u32) -> PathBuf {
    PathBuf::from(format!("{SOCKET_DIR}/socket.{port}"))
}

/// The control port whose socket `path` is, when it is one of tgt's (`-C N` reaches it).
pub fn port_of(path: &Path) -> Option<u32> {
    let rest = path.to_str()?.strip_prefix(SOCKET_DIR)?.strip_prefix("/socket.")?;
    // Only the canonical spelling: "007" or "+7" would name another file than socket.7.
    rest.parse::<u32>().ok().filter(|n| n.to_string() == rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_explicit_then_port_then_environment_then_default() {
        let env = Some(OsStr::new("/run/env.sock"));
        let explicit = Some(Path::new("/tmp/x.sock"));
        assert_eq!(control_socket(explicit, Some(7), env), PathBuf::from("/tmp/x.sock"));
        assert_eq!(control_socket(None, Some(7), env), PathBuf::from("/var/run/tgtd/socket.7"));
        assert_eq!(control_socket(None, None, env), PathBuf::from("/run/env.sock"));
        assert_eq!(control_socket(None, None, Some(OsStr::new(""))), PathBuf::from("/var/run/tgtd/socket.0"));
        assert_eq!(control_socket(None, None, None), PathBuf::from("/var/run/tgtd/socket.0"));
    }

    #[test]
    fn port_of_inverts_port_socket() {
        assert_eq!(port_of(&port_socket(0)), Some(0));
        assert_eq!(port_of(&port_socket(42)), Some(42));
        assert_eq!(port_of(Path::new("/var/run/tgtd/socket.007")), None);
        assert_eq!(port_of(Path::new("/var/run/tgtd/socket.x")), None);
        assert_eq!(port_of(Path::new("/tmp/socket.1")), None);
    }
}
