//! The login phase (RFC 7143 6.3 and 11.12-11.13): security and operational stages with CSG/NSG and
//! the T bit (authentication itself is auth.rs's: AuthMethod None or CHAP), the declarations that
//! name initiator, target and session type, access control (ACLs, the offline state), the session
//! bounds (daemon and target, 0x0302) and the ISID/TSIH rules that create, reinstate or join a
//! session (MaxConnections, 0x0206). Failures answer with a
//! login status class and detail (11.13.5), then the connection closes.

use crate::counters::{IscsiCounters, LoginRefusal};
use crate::login::auth::AuthError;
use crate::login::chap::ChapKeys;
use crate::login::negotiate::Negotiation;
use crate::params::SessionParams;
use crate::pdu::{encode_pdu, off, Bhs, Opcode, Pdu, PduError, PduReader};
use crate::registry::IscsiTarget;
use crate::session::{Session, SessionType};
use crate::text;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

pub(crate) mod auth;
pub(crate) mod auth_guard;
pub mod chap;
mod establish;
pub(crate) mod negotiate;
mod state;

use crate::session::aborted_io::{aborted_io_ended, ABORTED_IO_WAIT};
use establish::{finish, out_of_sessions, reinstates};
pub(crate) use state::{ConnCtx, LoginStatus};
use state::{Login, STAGE_FULL_FEATURE, STAGE_OPERATIONAL, STAGE_SECURITY};

/// The portal group tag of every portal (tgt's default).
pub(crate) const TPGT: u16 = 1;
/// Login PDUs carry at most this much data (the RFC default MaxRecvDataSegmentLength).
pub(crate) const LOGIN_DATA_LIMIT: u32 = 8192;

/// A completed login.
pub(crate) struct LoggedIn {
    pub session: Arc<Session>,
    /// The target logged in to; None for discovery.
    pub target: Option<Arc<IscsiTarget>>,
    /// This connection's parameters (digests and segment lengths are per connection).
    pub params: SessionParams,
    pub stat_sn: u32,
}

/// The login state machine without a socket, for the fuzz target: each request's outcome, as the
/// status class and detail (0, 0 for an accepted step), until the login ends or fails. A session
/// it creates is ended again before returning.
pub(crate) fn login_steps(pdus: &[Pdu], ctx: &ConnCtx) -> Vec<(u8, u8)> {
    let mut st = Login::new();
    let mut outcomes = Vec::new();
    for pdu in pdus {
        match step(&mut st, pdu, ctx) {
            Ok(Step::Continue(_)) => outcomes.push((0, 0)),
            Ok(Step::Done(_, session)) => {
                outcomes.push((0, 0));
                session.end_if_alone(ctx.conn_id);
                break;
            }
            Err(status) => {
                outcomes.push((status.0, status.1));
                break;
            }
        }
    }
    outcomes
}

/// Run the login phase on a new connection. None when it failed (the answer was sent) or the peer left.
pub(crate) async fn login<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut PduReader<R>,
    sock: &mut W,
    ctx: &ConnCtx,
) -> Option<LoggedIn> {
    let mut st = Login::new();
    let deadline = tokio::time::Instant::now() + ctx.registry.login_timeout();
    match tokio::time::timeout_at(deadline, login_inner(reader, sock, ctx, &mut st, deadline)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::debug!(peer = %ctx.peer, "login timed out");
            counters(&st, ctx).login_refused(LoginRefusal::Timeout);
            None
        }
    }
}

/// Where a login's outcome is counted: the target it named, once found, else the daemon's
/// counters of what belongs to no target.
fn counters<'a>(st: &'a Login, ctx: &'a ConnCtx) -> &'a IscsiCounters {
    st.named_target.as_ref().map_or(&ctx.registry.untargeted, |t| &t.counters)
}

/// Count a login refused with `status` (the answer is being sent).
fn count_refusal(st: &Login, ctx: &ConnCtx, status: LoginStatus) {
    let counters = counters(st, ctx);
    counters.login_refused(LoginRefusal::from_status(status.0, status.1));
    if st.chap_failed {
        counters.chap_failure();
    }
}

async fn login_inner<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut PduReader<R>,
    sock: &mut W,
    ctx: &ConnCtx,
    st: &mut Login,
    deadline: tokio::time::Instant,
) -> Option<LoggedIn> {
    reader.max_data_segment = LOGIN_DATA_LIMIT;
    loop {
        let pdu = tokio::select! {
            r = reader.read_pdu_if(|h| h.opcode_raw() == Opcode::LoginRequest as u8) => match r {
                Ok(p) => p,
                Err(PduError::DataSegmentTooLong { len, limit }) => {
                    // Login PDUs may carry at most 8192 bytes (RFC 7143 13.12, the default in force
                    // during login): an initiator error. The segment is not read; the login ends.
                    tracing::info!(peer = %ctx.peer, len, limit, "login PDU over the segment limit");
                    if st.first {
                        take_first_header(st, reader.last_header());
                    }
                    count_refusal(st, ctx, LoginStatus::INITIATOR_ERROR);
                    let _ = send_status(sock, st, ctx, LoginStatus::INITIATOR_ERROR).await;
                    return None;
                }
                Err(e) => {
                    tracing::debug!(peer = %ctx.peer, "login read: {e}");
                    return None;
                }
            },
            _ = ctx.control.closed() => return None,
        };
        if pdu.bhs.opcode_raw() != Opcode::LoginRequest as u8 {
            // 6.3: only Login Requests are allowed before the full feature phase.
            count_refusal(st, ctx, LoginStatus::INITIATOR_ERROR);
            if !st.first {
                let _ = send_status(sock, st, ctx, LoginStatus::INITIATOR_ERROR).await;
            }
            return None;
        }
        match step(st, &pdu, ctx) {
            Ok(Step::Continue(resp)) => {
                if write_response(sock, st, ctx, &resp).await.is_err() {
                    return None;
                }
                st.stat_sn = st.stat_sn.wrapping_add(1);
            }
            Ok(Step::Done(resp, session)) => {
                // The session now holds this connection (and a new one its slots); until the
                // answer is out, leaving here in any way, the login timeout's drop included,
                // takes the connection off again.
                let registered = Registered { session: Some(session), conn_id: ctx.conn_id };
                // A new session proceeds only once the commands aborted on the target (a
                // reinstated session's, a lost connection's) are out of their stores: its first
                // READ must not see an aborted write land afterwards (RFC 7143 6.3.5). The wait
                // ends early enough to answer before the login timeout cuts the connection.
                let scsi = registered.session().target.as_ref().map(|t| t.scsi.clone());
                if let Some(scsi) = scsi.filter(|s| s.aborted_tasks_running(None)) {
                    if !aborted_io_ended(&scsi, None, aborted_io_limit(deadline)).await {
                        drop(registered);
                        count_refusal(st, ctx, LoginStatus::SERVICE_UNAVAILABLE);
                        let _ = send_status(sock, st, ctx, LoginStatus::SERVICE_UNAVAILABLE).await;
                        return None;
                    }
                }
                if write_response(sock, st, ctx, &resp).await.is_err() {
                    return None;
                }
                let session = registered.keep();
                st.stat_sn = st.stat_sn.wrapping_add(1);
                counters(st, ctx).login_accepted();
                let params = st.neg.finish();
                return Some(LoggedIn { session, target: st.target.clone(), params, stat_sn: st.stat_sn });
            }
            Err(status) => {
                let who = st.initiator_name.as_deref().unwrap_or("");
                tracing::info!(initiator = who, peer = %ctx.peer, class = status.0, detail = status.1, "login refused");
                count_refusal(st, ctx, status);
                if status == LoginStatus::AUTH_FAILURE {
                    // Repeated failures from one address wait longer and longer for their answer.
                    let delay = ctx.registry.auth_throttle.failure(ctx.peer.ip());
                    tokio::time::sleep(delay).await;
                }
                let _ = send_status(sock, st, ctx, status).await;
                return None;
            }
        }
    }
}

/// A connection entered in its session by a login whose final answer has not gone out yet; dropped
/// unkept (the login failed, timed out or was cancelled), it leaves the session again, ending a
/// session it created.
struct Registered {
    /// None once kept.
    session: Option<Arc<Session>>,
    conn_id: u64,
}

impl Registered {
    fn session(&self) -> &Arc<Session> {
        self.session.as_ref().expect("a registered login's session")
    }

    /// The answer is out: the connection stays.
    fn keep(mut self) -> Arc<Session> {
        self.session.take().expect("a registered login's session")
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session.end_if_alone(self.conn_id);
        }
    }
}

/// How long a login may wait for aborted commands: ABORTED_IO_WAIT, but ending a while before the
/// login's own deadline (a quarter of what is left, at most a second) so that the refusal can be
/// sent before the timeout drops the connection.
fn aborted_io_limit(deadline: tokio::time::Instant) -> std::time::Duration {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let margin = (left / 4).min(std::time::Duration::from_secs(1));
    (left - margin).min(ABORTED_IO_WAIT)
}

struct Response {
    transit: bool,
    csg: u8,
    nsg: u8,
    data: Vec<u8>,
}

enum Step {
    Continue(Response),
    Done(Response, Arc<Session>),
}

fn step(st: &mut Login, pdu: &Pdu, ctx: &ConnCtx) -> Result<Step, LoginStatus> {
    let b = &pdu.bhs;
    let flags = b.flags();
    let transit = flags & 0x80 != 0;
    let cont = flags & 0x40 != 0;
    let csg = (flags >> 2) & 3;
    let nsg = flags & 3;
    // The first request's ISID, TSIH and ITT are taken before anything can fail, so that even a
    // refusal echoes them (RFC 7143 11.13).
    if st.first {
        take_first_header(st, b);
    }
    st.itt = b.itt();
    // Version-max in byte 2, version-min in byte 3: we speak version 0 only.
    if b.0[3] > 0 {
        return Err(LoginStatus::UNSUPPORTED_VERSION);
    }
    if !st.first && (b.isid() != st.isid || b.tsih() != st.tsih || b.cid() != st.cid) {
        return Err(LoginStatus::INITIATOR_ERROR);
    }
    if csg == 2 || csg == STAGE_FULL_FEATURE || (!st.first && csg != st.stage) {
        return Err(LoginStatus::INITIATOR_ERROR);
    }
    if transit && (nsg == 2 || nsg <= csg) {
        return Err(LoginStatus::INITIATOR_ERROR);
    }
    if transit && cont {
        return Err(LoginStatus::INITIATOR_ERROR);
    }
    st.stage = csg;
    // 6.3.4 / 11.12.2: text split over PDUs with the C bit is gathered, each part acknowledged empty.
    // 6.1 asks a target to take at least 8192 bytes (64 KiB with long authentication items); more
    // than we keep is refused as the target's lack of resources, not as a malformed request.
    if st.partial.len() + pdu.data.len() > text::MAX_TEXT_LEN {
        return Err(LoginStatus::OUT_OF_RESOURCES);
    }
    st.partial.extend_from_slice(&pdu.data);
    if cont {
        return Ok(Step::Continue(Response { transit: false, csg, nsg: 0, data: Vec::new() }));
    }
    let pairs = text::parse(&std::mem::take(&mut st.partial)).map_err(text_status)?;
    let mut out = Vec::new();
    // Declarations first: they decide the target, its parameters and its accounts, which the
    // other keys of the same request are negotiated against.
    let mut target_name: Option<String> = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "InitiatorName" => st.initiator_name = Some(v.clone()),
            "TargetName" => target_name = Some(v.clone()),
            "SessionType" => match v.as_str() {
                "Normal" => st.kind = SessionType::Normal,
                "Discovery" => st.kind = SessionType::Discovery,
                _ => return Err(LoginStatus::INITIATOR_ERROR),
            },
            _ => {}
        }
    }
    if st.first {
        first_pdu_checks(st, target_name, ctx)?;
        st.first = false;
    }
    let mut chap = ChapKeys::default();
    let mut auth_offer: Option<&str> = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "InitiatorName" | "TargetName" | "SessionType" | "InitiatorAlias" => {}
            "AuthMethod" => auth_offer = Some(v),
            k if chap.take(k, v) => {}
            _ => match st.neg.negotiate(k, v) {
                Ok(Some((key, val))) => {
                    if key == "MaxRecvDataSegmentLength" {
                        st.declared_mrdsl = true;
                    }
                    text::push(&mut out, &key, &val);
                }
                Ok(None) => {}
                Err(_) => return Err(LoginStatus::INITIATOR_ERROR),
            },
        }
    }
    if (auth_offer.is_some() || !chap.is_empty()) && csg != STAGE_SECURITY {
        // 12.1: authentication keys belong to the security stage only.
        return Err(LoginStatus::INITIATOR_ERROR);
    }
    let mut auth = Vec::new();
    let mut auth_result = Ok(());
    if let Some(offer) = auth_offer {
        auth_result = st.security.on_auth_method(offer, &mut auth);
    }
    if auth_result.is_ok() && !chap.is_empty() {
        auth_result = st.security.on_chap(&chap, &ctx.registry, &mut auth);
    }
    // Leaving (or skipping) the security stage needs the authentication done when it is required;
    // during a CHAP exchange the target answers without the T bit until it completes (6.3.1).
    let mut transit = transit;
    if auth_result.is_ok() && (csg != STAGE_SECURITY || transit) && !st.security.complete() {
        if csg == STAGE_SECURITY && st.security.in_progress() {
            transit = false;
        } else {
            auth_result = Err(AuthError::NotAuthenticated);
        }
    }
    if let Err(e) = auth_result {
        let who = st.initiator_name.as_deref().unwrap_or("");
        tracing::warn!(initiator = who, peer = %ctx.peer, "login authentication failed: {e}");
        st.chap_failed = st.security.chap_agreed();
        return Err(if e.is_protocol_error() { LoginStatus::INITIATOR_ERROR } else { LoginStatus::AUTH_FAILURE });
    }
    if st.security.complete() && csg == STAGE_SECURITY && transit {
        if let Some(user) = st.security.user() {
            let who = st.initiator_name.as_deref().unwrap_or("");
            tracing::info!(initiator = who, peer = %ctx.peer, user, "CHAP authentication succeeded");
        }
    }
    auth.extend_from_slice(&out);
    let mut out = auth;
    if !st.sent_tpgt && st.kind == SessionType::Normal && st.target.is_some() {
        text::push(&mut out, "TargetPortalGroupTag", &TPGT.to_string());
        if let Some(alias) = st.neg.offer().target_alias.clone() {
            text::push(&mut out, "TargetAlias", &alias);
        }
        st.sent_tpgt = true;
    }
    if !st.declared_mrdsl && csg == STAGE_OPERATIONAL {
        // 13.12: we declare our receive limit; the initiator may not ask.
        text::push(&mut out, "MaxRecvDataSegmentLength", &st.neg.offer().max_recv_data_segment_length.to_string());
        st.declared_mrdsl = true;
    }
    let resp_nsg = if transit { nsg } else { 0 };
    if transit && nsg == STAGE_FULL_FEATURE {
        let session = finish(st, ctx)?;
        st.tsih = session.tsih;
        return Ok(Step::Done(Response { transit: true, csg, nsg: resp_nsg, data: out }, session));
    }
    if transit {
        st.stage = nsg;
    }
    Ok(Step::Continue(Response { transit, csg, nsg: resp_nsg, data: out }))
}

/// The fields the first Login Request fixes for the whole login (and its ITT, for the answer).
fn take_first_header(st: &mut Login, b: &Bhs) {
    st.isid = b.isid();
    st.tsih = b.tsih();
    st.cid = b.cid();
    st.cmd_sn = b.cmd_sn();
    st.stat_sn = b.exp_stat_sn();
    st.itt = b.itt();
}

/// The login status for text that cannot be taken: our limits are out of resources (0x0302),
/// anything else breaks RFC 7143 6.1's format and is an initiator error (0x0200).
fn text_status(e: text::TextError) -> LoginStatus {
    match e {
        text::TextError::TooLong | text::TextError::TooManyKeys => LoginStatus::OUT_OF_RESOURCES,
        _ => LoginStatus::INITIATOR_ERROR,
    }
}

fn first_pdu_checks(st: &mut Login, target_name: Option<String>, ctx: &ConnCtx) -> Result<(), LoginStatus> {
    if ctx.registry.is_offline() {
        return Err(LoginStatus::SERVICE_UNAVAILABLE);
    }
    // 13.5: InitiatorName must be in the first Login Request; 13.4: TargetName too, for Normal.
    let Some(initiator) = st.initiator_name.clone() else {
        return Err(LoginStatus::MISSING_PARAMETER);
    };
    if st.kind == SessionType::Discovery {
        st.neg.set_discovery(true);
        st.security.configure(ctx.registry.discovery_accounts());
        if st.tsih != 0 {
            return Err(LoginStatus::SESSION_DOES_NOT_EXIST);
        }
        // An early answer, so a refused initiator does not authenticate first; finish() decides.
        if !ctx.registry.session_limit.has_room() {
            return Err(out_of_sessions(ctx, &initiator, "daemon", ctx.registry.max_sessions()));
        }
        return Ok(());
    }
    let Some(name) = target_name else {
        return Err(LoginStatus::MISSING_PARAMETER);
    };
    let target = ctx.registry.target_by_name(&name).ok_or(LoginStatus::NOT_FOUND)?;
    st.named_target = Some(target.clone());
    if !ctx.registry.admits(&target, &initiator, ctx.peer.ip()) {
        return Err(LoginStatus::AUTHORIZATION_FAILURE);
    }
    // tgt answers 0x0300 (target error) here; 0x0301 tells the initiator the refusal is
    // temporary (RFC 7143 11.13.5). Checked after the ACL so only allowed initiators learn it.
    if target.is_offline() {
        return Err(LoginStatus::SERVICE_UNAVAILABLE);
    }
    st.neg = Negotiation::new(target.target_params(), false);
    st.security.configure(target.accounts());
    if st.tsih != 0 {
        // 5.3.4: a new connection for an existing session.
        let (isid, tsih) = (st.isid, st.tsih);
        let session = target
            .find_session(|s| s.tsih == tsih && s.isid == isid && s.initiator_name == initiator)
            .ok_or(LoginStatus::SESSION_DOES_NOT_EXIST)?;
        let conns = session.conns.lock();
        let reinstating = conns.iter().any(|c| c.info.cid == st.cid);
        if !reinstating && conns.len() as u32 >= session.params.max_connections {
            return Err(LoginStatus::TOO_MANY_CONNECTIONS);
        }
        drop(conns);
        st.joining = Some(session);
    } else if !reinstates(&target, &st.isid, &initiator) {
        // Early answers as for discovery; a reinstatement frees the slot it takes.
        let target_max = target.max_sessions();
        if target_max != 0 && target.sessions.lock().len() as u32 >= target_max {
            return Err(out_of_sessions(ctx, &initiator, "target", target_max));
        }
        if !ctx.registry.session_limit.has_room() {
            return Err(out_of_sessions(ctx, &initiator, "daemon", ctx.registry.max_sessions()));
        }
    }
    st.target = Some(target);
    Ok(())
}

fn stamps(st: &Login) -> (u32, u32) {
    match &st.joining {
        Some(s) => s.window_stamps(),
        None => {
            let depth = st.neg.offer().max_queue_cmd.max(1);
            (st.cmd_sn, st.cmd_sn.wrapping_add(depth - 1))
        }
    }
}

fn response_bhs(st: &Login, transit: bool, csg: u8, nsg: u8, status: LoginStatus) -> Bhs {
    let mut h = Bhs::new(Opcode::LoginResponse);
    let mut flags = (csg & 3) << 2 | (nsg & 3);
    if transit {
        flags |= 0x80;
    }
    h.set_flags(flags);
    h.0[2] = 0; // version-max
    h.0[3] = 0; // version-active
    h.0[8..14].copy_from_slice(&st.isid);
    h.set_u16_at(14, st.tsih);
    h.set_itt(st.itt);
    let (exp, max) = stamps(st);
    h.set_u32_at(off::STAT_SN, st.stat_sn);
    h.set_u32_at(off::EXP_CMD_SN, exp);
    h.set_u32_at(off::MAX_CMD_SN, max);
    h.0[36] = status.0;
    h.0[37] = status.1;
    h
}

async fn write_response<W: AsyncWrite + Unpin>(
    sock: &mut W,
    st: &Login,
    _ctx: &ConnCtx,
    r: &Response,
) -> std::io::Result<()> {
    let h = response_bhs(st, r.transit, r.csg, r.nsg, LoginStatus(0, 0));
    let mut wire = Vec::new();
    encode_pdu(&mut wire, &h, &[], &r.data, false, false);
    sock.write_all(&wire).await
}

/// The Login Response that ends a failed login. A failure response carries StatSN too.
async fn send_status<W: AsyncWrite + Unpin>(
    sock: &mut W,
    st: &Login,
    _ctx: &ConnCtx,
    status: LoginStatus,
) -> std::io::Result<()> {
    let h = response_bhs(st, false, st.stage, 0, status);
    let mut wire = Vec::new();
    encode_pdu(&mut wire, &h, &[], &[], false, false);
    sock.write_all(&wire).await?;
    sock.flush().await
}
