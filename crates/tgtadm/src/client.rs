//! The control socket: send one request, read one response.

use rtgt_mgmt::{read_message, write_message, FrameError, Op, Request, Response, SystemOp};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// tgt's tgtadm exits with ENOTCONN when it cannot talk to the daemon.
pub const EXIT_NOT_CONNECTED: i32 = 107;

/// How long to wait for the daemon's answer; deleting a target with sessions can take a moment.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Same wording as tgt, whatever the underlying cause (absent socket, refused, permissions).
    #[error("failed to send request hdr to tgt daemon, Transport endpoint is not connected")]
    Connect(#[source] std::io::Error),
    #[error("failed to send request to tgt daemon, {0}")]
    Send(#[source] FrameError),
    #[error("failed to receive response from tgt daemon, {0}")]
    Receive(#[source] FrameError),
}

/// Send `request` to the daemon listening on `socket` and wait for its response. `wait`: how long
/// to keep trying while the socket is absent or refuses (a daemon still starting).
pub fn call(socket: &Path, request: &Request, wait: Duration) -> Result<Response, ClientError> {
    let mut stream = connect(socket, wait).map_err(ClientError::Connect)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| ClientError::Send(e.into()))?;
    write_message(&mut stream, request).map_err(ClientError::Send)?;
    let response = read_message(&mut stream).map_err(ClientError::Receive)?;
    if matches!(request.op, Op::System(SystemOp::Delete { .. })) && matches!(response, Response::Ok(_)) {
        wait_for_exit(&mut stream);
    }
    Ok(response)
}

/// After an accepted `system delete` the daemon holds the connection open until its process ends;
/// waiting for that end means a script's next line (start a new tgtd on the same socket and port)
/// never meets the old daemon still leaving. Bounded by the reply timeout: a daemon stuck while
/// stopping does not hang tgtadm forever.
fn wait_for_exit(stream: &mut UnixStream) {
    use std::io::Read;
    let mut sink = [0u8; 64];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Between tries while waiting for a starting daemon.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Connect, retrying only on what a starting daemon looks like from outside: no socket yet
/// (ENOENT) or a socket not yet listening (ECONNREFUSED). Anything else (permissions) fails at once.
fn connect(socket: &Path, wait: Duration) -> std::io::Result<UnixStream> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(err)
                if matches!(err.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(RETRY_INTERVAL);
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::Reply;
    use std::os::unix::net::UnixListener;

    #[test]
    fn absent_daemon_is_tgt_wording() {
        let dir = tempfile::tempdir().unwrap();
        let err = call(&dir.path().join("none.sock"), &Request::iscsi(Op::System(SystemOp::Show)), Duration::ZERO)
            .unwrap_err();
        assert_eq!(err.to_string(), "failed to send request hdr to tgt daemon, Transport endpoint is not connected");
    }

    #[test]
    fn one_request_one_response() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let request: Request = read_message(&mut conn).unwrap();
            assert_eq!(request.op, Op::System(SystemOp::Delete { force: false }));
            write_message(&mut conn, &Response::Ok(Reply::Done)).unwrap();
            // The daemon's end: tgtadm returns from a delete once the connection closes.
            drop(conn);
            // A second connection that closes without answering.
            let (conn, _) = listener.accept().unwrap();
            drop(conn);
        });
        let reply =
            call(&path, &Request::iscsi(Op::System(SystemOp::Delete { force: false })), Duration::ZERO).unwrap();
        assert_eq!(reply, Response::Ok(Reply::Done));
        let err = call(&path, &Request::iscsi(Op::System(SystemOp::Show)), Duration::ZERO).unwrap_err();
        assert!(matches!(err, ClientError::Receive(_) | ClientError::Send(_)), "{err}");
        server.join().unwrap();
    }
}
