//! MODE SELECT(6/10)'s handler: the pages `mode` accepted are applied to the unit's current
//! values (`mode_state::ModeParams`), and the other nexuses told of a change.
//!
//! Without a store a change is made in memory, under the unit's MODE SELECT lock. With one
//! (several servers serve the unit), the server that runs MODE SELECT (the owner) applies the
//! accepted pages to the current values and stores the result before it takes them and answers
//! GOOD, all under that lock and off the runtime's threads (the store blocks for its round
//! trips): two MODE SELECTs never interleave their store and memory writes, and an owner that
//! dies right after GOOD leaves the values to the next. A store that fails leaves the values as
//! they were and answers no GOOD. Saved values (SP=1) are not supported, so only current values
//! are stored.
//!
//! An administrator changes the current values the same way (`Target::change_mode_params`, for
//! tgtadm's `sense_format=` on a shared unit), except that no nexus made the change: every nexus
//! is told.

use super::mode::{accepted_pages, apply_page, AcceptedPage, ModePages};
use super::mode_state::{ModeParams, ModeSelectedBy};
use super::reserve::off_runtime;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::sense::{Asc, Sense, SenseKey};
use crate::target::{Ctx, Target};
use std::sync::Arc;

/// MODE SELECT: check every page against the changeable mask first, then apply them all (and,
/// when several servers serve the unit, store the values first).
pub(crate) async fn mode_select(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    types: &'static ModePages,
    ten: bool,
    sp: bool,
    param_len: u16,
    data_out: &[u8],
) -> Result<(), Failure> {
    if sp {
        // SPC-4 6.13: we cannot save parameters.
        return Err(Sense::invalid_cdb_field(1, Some(0)).into());
    }
    let pages = accepted_pages(lu, types, ten, usize::from(param_len), data_out)?;
    if pages.is_empty() {
        return Ok(());
    }
    commit(lu, ctx, types, pages).await
}

/// Apply `pages` to the unit's current values; when they change, store them (if shared), take
/// them and tell the other nexuses (MODE PARAMETERS CHANGED).
pub(crate) async fn commit(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    types: &'static ModePages,
    pages: Vec<AcceptedPage>,
) -> Result<(), Failure> {
    let next_of = move |current: ModeParams| {
        let mut next = current;
        for (code, page) in &pages {
            apply_page(types, *code, page, &mut next);
        }
        next
    };
    let changed = match lu.shared_mode_pages() {
        None => {
            let _serialise = lu.mode_select_lock();
            let current = lu.mode_params();
            let next = next_of(current);
            lu.set_mode_params(next);
            next != current
        }
        Some(shared) => {
            let nexus = ctx.nexus;
            let by = ModeSelectedBy {
                initiator_port: nexus.initiator_port.clone(),
                relative_port: nexus.relative_port.unwrap_or(lu.relative_target_port()),
            };
            let (unit, store) = (lu.clone(), shared.clone());
            off_runtime(
                |job| shared.run_blocking(job),
                move || {
                    let _serialise = unit.mode_select_lock();
                    let current = unit.mode_params();
                    let next = next_of(current);
                    if next == current {
                        return Ok(false);
                    }
                    // Stored before taken: the values in memory are never ones the next owner
                    // would not find.
                    if let Err(e) = store.record(&next, Some(&by)) {
                        tracing::error!(error = %e, "storing the changed mode parameters failed");
                        return Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE).into());
                    }
                    unit.set_mode_params(next);
                    Ok(true)
                },
            )
            .await?
        }
    };
    if changed {
        // The other I_T nexuses learn of the change; those of the unit's
        // other servers from the store's notification (`Target::mode_parameters_changed`).
        ctx.target.unit_attention_others(ctx.nexus, ctx.lun, Asc::MODE_PARAMETERS_CHANGED);
    }
    Ok(())
}

/// Why an administrator's change of a unit's current mode parameters was not made.
#[derive(Debug, thiserror::Error)]
pub enum ModeChangeError {
    #[error("logical unit {0} does not exist")]
    NoSuchLun(u64),
    #[error("storing the unit's mode parameters failed: {0}")]
    Store(#[source] std::io::Error),
}

impl Target {
    /// An administrator's change of LUN `lun`'s current mode parameters, made as a MODE SELECT
    /// makes one: under the unit's MODE SELECT lock and, when several servers serve the unit,
    /// stored before it is taken (the other servers take it from the store and tell their own
    /// nexuses). No nexus made it, so every nexus through this port gets MODE PARAMETERS CHANGED.
    /// A shared unit's store records it even when the values do not change (an initiator's MODE
    /// SELECT may have set them already): it keeps the administrator's choice apart, for the
    /// servers that save it and the next power on. Blocks for the store's round trips: call it
    /// where blocking is allowed. Returns whether the values changed; a store that fails changes
    /// nothing.
    pub fn change_mode_params(&self, lun: u64, change: impl FnOnce(&mut ModeParams)) -> Result<bool, ModeChangeError> {
        let unit = self.lun(lun).ok_or(ModeChangeError::NoSuchLun(lun))?;
        {
            let _serialise = unit.mode_select_lock();
            let current = unit.mode_params();
            let mut next = current;
            change(&mut next);
            if let Some(shared) = unit.shared_mode_pages() {
                shared.record(&next, None).map_err(ModeChangeError::Store)?;
            }
            if next == current {
                return Ok(false);
            }
            unit.set_mode_params(next);
        }
        self.mode_parameters_changed(lun, None);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;
    use crate::{ModeParams, ModeSelectedBy, ScsiStatus};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A store of the values in memory, failing writes when told to.
    #[derive(Debug, Default)]
    struct Store {
        stored: parking_lot::Mutex<Vec<(ModeParams, Option<ModeSelectedBy>)>>,
        failing: AtomicBool,
    }

    impl crate::SharedModePages for Store {
        fn record(&self, values: &ModeParams, by: Option<&ModeSelectedBy>) -> std::io::Result<()> {
            if self.failing.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("down"));
            }
            self.stored.lock().push((*values, by.cloned()));
            Ok(())
        }
    }

    /// MODE SELECT(6) of the control mode page with SWP `swp` and D_SENSE off.
    fn control_page(swp: bool) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0, 0x0a, 0x0a, 0, 0x10, if swp { 0x08 } else { 0 }, 0, 0, 0, 0xff, 0xff];
        p.resize(16, 0);
        p
    }

    #[test]
    fn a_change_is_stored_before_good_and_an_unchanged_page_stores_nothing() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        t.clear_ua(&t.nexus);
        let store = Arc::new(Store::default());
        t.lu.attach_shared_mode_pages(store.clone());
        assert_good(&t.run_out(&[0x15, 0x10, 0, 0, 16, 0], &control_page(true)).0);
        let stored = store.stored.lock().clone();
        let by = ModeSelectedBy { initiator_port: t.nexus.initiator_port.clone(), relative_port: 1 };
        assert_eq!(stored, [(ModeParams { wce: true, d_sense: false, swp: true }, Some(by))]);
        // Taken here too: a WRITE is refused with DATA PROTECT, WRITE PROTECTED.
        let (r, _) = t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0u8; 512]);
        assert_sense(&r, 0x07, 0x27, 0x00);
        // The other nexus is told; the one that made the change is not.
        assert_sense(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0, 0x06, 0x2a, 0x01);
        assert_good(&t.run(&[0x00, 0, 0, 0, 0, 0]).0);
        // The same page again changes nothing: nothing stored, nobody told.
        assert_good(&t.run_out(&[0x15, 0x10, 0, 0, 16, 0], &control_page(true)).0);
        assert_eq!(store.stored.lock().len(), 1);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }

    #[test]
    fn a_failing_store_answers_no_good_and_changes_nothing() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        let store = Arc::new(Store { failing: AtomicBool::new(true), ..Default::default() });
        t.lu.attach_shared_mode_pages(store.clone());
        let (r, _) = t.run_out(&[0x15, 0x10, 0, 0, 16, 0], &control_page(true));
        assert_sense(&r, 0x04, 0x44, 0x00);
        assert!(!t.lu.mode_params().swp);
        assert!(store.stored.lock().is_empty());
        assert_eq!(t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0u8; 512]).0.status, ScsiStatus::Good);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }

    #[test]
    fn values_stored_by_another_server_are_installed_without_a_store_or_unit_attention() {
        let t = TestLun::disk(1 << 20);
        t.clear_ua(&t.nexus);
        let store = Arc::new(Store::default());
        t.lu.attach_shared_mode_pages(store.clone());
        let values = ModeParams { wce: false, d_sense: true, swp: true };
        assert!(t.lu.install_mode_params(values));
        assert!(!t.lu.install_mode_params(values), "the same values again: no change");
        assert!(store.stored.lock().is_empty());
        let (_, d) = t.run(&[0x1a, 0x08, 0x0a, 0, 0xff, 0]);
        assert_eq!((d[2], d[6], d[8]), (0x90, 0x04, 0x08), "WP, D_SENSE and SWP as installed");
        // A forwarded command through another port's nexus sees the same.
        let proxy = t.target.proxy_nexus("iqn.x,i,0x1", 2);
        let (r, _) = t.run_on(&proxy, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0u8; 512]);
        assert_eq!(r.sense.as_deref().map(|s| (s[1], s[2], s[3])), Some((0x07, 0x27, 0x00)));
    }

    #[test]
    fn an_administrators_change_is_stored_and_tells_every_nexus() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        t.clear_ua(&t.nexus);
        let store = Arc::new(Store::default());
        t.lu.attach_shared_mode_pages(store.clone());
        assert!(t.target.change_mode_params(1, |p| p.d_sense = true).unwrap());
        let values = ModeParams { wce: t.lu.mode_params().wce, d_sense: true, swp: false };
        assert_eq!(store.stored.lock().clone(), [(values, None)]);
        // Told in the format just taken (descriptor: key, ASC and ASCQ in bytes 1 to 3).
        for n in [&t.nexus, &other] {
            let (r, _) = t.run_on(n, &[0x00, 0, 0, 0, 0, 0], &[]);
            assert_eq!(r.sense.as_deref().map(|s| (s[0] & 0x7f, s[1], s[2], s[3])), Some((0x72, 0x06, 0x2a, 0x01)));
        }
        // Taken: a READ past the end is answered in descriptor format.
        let (r, _) = t.run(&[0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0]);
        assert_eq!(r.sense.as_deref().map(|s| s[0] & 0x7f), Some(0x72));
        // The same value again: stored (the administrator's choice), nobody told.
        assert!(!t.target.change_mode_params(1, |p| p.d_sense = true).unwrap());
        assert_eq!(store.stored.lock().clone(), [(values, None), (values, None)]);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
        // A failing store changes nothing and tells nobody.
        store.failing.store(true, Ordering::Relaxed);
        let failed = t.target.change_mode_params(1, |p| p.d_sense = false);
        assert!(matches!(failed, Err(crate::ModeChangeError::Store(_))), "{failed:?}");
        assert!(t.lu.mode_params().d_sense);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
        let missing = t.target.change_mode_params(9, |p| p.d_sense = false);
        assert!(matches!(missing, Err(crate::ModeChangeError::NoSuchLun(9))), "{missing:?}");
    }

    #[test]
    fn another_servers_change_tells_every_nexus_here_but_the_one_that_made_it() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        t.clear_ua(&t.nexus);
        let maker = t.nexus.initiator_port.clone();
        t.target.mode_parameters_changed(1, Some(&maker));
        assert_good(&t.run(&[0x00, 0, 0, 0, 0, 0]).0);
        assert_sense(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0, 0x06, 0x2a, 0x01);
        t.target.mode_parameters_changed(1, None);
        assert_sense(&t.run(&[0x00, 0, 0, 0, 0, 0]).0, 0x06, 0x2a, 0x01);
    }
}
