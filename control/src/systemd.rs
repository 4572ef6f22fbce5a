//! The service manager's readiness protocol (`sd_notify`): under a `Type=notify` unit systemd
//! passes a datagram socket in `NOTIFY_SOCKET`, and the daemon reports `READY=1` once ng
//! answers, `RELOADING=1` around a SIGHUP reload and `STOPPING=1` when it winds down. Outside
//! systemd the variable is absent and every call does nothing.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tracing::warn;

const SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// Send one state report (newline-separated `KEY=value` lines) to the service manager.
/// Failures are logged, never fatal: a supervisor that does not listen must not stop media.
pub(crate) fn notify(state: &str) {
    let Some(path) = std::env::var_os(SOCKET_VAR) else {
        return;
    };
    if let Err(e) = send(path.as_encoded_bytes(), state) {
        warn!(error = %e, "cannot report {state:?} to the service manager");
    }
}

fn send(path: &[u8], state: &str) -> io::Result<()> {
    // A leading '@' names a socket in the abstract namespace (its first byte is NUL).
    let addr = match path.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(OsStr::from_bytes(path))?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}
