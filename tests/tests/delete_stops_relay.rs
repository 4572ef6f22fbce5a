//! `delete`: with `delete-delay: 0` the call is gone at once (no relay, query fails);
//! without the key the configured `--delete-delay` keeps it queryable for that long.

use std::time::{Duration, Instant};

use ngmedia_tests::{dict, wait_for, Daemon, TwoPartyCall};

#[test]
fn delete_with_zero_delay_stops_relay_and_forgets_the_call() {
    let daemon = Daemon::start(&[]);
    let ng = daemon.client();
    let mut call = TwoPartyCall::setup(&ng, "delete-now");
    call.exchange(5, Duration::from_millis(2));
    assert_eq!(
        call.b.recv_many(5, Duration::from_secs(2)).len(),
        5,
        "relay before delete"
    );
    assert_eq!(
        call.a.recv_many(5, Duration::from_secs(2)).len(),
        5,
        "relay before delete"
    );

    ng.ok(dict! {
        "command" => "delete", "call-id" => "delete-now", "from-tag" => call.from_tag.as_str(),
        "delete-delay" => 0i64,
    });
    call.exchange(5, Duration::from_millis(2));
    assert!(
        call.b.recv(Duration::from_millis(300)).is_none(),
        "A->B relayed after delete"
    );
    assert!(
        call.a.recv(Duration::from_millis(50)).is_none(),
        "B->A relayed after delete"
    );

    let q = ng.query("delete-now").unwrap();
    assert_eq!(q.str_at("result"), Some("error"), "{q:?}");
    assert!(!ng.list().contains(&"delete-now".into()));
}

#[test]
fn delete_without_delay_key_keeps_the_call_for_the_configured_delay() {
    let daemon = Daemon::start(&["--delete-delay", "1"]);
    let ng = daemon.client();
    let call = TwoPartyCall::setup(&ng, "delete-later");
    let deleted_at = Instant::now();
    let delete = dict! { "command" => "delete", "call-id" => "delete-later", "from-tag" => call.from_tag.as_str() };
    ng.ok(delete.clone());

    // Within the delay: still queryable, and a retransmitted delete (new cookie) still
    // finds the call.
    assert_eq!(
        ng.query("delete-later").unwrap().str_at("result"),
        Some("ok")
    );
    let again = ng.ok(delete);
    assert!(
        again.get("warning").is_none(),
        "second delete within the delay: {again:?}"
    );

    let purged = wait_for(Duration::from_secs(4), || {
        (ng.query("delete-later").unwrap().str_at("result") == Some("error")).then(Instant::now)
    })
    .expect("deleted call still queryable 4 s after a 1 s delete delay");
    assert!(
        purged - deleted_at >= Duration::from_millis(500),
        "purged after {:?}",
        purged - deleted_at
    );
}
