//! The persistent reservation state of one logical unit (SPC-4 5.12) and the rules that change it:
//! registrations, the reservation, the generation counter and APTPL. Pure data and logic: no nexus
//! objects, no I/O. Each PERSISTENT RESERVE OUT service action works on a copy of the state and
//! returns the unit attentions it causes, so the caller can save the copy (APTPL) before it takes
//! effect.

use crate::failure::Failure;
use crate::sense::{Asc, Sense};

/// SPC-4 6.16.3 persistent reservation TYPE codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrType {
    WriteExclusive,
    ExclusiveAccess,
    WriteExclusiveRegistrantsOnly,
    ExclusiveAccessRegistrantsOnly,
    WriteExclusiveAllRegistrants,
    ExclusiveAccessAllRegistrants,
}

impl PrType {
    pub const ALL: [PrType; 6] = [
        PrType::WriteExclusive,
        PrType::ExclusiveAccess,
        PrType::WriteExclusiveRegistrantsOnly,
        PrType::ExclusiveAccessRegistrantsOnly,
        PrType::WriteExclusiveAllRegistrants,
        PrType::ExclusiveAccessAllRegistrants,
    ];

    pub fn from_code(code: u8) -> Option<PrType> {
        Some(match code {
            0x1 => PrType::WriteExclusive,
            0x3 => PrType::ExclusiveAccess,
            0x5 => PrType::WriteExclusiveRegistrantsOnly,
            0x6 => PrType::ExclusiveAccessRegistrantsOnly,
            0x7 => PrType::WriteExclusiveAllRegistrants,
            0x8 => PrType::ExclusiveAccessAllRegistrants,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        match self {
            PrType::WriteExclusive => 0x1,
            PrType::ExclusiveAccess => 0x3,
            PrType::WriteExclusiveRegistrantsOnly => 0x5,
            PrType::ExclusiveAccessRegistrantsOnly => 0x6,
            PrType::WriteExclusiveAllRegistrants => 0x7,
            PrType::ExclusiveAccessAllRegistrants => 0x8,
        }
    }

    /// Every registrant holds the reservation (SPC-4 5.12.10: the key reported is zero).
    pub fn all_registrants(self) -> bool {
        matches!(self, PrType::WriteExclusiveAllRegistrants | PrType::ExclusiveAccessAllRegistrants)
    }

    /// Registrants other than the holder are let through.
    pub fn registrants_only(self) -> bool {
        matches!(self, PrType::WriteExclusiveRegistrantsOnly | PrType::ExclusiveAccessRegistrantsOnly)
    }

    /// Reads by nexuses without access conflict too (the exclusive access family).
    pub fn exclusive_access(self) -> bool {
        matches!(
            self,
            PrType::ExclusiveAccess | PrType::ExclusiveAccessRegistrantsOnly | PrType::ExclusiveAccessAllRegistrants
        )
    }
}

/// One registered I_T nexus. This target has one target port per target, so the initiator port
/// identifies the nexus. A registration made through SPEC_I_PT with an initiator device name only
/// (TransportID format 00b) holds just the name and matches every port of that initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRegistration {
    pub initiator_port: String,
    pub key: u64,
    pub all_tg_pt: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrReservation {
    /// The initiator port that reserved (for all-registrants types, every registrant holds it).
    pub holder: String,
    pub pr_type: PrType,
}

/// The whole persistent reservation state of a logical unit: what APTPL saves and restores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrSnapshot {
    /// PRGENERATION (SPC-4 6.15.2).
    pub generation: u32,
    /// Activate persist through power loss, from the last registering service action.
    pub aptpl: bool,
    pub registrations: Vec<PrRegistration>,
    pub reservation: Option<PrReservation>,
}

/// A unit attention to establish for every nexus of an initiator port (except the one that sent
/// the command).
pub(crate) type Notice = (String, Asc);

pub(crate) const RESERVATIONS_PREEMPTED: Asc = Asc(0x2a, 0x03);
pub(crate) const RESERVATIONS_RELEASED: Asc = Asc(0x2a, 0x04);
pub(crate) const REGISTRATIONS_PREEMPTED: Asc = Asc(0x2a, 0x05);
/// SPC-4: INVALID RELEASE OF PERSISTENT RESERVATION.
pub(crate) const INVALID_RELEASE: Asc = Asc(0x26, 0x04);

/// The name part of an iSCSI initiator port ("iqn...,i,0x<isid>" -> "iqn...").
fn port_name(port: &str) -> &str {
    port.split_once(",i,").map_or(port, |(name, _)| name)
}

/// Whether a registered identity and a nexus's initiator port are the same I_T nexus. iSCSI names
/// and ISIDs compare without regard to case (RFC 3722 names are case-folded).
pub(crate) fn same_port(a: &str, b: &str) -> bool {
    let whole = |s: &str| s.contains(",i,");
    if whole(a) && whole(b) {
        a.eq_ignore_ascii_case(b)
    } else {
        port_name(a).eq_ignore_ascii_case(port_name(b))
    }
}

/// A REGISTER or REGISTER AND IGNORE EXISTING KEY request.
#[derive(Debug, Clone)]
pub(crate) struct Register {
    pub key: u64,
    pub sark: u64,
    pub ignore_key: bool,
    pub aptpl: bool,
    pub all_tg_pt: bool,
    /// Further initiator ports to register with the same key (SPEC_I_PT).
    pub specified: Vec<String>,
}

impl PrSnapshot {
    pub(crate) fn registration(&self, port: &str) -> Option<&PrRegistration> {
        self.registrations.iter().find(|r| same_port(&r.initiator_port, port))
    }

    pub(crate) fn is_registered(&self, port: &str) -> bool {
        self.registration(port).is_some()
    }

    /// Whether `port` holds the reservation (SPC-4 5.12.10).
    pub(crate) fn is_holder(&self, port: &str) -> bool {
        match &self.reservation {
            None => false,
            Some(r) if r.pr_type.all_registrants() => self.is_registered(port),
            Some(r) => same_port(&r.holder, port),
        }
    }

    /// The key READ RESERVATION reports: the holder's, or zero for all-registrants types.
    pub(crate) fn reservation_key(&self) -> u64 {
        match &self.reservation {
            Some(r) if !r.pr_type.all_registrants() => self.registration(&r.holder).map_or(0, |g| g.key),
            _ => 0,
        }
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Every registered port except `me`, with `asc`.
    fn notify_registrants(&self, me: &str, asc: Asc) -> Vec<Notice> {
        self.registrations
            .iter()
            .filter(|r| !same_port(&r.initiator_port, me))
            .map(|r| (r.initiator_port.clone(), asc))
            .collect()
    }

    /// The nexus must be registered with `key` (SPC-4 5.12.11.1): otherwise RESERVATION CONFLICT.
    fn check_key(&self, me: &str, key: u64) -> Result<(), Failure> {
        match self.registration(me) {
            Some(r) if r.key == key => Ok(()),
            _ => Err(Failure::ReservationConflict),
        }
    }

    /// Drop `me`'s registration and what goes with it (SPC-4 5.12.11.2.2, 5.12.11.2.3).
    fn unregister(&mut self, me: &str) -> Vec<Notice> {
        let was_holder = self.is_holder(me);
        self.registrations.retain(|r| !same_port(&r.initiator_port, me));
        let mut notices = Vec::new();
        if let Some(r) = self.reservation.clone() {
            let release = if r.pr_type.all_registrants() { self.registrations.is_empty() } else { was_holder };
            if release {
                self.reservation = None;
                if r.pr_type.registrants_only() {
                    notices = self.notify_registrants(me, RESERVATIONS_RELEASED);
                }
            }
        }
        notices
    }

    /// REGISTER / REGISTER AND IGNORE EXISTING KEY (SPC-4 5.12.7).
    pub(crate) fn register(&mut self, me: &str, req: Register) -> Result<Vec<Notice>, Failure> {
        let registered = self.registration(me).cloned();
        match registered {
            None => {
                if !req.ignore_key && req.key != 0 {
                    return Err(Failure::ReservationConflict);
                }
                if req.sark == 0 {
                    // Unregistering what is not registered: nothing to do.
                    return Ok(Vec::new());
                }
                for port in &req.specified {
                    if self.is_registered(port) || same_port(port, me) {
                        // SPC-4 5.12.7: a specified port already registered fails the whole command.
                        return Err(Sense::invalid_param_field(24, None).into());
                    }
                }
                self.registrations.push(PrRegistration {
                    initiator_port: me.to_string(),
                    key: req.sark,
                    all_tg_pt: req.all_tg_pt,
                });
                for port in req.specified {
                    self.registrations.push(PrRegistration {
                        initiator_port: port,
                        key: req.sark,
                        all_tg_pt: req.all_tg_pt,
                    });
                }
                self.aptpl = req.aptpl;
                self.bump();
                Ok(Vec::new())
            }
            Some(reg) => {
                if !req.ignore_key && req.key != reg.key {
                    return Err(Failure::ReservationConflict);
                }
                if !req.specified.is_empty() {
                    return Err(Sense::invalid_param_field(20, Some(3)).into());
                }
                let notices = if req.sark == 0 {
                    self.unregister(me)
                } else {
                    for r in self.registrations.iter_mut().filter(|r| same_port(&r.initiator_port, me)) {
                        r.key = req.sark;
                    }
                    Vec::new()
                };
                self.aptpl = req.aptpl;
                self.bump();
                Ok(notices)
            }
        }
    }

    /// RESERVE (SPC-4 5.12.9).
    pub(crate) fn reserve(&mut self, me: &str, key: u64, pr_type: PrType) -> Result<(), Failure> {
        self.check_key(me, key)?;
        match &self.reservation {
            None => {
                self.reservation = Some(PrReservation { holder: me.to_string(), pr_type });
                Ok(())
            }
            Some(r) if r.pr_type == pr_type && self.is_holder(me) => Ok(()),
            Some(_) => Err(Failure::ReservationConflict),
        }
    }

    /// RELEASE (SPC-4 5.12.11.2).
    pub(crate) fn release(&mut self, me: &str, key: u64, pr_type: PrType) -> Result<Vec<Notice>, Failure> {
        self.check_key(me, key)?;
        let Some(r) = self.reservation.clone() else { return Ok(Vec::new()) };
        if !self.is_holder(me) {
            return Ok(Vec::new());
        }
        if r.pr_type != pr_type {
            return Err(Sense::illegal_request(INVALID_RELEASE).into());
        }
        self.reservation = None;
        if r.pr_type.registrants_only() || r.pr_type.all_registrants() {
            Ok(self.notify_registrants(me, RESERVATIONS_RELEASED))
        } else {
            Ok(Vec::new())
        }
    }

    /// CLEAR (SPC-4 5.12.11.3).
    pub(crate) fn clear(&mut self, me: &str, key: u64) -> Result<Vec<Notice>, Failure> {
        self.check_key(me, key)?;
        let notices = self.notify_registrants(me, RESERVATIONS_PREEMPTED);
        self.registrations.clear();
        self.reservation = None;
        self.bump();
        Ok(notices)
    }

    /// Remove the registrations selected by `remove` (never `me` when `spare_me`); the removed
    /// ports other than `me` are told REGISTRATIONS PREEMPTED.
    fn remove_where(&mut self, me: &str, spare_me: bool, remove: impl Fn(&PrRegistration) -> bool) -> Vec<Notice> {
        let mut notices = Vec::new();
        self.registrations.retain(|r| {
            let mine = same_port(&r.initiator_port, me);
            if remove(r) && !(spare_me && mine) {
                if !mine {
                    notices.push((r.initiator_port.clone(), REGISTRATIONS_PREEMPTED));
                }
                false
            } else {
                true
            }
        });
        notices
    }

    /// PREEMPT and PREEMPT AND ABORT (SPC-4 5.12.11.4). Returns the notices and the ports whose
    /// registrations were removed (the nexuses whose tasks PREEMPT AND ABORT aborts).
    pub(crate) fn preempt(
        &mut self,
        me: &str,
        key: u64,
        sark: u64,
        pr_type: Option<PrType>,
    ) -> Result<(Vec<Notice>, Vec<String>), Failure> {
        self.check_key(me, key)?;
        let any_with_sark = self.registrations.iter().any(|r| r.key == sark);
        let notices = match self.reservation.clone() {
            None => {
                if sark == 0 {
                    return Err(Sense::invalid_param_field(8, None).into());
                }
                if !any_with_sark {
                    return Err(Failure::ReservationConflict);
                }
                self.remove_where(me, false, |r| r.key == sark)
            }
            Some(r) if r.pr_type.all_registrants() && sark == 0 => {
                let pr_type = pr_type.ok_or_else(|| Failure::from(Sense::invalid_cdb_field(2, Some(3))))?;
                let notices = self.remove_where(me, true, |_| true);
                self.reservation = Some(PrReservation { holder: me.to_string(), pr_type });
                notices
            }
            Some(r) if !r.pr_type.all_registrants() && sark == self.reservation_key() => {
                let pr_type = pr_type.ok_or_else(|| Failure::from(Sense::invalid_cdb_field(2, Some(3))))?;
                let mut notices = self.remove_where(me, true, |g| g.key == sark);
                self.reservation = Some(PrReservation { holder: me.to_string(), pr_type });
                if pr_type != r.pr_type {
                    // SPC-4 5.12.11.4.3 c): a changed type releases the old reservation for the
                    // registrants that remain.
                    notices.extend(self.notify_registrants(me, RESERVATIONS_RELEASED));
                }
                notices
            }
            Some(_) => {
                if sark == 0 {
                    return Err(Sense::invalid_param_field(8, None).into());
                }
                if !any_with_sark {
                    return Err(Failure::ReservationConflict);
                }
                self.remove_where(me, false, |r| r.key == sark)
            }
        };
        // A holder that lost its own registration (it preempted its own key) loses the reservation.
        if let Some(r) = &self.reservation {
            let gone = if r.pr_type.all_registrants() {
                self.registrations.is_empty()
            } else {
                !self.is_registered(&r.holder)
            };
            if gone {
                self.reservation = None;
            }
        }
        self.bump();
        let removed = notices.iter().filter(|(_, a)| *a == REGISTRATIONS_PREEMPTED).map(|(p, _)| p.clone()).collect();
        Ok((notices, removed))
    }

    /// REGISTER AND MOVE (SPC-4 5.12.8): `dest` is registered with `sark` and receives the
    /// reservation; with `unreg` the sender's registration goes.
    pub(crate) fn register_and_move(
        &mut self,
        me: &str,
        key: u64,
        sark: u64,
        dest: &str,
        unreg: bool,
        aptpl: bool,
    ) -> Result<(), Failure> {
        self.check_key(me, key)?;
        let r = match &self.reservation {
            Some(r) if !r.pr_type.all_registrants() && self.is_holder(me) => r.clone(),
            _ => return Err(Failure::ReservationConflict),
        };
        if sark == 0 {
            return Err(Sense::invalid_param_field(8, None).into());
        }
        if same_port(dest, me) {
            return Err(Sense::invalid_param_field(24, None).into());
        }
        match self.registrations.iter_mut().find(|g| same_port(&g.initiator_port, dest)) {
            Some(g) => g.key = sark,
            None => self.registrations.push(PrRegistration {
                initiator_port: dest.to_string(),
                key: sark,
                all_tg_pt: false,
            }),
        }
        self.reservation = Some(PrReservation { holder: dest.to_string(), pr_type: r.pr_type });
        if unreg {
            self.registrations.retain(|g| !same_port(&g.initiator_port, me));
        }
        self.aptpl = aptpl;
        self.bump();
        Ok(())
    }
}
