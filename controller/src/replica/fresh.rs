//! How fresh a replica's keys are. A replica cut off from the controller would otherwise accept a
//! revoked key for as long as the partition lasts; past the configured maximum staleness it
//! answers every check with `UNAVAILABLE` instead, which Envoy turns into a refusal (ext_authz
//! fails closed), until a new session brings it up to date.
//!
//! The clock starts when the replica notices the loss: HTTP/2 keepalive on the session notices a
//! silent partition within [`KEEPALIVE_INTERVAL`] plus [`KEEPALIVE_TIMEOUT`].

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing::warn;

/// How often the session pings the controller.
pub(super) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the session is given up.
pub(super) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The replica's contact with the controller.
#[derive(Debug)]
pub(super) struct Freshness {
    /// `None`: serve what it holds however old (the `0` setting).
    max: Option<Duration>,
    contact: Mutex<Contact>,
}

#[derive(Clone, Copy, Debug)]
enum Contact {
    /// No session has brought anything yet (the index is empty, so every check is refused anyway).
    Never,
    /// A session is up and has answered.
    Live,
    /// The last session ended at this instant.
    Lost(Instant),
}

/// Ends checks with `UNAVAILABLE` while the keys are stale.
#[derive(Clone, Debug)]
pub(super) struct StaleGate(pub(super) std::sync::Arc<Freshness>);

// === impl Freshness ===

impl Freshness {
    pub(super) fn new(max: Option<Duration>) -> Self {
        Freshness {
            max,
            contact: Mutex::new(Contact::Never),
        }
    }

    /// A session answered: what the replica holds is current.
    pub(super) fn live(&self) {
        *self.lock() = Contact::Live;
    }

    /// A session ended; the clock starts unless it is already running (failed reconnects do not
    /// reset it).
    pub(super) fn lost(&self) {
        let mut c = self.lock();
        if matches!(*c, Contact::Live) {
            *c = Contact::Lost(Instant::now());
        }
    }

    /// Whether the keys held are older than the maximum staleness.
    pub(super) fn stale(&self) -> bool {
        match (*self.lock(), self.max) {
            (Contact::Lost(at), Some(max)) => at.elapsed() > max,
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Contact> {
        self.contact.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// === impl StaleGate ===

impl Interceptor for StaleGate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.0.stale() {
            warn!("check refused: no contact with the controller for longer than the maximum staleness");
            return Err(Status::unavailable(
                "the replica has lost contact with the controller for too long",
            ));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(300);

    #[tokio::test(start_paused = true)]
    async fn stale_only_past_the_maximum_after_a_loss_and_fresh_again_on_contact() {
        let f = Freshness::new(Some(MAX));
        assert!(!f.stale(), "before any session the empty index refuses by itself");
        f.lost();
        tokio::time::advance(MAX * 2).await;
        assert!(!f.stale(), "never live: nothing held to go stale");
        f.live();
        tokio::time::advance(MAX * 2).await;
        assert!(!f.stale(), "a live session is fresh however quiet");
        f.lost();
        tokio::time::advance(MAX - Duration::from_secs(1)).await;
        assert!(!f.stale());
        // A failed reconnect does not restart the clock.
        f.lost();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(f.stale());
        let mut gate = StaleGate(std::sync::Arc::new(Freshness::new(Some(Duration::ZERO))));
        gate.0.live();
        gate.0.lost();
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            gate.call(Request::new(())).unwrap_err().code(),
            tonic::Code::Unavailable
        );
        f.live();
        assert!(!f.stale());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_forever() {
        let f = Freshness::new(None);
        f.live();
        f.lost();
        tokio::time::advance(Duration::from_secs(86_400 * 365)).await;
        assert!(!f.stale());
    }
}
