//! Going into the background the classic way (fork, setsid, stdio to /dev/null), with one twist: the
//! parent waits until the child reports that it serves, so `tgtd && tgtadm ...` never races the
//! daemon's start-up. Until then the child keeps the caller's stdout and stderr, so whatever stops
//! the start (a taken port, an unusable state directory) is printed there and the parent exits 1.

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

    /// Start-up is over: from now on the daemon has no terminal (stdio goes to /dev/null, so a
    /// closed terminal cannot kill it with EPIPE), and the parent exits with success.
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            if let Err(err) = redirect_stdio() {
                tracing::warn!(%err, "cannot detach stdio from the terminal");
            }
            let _ = f.write_all(b"1");
        }
    }

    /// While a daemonizing tgtd starts, its stderr is still the terminal of whoever started it:
    /// what goes wrong there (a LUN not restored) is said there too, not only in syslog.
    pub fn tell(&self, message: &str) {
        if self.0.is_some() {
            eprintln!("tgtd: {message}");
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
            // stdin goes now; stdout and stderr stay the caller's until ready(), so an error
            // before then (a taken port, an unusable --state-dir) is printed, not lost.
            redirect_stdin()?;
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

fn redirect_stdin() -> std::io::Result<()> {
    redirect(&[0])
}

fn redirect_stdio() -> std::io::Result<()> {
    redirect(&[0, 1, 2])
}

fn redirect(fds: &[i32]) -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    for &fd in fds {
        // SAFETY: dup2 onto the standard descriptors, from a descriptor we hold open.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
