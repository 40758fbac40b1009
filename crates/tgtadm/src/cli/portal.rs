//! `--mode portal`: the addresses iSCSI listens on.

use super::args::{check_allowed, not_supported, params, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{Op, PortalOp};
use std::net::{IpAddr, SocketAddr};

/// The iSCSI port a portal without one listens on (RFC 7143 13.x: well-known port 3260).
const ISCSI_PORT: u16 = 3260;

/// `ADDR:PORT`, `[V6]:PORT`, or an address alone (port 3260).
fn parse_portal(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, ISCSI_PORT))
}

pub(crate) fn op(args: &Args, op: Operation) -> Result<Op, CliError> {
    let mode = Mode::Portal;
    let address = || -> Result<SocketAddr, CliError> {
        let list = params(args.value(Opt::Params).unwrap_or(""))?;
        // tgt's words when there is no --param at all; its daemon's "invalid request" for a
        // parameter list it cannot use, with rtgt's detail after it.
        if list.is_empty() {
            return Err(CliError::invalid("you must specify --param portal=<portal>"));
        }
        let Some(p) = list.iter().find(|p| p.name == "portal") else {
            return Err(CliError::invalid_request("'portal' parameter is necessary (--param portal=ADDRESS:PORT)"));
        };
        if let Some(other) = list.iter().find(|p| p.name != "portal") {
            return Err(CliError::invalid_request(format!("unknown portal parameter '{}'", other.name)));
        }
        parse_portal(&p.value)
            .ok_or_else(|| CliError::invalid_request(format!("'{}' is not an address and port", p.value)))
    };
    let portal_op = match op {
        Operation::New => {
            check_allowed(args, mode, op, &[Opt::Params])?;
            PortalOp::New { address: address()? }
        }
        Operation::Delete => {
            check_allowed(args, mode, op, &[Opt::Params])?;
            PortalOp::Delete { address: address()? }
        }
        Operation::Show => {
            check_allowed(args, mode, op, &[])?;
            PortalOp::Show
        }
        _ => return Err(not_supported(mode, op)),
    };
    Ok(Op::Portal(portal_op))
}
