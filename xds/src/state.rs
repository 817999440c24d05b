//! Per-stream protocol state, shared by SotW and delta: subscriptions, what Envoy holds, what is in
//! flight, what it rejected, and which changes wait for make-before-break.
//!
//! The rules (see `reference/xds-protocol-and-anchors.md` §2):
//! - one response in flight per type; the next waits for the ACK or NACK;
//! - a NACK is detected by `error_detail`; the rejected version of a resource is never resent;
//! - a resource whose dependencies (a route's cluster and endpoints) Envoy does not hold yet is
//!   held back; a removal waits until nothing Envoy holds refers to it;
//! - newly subscribed names are sent even when unchanged; every cluster sent is followed by its
//!   endpoints, since Envoy re-warms it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use tollgate_proto::wire::{DeltaResponse, SotwResponse};

mod respond;

use crate::store::GroupState;
use crate::{Dep, Resource, TypeKind};

/// The two protocol flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavour {
    /// State of the world.
    Sotw,
    /// Incremental.
    Delta,
}

/// A response ready to go on the wire.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Sotw(SotwResponse),
    Delta(DeltaResponse),
}

/// The last rejection Envoy reported for a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// The version (SotW type version, or the rejected resource versions joined by commas) refused.
    pub version: String,
    /// Envoy's error text.
    pub message: String,
    /// The store generation the rejected response was built from: the rejection is about a
    /// change published at or before it.
    pub generation: u64,
    /// When it arrived.
    pub at: SystemTime,
}

/// What a caller can see about one type on one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeReport {
    /// Whether Envoy asked for this type on this stream.
    pub active: bool,
    /// The type version of the set Envoy last ACKed.
    pub acked_version: String,
    /// The store generation Envoy is known to be fully up to date with for this type.
    pub acked_generation: u64,
    /// Whether something is in flight, held back, or not yet looked at.
    pub pending: bool,
    /// The last NACK, if any.
    pub last_nack: Option<Nack>,
    /// Responses sent on this stream for this type.
    pub responses: u64,
    /// Resources sent (upserts) on this stream for this type.
    pub resources_sent: u64,
    /// Encoded response bytes sent on this stream for this type.
    pub bytes_sent: u64,
    /// How many resources Envoy holds (ACKed).
    pub held: usize,
}

#[derive(Debug)]
struct Inflight {
    nonce: String,
    upserts: Vec<Arc<Resource>>,
    removals: Vec<Arc<str>>,
    version: String,
    generation: u64,
    /// Nothing was held back when this response was built.
    complete: bool,
}

#[derive(Debug, Default)]
struct TypeState {
    active: bool,
    wildcard: bool,
    names: HashSet<Arc<str>>,
    /// What Envoy holds, as far as it told us.
    acked: HashMap<Arc<str>, Arc<Resource>>,
    acked_sum: u64,
    inflight: Option<Inflight>,
    /// Rejected versions, never resent.
    nacked: HashMap<Arc<str>, Arc<str>>,
    /// Names to look at again whatever the change log says.
    pending: HashSet<Arc<str>>,
    /// Names to send even if Envoy is thought to hold them.
    force: HashSet<Arc<str>>,
    /// The first request of a wildcard subscription is answered even when empty.
    owe_answer: bool,
    seen_seq: u64,
    report: TypeReport,
}

/// The protocol state of one stream.
#[derive(Debug)]
pub(crate) struct StreamState {
    flavour: Flavour,
    /// ADS streams order types and hold dependants back; per-type streams cannot.
    ordered: bool,
    types: [TypeState; TypeKind::COUNT],
    /// How many resources Envoy holds or is being sent refer to each dependency.
    refs: HashMap<Dep, u32>,
    next_nonce: u64,
}

// === impl StreamState ===

impl StreamState {
    pub(crate) fn new(flavour: Flavour, ordered: bool) -> Self {
        StreamState {
            flavour,
            ordered,
            types: Default::default(),
            refs: HashMap::new(),
            next_nonce: 0,
        }
    }

    /// A SotW request: a subscription (re)statement, possibly an ACK or NACK.
    pub(crate) fn on_sotw_request(
        &mut self,
        kind: TypeKind,
        names: Vec<String>,
        version_info: &str,
        nonce: &str,
        error: Option<String>,
        group: &GroupState,
    ) {
        self.settle(kind, nonce, error);
        let ts = &mut self.types[kind.index()];
        if !ts.active {
            ts.active = true;
            ts.wildcard = names.is_empty() || names.iter().any(|n| n == "*");
            ts.owe_answer = ts.wildcard;
            ts.names = names.into_iter().filter(|n| n != "*").map(Arc::from).collect();
            ts.force.extend(ts.names.iter().cloned());
            ts.pending.extend(ts.names.iter().cloned());
            let table = &group.types[kind.index()];
            // A reconnecting wildcard client that reports the current type version holds it all.
            if ts.wildcard && !version_info.is_empty() && version_info == table.version() {
                for r in table.resources.values() {
                    ts.acked_sum = ts.acked_sum.wrapping_add(r.fingerprint());
                    ts.acked.insert(r.name().clone(), r.clone());
                }
                ts.owe_answer = false;
                ts.report.acked_version = version_info.to_string();
                ts.report.acked_generation = group.generation;
                for r in table.resources.values() {
                    for d in r.deps() {
                        *self.refs.entry(d.clone()).or_default() += 1;
                    }
                }
            }
            return;
        }
        // An empty list keeps a legacy wildcard subscription; any name ends it.
        if names.is_empty() && ts.wildcard && ts.names.is_empty() {
            return;
        }
        let wildcard = names.iter().any(|n| n == "*");
        let new: HashSet<Arc<str>> = names.into_iter().filter(|n| n != "*").map(Arc::from).collect();
        let added: Vec<Arc<str>> = new.iter().filter(|n| !ts.names.contains(*n)).cloned().collect();
        let dropped: Vec<Arc<str>> = ts.names.iter().filter(|n| !new.contains(*n)).cloned().collect();
        ts.wildcard = wildcard;
        ts.names = new;
        for n in added {
            ts.force.insert(n.clone());
            ts.pending.insert(n);
        }
        if !ts.wildcard {
            for n in dropped {
                self.forget(kind, &n);
            }
        }
    }

    /// A delta request: subscription changes (honoured whatever the nonce), possibly an ACK or NACK.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_delta_request(
        &mut self,
        kind: TypeKind,
        subscribe: Vec<String>,
        unsubscribe: Vec<String>,
        initial: HashMap<String, String>,
        nonce: &str,
        error: Option<String>,
        group: &GroupState,
    ) {
        self.settle(kind, nonce, error);
        let ts = &mut self.types[kind.index()];
        let mut first_with_versions: HashSet<Arc<str>> = HashSet::new();
        if !ts.active {
            ts.active = true;
            ts.wildcard = subscribe.is_empty();
            let table = &group.types[kind.index()];
            for (name, version) in initial {
                let name: Arc<str> = Arc::from(name);
                let held = match table.resources.get(&name) {
                    Some(r) if r.version().as_ref() == version => r.clone(),
                    _ => Resource::placeholder(kind, name.clone(), &version),
                };
                for d in held.deps() {
                    *self.refs.entry(d.clone()).or_default() += 1;
                }
                ts.acked_sum = ts.acked_sum.wrapping_add(held.fingerprint());
                ts.acked.insert(name.clone(), held);
                first_with_versions.insert(name.clone());
                ts.pending.insert(name);
            }
        }
        for name in subscribe {
            if name == "*" {
                ts.wildcard = true;
                continue;
            }
            let name: Arc<str> = Arc::from(name);
            ts.names.insert(name.clone());
            // A name listed in initial_resource_versions is held by the client: no forced resend.
            if !first_with_versions.contains(&name) {
                ts.force.insert(name.clone());
            }
            ts.pending.insert(name);
        }
        ts.owe_answer |= ts.wildcard && ts.acked.is_empty() && ts.report.responses == 0;
        let mut forget = Vec::new();
        for name in unsubscribe {
            let ts = &mut self.types[kind.index()];
            if name == "*" {
                ts.wildcard = false;
                forget.extend(ts.acked.keys().filter(|n| !ts.names.contains(*n)).cloned());
                continue;
            }
            let name: Arc<str> = Arc::from(name);
            ts.names.remove(&name);
            if ts.wildcard {
                // Still covered by the wildcard: Envoy expects the resource's current state.
                ts.force.insert(name.clone());
                ts.pending.insert(name);
            } else {
                forget.push(name);
            }
        }
        for n in forget {
            self.forget(kind, &n);
        }
    }

    /// Builds the next response for `kind`, if one is due and none is in flight.
    pub(crate) fn next_response(&mut self, kind: TypeKind, group: &GroupState) -> Option<Outgoing> {
        let ts = &self.types[kind.index()];
        if !ts.active || ts.inflight.is_some() {
            return None;
        }
        let plan = self.plan(kind, group);
        let ts = &mut self.types[kind.index()];
        ts.seen_seq = group.types[kind.index()].seq;
        ts.pending.extend(plan.held_back.iter().cloned());
        let full = self.flavour == Flavour::Sotw && kind.full_state();
        let owe = ts.owe_answer;
        if plan.upserts.is_empty() && plan.removals.is_empty() && !owe {
            if plan.held_back.is_empty() && ts.nacked.is_empty() {
                // Nothing to send and nothing rejected: Envoy is up to date with this generation.
                ts.report.acked_generation = group.generation;
            }
            return None;
        }
        if self.flavour == Flavour::Sotw && !full && plan.upserts.is_empty() {
            // SotW cannot remove RDS/EDS resources; they go when nothing refers to them.
            for n in &plan.removals {
                self.forget(kind, n);
            }
            if !owe {
                if plan.held_back.is_empty() && self.types[kind.index()].nacked.is_empty() {
                    self.types[kind.index()].report.acked_generation = group.generation;
                }
                return None;
            }
        }
        Some(self.emit(kind, plan, group.generation))
    }

    /// Whether anything is waiting to be sent or acknowledged on this stream.
    pub(crate) fn report(&self, kind: TypeKind, group: &GroupState) -> TypeReport {
        let ts = &self.types[kind.index()];
        let mut r = ts.report.clone();
        r.active = ts.active;
        r.pending = ts.active
            && (ts.inflight.is_some() || !ts.pending.is_empty() || ts.seen_seq < group.types[kind.index()].seq);
        r.held = ts.acked.len();
        r
    }

    /// How many names the stream subscribed to for `kind` (a wildcard counts none).
    pub(crate) fn names(&self, kind: TypeKind) -> usize {
        self.types[kind.index()].names.len()
    }

    // --- internals ---

    /// Applies an ACK or NACK of the response with `nonce`, if it is the one in flight.
    fn settle(&mut self, kind: TypeKind, nonce: &str, error: Option<String>) {
        let ts = &mut self.types[kind.index()];
        let Some(inflight) = ts.inflight.take_if(|f| f.nonce == nonce) else {
            return;
        };
        match error {
            None => self.ack(kind, inflight),
            Some(message) => self.nack(kind, inflight, message),
        }
    }

    fn ack(&mut self, kind: TypeKind, f: Inflight) {
        for r in &f.upserts {
            let ts = &mut self.types[kind.index()];
            // Unsubscribed while in flight: Envoy dropped it, whatever the ACK says.
            if !ts.wildcard && !ts.names.contains(r.name()) {
                self.unref(r);
                continue;
            }
            ts.nacked.remove(r.name());
            ts.acked_sum = ts.acked_sum.wrapping_add(r.fingerprint());
            if let Some(old) = ts.acked.insert(r.name().clone(), r.clone()) {
                ts.acked_sum = ts.acked_sum.wrapping_sub(old.fingerprint());
                self.unref(&old);
            }
        }
        for n in &f.removals {
            self.forget(kind, n);
        }
        let ts = &mut self.types[kind.index()];
        ts.report.acked_version = f.version;
        if f.complete {
            ts.report.acked_generation = ts.report.acked_generation.max(f.generation);
        }
    }

    fn nack(&mut self, kind: TypeKind, f: Inflight, message: String) {
        // Blame the resources Envoy names; if it names none, blame them all. The others are
        // looked at again (Envoy may or may not have applied them).
        let named: Vec<bool> = f.upserts.iter().map(|r| message.contains(r.name().as_ref())).collect();
        let blame_all = !named.contains(&true);
        let mut rejected = Vec::new();
        for (r, named) in f.upserts.iter().zip(named) {
            self.unref(r);
            let ts = &mut self.types[kind.index()];
            if blame_all || named {
                ts.nacked.insert(r.name().clone(), r.version().clone());
                rejected.push(r.version().to_string());
            } else {
                ts.pending.insert(r.name().clone());
            }
        }
        let ts = &mut self.types[kind.index()];
        ts.pending.extend(f.removals.iter().cloned());
        let version = if self.flavour == Flavour::Sotw {
            f.version
        } else {
            rejected.join(",")
        };
        ts.report.last_nack = Some(Nack {
            version,
            message,
            generation: f.generation,
            at: SystemTime::now(),
        });
    }

    /// Envoy no longer holds `name` (it was removed or unsubscribed).
    fn forget(&mut self, kind: TypeKind, name: &Arc<str>) {
        let ts = &mut self.types[kind.index()];
        if let Some(old) = ts.acked.remove(name) {
            ts.acked_sum = ts.acked_sum.wrapping_sub(old.fingerprint());
            self.unref(&old);
        }
    }

    fn unref(&mut self, r: &Resource) {
        for d in r.deps() {
            if let Some(n) = self.refs.get_mut(d) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.refs.remove(d);
                }
            }
        }
    }

    /// Envoy holds `dep`: it ACKed it and is not about to lose it.
    fn holds(&self, dep: &Dep) -> bool {
        self.types[dep.kind.index()].acked.contains_key(&dep.name)
    }
}

#[cfg(test)]
mod tests;
