//! Wrong digests on a connection that negotiated HeaderDigest=CRC32C and DataDigest=CRC32C
//! (RFC 7143 7.8). A header digest error: the target may discard the PDU or drop the connection,
//! and without a sync layer it cannot find the next PDU, so the connection goes. A data digest
//! error: a Reject with reason 0x02 carrying the header, the PDU discarded; for a non-data PDU
//! nothing more, and at ErrorRecoveryLevel 0 a command's or Data-Out's lost data is recovered
//! only by session recovery (7.1.5), so the connection ends and nothing is written.

use crate::common::initiator::{Connection, OP_NOP_IN, OP_R2T};
use crate::hostile::arena::Arena;
use crate::hostile::wire::*;

const DIGESTS: &[(&str, &str)] = &[("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C")];

fn login_with_digests(arena: &mut Arena) -> Connection {
    let mut conn = arena.connect();
    let answered = conn.login(crate::hostile::arena::HOSTILE, Some(crate::hostile::arena::IQN), DIGESTS).unwrap();
    for key in ["HeaderDigest", "DataDigest"] {
        assert_eq!(crate::common::initiator::key(&answered, key), Some("CRC32C"), "{key} negotiated");
    }
    conn
}

/// A NOP-Out with good digests gets its echo, with good digests.
fn ping(conn: &mut Connection, itt: u32, payload: &[u8]) {
    let bhs = nop_out(conn, itt);
    send_digested(conn, &bhs, payload, false, false);
    let nop = recv_digested(conn).expect("a NOP-In");
    assert_eq!(nop.opcode(), OP_NOP_IN);
    assert_eq!(nop.itt(), itt);
    assert_eq!(nop.data, payload);
}

#[test]
fn wrong_digests() {
    let mut arena = Arena::start();

    // A data digest error on a NOP-Out: Reject 0x02, and the connection carries on.
    let mut conn = login_with_digests(&mut arena);
    ping(&mut conn, 1, b"good digests");
    let bhs = nop_out(&conn, 2);
    send_digested(&mut conn, &bhs, b"spoiled", false, true);
    let reject = recv_digested(&mut conn).expect("a Reject");
    expect_reject(&reject, 0x02, &bhs);
    ping(&mut conn, 3, b"after the reject");
    arena.check("a NOP-Out with a bad data digest");

    // A data digest error on a WRITE's immediate data: Reject 0x02, nothing written, and the
    // connection ends (ERL 0).
    let data = pattern(8192, 3);
    let bhs = command(&mut conn, 4, 0xa0, 8192, &write10(300, 16));
    send_digested(&mut conn, &bhs, &data, false, true);
    expect_reject(&recv_digested(&mut conn).expect("a Reject"), 0x02, &bhs);
    expect_closed(&mut conn, "immediate data with a bad digest");
    arena.check("immediate data with a bad digest");
    arena.assert_unwritten(300, 16, "immediate data with a bad digest");

    // A data digest error on a Data-Out: the same.
    let mut conn = login_with_digests(&mut arena);
    let bhs = command(&mut conn, 5, 0xa0, 8192, &write10(400, 16));
    send_digested(&mut conn, &bhs, &[], false, false);
    let r2t = recv_digested(&mut conn).expect("an R2T");
    assert_eq!(r2t.opcode(), OP_R2T);
    let dout = data_out(&conn, 5, r2t.u32_at(20), 0, 0, true);
    send_digested(&mut conn, &dout, &pattern(8192, 4), false, true);
    expect_reject(&recv_digested(&mut conn).expect("a Reject"), 0x02, &dout);
    expect_closed(&mut conn, "Data-Out with a bad digest");
    arena.check("a Data-Out with a bad digest");
    arena.assert_unwritten(400, 16, "Data-Out with a bad digest");

    // A header digest error: the connection ends, and the PDU is not acted on.
    let mut conn = login_with_digests(&mut arena);
    let data = pattern(4096, 5);
    let bhs = command(&mut conn, 6, 0xa0, 4096, &write10(500, 8));
    send_digested(&mut conn, &bhs, &data, true, false);
    let answer = expect_closed(&mut conn, "a bad header digest");
    assert!(answer.is_empty(), "a PDU with a bad header digest was answered: {answer:?}");
    arena.check("a bad header digest");
    arena.assert_unwritten(500, 8, "a WRITE with a bad header digest");
    arena.finish("wrong digests");
}
