//! NOP-Out / NOP-In (RFC 7143 11.18-11.19): a ping with a valid ITT is answered with the same data;
//! ITT 0xffffffff asks for no answer; a TTT other than 0xffffffff answers a NOP-In of ours.

use crate::connection::{Conn, Flow};
use crate::pdu::{Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::writer::Stat;

pub(crate) fn on_nop_out(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        return Flow::Continue;
    }
    let (itt, ttt) = (b.itt(), b.ttt());
    if ttt != RESERVED_TAG || itt == RESERVED_TAG {
        return Flow::Continue;
    }
    let mut h = Bhs::new(Opcode::NopIn);
    h.set_lun(b.lun());
    h.set_itt(itt);
    h.set_ttt(RESERVED_TAG);
    let limit = conn.params.initiator_max_recv_data_segment_length as usize;
    let mut data = pdu.data;
    data.truncate(limit);
    // 11.19.2: StatSN advances because the ITT is not the reserved value.
    conn.send(h, data.freeze(), Stat::Advance);
    Flow::Continue
}
