//! What the gateway group's Envoys did with each API: a write is published, then waited on until
//! every connected Envoy has ACKed it (or one NACKed it, or the wait timed out); an API an Envoy
//! rejects is quarantined, so it never blocks the others.
//!
//! With one shared route configuration, a rejected API makes Envoy refuse the whole change, so the
//! culprit must be taken out for the others to be served. A write through the management API or the
//! platform link knows its culprit (writes are serialised and each waits for its answer) and is
//! refused. A change nobody answered in time (no Envoy connected, or a slow one) is `pending`;
//! when a rejection arrives later, or an Envoy with a stricter runtime connects, the pending APIs
//! (else every API) are the suspects: they are withdrawn (each serves what Envoy last accepted, or
//! nothing), then put back half by half until the rejected ones are found. Those become `failed`
//! with Envoy's message, recorded in the database, and keep serving their last accepted content.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tollgate_translate::Translator;
use tollgate_xds::{Settled, TypeKind};
use tracing::{info, warn};

use super::repo::{ApiEntry, ApiRepo};
use super::{AppError, blocking};
use crate::clock;
use crate::db::ApiFailure;

/// The types a change to an API can touch; the one route configuration waits for the clusters and
/// endpoints it names, so its ACK means the API is served.
pub(super) const KINDS: [TypeKind; 4] = [
    TypeKind::Cluster,
    TypeKind::Endpoint,
    TypeKind::Listener,
    TypeKind::Route,
];

/// What the group's Envoys did with an API's current content.
#[derive(Clone, Debug, Default)]
pub enum Serving {
    /// Accepted by every connected Envoy (or restored at start-up, or nothing asked).
    #[default]
    Current,
    /// Published at `generation`; not every connected Envoy has answered (or none is connected).
    Pending {
        generation: u64,
        /// What Envoy accepted before, served again if this change is rejected.
        fallback: Option<Arc<ApiEntry>>,
    },
    /// An Envoy rejected it (`message`); `fallback` is served instead (`None`: nothing is).
    Failed {
        message: String,
        fallback: Option<Arc<ApiEntry>>,
    },
}

/// The observed state of an API, as the management API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiState {
    Deployed,
    Undeployed,
    Pending,
    Failed,
}

// === impl ApiState ===

impl ApiState {
    /// The REST form (`status.state`, `?status=`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApiState::Deployed => "deployed",
            ApiState::Undeployed => "undeployed",
            ApiState::Pending => "pending",
            ApiState::Failed => "failed",
        }
    }
}

// === impl ApiEntry (serving) ===

impl ApiEntry {
    /// The observed state.
    pub fn state(&self) -> ApiState {
        match (&self.serving, self.api.deployed) {
            (Serving::Failed { .. }, _) => ApiState::Failed,
            (Serving::Pending { .. }, _) => ApiState::Pending,
            (Serving::Current, true) => ApiState::Deployed,
            (Serving::Current, false) => ApiState::Undeployed,
        }
    }

    /// Envoy's message, for a failed API.
    pub fn failure(&self) -> Option<&str> {
        match &self.serving {
            Serving::Failed { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The entry whose content Envoy last accepted (always one in the `Current` state).
    pub(super) fn accepted(self: &Arc<Self>) -> Option<Arc<ApiEntry>> {
        match &self.serving {
            Serving::Current => Some(self.clone()),
            Serving::Pending { fallback, .. } | Serving::Failed { fallback, .. } => fallback.clone(),
        }
    }

    /// What Envoy accepted before this entry's content: in `Current`, nothing older is known, and
    /// the content itself is the suspect.
    fn prior(&self) -> Option<Arc<ApiEntry>> {
        match &self.serving {
            Serving::Current => None,
            Serving::Pending { fallback, .. } | Serving::Failed { fallback, .. } => fallback.clone(),
        }
    }

    /// The content the translator holds for this entry.
    pub(super) fn served(self: &Arc<Self>) -> Option<Arc<ApiEntry>> {
        match &self.serving {
            Serving::Failed { fallback, .. } => fallback.clone(),
            _ => Some(self.clone()),
        }
    }

    /// This entry in another serving state.
    pub(super) fn with_serving(&self, serving: Serving) -> Arc<ApiEntry> {
        Arc::new(ApiEntry {
            row: self.row.clone(),
            api: self.api.clone(),
            serving,
        })
    }
}

// === impl ApiRepo (serving) ===

impl ApiRepo {
    /// Publishes what the translator returned and waits for the group's answer.
    pub(super) async fn publish_and_wait(&self, update: tollgate_xds::Update) -> (u64, Settled) {
        let generation = self.xds.publish(&self.group, update);
        (generation, self.wait(generation).await)
    }

    /// Waits, at most the configured time, for the group's answer to `generation`.
    pub(super) async fn wait(&self, generation: u64) -> Settled {
        self.status
            .wait_settled(&self.group, &KINDS, generation, self.ack_timeout)
            .await
    }

    /// Puts the translator back to `entry` (or to no API `handle`) and publishes it, without waiting.
    pub(super) fn restore(
        &self,
        translator: &mut Translator,
        handle: &str,
        entry: Option<&ApiEntry>,
    ) -> Result<u64, AppError> {
        let update = match entry {
            Some(e) => translator.set_api(&e.api)?,
            None => translator.remove_api(handle)?,
        };
        Ok(self.xds.publish(&self.group, update))
    }

    /// Looks at the pending APIs and at rejections nobody has handled yet: settles what every
    /// Envoy ACKed and quarantines what one rejected. Called whenever an Envoy's status changes.
    pub async fn settle(&self) -> Result<(), AppError> {
        if self.nothing_to_settle() {
            return Ok(());
        }
        let mut translator = self.writer.lock().await;
        let handled = self.handled_nack();
        if let Settled::Rejected {
            generation, message, ..
        } = self.status.settled(&self.group, &KINDS, handled + 1)
        {
            let mut suspects: Vec<Arc<ApiEntry>> = self
                .list()
                .into_iter()
                .filter(|e| matches!(e.serving, Serving::Pending { generation: g, .. } if g <= generation))
                .collect();
            if suspects.is_empty() {
                // Nothing changed since Envoy last agreed (e.g. a stricter Envoy joined): any
                // served API may be the cause.
                suspects = self.list().into_iter().filter(|e| e.api.deployed).collect();
                suspects.retain(|e| matches!(e.serving, Serving::Current));
            }
            let message = self.redact(&message);
            warn!(suspects = suspects.len(), %message, "an Envoy rejected a change; isolating the cause");
            self.isolate(&mut translator, suspects).await?;
            self.set_handled_nack(self.xds.generation());
        }
        for e in self.list() {
            if let Serving::Pending { generation, .. } = e.serving
                && self.status.settled(&self.group, &KINDS, generation) == Settled::Accepted
            {
                self.put_entry(e.with_serving(Serving::Current));
                info!(handle = %e.row.handle, generation, "pending API now served");
            }
        }
        Ok(())
    }

    /// Replaces (or adds) an entry, keeping the set of pending ones in step.
    pub(super) fn put_entry(&self, entry: Arc<ApiEntry>) {
        let handle = entry.row.handle.clone();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(entry.serving, Serving::Pending { .. }) {
                pending.insert(handle.clone());
            } else {
                pending.remove(&handle);
            }
        }
        self.write().insert(handle, entry);
    }

    pub(super) fn remove_entry(&self, handle: &str) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(handle);
        self.write().remove(handle);
    }

    /// Whether [`ApiRepo::settle`] has nothing to do: no pending API and no new rejection.
    pub(super) fn nothing_to_settle(&self) -> bool {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            && !matches!(
                self.status.settled(&self.group, &KINDS, self.handled_nack() + 1),
                Settled::Rejected { .. }
            )
    }

    pub(super) fn handled_nack(&self) -> u64 {
        self.handled_nack.load(Ordering::SeqCst)
    }

    pub(super) fn set_handled_nack(&self, generation: u64) {
        self.handled_nack.fetch_max(generation, Ordering::SeqCst);
    }

    /// Finds which of `suspects` an Envoy rejects: withdraws them all, then puts them back half
    /// by half. The rejected ones become failed; the others are served.
    async fn isolate(&self, translator: &mut Translator, suspects: Vec<Arc<ApiEntry>>) -> Result<(), AppError> {
        for e in &suspects {
            self.restore(translator, &e.row.handle, e.prior().as_deref())?;
        }
        let base = self.wait(self.xds.generation()).await;
        if base != Settled::Accepted {
            // Not caused by these APIs (or nobody answers): serve them as before, try again later.
            warn!(answer = ?base, "withdrawing the suspects did not help; leaving them as they are");
            for e in &suspects {
                self.restore(translator, &e.row.handle, e.served().as_deref())?;
            }
            return Ok(());
        }
        let mut queue = vec![suspects];
        while let Some(set) = queue.pop() {
            // One publication per API (each update is relative to the one before), one wait.
            for e in &set {
                self.xds.publish(&self.group, translator.set_api(&e.api)?);
            }
            match self.wait(self.xds.generation()).await {
                Settled::Accepted => {
                    for e in set {
                        self.put_entry(e.with_serving(Serving::Current));
                    }
                }
                Settled::Rejected { message, .. } => {
                    for e in &set {
                        self.restore(translator, &e.row.handle, e.prior().as_deref())?;
                    }
                    if let [one] = set.as_slice() {
                        self.quarantine(one, message).await?;
                    } else {
                        let (a, b) = set.split_at(set.len() / 2);
                        queue.push(b.to_vec());
                        queue.push(a.to_vec());
                    }
                }
                // Nobody answers any more: these (and the rest) stay as published, pending.
                Settled::Behind(_) | Settled::Unobserved => {
                    for e in queue.into_iter().flatten() {
                        translator.set_api(&e.api)?;
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Marks `e` failed with Envoy's `message`, in memory and in the database; what Envoy accepted
    /// before stays served.
    async fn quarantine(&self, e: &Arc<ApiEntry>, message: String) -> Result<(), AppError> {
        let fallback = e.prior();
        let message = self.redact(&message);
        warn!(handle = %e.row.handle, %message, "API rejected by Envoy; quarantined");
        let failure = ApiFailure {
            message: message.clone(),
            served_document: fallback
                .as_ref()
                .filter(|f| f.api.deployed)
                .map(|f| f.row.document.clone()),
            failed_at: clock::rfc3339_now(),
        };
        let (db, handle) = (self.db.clone(), e.row.handle.clone());
        blocking(move || db.set_api_failure(&handle, Some(&failure))).await??;
        self.put_entry(e.with_serving(Serving::Failed { message, fallback }));
        Ok(())
    }
}
