//! The secrets in REST paths (`/api/proxy/…/<xauth>`, `/api/topom/…/<xauth>`), computed the
//! same way by whoever calls and whoever checks.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// SHA-256 of `text` in hex, cut to 32 digits as Codis cuts its tokens and secrets.
pub fn sha256_hex32(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex.truncate(32);
    hex
}

/// The secret of the proxy with `token` (Codis' formula): what the dashboard, which knows the
/// product's password, puts in `/api/proxy/…` paths.
pub fn proxy_xauth(product: &str, product_auth: &str, token: &str) -> String {
    sha256_hex32(&format!("Codis-XAuth-{product}-{product_auth}-{token}"))
}

/// The secret of the dashboard of `product` (its `/api/topom/…` paths take it). Unlike Codis'
/// (a hash of the product name alone, which anyone can compute), it covers the product's
/// password.
pub fn dashboard_xauth(product: &str, product_auth: &str) -> String {
    sha256_hex32(&format!("Codis-XAuth-{product}-{product_auth}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_depend_on_the_password() {
        assert_eq!(dashboard_xauth("demo", "").len(), 32);
        assert_ne!(dashboard_xauth("demo", ""), dashboard_xauth("demo", "secret"));
        assert_ne!(proxy_xauth("demo", "secret", "a"), proxy_xauth("demo", "secret", "b"));
    }
}
