//! From a unit's device type to what the type does (`DeviceOps`): the one place that names every
//! type's module. It sits above the types' tables, which sit above the handlers, so no handler or
//! unit reaches up here; `exec` asks it and hands the answer to the handler in its `Request`.

use crate::device_type::DeviceType;
use crate::opcodes::DeviceOps;

pub(crate) fn ops(device: DeviceType) -> &'static DeviceOps {
    match device {
        DeviceType::Disk => &crate::sbc::commands::OPS,
        DeviceType::Controller => &crate::controller::OPS,
        DeviceType::Cd => &crate::mmc::commands::OPS,
        DeviceType::Changer => &crate::smc::commands::OPS,
        DeviceType::Tape => &crate::ssc::commands::OPS,
    }
}
