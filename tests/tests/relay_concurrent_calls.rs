//! Five calls set up and carrying media at the same time: every packet arrives once, byte
//! for byte, in order, from the engine port that was advertised to the receiver.

use std::collections::HashSet;
use std::time::Duration;

use ngmedia_tests::{Daemon, NgClient, TwoPartyCall};

const CALLS: usize = 5;
const PACKETS: usize = 50;

#[test]
fn five_concurrent_calls_relay_exact_bytes_both_ways() {
    let daemon = Daemon::start(&[]);
    let ng_addr = daemon.ng;
    let workers: Vec<_> = (0..CALLS)
        .map(|n| {
            std::thread::spawn(move || {
                let ng = NgClient::new(ng_addr);
                let mut call = TwoPartyCall::setup(&ng, &format!("relay-concurrent-{n}"));
                assert_eq!(call.a_dest.ip().to_string(), "127.0.0.1");
                assert_ne!(
                    call.a_dest, call.b_dest,
                    "each party gets its own engine port"
                );
                let (from_a, from_b) = call.exchange(PACKETS, Duration::from_millis(2));

                let at_b = call.b.recv_many(PACKETS, Duration::from_secs(3));
                let at_a = call.a.recv_many(PACKETS, Duration::from_secs(3));
                assert_eq!(
                    at_b.len(),
                    PACKETS,
                    "call {n}: B got {} of {PACKETS}",
                    at_b.len()
                );
                assert_eq!(
                    at_a.len(),
                    PACKETS,
                    "call {n}: A got {} of {PACKETS}",
                    at_a.len()
                );
                for (i, ((got, src), sent)) in at_b.iter().zip(&from_a).enumerate() {
                    assert_eq!(got, sent, "call {n}: packet {i} A->B differs");
                    assert_eq!(
                        *src, call.b_dest,
                        "call {n}: B must hear from the port it sends to"
                    );
                }
                for (i, ((got, src), sent)) in at_a.iter().zip(&from_b).enumerate() {
                    assert_eq!(got, sent, "call {n}: packet {i} B->A differs");
                    assert_eq!(
                        *src, call.a_dest,
                        "call {n}: A must hear from the port it sends to"
                    );
                }
                // Nothing extra (no duplicates).
                assert!(
                    call.b.recv(Duration::from_millis(50)).is_none(),
                    "call {n}: extra packet at B"
                );
                assert!(
                    call.a.recv(Duration::from_millis(10)).is_none(),
                    "call {n}: extra packet at A"
                );
                (call.a_dest, call.b_dest)
            })
        })
        .collect();

    let mut ports = HashSet::new();
    for worker in workers {
        let (a_dest, b_dest) = worker
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert!(
            ports.insert(a_dest) && ports.insert(b_dest),
            "engine port reused across calls"
        );
    }
    assert_eq!(ports.len(), 2 * CALLS);
    for port in &ports {
        assert!(
            (daemon.port_min..=daemon.port_max).contains(&port.port()),
            "{port} outside the range"
        );
        assert_eq!(port.port() % 2, 0, "RTP on an even port: {port}");
    }
}
