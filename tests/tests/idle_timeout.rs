//! `--timeout`: a call that never carries media is ended; a call with media stays.

use std::time::{Duration, Instant};

use ngmedia_tests::{wait_for, Daemon, TwoPartyCall};

#[test]
fn call_without_media_times_out_call_with_media_stays() {
    let daemon = Daemon::start(&["--timeout", "2"]);
    let ng = daemon.client();
    let start = Instant::now();
    let _silent = TwoPartyCall::setup(&ng, "idle-silent");
    let mut busy = TwoPartyCall::setup(&ng, "idle-busy");
    let listed = ng.list();
    assert!(
        listed.contains(&"idle-silent".into()) && listed.contains(&"idle-busy".into()),
        "{listed:?}"
    );

    // Media on the busy call every 100 ms while we wait for the silent one to go.
    let gone = wait_for(Duration::from_secs(6), || {
        busy.exchange(1, Duration::ZERO);
        busy.a.drain();
        busy.b.drain();
        std::thread::sleep(Duration::from_millis(50));
        (!ng.list().contains(&"idle-silent".into())).then(Instant::now)
    });
    let gone = gone.expect("silent call still listed 6 s after a 2 s timeout");
    assert!(
        gone - start >= Duration::from_millis(1500),
        "ended after {:?}, before the timeout",
        gone - start
    );

    assert!(
        ng.list().contains(&"idle-busy".into()),
        "the call with media was ended too"
    );
    let q = ng.query("idle-silent").unwrap();
    assert_eq!(
        q.str_at("result"),
        Some("error"),
        "timed-out call still queryable: {q:?}"
    );
}
