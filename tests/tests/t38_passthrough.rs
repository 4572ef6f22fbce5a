//! Plain T.38 passthrough: an `m=image … udptl t38` call without `T.38` flags is relayed
//! datagram for datagram. UDPTL is not RTP: its first two bytes are a sequence number, so a
//! fax session's first packets (sequence 0, 1, 2, …) start like STUN headers and later ones
//! (0x14xx, 0x80xx) like DTLS records or RTP. Every one of them must reach the other party
//! unchanged, in both directions, and be counted.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ngmedia_tests::call::parse_reply_sdp;
use ngmedia_tests::http::metric;
use ngmedia_tests::{wait_for, Daemon, Value};

fn t38_sdp(port: u16, version: u32) -> String {
    format!(
        "v=0\r\n\
         o=- 1545997027 {version} IN IP4 127.0.0.1\r\n\
         s=fax\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=image {port} udptl t38\r\n\
         a=T38FaxVersion:0\r\n\
         a=T38MaxBitRate:14400\r\n\
         a=T38FaxRateManagement:transferredTCF\r\n\
         a=T38FaxMaxBuffer:262\r\n\
         a=T38FaxMaxDatagram:316\r\n\
         a=T38FaxUdpEC:t38UDPRedundancy\r\n\
         a=sendrecv\r\n"
    )
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// A UDPTL datagram (T.38 Annex A): sequence number, the primary IFP packet as an
/// open type (length, bytes), then redundancy with the previous IFP packets.
fn udptl(seq: u16, ifp: &[u8], previous: &[&[u8]]) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.push(ifp.len() as u8);
    p.extend_from_slice(ifp);
    p.push(0x00); // error-recovery: secondary IFP packets
    p.push(previous.len() as u8);
    for ifp in previous {
        p.push(ifp.len() as u8);
        p.extend_from_slice(ifp);
    }
    p
}

/// The datagrams of a short fax exchange: indicators, then V.21 HDLC data, with the
/// sequence numbers of a session that starts at 0, plus some far into it.
fn session() -> Vec<Vec<u8>> {
    let ifps: [&[u8]; 6] = [
        &[0x00],                         // t30-indicator: no-signal
        &[0x02],                         // CNG
        &[0x06],                         // V.21 preamble
        &[0xc0, 0x01, 0x80, 0x00, 0xff], // V.21 HDLC data
        &[0xc0, 0x01, 0x80, 0x00, 0xc8], // V.21 HDLC data
        &[0xd0, 0x01, 0x80, 0x00, 0x01], // V.21 HDLC data, FCS OK
    ];
    let mut out = Vec::new();
    for (seq, i) in [0u16, 1, 2, 3, 4, 5, 0x1400, 0x8000, 0x80c8, 0xffff]
        .into_iter()
        .zip((0..6).cycle())
    {
        let previous: Vec<&[u8]> = (0..i).rev().take(2).map(|j| ifps[j]).collect();
        out.push(udptl(seq, ifps[i], &previous));
    }
    out
}

/// (packets, bytes) of the party `tag`'s streams in a `query` reply.
fn party_counts(reply: &Value, tag: &str) -> Option<(u64, u64)> {
    let medias = reply.path(&["tags", tag, "medias"])?.as_list()?;
    let mut sum = (0, 0);
    for media in medias {
        for stream in media.get("streams")?.as_list()? {
            sum.0 += stream.path(&["stats", "packets"])?.as_int()? as u64;
            sum.1 += stream.path(&["stats", "bytes"])?.as_int()? as u64;
        }
    }
    Some(sum)
}

fn recv_from(sock: &UdpSocket, from: SocketAddr) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, src) = sock
        .recv_from(&mut buf)
        .expect("datagram relayed within 2 s");
    assert_eq!(
        src, from,
        "relayed out of the engine's socket for this party"
    );
    buf[..n].to_vec()
}

#[test]
fn udptl_is_relayed_byte_for_byte_both_ways_and_counted() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let (a, b) = (endpoint(), endpoint());
    let call_id = "t38-passthrough";
    let offer = ng.offer(
        call_id,
        "fax-a",
        &t38_sdp(a.local_addr().unwrap().port(), 1),
    );
    let offer_sdp = parse_reply_sdp(&offer);
    let image = &offer_sdp.medias[0];
    assert_eq!(
        (
            image.kind.as_str(),
            image.proto.as_str(),
            &image.formats[..]
        ),
        ("image", "udptl", &["t38".to_owned()][..])
    );
    assert!(image.has_attr("T38FaxMaxDatagram:316"), "{image:?}");
    assert!(
        !image.attributes.iter().any(|a| a.starts_with("rtcp")),
        "no RTCP for UDPTL: {image:?}"
    );
    let answer = ng.answer(
        call_id,
        "fax-a",
        "fax-b",
        &t38_sdp(b.local_addr().unwrap().port(), 1),
    );
    let answer_sdp = parse_reply_sdp(&answer);
    let ip = |s: &ngmedia_tests::Sdp| s.medias[0].connection.or(s.connection).unwrap();
    let to_b_side = SocketAddr::new(ip(&offer_sdp), offer_sdp.medias[0].port);
    let to_a_side = SocketAddr::new(ip(&answer_sdp), answer_sdp.medias[0].port);

    let datagrams = session();
    let mut bytes = 0u64;
    for d in &datagrams {
        a.send_to(d, to_a_side).unwrap();
        assert_eq!(&recv_from(&b, to_b_side), d, "A→B");
        b.send_to(d, to_b_side).unwrap();
        assert_eq!(&recv_from(&a, to_a_side), d, "B→A");
        bytes += d.len() as u64;
    }
    let want = (datagrams.len() as u64, bytes);
    let mut last = None;
    let counted = wait_for(Duration::from_secs(2), || {
        let reply = ng.query(call_id).ok()?;
        let counts = (party_counts(&reply, "fax-a"), party_counts(&reply, "fax-b"));
        last = Some(reply);
        (counts == (Some(want), Some(want))).then_some(())
    });
    assert!(
        counted.is_some(),
        "query never showed {want:?} per party: {last:?}"
    );
    let metrics = daemon.http_client().metrics();
    let total = |series: &str| metric(&metrics, series).map(|v| v as u64);
    assert_eq!(
        total("ngmedia_opaque_packets_total"),
        Some(2 * datagrams.len() as u64),
        "{metrics}"
    );
    assert_eq!(total("ngmedia_opaque_bytes_total"), Some(2 * bytes));
    assert_eq!(total("ngmedia_rtp_packets_total"), Some(0));
    assert_eq!(
        total("ngmedia_relayed_packets_total"),
        Some(2 * datagrams.len() as u64)
    );
    let dropped: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ngmedia_packet_drops_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(dropped, 0.0, "{metrics}");
}
