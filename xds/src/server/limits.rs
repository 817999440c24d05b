//! Bounds on what an unauthenticated xDS client can make the server hold: message size, open
//! streams (per connection and in all), time to the first message, resource names per stream, and
//! the NACK text kept for callers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Status;

/// Envoy's error text kept per NACK, in bytes: enough for the reasons of several resources.
pub(crate) const MAX_NACK_TEXT: usize = 4 * 1024;

/// How much one client may make the server hold. The defaults fit a large fleet of Envoys and
/// replicas with room to spare; [`crate::XdsServer::with_limits`] changes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request decoded, in bytes; a larger one ends its stream with `OUT_OF_RANGE`.
    pub max_message_bytes: usize,
    /// Streams open at once on one connection; one more is refused with `RESOURCE_EXHAUSTED`.
    pub max_streams_per_connection: usize,
    /// Streams open at once on the whole server; one more is refused with `RESOURCE_EXHAUSTED`.
    pub max_streams: usize,
    /// How long a new stream may take to send its first request before it is ended with
    /// `DEADLINE_EXCEEDED`.
    pub first_message_timeout: Duration,
    /// Resource names one request may carry (subscriptions, unsubscriptions and
    /// `initial_resource_versions` together), and names one stream may hold per type; past it the
    /// stream ends with `INVALID_ARGUMENT`.
    pub max_resource_names: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_streams_per_connection: 16,
            max_streams: 4096,
            first_message_timeout: Duration::from_secs(5),
            max_resource_names: 100_000,
        }
    }
}

/// The streams open now, in all and per peer (a peer address is one TCP connection).
#[derive(Debug, Default)]
pub(crate) struct OpenStreams {
    inner: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_peer: HashMap<SocketAddr, usize>,
}

/// One admitted stream: gives its place back when dropped (when the stream task ends).
#[derive(Debug)]
pub(crate) struct Slot {
    open: Arc<OpenStreams>,
    peer: Option<SocketAddr>,
}

// === impl OpenStreams ===

impl OpenStreams {
    /// Admits one more stream from `peer`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, peer: Option<SocketAddr>, limits: &Limits) -> Result<Slot, Status> {
        let mut open = self.lock();
        if open.total >= limits.max_streams {
            return Err(Status::resource_exhausted("too many xDS streams on this server"));
        }
        if let Some(p) = peer {
            let n = open.per_peer.entry(p).or_default();
            if *n >= limits.max_streams_per_connection {
                return Err(Status::resource_exhausted("too many xDS streams on this connection"));
            }
            *n += 1;
        }
        open.total += 1;
        Ok(Slot {
            open: self.clone(),
            peer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(p) = self.peer
            && let Some(n) = open.per_peer.get_mut(&p)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_peer.remove(&p);
            }
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncated("abc".into(), 3), "abc");
        assert_eq!(truncated("abcd".into(), 3), "abc");
        // "é" is two bytes: cutting inside it drops it whole.
        assert_eq!(truncated("aé".into(), 2), "a");
        assert_eq!(truncated("€€".into(), 5), "€");
    }

    #[test]
    fn slots_are_counted_per_peer_and_in_all_and_given_back() {
        let limits = Limits {
            max_streams_per_connection: 2,
            max_streams: 3,
            ..Limits::default()
        };
        let open = Arc::new(OpenStreams::default());
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let a1 = open.admit(Some(a), &limits).unwrap();
        let _a2 = open.admit(Some(a), &limits).unwrap();
        let refused = open.admit(Some(a), &limits).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        let _b1 = open.admit(Some(b), &limits).unwrap();
        assert!(open.admit(Some(b), &limits).is_err(), "the server is full");
        drop(a1);
        assert!(open.admit(Some(a), &limits).is_ok());
    }
}
