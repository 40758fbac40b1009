//! The command window (RFC 7143 4.2.2.1, 3.2.2.1): ExpCmdSN and MaxCmdSN in serial number arithmetic
//! (RFC 1982). Non-immediate commands outside [ExpCmdSN, MaxCmdSN] are dropped silently; immediate
//! ones bypass ordering. MaxCmdSN never moves backwards and leaves room for `depth` commands in flight.

/// `a < b` in 32-bit serial arithmetic.
pub fn sn_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

#[derive(Debug, Clone)]
pub struct CmdWindow {
    exp: u32,
    max: u32,
    depth: u32,
    in_flight: u32,
    /// CmdSNs received ahead of ExpCmdSN (another connection's commands can overtake).
    ahead: Vec<u32>,
}

impl CmdWindow {
    pub fn new(first_cmd_sn: u32, depth: u32) -> Self {
        let depth = depth.max(1);
        CmdWindow {
            exp: first_cmd_sn,
            max: first_cmd_sn.wrapping_add(depth - 1),
            depth,
            in_flight: 0,
            ahead: Vec::new(),
        }
    }

    pub fn exp_cmd_sn(&self) -> u32 {
        self.exp
    }

    pub fn max_cmd_sn(&self) -> u32 {
        self.max
    }

    /// Whether `sn` lies in [ExpCmdSN, MaxCmdSN].
    pub fn in_window(&self, sn: u32) -> bool {
        if self.max.wrapping_add(1) == self.exp {
            return false; // closed window
        }
        sn.wrapping_sub(self.exp) <= self.max.wrapping_sub(self.exp)
    }

    /// Account for a request carrying `sn`; false when it must be dropped.
    pub fn admit(&mut self, sn: u32, immediate: bool) -> bool {
        if immediate {
            return true;
        }
        if !self.in_window(sn) {
            return false;
        }
        if sn == self.exp {
            self.exp = self.exp.wrapping_add(1);
            while let Some(i) = self.ahead.iter().position(|&a| a == self.exp) {
                self.ahead.swap_remove(i);
                self.exp = self.exp.wrapping_add(1);
            }
        } else if self.ahead.contains(&sn) {
            return false; // a duplicate
        } else {
            self.ahead.push(sn);
        }
        self.update_max();
        true
    }

    /// A task started (it holds a place in the window until `finished`).
    pub fn started(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
    }

    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.update_max();
    }

    fn update_max(&mut self) {
        let room = self.depth.saturating_sub(self.in_flight);
        // MaxCmdSN = ExpCmdSN - 1 + room, but never decreasing (initiators ignore a decrease).
        let candidate = self.exp.wrapping_sub(1).wrapping_add(room);
        if sn_lt(self.max, candidate) {
            self.max = candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(sn_lt(1, 2));
        assert!(!sn_lt(2, 1));
        assert!(!sn_lt(5, 5));
        assert!(sn_lt(0xffff_fff0, 3));
        assert!(!sn_lt(3, 0xffff_fff0));
    }

    #[test]
    fn in_order_commands_advance() {
        let mut w = CmdWindow::new(10, 128);
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (10, 137));
        assert!(w.admit(10, false));
        assert_eq!(w.exp_cmd_sn(), 11);
        assert_eq!(w.max_cmd_sn(), 138);
        assert!(w.admit(11, true)); // immediate: no advance
        assert_eq!(w.exp_cmd_sn(), 11);
    }

    #[test]
    fn outside_window_is_dropped() {
        let mut w = CmdWindow::new(10, 4);
        assert!(!w.admit(9, false)); // too low
        assert!(!w.admit(14, false)); // MaxCmdSN + 1
        assert!(w.admit(10, false));
        assert_eq!(w.exp_cmd_sn(), 11);
    }

    #[test]
    fn ahead_then_gap_filled() {
        let mut w = CmdWindow::new(1, 8);
        assert!(w.admit(3, false));
        assert!(!w.admit(3, false)); // duplicate
        assert_eq!(w.exp_cmd_sn(), 1);
        assert!(w.admit(2, false));
        assert_eq!(w.exp_cmd_sn(), 1);
        assert!(w.admit(1, false));
        assert_eq!(w.exp_cmd_sn(), 4);
    }

    #[test]
    fn wraps_around() {
        let mut w = CmdWindow::new(0xffff_fffe, 4);
        assert!(w.in_window(0xffff_fffe));
        assert!(w.in_window(1));
        assert!(!w.in_window(2));
        for sn in [0xffff_fffe, 0xffff_ffff, 0, 1] {
            assert!(w.admit(sn, false));
        }
        assert_eq!(w.exp_cmd_sn(), 2);
        assert_eq!(w.max_cmd_sn(), 5);
    }

    #[test]
    fn in_flight_tasks_shrink_the_window_but_max_never_decreases() {
        let mut w = CmdWindow::new(0, 2);
        assert_eq!(w.max_cmd_sn(), 1);
        w.started();
        assert!(w.admit(0, false));
        w.started();
        assert!(w.admit(1, false));
        // Two tasks in flight, depth 2: window closed.
        assert_eq!(w.max_cmd_sn(), 1);
        assert!(!w.in_window(2));
        w.finished();
        assert_eq!(w.max_cmd_sn(), 2);
        assert!(w.admit(2, false));
        w.finished();
        assert_eq!(w.max_cmd_sn(), 4);
    }
}
