//! The management protocol shared by tgtd and tgtadm.
//!
//! A client sends one [`Request`] (which transport, which object, what to do, typed arguments) and
//! the daemon answers one [`Response`]: either a typed [`Reply`] (nothing, a list of targets, the
//! system state, ...) or a [`MgmtError`] whose [`ErrorCode`] carries tgt's error meanings. Nothing
//! here is pre-rendered text: `tgtadm` renders tgt's layout from the views, and `--json` prints them
//! as they are.
//!
//! On the wire each message is JSON behind a 4-byte big-endian length (see [`frame`]); where the
//! socket is, for the daemon and its clients alike, is [`socket_path`]'s one rule.

pub mod changer;
pub mod error;
pub mod frame;
pub mod lun_param;
pub mod request;
pub mod response;
pub mod socket_path;
pub mod store_spec;

pub use changer::{ChangerParam, ChangerParamError};
pub use error::{ErrorCode, MgmtError};
pub use frame::{decode, encode, frame_length, read_message, write_message, FrameError, MAX_FRAME_LEN};
pub use lun_param::{LunChange, LunParam, LunParamError};
pub use request::{
    AccountOp, AclEntry, ConnectionOp, DeviceType, Lld, LldOp, LunOp, LunSpec, Op, Param, PortalOp, Request, SessionOp,
    SystemOp, TargetOp,
};
pub use response::{
    AccountEntry, AccountView, BackingStoreView, ConnectionView, IsnsView, LatencyView, Limits, LldTarget, LldView,
    LunStatsView, LunView, NexusView, PortalView, Reply, Response, SystemState, SystemView, TargetParam, TargetState,
    TargetView,
};
pub use store_spec::{parse_size, StoreFlags, StoreKind, StoreSpec, StoreSpecError};
