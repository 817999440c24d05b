//! The log filter every command installs: `RUST_LOG` when set and valid, else the configured
//! level, and in either case capped for the few library targets that print secrets at `trace`.

use tracing_subscriber::EnvFilter;

/// Targets held below `trace` whatever the filter says, because their trace output carries a
/// secret: tungstenite's client handshake logs the whole upgrade request, with the control-plane
/// token in its `api-key` header (marking the header sensitive does not help: it logs raw bytes).
const CAPPED: &[&str] = &["tungstenite::handshake::client=debug"];

/// `RUST_LOG` when set and valid, else `default`, then [`capped`].
pub fn log_filter(default: &str) -> EnvFilter {
    capped(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
}

/// `filter` with the [`CAPPED`] directives added last, so they win over a broader `trace`.
pub fn capped(filter: EnvFilter) -> EnvFilter {
    CAPPED.iter().fold(filter, |f, d| match d.parse() {
        Ok(directive) => f.add_directive(directive),
        Err(_) => f,
    })
}
