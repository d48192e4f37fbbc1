//! What a binary says about the machine it runs on (Codis' models record it), and the address
//! others reach it at.

/// The machine's host name (empty if unknown).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string()
}

/// `uname -a`'s gist: system, host name and release.
pub fn uname() -> String {
    let read =
        |name: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).unwrap_or_default().trim().to_string();
    format!("{} {} {}", read("ostype"), hostname(), read("osrelease")).trim().to_string()
}

/// `addr` as others reach it: a wildcard IP (listening on every interface) becomes the host's
/// name, as Codis announces it.
pub fn announced(addr: std::net::SocketAddr, hostname: &str) -> String {
    if addr.ip().is_unspecified() && !hostname.is_empty() {
        format!("{hostname}:{}", addr.port())
    } else {
        addr.to_string()
    }
}
