use super::*;
use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_scsi::LunConfig;

/// An owner's server for LUN 1 of a target on a 1 MiB memory disk, at most `max_proxies`
/// proxies, with the target and unit it serves (kept alive by the caller).
fn owner(max_proxies: usize) -> (Arc<Server>, Arc<Target>, Arc<LogicalUnit>) {
    let target = Target::new(1, "iqn.2026-12.test:fwd".into());
    let unit = Arc::new(LogicalUnit::new(LunConfig::disk(1, 1), Some(Backstore::Memory(MemoryStore::new(1 << 20)))));
    target.add_lun(1, unit.clone()).unwrap();
    let server = Arc::new(Server {
        token: new_token().unwrap(),
        unit: Arc::downgrade(&unit),
        target: Arc::downgrade(&target),
        lun: 1,
        proxies: Mutex::new(HashMap::new()),
        max_proxies,
        save: Arc::new(|| {}),
    });
    (server, target, unit)
}

/// A connection to `server`'s serve loop, opened with `magic`.
async fn connect(server: &Arc<Server>, magic: &[u8; 8]) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let me = server.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = me.serve(stream).await;
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut hello = magic.to_vec();
    hello.extend_from_slice(&server.token);
    stream.write_all(&hello).await.unwrap();
    if magic == MAGIC {
        let mut answer = [0u8; 8];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, MAGIC);
    }
    stream
}

/// `server` listening on loopback for as many connections as come; what it published.
async fn listening(server: &Arc<Server>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let published = format!("{}/{}", listener.local_addr().unwrap(), hex(&server.token));
    tokio::spawn(server.clone().accept(listener));
    published
}

#[tokio::test]
async fn a_forwarder_opens_version_2_with_an_owner_that_takes_it() {
    let (server, _target, _unit) = owner(4);
    let published = listening(&server).await;
    let (mut stream, magic) = open(&published).await.unwrap();
    assert_eq!(magic, MAGIC);
    let (status, _, _) = command(&mut stream, "iqn.2026-12.test:a,i,0x1", &[0; 6], &[]).await;
    assert_eq!(status, ScsiStatus::Good as u8);
}

#[tokio::test]
async fn a_forwarder_falls_back_to_version_1_with_an_owner_from_before() {
    // An owner from before version 2: takes RTGTFWD1 and the token, closes anything else.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token = new_token().unwrap();
    let published = format!("{}/{}", listener.local_addr().unwrap(), hex(&token));
    let (took, mut taken) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut hello = [0u8; 24];
            stream.read_exact(&mut hello).await.unwrap();
            let _ = took.send(hello[..8].to_vec());
            if &hello[..8] == MAGIC_V1 && hello[8..] == token {
                // Kept open: a version 1 session, which answers nothing before a request.
                tokio::spawn(async move { stream.read_u8().await });
            }
        }
    });
    let (_stream, magic) = open(&published).await.unwrap();
    assert_eq!(magic, MAGIC_V1);
    assert_eq!(taken.recv().await.unwrap(), MAGIC.to_vec());
    assert_eq!(taken.recv().await.unwrap(), MAGIC_V1.to_vec());
}

#[tokio::test]
async fn an_owner_still_takes_version_1_forwarders() {
    let (server, _target, _unit) = owner(4);
    let mut stream = connect(&server, MAGIC_V1).await;
    let (status, _, _) = command(&mut stream, "iqn.2026-12.test:a,i,0x1", &[0; 6], &[]).await;
    assert_eq!(status, ScsiStatus::Good as u8);
}

#[test]
fn only_version_2_forwarders_are_told_aborted() {
    assert_eq!(aborted_reply(false, None), None);
    assert_eq!(aborted_reply(false, Some(PeerEvent::Reset(3))), None);
    assert_eq!(aborted_reply(true, None).unwrap(), [ABORTED, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let named = aborted_reply(true, Some(PeerEvent::Reservation(9))).unwrap();
    assert_eq!(named, [&[ABORTED, 0, 0, 0, 0, 0, 9][..], &PeerEvent::Reservation(9).encode(), &[0, 0, 0, 0]].concat());
}

/// One command on `stream` as a forwarder sends it; the reply's status, sense and data-in.
async fn command(stream: &mut TcpStream, port: &str, cdb: &[u8], data_out: &[u8]) -> (u8, Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    put_u16_len(&mut out, port.as_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    put_u16_len(&mut out, cdb);
    put_u32_len(&mut out, data_out);
    stream.write_all(&out).await.unwrap();
    let status = stream.read_u8().await.unwrap();
    let _data_out_expected = stream.read_u32().await.unwrap();
    let sense_len = usize::from(stream.read_u16().await.unwrap());
    let sense = read_bytes(stream, "sense", sense_len, MAX_SENSE).await.unwrap();
    let data_len = stream.read_u32().await.unwrap() as usize;
    let data_in = read_bytes(stream, "data-in", data_len, 1 << 20).await.unwrap();
    (status, sense, data_in)
}

#[tokio::test]
async fn busy_for_a_full_proxy_table_carries_no_earlier_data() {
    let (server, _target, _unit) = owner(1);
    let mut stream = connect(&server, MAGIC).await;
    let secret = vec![0x5a; 512];
    // WRITE(10) then READ(10) of LBA 0, one block, from the one initiator port the table takes.
    let write = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let read = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let a = "iqn.2026-12.test:a,i,0x000000000001";
    assert_eq!(command(&mut stream, a, &write, &secret).await.0, ScsiStatus::Good as u8);
    let (status, _, data) = command(&mut stream, a, &read, &[]).await;
    assert_eq!((status, data), (ScsiStatus::Good as u8, secret));
    // Another initiator port on the same connection: no room for its proxy.
    let b = "iqn.2026-12.test:b,i,0x000000000002";
    let (status, sense, data) = command(&mut stream, b, &[0, 0, 0, 0, 0, 0], &[]).await;
    assert_eq!(status, ScsiStatus::Busy as u8);
    assert!(sense.is_empty());
    assert!(data.is_empty(), "BUSY carried {} bytes of an earlier command's data-in", data.len());
}

#[test]
fn tokens_round_trip_through_hex() {
    let t = new_token().unwrap();
    assert_eq!(unhex(&hex(&t)), Some(t));
    assert_eq!(unhex("00"), None);
    assert_eq!(unhex(&"zz".repeat(TOKEN_LEN)), None);
    let mut other = t;
    other[TOKEN_LEN - 1] ^= 1;
    assert!(same_token(&t, &t) && !same_token(&t, &other));
}
