//! NOP-Out / NOP-In (RFC 7143 11.18-11.19): a ping with a valid ITT is answered with the same data;
//! ITT 0xffffffff asks for no answer; a TTT other than 0xffffffff answers a NOP-In of ours. Also the
//! target's own probe of idle connections (tgt's nop_interval / nop_count).

use crate::full_feature::connection::{Conn, Flow};
use crate::params::NopParams;
use crate::pdu::{Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::writer::Stat;
use std::time::Duration;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

pub(crate) fn on_nop_out(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    let (itt, ttt) = (b.itt(), b.ttt());
    if ttt != RESERVED_TAG {
        // The answer to one of our probes (11.18.4): not a command, so it neither enters the command
        // window nor gets a response. That it arrived at all is what the prober counts.
        return Flow::Continue;
    }
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        return Flow::Continue;
    }
    if itt == RESERVED_TAG {
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

/// Probes one connection when it goes quiet. The reader counts PDUs as they arrive (any PDU is a sign
/// of life); each tick compares that count with the last tick's, so the data path pays nothing
/// beyond the count and the timer is only polled while probing is on.
pub(crate) struct Prober {
    ticker: Interval,
    count: u32,
    /// The reader's PDU count at the last tick.
    seen: u64,
    /// Probes sent since the last PDU arrived.
    unanswered: u32,
}

impl Prober {
    /// None when probing is off.
    pub fn new(nop: NopParams) -> Option<Self> {
        if nop.interval == 0 {
            return None;
        }
        let period = Duration::from_secs(nop.interval.into());
        let mut ticker = interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Some(Prober { ticker, count: nop.count, seen: 0, unanswered: 0 })
    }

    pub async fn tick(&mut self) {
        self.ticker.tick().await;
    }

    /// After a tick: `received` is the reader's PDU count. Sends a probe, or says to close the
    /// connection when `count` probes went unanswered.
    pub fn on_tick(&mut self, conn: &mut Conn, received: u64) -> Flow {
        if received != self.seen {
            self.seen = received;
            self.unanswered = 0;
            return Flow::Continue;
        }
        if self.count != 0 && self.unanswered >= self.count {
            tracing::warn!(
                initiator = %conn.session.initiator_name,
                peer = %conn.peer,
                probes = self.unanswered,
                "connection dropped: no answer to NOP-In probes"
            );
            return Flow::Close;
        }
        // 11.19: a target-initiated NOP-In carries a real TTT and the reserved ITT, asks for an
        // answer, and does not advance StatSN.
        let mut h = Bhs::new(Opcode::NopIn); // LUN 0
        h.set_itt(RESERVED_TAG);
        h.set_ttt(conn.new_ttt());
        conn.send(h, bytes::Bytes::new(), Stat::Current);
        self.unanswered = self.unanswered.saturating_add(1);
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probing_needs_an_interval() {
        assert!(Prober::new(NopParams { interval: 0, count: 3 }).is_none());
        let p = Prober::new(NopParams { interval: 5, count: 0 }).expect("probing on");
        assert_eq!((p.count, p.seen, p.unanswered), (0, 0, 0));
    }
}
