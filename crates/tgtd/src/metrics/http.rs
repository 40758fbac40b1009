//! A minimal HTTP/1.0 responder for `GET /metrics`: one request per connection, then close.
//!
//! Anyone who can reach the address can connect, so everything is bounded: at most
//! `MAX_CONNECTIONS` at once (more are closed at once, never queued), a request of at most
//! `MAX_REQUEST_BYTES` up to its blank line, and `TIMEOUT` for the whole exchange.

use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

pub const MAX_CONNECTIONS: usize = 8;
pub const MAX_REQUEST_BYTES: usize = 4096;
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!(%err, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics: too many connections, closing");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(TIMEOUT, exchange(stream, &registry)).await.is_err() {
                tracing::debug!(%peer, "metrics: connection timed out");
            }
            drop(slot);
        });
    }
}

/// The request line's method and path, once the header block has ended.
fn request_target(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some((method, target))
}

async fn exchange(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_REQUEST_BYTES {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "request too large\n")
                .await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        // At most one chunk past the bound before the check above refuses it.
        head.extend_from_slice(&chunk[..n]);
    }
    match request_target(&head) {
        // Prometheus may add a query string; nothing in it changes the answer.
        Some(("GET", target)) if target == "/metrics" || target.starts_with("/metrics?") => {
            let body = super::collect::render(registry);
            respond(&mut stream, "200 OK", prometheus_client::encoding::prometheus_text::CONTENT_TYPE, &body).await
        }
        Some(("GET", _)) => respond(&mut stream, "404 Not Found", "text/plain", "only /metrics is served\n").await,
        Some(_) => respond(&mut stream, "405 Method Not Allowed", "text/plain", "only GET\n").await,
        None => respond(&mut stream, "400 Bad Request", "text/plain", "bad request\n").await,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line() {
        assert_eq!(request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Some(("GET", "/metrics")));
        assert_eq!(request_target(b"POST / HTTP/1.0\r\n\r\n"), Some(("POST", "/")));
        assert_eq!(request_target(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_target(b"\xff\xfe / HTTP/1.0\r\n\r\n"), None);
    }

    /// A scraper that never finishes its request, or sends an endless one, does not keep its slot.
    #[tokio::test]
    async fn oversized_request_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(Registry::default())));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let junk = vec![b'a'; MAX_REQUEST_BYTES + 100];
        let _ = client.write_all(&junk).await;
        let mut answer = String::new();
        let _ = client.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.0 431"), "{answer}");
    }

    /// Idle connections beyond the bound are closed at once instead of queueing behind the others.
    #[tokio::test]
    async fn connections_beyond_the_bound_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(Registry::default())));
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        // Let the server take every one of them before the next arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the connection over the bound was kept: {read:?}");
        drop(idle);
    }
}
