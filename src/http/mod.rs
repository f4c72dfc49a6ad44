//! HTTP hygiene around every route: same-origin checks for state changes, UTF-8 and bounded form bodies, security headers with a per-response
//! CSP nonce, error statuses for server functions, and the health probes.

pub mod form_encoding;
pub mod headers;
pub mod health;
pub mod origin;
pub mod server_fn_status;
