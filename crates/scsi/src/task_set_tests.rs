//! The task set and the task management functions, with stand-in tasks that record how they ended.

use super::*;
use crate::sense::Asc;
use crate::test_util::*;
use crate::LogicalUnit;
use crate::LunConfig;
use crate::{Nexus, ResetKind, TmfError};
use rtgt_backstore::{Backstore, MemoryStore};

/// A task entered in a nexus's set whose abort handle records the cause it was aborted with.
pub(crate) struct Recorder {
    pub id: TaskId,
    cause: Arc<Mutex<Option<AbortCause>>>,
}

struct Handle(Arc<Mutex<Option<AbortCause>>>);

impl AbortTask for Handle {
    fn abort(&self, cause: AbortCause) {
        let previous = self.0.lock().replace(cause);
        assert_eq!(previous, None, "a task is aborted at most once");
    }
}

impl Recorder {
    pub fn start(nexus: &Nexus, tag: u64, lun: u64) -> Self {
        Self::on_channel(nexus, tag, lun, 0)
    }

    pub fn on_channel(nexus: &Nexus, tag: u64, lun: u64, channel: u64) -> Self {
        let cause = Arc::new(Mutex::new(None));
        let id = nexus.tasks().start(tag, lun, channel, Arc::new(Handle(cause.clone())));
        Recorder { id, cause }
    }

    pub fn aborted(&self) -> Option<AbortCause> {
        *self.cause.lock()
    }
}

/// Target 1 with disks at LUNs 1 and 2 and two nexuses whose unit attentions are consumed.
fn two_nexuses() -> (TestLun, Arc<Nexus>) {
    let t = TestLun::disk(1 << 20);
    let unit = LogicalUnit::new(LunConfig::disk(1, 2), Some(Backstore::Memory(MemoryStore::new(1 << 20))));
    t.target.add_lun(2, Arc::new(unit)).unwrap();
    let other = t.target.add_nexus("iqn.2024-01.test:i2".into());
    t.clear_ua(&t.nexus);
    t.clear_ua(&other);
    (t, other)
}

#[test]
fn start_end_and_tag_reuse() {
    let (t, _) = two_nexuses();
    let set = t.nexus.tasks();
    let first = Recorder::start(&t.nexus, 7, 1);
    assert!(set.contains(first.id) && set.len() == 1);
    // A tag in use is refused where tags must be unique, allowed where the transport lets them be.
    assert_eq!(set.start_unique(7, 1, 0, Arc::new(Handle(Default::default()))), None);
    let twin = Recorder::start(&t.nexus, 7, 2);
    assert_ne!(twin.id, first.id);
    assert!(set.end(first.id));
    assert!(!set.end(first.id), "ended once");
    assert!(set.end(twin.id));
    // The tag is free again, and the new task is not the old one.
    let again = set.start_unique(7, 1, 0, Arc::new(Handle(Default::default()))).unwrap();
    assert_ne!(again, first.id);
    assert!(!set.contains(first.id) && set.contains(again));
    assert_eq!(first.aborted(), None, "completed tasks are never aborted");
}

#[test]
fn abort_task_takes_the_tag_on_the_lun_named() {
    let (t, other) = two_nexuses();
    let mine = Recorder::start(&t.nexus, 5, 1);
    let other_lun = Recorder::start(&t.nexus, 6, 2);
    let theirs = Recorder::start(&other, 5, 1);
    assert_eq!(t.target.abort_task(&t.nexus, 5, Some(2)), 0, "not on that LUN");
    assert_eq!(t.target.abort_task(&t.nexus, 9, None), 0, "no such task");
    assert_eq!(t.target.abort_task(&t.nexus, 5, Some(1)), 1);
    assert_eq!(mine.aborted(), Some(AbortCause::Aborted));
    assert!(!t.nexus.tasks().contains(mine.id));
    // A task that was aborted cannot complete: the transport answers nothing.
    assert!(!t.nexus.tasks().end(mine.id));
    assert_eq!((other_lun.aborted(), theirs.aborted()), (None, None), "another tag, another nexus");
    assert_eq!(t.target.abort_task(&t.nexus, 6, None), 1, "any LUN when none is named");
    assert_eq!(other_lun.aborted(), Some(AbortCause::Aborted));
}

#[test]
fn abort_task_set_takes_the_nexus_own_tasks_on_the_lun() {
    let (t, other) = two_nexuses();
    let a = Recorder::start(&t.nexus, 1, 1);
    let b = Recorder::start(&t.nexus, 2, 1);
    let elsewhere = Recorder::start(&t.nexus, 3, 2);
    let theirs = Recorder::start(&other, 1, 1);
    assert_eq!(t.target.abort_task_set(&t.nexus, 1), Ok(2));
    assert_eq!((a.aborted(), b.aborted()), (Some(AbortCause::Aborted), Some(AbortCause::Aborted)));
    assert_eq!((elsewhere.aborted(), theirs.aborted()), (None, None));
    // Nobody is told: only the nexus's own tasks went.
    assert_eq!(other.unit_attentions.take(1), None);
    // A LUN that does not exist: nothing is done.
    assert_eq!(t.target.abort_task_set(&t.nexus, 4), Err(TmfError::NoSuchLun));
}

#[test]
fn clear_task_set_takes_every_nexus_tasks_on_the_lun_and_tells_the_others() {
    let (t, other) = two_nexuses();
    let mine = Recorder::start(&t.nexus, 1, 1);
    let theirs = Recorder::start(&other, 1, 1);
    let elsewhere = Recorder::start(&other, 2, 2);
    assert_eq!(t.target.clear_task_set(&t.nexus, 1), Ok(2));
    assert_eq!((mine.aborted(), theirs.aborted()), (Some(AbortCause::Aborted), Some(AbortCause::Aborted)));
    assert_eq!(elsewhere.aborted(), None);
    assert_eq!(other.unit_attentions.take(1), Some(Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR));
    assert_eq!(t.nexus.unit_attentions.take(1), None);
    assert_eq!(t.target.clear_task_set(&t.nexus, 4), Err(TmfError::NoSuchLun));
    assert!(other.tasks().contains(elsewhere.id));
}

#[test]
fn lun_reset_takes_every_nexus_tasks_on_the_lun() {
    let (t, other) = two_nexuses();
    let mine = Recorder::start(&t.nexus, 1, 2);
    let theirs = Recorder::start(&other, 1, 2);
    let elsewhere = Recorder::start(&other, 2, 1);
    assert_eq!(t.target.lun_reset(2), Ok(2));
    assert_eq!((mine.aborted(), theirs.aborted()), (Some(AbortCause::Reset), Some(AbortCause::Reset)));
    assert_eq!(elsewhere.aborted(), None);
    for n in [&t.nexus, &other] {
        assert_eq!(n.unit_attentions.take(2), Some(Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED));
        assert_eq!(n.unit_attentions.take(1), None);
    }
    let missing = Recorder::start(&t.nexus, 3, 4);
    assert_eq!(t.target.lun_reset(4), Err(TmfError::NoSuchLun));
    assert_eq!(missing.aborted(), None);
}

#[test]
fn target_reset_takes_every_task() {
    let (t, other) = two_nexuses();
    let tasks = [Recorder::start(&t.nexus, 1, 1), Recorder::start(&other, 1, 2), Recorder::start(&other, 2, 0)];
    assert_eq!(t.target.target_reset(ResetKind::Warm), 3);
    assert!(tasks.iter().all(|r| r.aborted() == Some(AbortCause::Reset)));
    assert!(t.nexus.tasks().is_empty() && other.tasks().is_empty());
    assert_eq!(other.unit_attentions.take(2), Some(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET));
}

#[test]
fn i_t_nexus_reset_and_nexus_loss() {
    let (t, other) = two_nexuses();
    let mine = Recorder::start(&t.nexus, 1, 1);
    let theirs = Recorder::start(&other, 1, 1);
    let fresh = t.target.i_t_nexus_reset(&t.nexus);
    assert_eq!(mine.aborted(), Some(AbortCause::Reset));
    assert_eq!(theirs.aborted(), None, "only the reset nexus loses its tasks");
    assert_ne!(fresh.id, t.nexus.id);
    assert_eq!(fresh.initiator_port, t.nexus.initiator_port);
    assert_eq!(fresh.unit_attentions.take(1), Some(Asc::I_T_NEXUS_LOSS_OCCURRED));
    assert_eq!(fresh.unit_attentions.take(1), None);
    assert!(!t.target.nexuses().iter().any(|n| n.id == t.nexus.id));
    // I_T nexus loss: the transport can no longer answer the tasks left.
    t.target.remove_nexus(&other);
    assert_eq!(theirs.aborted(), Some(AbortCause::Lost));
    assert!(other.tasks().is_empty());
}

#[test]
fn channels_and_queries() {
    let (t, _) = two_nexuses();
    let set = t.nexus.tasks();
    let on_1 = Recorder::on_channel(&t.nexus, 1, 1, 10);
    let on_2 = Recorder::on_channel(&t.nexus, 2, 2, 20);
    assert!(set.query_task(1, 1) && !set.query_task(1, 2) && !set.query_task(3, 1));
    assert!(set.query_task_set(2) && !set.query_task_set(0));
    assert!(set.on_channel(10) && !set.on_channel(30));
    assert_eq!(set.abort_channel(10, AbortCause::Lost), 1);
    assert_eq!((on_1.aborted(), on_2.aborted()), (Some(AbortCause::Lost), None));
    assert!(!set.on_channel(10));
    assert_eq!(set.abort_all(AbortCause::Lost), 1);
    assert_eq!(on_2.aborted(), Some(AbortCause::Lost));
}

#[test]
fn a_replaced_handle_is_the_one_called() {
    let (t, _) = two_nexuses();
    let set = t.nexus.tasks();
    let first = Recorder::start(&t.nexus, 1, 1);
    let second: Arc<Mutex<Option<AbortCause>>> = Default::default();
    assert!(set.set_abort(first.id, Arc::new(Handle(second.clone()))));
    assert_eq!(t.target.abort_task(&t.nexus, 1, None), 1);
    assert_eq!((first.aborted(), *second.lock()), (None, Some(AbortCause::Aborted)));
    // Gone: nothing to replace.
    assert!(!set.set_abort(first.id, Arc::new(Handle(Default::default()))));
}

/// A handle that completes another task of the same nexus while it is being aborted: the set's lock
/// is not held while handles run.
#[test]
fn handles_run_outside_the_lock() {
    struct EndsOther(Arc<Nexus>, TaskId);
    impl AbortTask for EndsOther {
        fn abort(&self, _: AbortCause) {
            self.0.tasks().end(self.1);
        }
    }
    let (t, _) = two_nexuses();
    let other = Recorder::start(&t.nexus, 2, 2);
    t.nexus.tasks().start(1, 1, 0, Arc::new(EndsOther(t.nexus.clone(), other.id)));
    assert_eq!(t.target.abort_task_set(&t.nexus, 1), Ok(1));
    assert!(t.nexus.tasks().is_empty());
}

/// A task whose future is still running when it is aborted (a write inside the store).
struct StillRunning(Arc<std::sync::atomic::AtomicBool>);

impl AbortTask for StillRunning {
    fn abort(&self, _cause: AbortCause) {}
    fn ended(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The target reports aborted tasks as running until their futures end, whichever function aborted
/// them, on nexuses still there and on nexuses removed meanwhile (session gone, I_T NEXUS RESET).
#[test]
fn aborted_tasks_count_as_running_until_their_futures_end() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (t, other) = two_nexuses();
    let running = |t: &TestLun| t.target.aborted_tasks_running(None);
    let flag = Arc::new(AtomicBool::new(false));
    t.nexus.tasks().start(5, 1, 0, Arc::new(StillRunning(flag.clone())));
    assert!(!running(&t), "a running task that was not aborted does not count");
    assert_eq!(t.target.abort_task(&t.nexus, 5, None), 1);
    assert!(running(&t) && t.nexus.tasks().stopping(Some(1)));
    assert!(!t.target.aborted_tasks_running(Some(2)), "LUN 2 has none");
    flag.store(true, Ordering::SeqCst);
    assert!(!running(&t) && !t.nexus.tasks().stopping(None));

    // A LUN reset from another nexus; a task that had ended already never counts.
    let flag = Arc::new(AtomicBool::new(false));
    t.nexus.tasks().start(6, 1, 0, Arc::new(StillRunning(flag.clone())));
    t.nexus.tasks().start(7, 1, 0, Arc::new(StillRunning(Arc::new(AtomicBool::new(true)))));
    assert_eq!(t.target.lun_reset(1).unwrap(), 2);
    assert!(running(&t));
    flag.store(true, Ordering::SeqCst);
    assert!(!running(&t));

    // The nexus goes (its session ended): its aborted task still counts until it ends.
    let flag = Arc::new(AtomicBool::new(false));
    other.tasks().start(8, 2, 0, Arc::new(StillRunning(flag.clone())));
    t.target.remove_nexus(&other);
    assert!(!t.target.nexuses().iter().any(|n| n.id == other.id));
    assert!(running(&t), "the removed nexus's aborted task");
    assert!(t.target.aborted_tasks_running(Some(2)) && !t.target.aborted_tasks_running(Some(1)));
    flag.store(true, Ordering::SeqCst);
    assert!(!running(&t));
}

/// Aborted tasks and removed nexuses that have ended are dropped when new ones are kept, not only
/// when someone asks whether aborted tasks run: a transport that never asks (or asks rarely) does
/// not make the lists grow without bound.
#[test]
fn ended_aborted_tasks_and_nexuses_are_not_kept_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (t, _) = two_nexuses();
    let mut previous: Option<Arc<AtomicBool>> = None;
    for tag in 0..50 {
        if let Some(flag) = previous.take() {
            flag.store(true, Ordering::SeqCst);
        }
        let flag = Arc::new(AtomicBool::new(false));
        t.nexus.tasks().start(tag, 1, 0, Arc::new(StillRunning(flag.clone())));
        assert_eq!(t.target.abort_task(&t.nexus, tag, None), 1);
        previous = Some(flag);
    }
    assert_eq!(t.nexus.tasks().stopping_kept(), 1, "only the one still running");
    previous.take().unwrap().store(true, Ordering::SeqCst);

    let mut previous: Option<Arc<AtomicBool>> = None;
    for i in 0..50 {
        if let Some(flag) = previous.take() {
            flag.store(true, Ordering::SeqCst);
        }
        let nexus = t.target.add_nexus(format!("iqn.2024-01.test:gone{i}"));
        let flag = Arc::new(AtomicBool::new(false));
        nexus.tasks().start(1, 1, 0, Arc::new(StillRunning(flag.clone())));
        t.target.remove_nexus(&nexus);
        previous = Some(flag);
    }
    assert_eq!(t.target.retired_kept(), 1, "only the nexus whose task still runs");
    previous.unwrap().store(true, Ordering::SeqCst);
    assert!(!t.target.aborted_tasks_running(None));
}

/// Whoever looks while a task is being aborted (another thread ending the same session, a login
/// about to answer) sees it as stopping: it is never out of the task table and not yet listed.
#[test]
fn a_task_being_aborted_is_seen_as_stopping_throughout() {
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Looks {
        target: Arc<crate::Target>,
        seen: Arc<AtomicBool>,
    }
    impl AbortTask for Looks {
        fn abort(&self, _cause: AbortCause) {
            // What a concurrent observer would see at this point of the abort.
            self.seen.store(self.target.aborted_tasks_running(None), Ordering::SeqCst);
        }
        fn ended(&self) -> bool {
            false
        }
    }
    let (t, _) = two_nexuses();
    let seen = Arc::new(AtomicBool::new(false));
    t.nexus.tasks().start(7, 1, 0, Arc::new(Looks { target: t.target.clone(), seen: seen.clone() }));
    assert_eq!(t.nexus.tasks().abort_all(AbortCause::Lost), 1);
    assert!(seen.load(Ordering::SeqCst), "the task was in neither the table nor the stopping list");
    assert!(t.target.aborted_tasks_running(None));
}
