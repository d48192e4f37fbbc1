//! The page, embedded at build time, and the routes that serve it.
//!
//! The script is a handful of ES modules (`app.js` imports the others), served as they are: no
//! bundler, nothing fetched from elsewhere. Every answer carries a content security policy that
//! allows only this server's own scripts and forbids framing the page (its buttons act on the
//! cluster).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The policy: this server's scripts, styles (inline `style` attributes colour the slot map) and
/// images only, no framing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// Each file of the page: its name under `assets/`, content type and text.
macro_rules! embedded {
    ($($name:literal => $content_type:expr),* $(,)?) => {
        /// The page's files: name under `assets/`, content type, text.
        pub const FILES: &[(&str, &str, &str)] =
            &[$(($name, $content_type, include_str!(concat!("../assets/", $name)))),*];
    };
}

embedded! {
    "index.html" => HTML,
    "style.css" => CSS,
    "app.js" => JS,
    "api.js" => JS,
    "chart.js" => JS,
    "groups.js" => JS,
    "overview.js" => JS,
    "proxies.js" => JS,
    "sha256.js" => JS,
    "slots.js" => JS,
    "ui.js" => JS,
}

/// One file, with the security headers and no caching (a browser picks up a new binary's page
/// on reload); 404 for a name not embedded.
fn file(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// `/` (and `/index.html`) and `/assets/…`: the page, for any server to merge into its routes.
pub fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/index.html", get(|| async { file("index.html") }))
        .route("/assets/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module a script imports is embedded (a file added to `assets/` but not to
    /// [`FILES`] would load nowhere but on the author's machine).
    #[test]
    fn every_imported_module_is_served() {
        for (name, _, text) in FILES.iter().filter(|(name, _, _)| name.ends_with(".js")) {
            // `import … from './x.js'`, possibly over several lines.
            for line in text.lines().filter(|line| line.contains(" from '") && !line.trim_start().starts_with("//")) {
                let Some(module) = line.split(" from '").nth(1).and_then(|rest| rest.split('\'').next()) else {
                    continue;
                };
                let module = module.trim_start_matches("./");
                assert!(FILES.iter().any(|(file, _, _)| *file == module), "{name} imports {module}, not embedded");
            }
        }
        let html = FILES[0].2;
        assert!(html.contains("assets/app.js") && html.contains("assets/style.css"));
    }
}
