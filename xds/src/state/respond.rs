//! Building a stream's next response of one type: which names changed, which of them Envoy may
//! have now (make-before-break), and the response that carries them.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tollgate_proto::wire::{DeltaResponse, SotwResponse};

use super::{Flavour, Inflight, Outgoing, StreamState};
use crate::resource::type_version;
use crate::store::{Changes, GroupState};
use crate::{Dep, Resource, TypeKind};

/// How the planner classified the candidate names of one type.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) upserts: Vec<Arc<Resource>>,
    pub(super) removals: Vec<Arc<str>>,
    pub(super) held_back: Vec<Arc<str>>,
}

// === impl StreamState ===

impl StreamState {
    fn candidates(&self, kind: TypeKind, group: &GroupState) -> HashSet<Arc<str>> {
        let ts = &self.types[kind.index()];
        let table = &group.types[kind.index()];
        let mut out: HashSet<Arc<str>> = ts.pending.iter().cloned().collect();
        match table.changes_since(ts.seen_seq) {
            Changes::Names(names) => out.extend(names.into_iter().cloned()),
            Changes::Everything => {
                out.extend(table.resources.keys().cloned());
                out.extend(ts.acked.keys().cloned());
                out.extend(ts.names.iter().cloned());
            }
        }
        out
    }

    pub(super) fn plan(&mut self, kind: TypeKind, group: &GroupState) -> Plan {
        let candidates = self.candidates(kind, group);
        let table = &group.types[kind.index()];
        let mut plan = Plan::default();
        let ts = &self.types[kind.index()];
        for name in candidates {
            let covered = ts.wildcard || ts.names.contains(&name);
            let current = table.resources.get(&name).filter(|_| covered);
            let held = ts.acked.get(&name);
            let forced = ts.force.contains(&name);
            match (current, held) {
                (Some(r), held) => {
                    let unchanged = held.is_some_and(|h| h.version() == r.version());
                    if unchanged && !forced || ts.nacked.get(&name) == Some(r.version()) {
                        continue;
                    }
                    if self.ordered && !r.deps().iter().all(|d| self.holds(d)) {
                        plan.held_back.push(name);
                        continue;
                    }
                    plan.upserts.push(r.clone());
                }
                (None, Some(_)) if covered => {
                    let referenced = self.ordered
                        && self.refs.contains_key(&Dep {
                            kind,
                            name: name.clone(),
                        });
                    if referenced {
                        plan.held_back.push(name);
                    } else {
                        plan.removals.push(name);
                    }
                }
                // Subscribed but unknown: delta says so with a removal.
                (None, None) if forced && covered && self.flavour == Flavour::Delta && !ts.wildcard => {
                    plan.removals.push(name);
                }
                _ => {}
            }
        }
        let ts = &mut self.types[kind.index()];
        ts.pending.clear();
        // A rejection stops mattering once the store no longer holds the rejected version (the
        // application reverted or replaced it): otherwise the stream could never again report
        // itself up to date after a revert to what Envoy already holds.
        ts.nacked
            .retain(|name, v| table.resources.get(name).is_some_and(|r| r.version() == v));
        for r in &plan.upserts {
            ts.force.remove(r.name());
        }
        for n in &plan.removals {
            ts.force.remove(n);
        }
        plan.upserts.sort_by(|a, b| a.name().cmp(b.name()));
        plan.removals.sort();
        plan
    }

    pub(super) fn emit(&mut self, kind: TypeKind, plan: Plan, generation: u64) -> Outgoing {
        self.next_nonce += 1;
        let nonce = self.next_nonce.to_string();
        for r in &plan.upserts {
            for d in r.deps() {
                *self.refs.entry(d.clone()).or_default() += 1;
            }
        }
        // Envoy re-warms every cluster it receives and waits for its endpoints: resend them.
        if kind == TypeKind::Cluster {
            let eds = &mut self.types[TypeKind::Endpoint.index()];
            for r in &plan.upserts {
                if eds.active && (eds.wildcard || eds.names.contains(r.name())) {
                    eds.force.insert(r.name().clone());
                    eds.pending.insert(r.name().clone());
                }
            }
        }
        let ts = &mut self.types[kind.index()];
        ts.owe_answer = false;
        let mut sum = ts.acked_sum;
        for r in &plan.upserts {
            sum = sum.wrapping_add(r.fingerprint());
            if let Some(old) = ts.acked.get(r.name()) {
                sum = sum.wrapping_sub(old.fingerprint());
            }
        }
        for n in &plan.removals {
            if let Some(old) = ts.acked.get(n) {
                sum = sum.wrapping_sub(old.fingerprint());
            }
        }
        let version = type_version(sum);
        let out = match self.flavour {
            Flavour::Sotw => {
                let resources: Vec<Bytes> = if kind.full_state() {
                    let upserted: HashSet<&Arc<str>> = plan.upserts.iter().map(|r| r.name()).collect();
                    let removed: HashSet<&Arc<str>> = plan.removals.iter().collect();
                    let mut all: Vec<&Arc<Resource>> = ts
                        .acked
                        .iter()
                        .filter(|(n, _)| !upserted.contains(n) && !removed.contains(n))
                        .map(|(_, r)| r)
                        .chain(plan.upserts.iter())
                        .collect();
                    all.sort_by(|a, b| a.name().cmp(b.name()));
                    all.into_iter().map(|r| r.any().clone()).collect()
                } else {
                    plan.upserts.iter().map(|r| r.any().clone()).collect()
                };
                Outgoing::Sotw(SotwResponse {
                    version_info: version.clone(),
                    resources,
                    type_url: kind.type_url().to_string(),
                    nonce: nonce.clone(),
                })
            }
            Flavour::Delta => Outgoing::Delta(DeltaResponse {
                system_version_info: version.clone(),
                resources: plan.upserts.iter().map(|r| r.delta().clone()).collect(),
                type_url: kind.type_url().to_string(),
                nonce: nonce.clone(),
                removed_resources: plan.removals.iter().map(|n| n.to_string()).collect(),
            }),
        };
        ts.report.responses += 1;
        ts.report.resources_sent += plan.upserts.len() as u64;
        ts.report.bytes_sent += out.encoded_len() as u64;
        let complete = plan.held_back.is_empty();
        ts.inflight = Some(Inflight {
            nonce,
            upserts: plan.upserts,
            removals: plan.removals,
            version,
            generation,
            complete,
        });
        out
    }
}

// === impl Outgoing ===

impl Outgoing {
    pub(crate) fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Outgoing::Sotw(m) => m.encoded_len(),
            Outgoing::Delta(m) => m.encoded_len(),
        }
    }
}
