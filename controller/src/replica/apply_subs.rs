//! Applying subscription-set responses to a replica's subscription index: a response is checked
//! whole (type, names, digests, units, through `tollgate_proto::subs`) and applied whole or not at
//! all. A set replaces its members: subscriptions the previous version held and this one does not
//! are removed (the set's ids are kept by resource name for that).

use std::collections::{HashMap, HashSet};

use tollgate_policies::authz::subs::{SubscriptionWriter, from_wire};
use tollgate_proto::keys::api_of_set_name;
use tollgate_proto::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;
use tollgate_proto::subs::{self, SubscriptionSet};

use super::apply::{ApplyError, SetProblem};

/// A subscription set held: its version, its API and its subscription ids.
#[derive(Debug)]
struct HeldSet {
    version: String,
    api: String,
    ids: Vec<String>,
}

/// The subscription sets a replica holds, by resource name.
#[derive(Debug, Default)]
pub(super) struct HeldSubSets {
    sets: HashMap<String, HeldSet>,
}

/// One set of a response, checked.
struct Incoming {
    name: String,
    version: String,
    set: SubscriptionSet,
}

// === impl HeldSubSets ===

impl HeldSubSets {
    /// `(name, version)` of every set held, for a reconnect's `initial_resource_versions`.
    pub(super) fn versions(&self) -> HashMap<String, String> {
        self.sets.iter().map(|(k, s)| (k.clone(), s.version.clone())).collect()
    }

    /// Applies a response whole or not at all.
    pub(super) fn apply(
        &mut self,
        response: &DeltaDiscoveryResponse,
        writer: &mut SubscriptionWriter,
    ) -> Result<(), ApplyError> {
        if response.type_url != subs::TYPE_URL {
            return Err(ApplyError::Type(response.type_url.clone()));
        }
        let incoming = response
            .resources
            .iter()
            .map(|r| {
                let set_error = |why: SetProblem| ApplyError::SubSet {
                    api: api_of_set_name(&r.name).to_string(),
                    why,
                };
                let any = r.resource.as_ref().ok_or_else(|| set_error(SetProblem::NoBody))?;
                if any.type_url != subs::TYPE_URL {
                    return Err(set_error(SetProblem::Type(any.type_url.clone())));
                }
                let set = SubscriptionSet::decode_named(&r.name, &any.value)
                    .map_err(|e| set_error(SetProblem::SubCodec(e)))?;
                Ok(Incoming {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    set,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.change(&response.removed_resources, incoming, writer);
        Ok(())
    }

    fn change(&mut self, removed: &[String], incoming: Vec<Incoming>, writer: &mut SubscriptionWriter) {
        for name in removed {
            if let Some(old) = self.sets.remove(name) {
                drop_members(writer, &old, &HashSet::new());
            }
        }
        for Incoming { name, version, set } in incoming {
            let ids: Vec<String> = set.subscriptions.iter().map(|s| s.id.clone()).collect();
            for s in &set.subscriptions {
                let (token, record, grace) = from_wire(&set.api, s);
                match grace {
                    // The replaced token goes in first, then moves aside for the current one.
                    Some((old, until)) => {
                        writer.upsert(Some(old), record);
                        writer.set_token(&s.id, token, Some(until));
                    }
                    None => writer.upsert(token, record),
                }
            }
            let kept: HashSet<String> = ids.iter().cloned().collect();
            let held = HeldSet {
                version,
                api: set.api,
                ids,
            };
            if let Some(old) = self.sets.insert(name, held) {
                drop_members(writer, &old, &kept);
            }
        }
    }
}

/// Removes `old`'s members not in `kept`, while they still belong to its API (a subscription that
/// moved to another API's set, applied first, stays).
fn drop_members(writer: &mut SubscriptionWriter, old: &HeldSet, kept: &HashSet<String>) {
    for id in old.ids.iter().filter(|id| !kept.contains(*id)) {
        if writer.get(id).is_some_and(|r| *r.api == *old.api) {
            writer.remove(id);
        }
    }
}

#[cfg(test)]
mod tests;
