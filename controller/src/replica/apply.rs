//! Applying key-set responses to a replica's index: a response is checked whole (type, names,
//! digests, through the codec in `tollgate_proto::keys`) and applied whole or not at all.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_policies::authz::index::Digest;
use tollgate_policies::authz::{IndexWriter, KeyRecord};
use tollgate_proto::keys::{self, ApiKeyDigest, ApiKeySet, KeySetError, api_of_set_name};
use tollgate_proto::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;

/// Why a response was refused (and NACKed with this message). Messages name the API, never the
/// shard: a shard is a digest's first byte, and digests (or their prefixes) are never logged.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The response is of another type than key sets.
    #[error("unexpected type {0}")]
    Type(String),
    /// One set in it is not well formed.
    #[error("key set of {api}: {why}")]
    Set {
        /// The API the set's name names.
        api: String,
        why: SetProblem,
    },
    /// One subscription set in it is not well formed.
    #[error("subscription set of {api}: {why}")]
    SubSet {
        /// The API the set's name names.
        api: String,
        why: SetProblem,
    },
}

/// What is wrong with one set.
#[derive(Debug, thiserror::Error)]
pub enum SetProblem {
    /// The resource has no body.
    #[error("no body")]
    NoBody,
    /// The body is of another type.
    #[error("unexpected type {0}")]
    Type(String),
    /// The body or its name breaks the codec's rules.
    #[error(transparent)]
    Codec(#[from] KeySetError),
    /// The subscription set or its name breaks the codec's rules.
    #[error(transparent)]
    SubCodec(#[from] tollgate_proto::subs::SubSetError),
}

/// A key set held: its version, its API and its digests.
#[derive(Debug)]
struct HeldSet {
    version: String,
    api: String,
    digests: Vec<Digest>,
}

/// The key sets a replica holds, by resource name.
#[derive(Debug, Default)]
pub(super) struct HeldSets {
    sets: HashMap<String, HeldSet>,
}

/// One set of a response, checked.
struct Incoming {
    name: String,
    version: String,
    api: String,
    entries: Vec<(Digest, ApiKeyDigest)>,
}

// === impl HeldSets ===

impl HeldSets {
    /// `(name, version)` of every set held, for a reconnect's `initial_resource_versions`.
    pub(super) fn versions(&self) -> HashMap<String, String> {
        self.sets.iter().map(|(k, s)| (k.clone(), s.version.clone())).collect()
    }

    /// Applies a response whole or not at all.
    pub(super) fn apply(
        &mut self,
        response: &DeltaDiscoveryResponse,
        writer: &mut IndexWriter,
    ) -> Result<(), ApplyError> {
        if response.type_url != keys::TYPE_URL {
            return Err(ApplyError::Type(response.type_url.clone()));
        }
        let incoming = response
            .resources
            .iter()
            .map(|r| {
                let set_error = |why: SetProblem| ApplyError::Set {
                    api: api_of_set_name(&r.name).to_string(),
                    why,
                };
                let any = r.resource.as_ref().ok_or_else(|| set_error(SetProblem::NoBody))?;
                if any.type_url != keys::TYPE_URL {
                    return Err(set_error(SetProblem::Type(any.type_url.clone())));
                }
                let (api, entries) =
                    ApiKeySet::decode_named(&r.name, &any.value).map_err(|e| set_error(SetProblem::Codec(e)))?;
                Ok(Incoming {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    api,
                    entries,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.change(&response.removed_resources, incoming, writer);
        Ok(())
    }

    fn change(&mut self, removed: &[String], incoming: Vec<Incoming>, writer: &mut IndexWriter) {
        let mut remove = Vec::new();
        let mut add = Vec::new();
        // A digest is only removed while it still belongs to the set's API (a value freed on one
        // API and reused on another must not be removed by the first API's update arriving later).
        let owned_by = |writer: &IndexWriter, d: &Digest, api: &str| writer.get(d).is_some_and(|k| k.api == api);
        for name in removed {
            if let Some(old) = self.sets.remove(name) {
                remove.extend(old.digests.into_iter().filter(|d| owned_by(writer, d, &old.api)));
            }
        }
        for set in incoming {
            let api: Arc<str> = Arc::from(set.api.as_str());
            let held = HeldSet {
                version: set.version,
                api: set.api,
                digests: set.entries.iter().map(|(d, _)| *d).collect(),
            };
            if let Some(old) = self.sets.insert(set.name, held) {
                remove.extend(old.digests.into_iter().filter(|d| owned_by(writer, d, &old.api)));
            }
            add.extend(set.entries.into_iter().map(|(d, k)| (d, record(api.clone(), &k))));
        }
        writer.change(remove, add);
    }
}

/// The index entry of one key of a set.
fn record(api: Arc<str>, k: &ApiKeyDigest) -> KeyRecord {
    KeyRecord {
        api,
        name: Arc::from(k.name.as_str()),
        application: k.application().map(Arc::from),
        expires_at: k.expiry(),
    }
}

#[cfg(test)]
mod tests;
