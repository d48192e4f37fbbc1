//! The web console (Codis' `codis-fe` page): see a product at a glance and operate it from a
//! browser.
//!
//! The page is plain HTML, CSS and one script, embedded in the binary ([`assets`]): no CDN and
//! no build step. It talks only to the dashboard's REST API, so it can do nothing the API does
//! not allow, with the same secret. Two ways to serve it:
//! - the dashboard serves it beside its API (its `/list` names its one product);
//! - `codis-fe` ([`fe`]) lists every product it finds ([`products`]) and forwards each call
//!   carrying `?forward=<product>` to that product's dashboard.
//!
//! # Modules
//! - [`assets`]: the page and its routes.
//! - [`products`]: which products exist and where their dashboards listen.
//! - [`fe`]: `codis-fe`'s server: the page, `/list`, and the forwarding.
//! - [`hosts`]: which names a browser may call a server by (against DNS rebinding).

pub mod assets;
pub mod fe;
pub mod hosts;
pub mod products;
