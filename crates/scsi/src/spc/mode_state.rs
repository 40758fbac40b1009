//! The current values of a unit's changeable mode parameters, and, when several servers serve
//! the unit (gateways, one owning it at a time), the store they keep them in so that they
//! outlive a change of owner (`mode_select` stores them before GOOD). Nothing here knows the
//! unit: the unit holds these.

/// The current values of the changeable mode parameters (see `spc::mode`): the caching page's
/// WCE and the control page's D_SENSE and SWP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeParams {
    pub wce: bool,
    pub d_sense: bool,
    pub swp: bool,
}

/// The I_T nexus whose MODE SELECT made a change, as every server of the unit names it: its
/// initiator port (iSCSI name and ISID) and the relative target port it came through. The other
/// servers tell their own nexuses of the change (MODE PARAMETERS CHANGED goes to every I_T
/// nexus but the one that made it), except this one. An administrator's change
/// (`Target::change_mode_params`) has none: every nexus is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSelectedBy {
    pub initiator_port: String,
    pub relative_port: u16,
}

/// Where the servers of one unit keep its current mode parameter values (the daemon implements
/// it on the cluster). `record` blocks for the store's round trips.
pub trait SharedModePages: Send + Sync + std::fmt::Debug {
    /// Store `values` as the unit's current ones, changed by a MODE SELECT of `by` (None: by the
    /// administrator).
    fn record(&self, values: &ModeParams, by: Option<&ModeSelectedBy>) -> std::io::Result<()>;
    /// Start `job` where it may block: never on a thread that runs other commands.
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        std::thread::Builder::new().name("mode-shared".into()).spawn(job).map(|_| ())
    }
    /// Take the values stored now, as if just notified of them: another server changed them at
    /// this one's request, and its notification may not have come (or not yet). Blocks.
    fn catch_up(&self) -> std::io::Result<()> {
        Ok(())
    }
}
