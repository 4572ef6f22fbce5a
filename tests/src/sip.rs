//! The SIP side of the Kamailio tests: helper processes (Kamailio, SIPp) that die with the
//! test, free ports, and where Debian put the tools.

use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

/// Kills a helper process and everything it forked (Kamailio's children) when the test
/// ends, however it ends: each helper runs in a process group of its own. Its output goes to
/// a log file, for failure messages.
pub struct Guard(Child, PathBuf);

impl Guard {
    /// Start `cmd`, its stdout and stderr into `log`.
    pub fn spawn(mut cmd: Command, what: &str, log: &Path) -> Guard {
        let out =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("log file handle");
        cmd.process_group(0).stdout(out).stderr(err);
        Guard(
            cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}")),
            log.to_path_buf(),
        )
    }

    /// The last lines the process wrote.
    pub fn log_tail(&self) -> String {
        tail(&self.1)
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group led by a child we spawned and still own.
        unsafe { libc::kill(-(self.0.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Start Kamailio on `cfg` in the foreground (its log and pid file in `dir`) and wait until
/// it listens on UDP 127.0.0.1:`sip_port`; panics with its log otherwise.
pub fn start_kamailio(kamailio: &Path, cfg: &Path, dir: &Path, sip_port: u16) -> Guard {
    let mut cmd = Command::new(kamailio);
    cmd.args(["-f", cfg.to_str().unwrap(), "-DD", "-E"])
        .args(["-P", dir.join("k.pid").to_str().unwrap()]);
    let kamailio = Guard::spawn(cmd, "kamailio", &dir.join("kamailio.log"));
    assert!(
        wait_listening(sip_port, std::time::Duration::from_secs(10)),
        "kamailio does not listen on {sip_port}:\n{}",
        kamailio.log_tail()
    );
    kamailio
}

/// The last 40 lines of a log file (empty when it cannot be read).
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Wait (at most `limit`) until something listens on UDP 127.0.0.1:`port`, as Kamailio does
/// once it is up; whether it did.
pub fn wait_listening(port: u16, limit: std::time::Duration) -> bool {
    crate::wait_for(limit, || {
        UdpSocket::bind(("127.0.0.1", port)).is_err().then_some(())
    })
    .is_some()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A base port for SIPp's `-mp` RTP echo: SIPp binds it and the ports just above it (audio
/// RTP/RTCP, video RTP/RTCP), and exits at once if any is taken, so all four must be free.
pub fn free_media_port() -> u16 {
    for _ in 0..200 {
        let base = free_port();
        if base > u16::MAX - 4 {
            continue;
        }
        let held: Vec<_> = (1..4)
            .map_while(|i| UdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == 3 {
            return base;
        }
    }
    panic!("no four consecutive free UDP ports on 127.0.0.1 for SIPp's media");
}

/// The path of a tool from a Debian package, or a panic naming the package to install.
pub fn find_tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found: install the Debian package `{package}` (bash .ci/run does)");
}

/// Kamailio's module directory, wherever the distribution put it.
pub fn kamailio_modules() -> PathBuf {
    let out = Command::new("dpkg")
        .args(["-L", "kamailio"])
        .output()
        .expect("dpkg -L kamailio");
    let listing = String::from_utf8_lossy(&out.stdout);
    let module = listing
        .lines()
        .find(|l| l.ends_with("/modules/tm.so"))
        .expect("kamailio's tm.so in dpkg -L kamailio");
    Path::new(module).parent().unwrap().to_path_buf()
}

/// A SIPp caller: INVITE with a PCMU offer whose media port is `media_port` (a number, or a
/// SIPp field like `[field0]` from an injection file), ACK, hold for `hold_ms`, BYE. SIPp
/// matches replies to calls by the Call-ID it generated, so the Call-ID stays `[call_id]`
/// (shape it with `-cid_str`).
pub fn uac_scenario(media_port: &str, hold_ms: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ngmedia caller">
  <send retrans="500"><![CDATA[
INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:callee@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {media_port} RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
"#
    )
}

/// A Kamailio configuration that proxies INVITEs from `127.0.0.1:sip_port` to the callee at
/// `uas_port` through the stock `rtpengine` module: offer on the INVITE, answer on the reply
/// with SDP, delete on BYE. `rtpengine_params` are the module's `modparam` lines (at least
/// `rtpengine_sock`); `set` selects an engine set in both routes when given.
pub fn kamailio_config(
    sip_port: u16,
    uas_port: u16,
    rtpengine_params: &str,
    set: Option<u32>,
) -> String {
    let flags = "replace-origin replace-session-connection ICE=remove RTP/AVP trust-address";
    let select = set.map_or(String::new(), |n| {
        format!("  set_rtpengine_set(\"{n}\");\n")
    });
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rtpengine.so"
{rtpengine_params}
request_route {{
{select}  if (has_totag()) {{
    loose_route();
    if (is_method("BYE")) {{ rtpengine_delete(); }}
    t_relay();
    exit;
  }}
  if (is_method("INVITE")) {{
    record_route();
    if (!rtpengine_offer("{flags}")) {{ sl_send_reply("503", "offer failed"); exit; }}
    t_on_reply("REPLY");
    $du = "sip:127.0.0.1:{uas_port}";
    t_relay();
    exit;
  }}
  sl_send_reply("405", "Method Not Allowed");
}}
onreply_route[REPLY] {{
{select}  if (has_body("application/sdp")) {{ rtpengine_answer("{flags}"); }}
}}
"#,
        modules = kamailio_modules().display()
    )
}

/// A Kamailio configuration that forks every INVITE from `127.0.0.1:sip_port` in parallel to
/// the callees at `uas_ports`, calling the stock `rtpengine` module once per branch from
/// `branch_route` with `via-branch=auto-next` (one media session per branch, each with the
/// flags of `branch_flags[i]`); a reply with SDP is answered on its own branch, a failure reply
/// deletes only its branch, BYE deletes the call.
pub fn kamailio_fork_config(
    sip_port: u16,
    uas_ports: [u16; 2],
    rtpengine_params: &str,
    branch_flags: [&str; 2],
) -> String {
    let common = "replace-origin replace-session-connection trust-address";
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "corex.so"
loadmodule "rtpengine.so"
{rtpengine_params}
request_route {{
  if (has_totag()) {{
    loose_route();
    if (is_method("BYE")) {{ rtpengine_delete(); }}
    t_relay();
    exit;
  }}
  if (is_method("INVITE")) {{
    record_route();
    t_on_branch("BRANCH");
    t_on_reply("REPLY");
    $ru = "sip:callee1@127.0.0.1:{uas0}";
    append_branch("sip:callee2@127.0.0.1:{uas1}");
    t_relay();
    exit;
  }}
  if (is_method("ACK")) {{ t_relay(); exit; }}
  sl_send_reply("405", "Method Not Allowed");
}}
branch_route[BRANCH] {{
  if ($ru =~ "callee1") {{
    rtpengine_offer("via-branch=auto-next {common} {f0}");
  }} else {{
    rtpengine_offer("via-branch=auto-next {common} {f1}");
  }}
}}
onreply_route[REPLY] {{
  if (has_body("application/sdp")) {{ rtpengine_answer("via-branch=auto-next {common} ICE=remove RTP/AVP"); }}
  if (status =~ "^[3-6][0-9][0-9]$") {{ rtpengine_delete("via-branch=1"); }}
}}
"#,
        uas0 = uas_ports[0],
        uas1 = uas_ports[1],
        f0 = branch_flags[0],
        f1 = branch_flags[1],
        modules = kamailio_modules().display()
    )
}
