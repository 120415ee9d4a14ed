//! systemd's readiness protocol (`Type=notify`): one datagram to the unix socket `$NOTIFY_SOCKET`
//! names the service's state (`READY=1` once the listener is bound, `STOPPING=1` when a stop begins).
//! Without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent. An abstract socket is written
//! `@name`, as systemd does.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// The variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` to `$NOTIFY_SOCKET` if it is set; `Ok(false)` when it is not. A failure is the
/// caller's to log: the service works without it, systemd then times the start out.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(socket) if !socket.is_empty() => send(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// [`notify`], logging a failure at WARN instead of returning it.
pub fn notify_or_warn(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!(state, error = %e, "cannot notify systemd through $NOTIFY_SOCKET");
    }
}

/// Sends one datagram `state` to the socket named `socket` (a path, or `@name` for an abstract one).
pub fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let datagram = UnixDatagram::unbound()?;
    let name = socket.as_bytes();
    let sent = match name.strip_prefix(b"@") {
        Some(abstract_name) => send_abstract(&datagram, abstract_name, state)?,
        None => datagram.send_to(state.as_bytes(), Path::new(socket))?,
    };
    if sent != state.len() {
        return Err(io::Error::other(format!(
            "sent {sent} of {} bytes to {}",
            state.len(),
            socket.to_string_lossy()
        )));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(datagram: &UnixDatagram, name: &[u8], state: &str) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    datagram.send_to_addr(state.as_bytes(), &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_state_reaches_a_socket_named_by_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        send(path.as_os_str(), "STOPPING=1").unwrap();
        assert_eq!(received(&systemd), "READY=1");
        assert_eq!(received(&systemd), "STOPPING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_state_reaches_an_abstract_socket_named_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("appliance-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        send(OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        assert_eq!(received(&systemd), "READY=1");
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = send(dir.path().join("absent").as_os_str(), "READY=1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
