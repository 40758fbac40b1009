//! Going into the background the classic way (fork, setsid, stdio to /dev/null), with one twist: the
//! parent waits until the child reports that it serves, so `tgtd && tgtadm ...` never races the
//! daemon's start-up.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Held by the daemon child; `ready()` releases the waiting parent with success.
pub struct ReadyPipe(Option<File>);

impl ReadyPipe {
    /// For a foreground daemon: nothing to tell.
    pub fn none() -> Self {
        ReadyPipe(None)
    }

    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"1");
        }
    }
}

/// Fork into the background. Returns in the child only; the parent exits with 0 once the child is
/// ready, or 1 if it died first. Must run before any thread is started.
pub fn daemonize() -> std::io::Result<ReadyPipe> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process is still single-threaded, so fork is safe.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // SAFETY: plain system calls in the child.
            unsafe {
                libc::setsid();
            }
            let _ = std::env::set_current_dir("/");
            redirect_stdio()?;
            Ok(ReadyPipe(Some(File::from(write_end))))
        }
        _child => {
            drop(write_end);
            let mut byte = [0u8; 1];
            let mut reader = File::from(read_end);
            let code = match reader.read(&mut byte) {
                Ok(1) => 0,
                _ => 1,
            };
            std::process::exit(code);
        }
    }
}

fn redirect_stdio() -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, from a descriptor we hold open.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
