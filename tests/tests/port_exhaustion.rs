//! Running out of media ports is an ng error Kamailio understands (it fails over on the exact
//! text), the daemon keeps serving, and deleting a call makes its ports usable again.

use std::time::Duration;

use ngmedia_tests::sdp::audio_sdp;
use ngmedia_tests::{dict, wait_for, Daemon, TwoPartyCall};

#[test]
fn out_of_ports_is_an_error_reply_and_ports_come_back_after_delete() {
    // Four ports: one RTP/RTCP pair per side of exactly one call.
    let daemon = Daemon::start_with_ports(4, &["--delete-delay", "0"]);
    let ng = daemon.client();
    let _first = TwoPartyCall::setup(&ng, "ports-1");

    let sdp = audio_sdp([127, 0, 0, 1].into(), 40000, 1, "sendrecv");
    let offer = |call_id: &str| {
        ng.request(dict! {
            "command" => "offer", "call-id" => call_id, "from-tag" => "a", "sdp" => sdp.as_str(),
        })
        .expect("reply")
    };
    let reply = offer("ports-2");
    assert_eq!(reply.str_at("result"), Some("error"), "{reply:?}");
    assert_eq!(reply.str_at("error-reason"), Some("Ran out of ports"));
    // The failed offer left nothing behind.
    assert_eq!(ng.list(), vec!["ports-1".to_string()]);

    ng.ok(dict! { "command" => "delete", "call-id" => "ports-1" });
    // The workers close the sockets asynchronously; the pool gets them back right after.
    let again = wait_for(Duration::from_secs(2), || {
        let r = offer("ports-3");
        (r.str_at("result") == Some("ok")).then_some(r)
    });
    assert!(
        again.is_some(),
        "ports were not reusable after delete\n{}",
        daemon.log_text()
    );
}
