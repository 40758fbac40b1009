//! Text Requests in the full feature phase (RFC 7143 11.10-11.11, 6.2, appendix C): every request
//! is answered within a bound, SendTargets in normal and discovery sessions, answers and requests
//! that span several PDUs, and Target Transfer Tags of exchanges that are over.

use super::*;

/// Targets besides TARGET, all open to every initiator: enough for a SendTargets=All answer of
/// well over 512 bytes.
const OTHERS: u32 = 20;
/// How long an answer may take: every Text Request gets one well within this.
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);
const RESERVED: u32 = 0xffff_ffff;
/// Text Request/Response flags (RFC 7143 11.10.1-2).
const F: u8 = 0x80;
const C: u8 = 0x40;

fn other(i: u32) -> String {
    format!("iqn.2024-01.test:other-{i:03}")
}

async fn many_targets() -> (Arc<IscsiServer>, SocketAddr) {
    let reg = Registry::new();
    for (tid, name) in std::iter::once((1, TARGET.to_string())).chain((0..OTHERS).map(|i| (i + 2, other(i)))) {
        let scsi = Target::new(tid, name);
        let lu = LogicalUnit::new(LunConfig::disk(tid, 1), Some(Backstore::Memory(MemoryStore::new(1 << 20))));
        scsi.add_lun(1, Arc::new(lu)).unwrap();
        let t = IscsiTarget::new(scsi);
        t.bind(AclRule::Any).unwrap();
        reg.add_target(t).unwrap();
    }
    let srv = IscsiServer::new(reg);
    let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (srv, addr)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Client {
    /// One Text Request (non-immediate, so it takes a CmdSN like any command); the PDU that
    /// answers it, or None when nothing came within ANSWER_WITHIN.
    async fn text_request(&mut self, flags: u8, itt: u32, ttt: u32, data: &[u8]) -> Option<(Bhs, Vec<u8>)> {
        let mut h = Bhs::new(Opcode::TextRequest);
        h.set_flags(flags);
        h.set_itt(itt);
        h.set_ttt(ttt);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.cmd_sn += 1;
        self.send(&h, data).await;
        let p = tokio::time::timeout(ANSWER_WITHIN, self.rd.read_pdu()).await.ok()?.expect("pdu");
        Some((p.bhs, p.data.to_vec()))
    }

    /// A single-PDU request that must be answered by one final Text Response: its pairs.
    async fn ask(&mut self, keys: &[u8]) -> Vec<(String, String)> {
        let itt = self.next_itt();
        let what = String::from_utf8_lossy(keys).to_string();
        let (r, d) = self.text_request(F, itt, RESERVED, keys).await.unwrap_or_else(|| panic!("no answer to {what:?}"));
        assert_eq!(r.opcode().unwrap(), Opcode::TextResponse, "answer to {what:?}");
        assert_eq!(r.itt(), itt);
        assert_eq!(r.flags() & (F | C), F, "one final response to {what:?}");
        assert_eq!(r.ttt(), RESERVED, "a final response carries the reserved TTT");
        parse_text(&d)
    }

    /// A request the target answers with a Reject PDU carrying the request's header.
    async fn rejected(&mut self, flags: u8, itt: u32, ttt: u32, data: &[u8], reason: u8) {
        let (r, d) = self.text_request(flags, itt, ttt, data).await.expect("an answer");
        assert_eq!(r.opcode().unwrap(), Opcode::Reject);
        assert_eq!(r.0[2], reason, "reject reason");
        assert_eq!(d.get(16..20), Some(&itt.to_be_bytes()[..]), "the rejected header comes back");
    }

    /// The session still works: a ping is answered.
    async fn usable(&mut self) {
        self.nop(b"still usable").await;
    }
}

fn own_record(addr: SocketAddr) -> Vec<(String, String)> {
    vec![("TargetName".to_string(), TARGET.to_string()), ("TargetAddress".to_string(), format!("{addr},1"))]
}

#[tokio::test]
async fn send_targets_in_a_normal_session_names_only_the_sessions_target() {
    let (_srv, addr) = many_targets().await;
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[]).await;
    // Appendix C: All MUST NOT be supported in a normal session: a proper answer, not silence.
    assert_eq!(c.ask(&text(&[("SendTargets", "All")])).await, pairs(&[("SendTargets", "Reject")]));
    c.usable().await;
    // Empty and the session's own name MUST be supported: the session's target and its addresses.
    assert_eq!(c.ask(&text(&[("SendTargets", "")])).await, own_record(addr));
    assert_eq!(c.ask(&text(&[("SendTargets", TARGET)])).await, own_record(addr));
    // Another target is not this session's business.
    assert_eq!(c.ask(&text(&[("SendTargets", &other(3))])).await, Vec::new());
    // SCSI commands go on.
    let itt = c.command(&[0, 0, 0, 0, 0, 0], 0x81, 0, &[]).await;
    c.read_result(itt).await;
    c.logout().await;
}

#[tokio::test]
async fn every_text_request_gets_an_answer_and_the_session_goes_on() {
    let (_srv, addr) = many_targets().await;
    for session_type in ["Normal", "Discovery"] {
        let mut c = Client::connect(addr).await;
        c.login(session_type, &[]).await;
        // A key the target does not know (6.2): NotUnderstood.
        assert_eq!(
            c.ask(&text(&[("SendTargetsPlease", "All")])).await,
            pairs(&[("SendTargetsPlease", "NotUnderstood")]),
            "{session_type}"
        );
        assert_eq!(c.ask(&text(&[("X-com.example.Foo", "1")])).await, pairs(&[("X-com.example.Foo", "NotUnderstood")]));
        // A SendTargets value that is neither All, a target name nor empty: Reject.
        for bad in ["Alle", "A", "all"] {
            assert_eq!(c.ask(&text(&[("SendTargets", bad)])).await, pairs(&[("SendTargets", "Reject")]), "{bad}");
        }
        // A well-formed name of no target: nothing to list.
        assert_eq!(c.ask(&text(&[("SendTargets", "iqn.2024-01.test:nope")])).await, Vec::new());
        // Operational keys are not renegotiated here.
        assert_eq!(c.ask(&text(&[("MaxBurstLength", "4096")])).await, pairs(&[("MaxBurstLength", "Reject")]));
        // Text that is not key=value pairs: a Reject PDU (protocol error).
        let itt = c.next_itt();
        c.rejected(F, itt, RESERVED, b"novalue\0", 0x04).await;
        // A key twice in one request: the same (6.2), rather than the target list twice over.
        let itt = c.next_itt();
        c.rejected(F, itt, RESERVED, &text(&[("SendTargets", "All"), ("SendTargets", "All")]), 0x04).await;
        c.usable().await;
        if session_type == "Discovery" {
            let all = c.ask(&text(&[("SendTargets", "All")])).await;
            assert_eq!(all.iter().filter(|(k, _)| k == "TargetName").count(), OTHERS as usize + 1);
            assert_eq!(c.ask(&text(&[("SendTargets", &other(7))])).await[0].1, other(7));
        }
        c.logout().await;
    }
}

/// Reads a long answer to the end, continuing with empty requests that carry its TTT (11.11.4).
async fn rest_of_answer(c: &mut Client, itt: u32, first: (Bhs, Vec<u8>)) -> Vec<u8> {
    let (mut r, mut all) = first;
    let mut pieces = 1;
    while r.flags() & F == 0 {
        let ttt = r.ttt();
        assert_ne!(ttt, RESERVED, "a response that is not final carries a TTT");
        assert!(all.len() <= 512 * pieces, "pieces fit the initiator's MaxRecvDataSegmentLength");
        let (next, d) = c.text_request(F, itt, ttt, &[]).await.expect("the next piece");
        assert_eq!(next.opcode().unwrap(), Opcode::TextResponse);
        assert_eq!(next.itt(), itt);
        all.extend_from_slice(&d);
        r = next;
        pieces += 1;
    }
    assert_eq!(r.flags() & C, 0, "the final piece ends the text");
    assert_eq!(r.ttt(), RESERVED);
    assert!(pieces > 1, "the answer spanned several PDUs");
    all
}

#[tokio::test]
async fn long_answers_continue_by_target_transfer_tag_and_stale_tags_are_refused() {
    let (_srv, addr) = many_targets().await;
    let mut c = Client::connect(addr).await;
    c.login("Discovery", &[("MaxRecvDataSegmentLength", "512")]).await;
    let send_all = text(&[("SendTargets", "All")]);

    // A whole long answer, piece by piece.
    let itt = c.next_itt();
    let first = c.text_request(F, itt, RESERVED, &send_all).await.expect("first piece");
    assert_eq!(first.0.flags() & (F | C), C, "not final, text continues");
    let ttt = first.0.ttt();
    let all = parse_text(&rest_of_answer(&mut c, itt, first).await);
    let names: Vec<&str> = all.iter().filter(|(k, _)| k == "TargetName").map(|(_, v)| v.as_str()).collect();
    assert_eq!(names.len(), OTHERS as usize + 1);
    assert!(names.contains(&TARGET) && names.contains(&other(OTHERS - 1).as_str()));

    // That exchange is over: its TTT is stale (11.11.4) and refused, and the session goes on.
    c.rejected(F, itt, ttt, &[], 0x09).await;
    c.usable().await;

    // A new request while a long answer is in progress ends that exchange (a request with the
    // reserved TTT starts afresh, 11.10.4) and is answered; the old TTT is then refused.
    let old_itt = c.next_itt();
    let (r, _) = c.text_request(F, old_itt, RESERVED, &send_all).await.expect("first piece");
    let old_ttt = r.ttt();
    assert_ne!(old_ttt, RESERVED);
    assert_eq!(c.ask(&text(&[("SendTargets", TARGET)])).await, own_record(addr));
    c.rejected(F, old_itt, old_ttt, &[], 0x09).await;
    // The same ITT with the reserved TTT restarts its exchange from the beginning.
    let again = c.text_request(F, old_itt, RESERVED, &send_all).await.expect("first piece");
    let first_data = again.1.clone();
    let restarted = rest_of_answer(&mut c, old_itt, again).await;
    assert!(restarted.starts_with(&first_data));
    assert_eq!(parse_text(&restarted), all);
    c.usable().await;
    c.logout().await;
}

#[tokio::test]
async fn requests_spanning_several_pdus_are_gathered_then_answered() {
    let (_srv, addr) = many_targets().await;
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[]).await;
    // "SendTargets=" split inside the key and then inside the value (6.1: a pair may span PDUs).
    let whole = text(&[("SendTargets", TARGET)]);
    let itt = c.next_itt();
    let (r, d) = c.text_request(C, itt, RESERVED, &whole[..5]).await.expect("an answer to the first part");
    // 11.10.2 / 11.11: each part is acknowledged by an empty, non-final response with a TTT.
    assert_eq!(r.opcode().unwrap(), Opcode::TextResponse);
    assert_eq!((r.itt(), r.flags() & (F | C), d.len()), (itt, 0, 0));
    let ttt = r.ttt();
    assert_ne!(ttt, RESERVED);
    let (r, d) = c.text_request(C, itt, ttt, &whole[5..20]).await.expect("an answer to the second part");
    assert_eq!((r.opcode().unwrap(), r.flags() & (F | C), d.len()), (Opcode::TextResponse, 0, 0));
    let ttt = r.ttt();
    let (r, d) = c.text_request(F, itt, ttt, &whole[20..]).await.expect("the answer");
    assert_eq!(r.opcode().unwrap(), Opcode::TextResponse);
    assert_eq!((r.itt(), r.flags() & (F | C), r.ttt()), (itt, F, RESERVED));
    assert_eq!(parse_text(&d), own_record(addr));

    // C with F is a protocol error (11.10.2): Reject, and the session goes on.
    let itt = c.next_itt();
    c.rejected(F | C, itt, RESERVED, &whole[..5], 0x04).await;
    c.usable().await;

    // A continuation with another exchange's ITT is refused without ending the exchange.
    let itt = c.next_itt();
    let (r, _) = c.text_request(C, itt, RESERVED, &whole[..5]).await.expect("an answer");
    let ttt = r.ttt();
    c.rejected(F, itt + 100, ttt, &whole[5..], 0x09).await;
    let (r, d) = c.text_request(F, itt, ttt, &whole[5..]).await.expect("the answer");
    assert_eq!((r.opcode().unwrap(), r.flags() & F), (Opcode::TextResponse, F));
    assert_eq!(parse_text(&d), own_record(addr));

    // More text than the target gathers (text::MAX_TEXT_LEN): Reject, and the exchange is over.
    let itt = c.next_itt();
    let chunk = vec![b'a'; 8192];
    let (r, _) = c.text_request(C, itt, RESERVED, &chunk).await.expect("an answer");
    let mut ttt = r.ttt();
    let mut refused = false;
    for _ in 0..rtgt_iscsi::text::MAX_TEXT_LEN / chunk.len() + 1 {
        let (r, _) = c.text_request(C, itt, ttt, &chunk).await.expect("an answer");
        if r.opcode().unwrap() == Opcode::Reject {
            assert_eq!(r.0[2], 0x04);
            refused = true;
            break;
        }
        ttt = r.ttt();
    }
    assert!(refused, "text past the limit is refused");
    c.rejected(F, itt, ttt, &[], 0x09).await;
    c.usable().await;

    // A request with F clear and nothing more to say gets a non-final answer (11.11.1: a final
    // response to a non-final request is a protocol error); the initiator ends it with F.
    let itt = c.next_itt();
    let (r, d) = c.text_request(0, itt, RESERVED, &text(&[("SendTargets", "")])).await.expect("an answer");
    assert_eq!((r.opcode().unwrap(), r.flags() & (F | C)), (Opcode::TextResponse, 0));
    assert_eq!(parse_text(&d), own_record(addr));
    let (r, d) = c.text_request(F, itt, r.ttt(), &[]).await.expect("the end");
    assert_eq!((r.flags() & (F | C), r.ttt(), d.len()), (F, RESERVED, 0));
    c.usable().await;
    c.logout().await;
}
