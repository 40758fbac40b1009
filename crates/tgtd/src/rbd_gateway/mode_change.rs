//! `tgtadm --op update --params sense_format=` on a multi-gateway LUN. The sense format is the
//! control mode page's D_SENSE, one of the unit's current mode parameters that every gateway
//! serves alike (`mode_params`), so the administrator changes it as a MODE SELECT would: the owner
//! stores the new values and takes them, every other gateway takes them from the notification,
//! and every nexus on every gateway gets MODE PARAMETERS CHANGED (no nexus made the change).
//! Every gateway saves its configuration (`--state-dir`) once it has the change, before the
//! administrator is answered, so that whichever gateway powers the unit on next (the first up
//! after all stopped) does it with the sense format set.
//!
//! Asked on a gateway that does not own the unit, the gateway has the owner make the change, as
//! it has the owner run a forwarded MODE SELECT: every change is made by the owner under its
//! MODE SELECT lock, so an administrator's change never undoes a MODE SELECT running there.
//!
//! The wire, on a connection to the owner's forwarding listener (`forward`), opened with
//! `RTGTMOD1` and the token: request u8 what (1: D_SENSE), u8 value (0 or 1); reply u8 outcome
//! (0 changed, 1 already so, 2 refused), u16 message length, the message (why it was refused).

use super::forward::{published_address, TOKEN_LEN};
use rtgt_backstore::rbd::{GatewayStatus, LocalState};
use rtgt_scsi::{LogicalUnit, ModeChangeError, Target};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) const MAGIC: &[u8; 8] = b"RTGTMOD1";
const D_SENSE: u8 = 1;
const CHANGED: u8 = 0;
const UNCHANGED: u8 = 1;
const REFUSED: u8 = 2;
/// A refusal's message is a line of text.
const MAX_MESSAGE: usize = 1024;
/// Reaching the owner; beyond this it is taken as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The owner's answer: a store's write waits up to 5 s for each other gateway, and retries a few
/// times when another gateway's write came first.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    #[error("no gateway owns the unit now (a failover or handoff under way?): nothing changed, try again")]
    NoOwner,
    #[error("the owner published no usable address: nothing changed")]
    NoAddress,
    #[error("the owner could not be reached ({0}): nothing changed, try again")]
    Connect(io::Error),
    #[error("the owner could not be asked ({0}): the sense format may or may not have changed")]
    Unreachable(io::Error),
    #[error("the owner refused: {0}")]
    Refused(String),
    #[error("storing the unit's mode parameters failed: {0}")]
    Store(#[source] io::Error),
    #[error("the logical unit is gone")]
    Gone,
    #[error(
        "the owner made the change, but reading it back here failed ({0}): this gateway takes it when it catches up"
    )]
    CatchUp(io::Error),
}

/// Make the unit's D_SENSE `on` for every gateway of LUN `lun` of `target` (whose gateway
/// membership is `status`): here if this gateway owns the unit, else by its owner. Blocks for the
/// cluster's and the owner's round trips. Returns whether the value changed.
pub(crate) fn set_d_sense(status: &GatewayStatus, target: &Target, lun: u64, on: bool) -> Result<bool, ChangeError> {
    if status.local_state() == LocalState::Active {
        return change_here(target, lun, on);
    }
    let published = status.owner_forward().ok_or(ChangeError::NoOwner)?;
    let changed = ask_owner(&published, on)?;
    // The owner answers once its write returned, which waits for this gateway's notification
    // only so long, and a watch being made again misses it: without this, what this gateway then
    // saves, serves and shows could be the value from before, once the administrator is told
    // the change is done.
    let unit = target.lun(lun).ok_or(ChangeError::Gone)?;
    unit.catch_up_mode_params().map_err(ChangeError::CatchUp)?;
    Ok(changed)
}

fn change_here(target: &Target, lun: u64, on: bool) -> Result<bool, ChangeError> {
    target.change_mode_params(lun, |p| p.d_sense = on).map_err(|e| match e {
        ModeChangeError::NoSuchLun(_) => ChangeError::Gone,
        ModeChangeError::Store(e) => ChangeError::Store(e),
    })
}

/// Send the change to the owner at `published` (`host:port/token`) and wait for its answer.
fn ask_owner(published: &str, on: bool) -> Result<bool, ChangeError> {
    let (addr, token) = published_address(published).ok_or(ChangeError::NoAddress)?;
    let addr: SocketAddr = addr.parse().map_err(|_| ChangeError::NoAddress)?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(ChangeError::Connect)?;
    let exchange = |stream: &mut TcpStream| -> io::Result<(u8, String)> {
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        let mut request = Vec::with_capacity(MAGIC.len() + TOKEN_LEN + 2);
        request.extend_from_slice(MAGIC);
        request.extend_from_slice(&token);
        request.extend_from_slice(&[D_SENSE, u8::from(on)]);
        stream.write_all(&request)?;
        let mut head = [0u8; 3];
        stream.read_exact(&mut head)?;
        let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
        if len > MAX_MESSAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a message of {len} bytes")));
        }
        let mut message = vec![0u8; len];
        stream.read_exact(&mut message)?;
        Ok((head[0], String::from_utf8_lossy(&message).into_owned()))
    };
    match exchange(&mut stream).map_err(ChangeError::Unreachable)? {
        (CHANGED, _) => Ok(true),
        (UNCHANGED, _) => Ok(false),
        (_, message) => Err(ChangeError::Refused(message)),
    }
}

/// The owner's side of one request on `stream` (past the opening), for LUN `lun` of `target`
/// (the unit `unit`). A change is saved here before it is answered, as the asking gateway saves
/// it before it answers the administrator.
pub(super) async fn serve(
    mut stream: tokio::net::TcpStream,
    unit: Arc<LogicalUnit>,
    target: Arc<Target>,
    lun: u64,
    save: super::SaveConfig,
) -> io::Result<()> {
    let mut request = [0u8; 2];
    stream.read_exact(&mut request).await?;
    let owner =
        unit.store().and_then(super::gateway_of).is_some_and(|(_, status)| status.local_state() == LocalState::Active);
    let outcome = match request {
        // Ownership moved since the asking gateway looked: the new owner is the one to ask.
        _ if !owner => Err(ChangeError::Refused("this gateway no longer owns the unit: try again".into())),
        [D_SENSE, value @ (0 | 1)] => tokio::task::spawn_blocking(move || {
            let changed = change_here(&target, lun, value == 1);
            if matches!(changed, Ok(true)) {
                save();
            }
            changed
        })
        .await
        .unwrap_or_else(|e| Err(ChangeError::Store(io::Error::other(e.to_string())))),
        [what, value] => Err(ChangeError::Refused(format!("unknown change {what} to {value}"))),
    };
    let (code, message) = match outcome {
        Ok(true) => (CHANGED, String::new()),
        Ok(false) => (UNCHANGED, String::new()),
        Err(ChangeError::Refused(why)) => (REFUSED, why),
        Err(e) => (REFUSED, e.to_string()),
    };
    if code == REFUSED {
        tracing::warn!(lun, "an administrator's change asked by another gateway was refused: {message}");
    }
    let message = &message.as_bytes()[..message.len().min(MAX_MESSAGE)];
    let mut reply = vec![code];
    reply.extend_from_slice(&(message.len() as u16).to_be_bytes());
    reply.extend_from_slice(message);
    stream.write_all(&reply).await
}
