//! Homer capture, call events (webhooks, MOS alarms) and MQTT publishing, with rtpengine's
//! names and defaults.

use std::path::PathBuf;

use ngmedia_control::events::WebhookTarget;
use ngmedia_control::mqtt::Scope;

use super::{
    invalid, opt, optional_path, parse_socket_addr, Opt,
    Value::{Flag, One},
};
use crate::config::parse::{parse_bool, parse_mos_alarm, parse_port};

pub(super) static OPTIONS: &[Opt] = &[
    // --- Homer capture ---
    opt(
        "homer",
        None,
        One("ADDR:PORT"),
        "Send every RTCP packet a party sends, as Homer's RTCP JSON in HEP version 3 frames \
         tagged with the Call-ID, to the Homer capture server at ADDR:PORT (IP or host \
         name). Default: off (empty).",
        |l, v| {
            l.homer = if v.trim().is_empty() {
                None
            } else {
                Some(parse_socket_addr(v)?)
            };
            Ok(())
        },
    ),
    opt(
        "homer-protocol",
        None,
        One("udp|tcp"),
        "Transport to the Homer capture server. Over TCP a lost connection is retried every \
         30 s, with up to 200 frames kept meanwhile. Default: udp.",
        |l, v| {
            l.homer_tcp = Some(match v.trim().to_ascii_lowercase().as_str() {
                "udp" => false,
                "tcp" => true,
                _ => return Err(invalid("expected udp or tcp")),
            });
            Ok(())
        },
    ),
    opt(
        "homer-id",
        None,
        One("INT"),
        "The capture agent id (HEP chunk 12) Homer files ngmedia's frames under. Default: 2001.",
        |l, v| {
            l.homer_id = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid("expected 0-4294967295"))?,
            );
            Ok(())
        },
    ),
    opt(
        "homer-disable-rtcp-stats",
        None,
        Flag,
        "Send no RTCP to Homer (with --homer-enable-ng: only the ng traffic). Default: off.",
        |l, v| {
            l.homer_no_rtcp = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "homer-enable-ng",
        None,
        Flag,
        "Also send every ng request received over UDP and its reply (`cookie body`, pings \
         aside) to Homer, tagged with the request's Call-ID. Default: off.",
        |l, v| {
            l.homer_ng = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "homer-ng-capture-proto",
        None,
        One("INT"),
        "Capture protocol type (HEP chunk 11) of the ng frames, 0-255. Default: 61 (0x3d).",
        |l, v| {
            l.homer_ng_proto = Some(v.trim().parse().map_err(|_| invalid("expected 0-255"))?);
            Ok(())
        },
    ),
    // --- call events ---
    opt(
        "webhook-url",
        None,
        One("URL"),
        "POST call events (call.started, call.answered, call.ended, recording.finished, \
         quality.alarm with --mos-alarm, dtmf with --webhook-dtmf) as JSON to this \
         http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH] URL, with retries and a \
         bounded queue. Default: off (empty).",
        |l, v| {
            l.webhook = if v.trim().is_empty() {
                None
            } else {
                Some(WebhookTarget::parse(v, None).map_err(invalid)?)
            };
            Ok(())
        },
    ),
    opt(
        "webhook-token",
        None,
        One("TOKEN"),
        "Sent with every webhook POST as `Authorization: Bearer TOKEN`. Default: none.",
        |l, v| {
            l.webhook_token = Some(v.trim().to_string()).filter(|v| !v.is_empty());
            Ok(())
        },
    ),
    opt(
        "webhook-ca",
        None,
        One("FILE"),
        "PEM file of the CAs an https --webhook-url receiver's certificate must chain to (its \
         name or IP address checked too). Default: the system's CAs \
         (/etc/ssl/certs/ca-certificates.crt).",
        |l, v| {
            l.webhook_ca = Some(PathBuf::from(v.trim())).filter(|p| !p.as_os_str().is_empty());
            Ok(())
        },
    ),
    opt(
        "webhook-dtmf",
        None,
        Flag,
        "Also POST every DTMF digit a party sends (`dtmf` events, from the same reports as \
         --dtmf-log-dest, which keeps working). The digits are read in user space, so calls \
         leave the kernel fast path, as with --dtmf-log-dest. Default: off.",
        |l, v| {
            l.webhook_dtmf = Some(parse_bool(v)?);
            Ok(())
        },
    ),
    opt(
        "mos-alarm",
        None,
        One("MOS"),
        "POST a `quality.alarm` webhook event, once per stream, when a stream's MOS \
         estimate falls below this value (1.0 to 4.5, e.g. 3.5); checked every second. \
         Default: 0 (off).",
        |l, v| {
            l.mos_alarm = Some(parse_mos_alarm(v)?);
            Ok(())
        },
    ),
    // --- MQTT (rtpengine's names and defaults) ---
    opt(
        "mqtt-host",
        None,
        One("HOST"),
        "Publish statistics to the MQTT broker at this host name or address (with \
         --mqtt-publish-topic), every --mqtt-publish-interval, as rtpengine publishes them \
         (MQTT 3.1.1; reconnects after a failure; a bounded queue, never waited on). \
         Default: off.",
        |l, v| {
            l.mqtt.host = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-port",
        None,
        One("INT"),
        "Port of the MQTT broker. Default: 1883.",
        |l, v| {
            l.mqtt.port = Some(parse_port(v)?);
            Ok(())
        },
    ),
    opt(
        "mqtt-id",
        None,
        One("STRING"),
        "MQTT client id. Default: `ngmedia-` and 16 random hex digits.",
        |l, v| {
            l.mqtt.id = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-keepalive",
        None,
        One("INT"),
        "MQTT keep-alive in seconds: a ping goes out after half of it without a message; \
         0: none. Default: 30.",
        |l, v| {
            l.mqtt.keepalive = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid("expected seconds, 0-65535"))?,
            );
            Ok(())
        },
    ),
    opt(
        "mqtt-user",
        None,
        One("USERNAME"),
        "User name for the MQTT broker; authentication is on when it is given. Default: none.",
        |l, v| {
            l.mqtt.user = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-pass",
        None,
        One("PASSWORD"),
        "Password for the MQTT broker, with --mqtt-user. Default: none.",
        |l, v| {
            l.mqtt.pass = Some(v.to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-cafile",
        None,
        One("FILE"),
        "PEM file of the CA certificates that sign the broker's: TLS to the broker. \
         Default: none (plain TCP).",
        |l, v| {
            l.mqtt.cafile = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-capath",
        None,
        One("PATH"),
        "Folder of PEM CA certificates that sign the broker's: TLS to the broker. \
         Default: none.",
        |l, v| {
            l.mqtt.capath = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-certfile",
        None,
        One("FILE"),
        "PEM certificate (chain) we present to the broker, with --mqtt-keyfile and a CA. \
         Default: none.",
        |l, v| {
            l.mqtt.certfile = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-keyfile",
        None,
        One("FILE"),
        "PEM private key (not password-protected) of --mqtt-certfile. Default: none.",
        |l, v| {
            l.mqtt.keyfile = optional_path(v);
            Ok(())
        },
    ),
    opt(
        "mqtt-tls-alpn",
        None,
        One("STRING"),
        "ALPN protocol offered in the TLS handshake with the broker (e.g. mqtt, for \
         services that share the TLS port between protocols). Default: none.",
        |l, v| {
            l.mqtt.tls_alpn = Some(v.trim().to_string()).filter(|v| !v.is_empty());
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-qos",
        None,
        One("0|1|2"),
        "MQTT QoS of the messages: 0 (at most once), 1 (at least once: a message not \
         acknowledged is sent again after reconnecting), 2 (exactly once to the broker). \
         Default: 0.",
        |l, v| {
            l.mqtt.qos = Some(match v.trim() {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                _ => return Err(invalid("expected 0, 1 or 2")),
            });
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-topic",
        None,
        One("STRING"),
        "Topic of every message; required with --mqtt-host. Default: none.",
        |l, v| {
            l.mqtt.topic = Some(v.trim().to_string());
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-interval",
        None,
        One("MILLISECONDS"),
        "How often the statistics are published. Default: 5000.",
        |l, v| {
            l.mqtt.interval = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid("expected milliseconds"))?,
            );
            Ok(())
        },
    ),
    opt(
        "mqtt-publish-scope",
        None,
        One("global|summary|call|media"),
        "What each round publishes: summary (one message with the statistics), global (the \
         same with every call in a `calls` list), call (the summary, and one message per \
         call), media (the summary, and one message per media of each party). \
         Default: global.",
        |l, v| {
            l.mqtt.scope = Some(
                Scope::parse(v)
                    .ok_or_else(|| invalid("expected global, summary, call or media"))?,
            );
            Ok(())
        },
    ),
];
