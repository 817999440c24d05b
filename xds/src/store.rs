//! The resource store: per gateway group, per type, the current resources and a short log of which
//! names changed, so a stream's work on a change is proportional to the change, not to the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tokio::sync::watch;

use crate::resource::type_version;
use crate::{Resource, TypeKind};

/// How many name changes each type remembers; a stream further behind rescans the type.
const LOG_CAPACITY: usize = 16 * 1024;

/// How many recent publishes each group remembers the time of (for the convergence histogram).
const PUBLISH_TIMES: usize = 64;

/// The group an Envoy joins when its `node.cluster` names no published group.
pub const DEFAULT_GROUP: &str = "default";

/// All gateway groups and their resources.
#[derive(Debug, Default)]
pub struct Store {
    groups: RwLock<HashMap<String, Arc<Group>>>,
    generation: std::sync::atomic::AtomicU64,
}

/// A batch of changes to one group, applied atomically.
#[derive(Debug, Default, Clone)]
pub struct Update {
    upserts: Vec<Arc<Resource>>,
    removals: Vec<(TypeKind, Arc<str>)>,
}

/// One gateway group: the resources every Envoy of the group receives.
#[derive(Debug)]
pub struct Group {
    name: String,
    state: RwLock<GroupState>,
    changed: watch::Sender<u64>,
}

/// The resources of one group.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    pub(crate) types: [TypeTable; TypeKind::COUNT],
    /// Bumped on every change; the value of the group's watch channel.
    pub(crate) seq: u64,
    /// The store generation of the last change.
    pub(crate) generation: u64,
    /// `(generation, when)` of the last publishes that changed something, oldest first.
    published: VecDeque<(u64, std::time::Instant)>,
}

impl GroupState {
    /// When the publish that produced `generation` happened, if it is recent enough to be known.
    pub(crate) fn published_at(&self, generation: u64) -> Option<std::time::Instant> {
        self.published
            .iter()
            .rev()
            .find(|(g, _)| *g == generation)
            .map(|(_, at)| *at)
    }
}

/// The resources of one type within a group.
#[derive(Debug, Default)]
pub(crate) struct TypeTable {
    pub(crate) resources: HashMap<Arc<str>, Arc<Resource>>,
    fingerprint_sum: u64,
    /// `(seq, name)` of recent changes, oldest first.
    log: VecDeque<(u64, Arc<str>)>,
    /// Changes at or below this seq are no longer in the log.
    log_floor: u64,
    /// Seq of the last change to this type.
    pub(crate) seq: u64,
}

/// Which names of a type changed after a given seq.
#[derive(Debug)]
pub(crate) enum Changes<'a> {
    /// Exactly these names (possibly with repeats).
    Names(Vec<&'a Arc<str>>),
    /// The log does not reach back far enough: consider every name.
    Everything,
}

// === impl Update ===

impl Update {
    /// An empty update.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a resource.
    pub fn upsert(&mut self, r: Arc<Resource>) -> &mut Self {
        self.upserts.push(r);
        self
    }

    /// Removes the resource `name` of type `kind`.
    pub fn remove(&mut self, kind: TypeKind, name: impl Into<Arc<str>>) -> &mut Self {
        self.removals.push((kind, name.into()));
        self
    }

    /// Whether the update carries nothing.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

// === impl Store ===

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the group `name`, creating it (empty) if needed.
    pub fn group(&self, name: &str) -> Arc<Group> {
        if let Some(g) = read(&self.groups).get(name) {
            return g.clone();
        }
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        groups
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Group {
                    name: name.to_string(),
                    state: RwLock::default(),
                    changed: watch::channel(0).0,
                })
            })
            .clone()
    }

    /// The group an Envoy with this `node.cluster` joins: the group of that name if one exists,
    /// otherwise the default group.
    pub fn resolve(&self, node_cluster: &str) -> Arc<Group> {
        if let Some(g) = read(&self.groups).get(node_cluster) {
            return g.clone();
        }
        self.group(DEFAULT_GROUP)
    }

    /// The names of the groups that exist.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = read(&self.groups).keys().cloned().collect();
        names.sort();
        names
    }

    /// Applies `update` to group `group` and wakes its streams. Upserts identical to the current
    /// version change nothing. Returns the store generation after the update.
    pub fn publish(&self, group: &str, update: Update) -> u64 {
        let g = self.group(group);
        let mut state = g.state.write().unwrap_or_else(|p| p.into_inner());
        let seq = state.seq + 1;
        let mut changed = false;
        for r in update.upserts {
            changed |= state.types[r.kind().index()].upsert(seq, r);
        }
        for (kind, name) in update.removals {
            changed |= state.types[kind.index()].remove(seq, &name);
        }
        if !changed {
            return self.generation.load(std::sync::atomic::Ordering::SeqCst);
        }
        let generation = self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        state.seq = seq;
        state.generation = generation;
        if state.published.len() == PUBLISH_TIMES {
            state.published.pop_front();
        }
        state.published.push_back((generation, std::time::Instant::now()));
        drop(state);
        g.changed.send_replace(seq);
        generation
    }

    /// The current store generation (bumped by every publish that changed something).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
}

// === impl Group ===

impl Group {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, GroupState> {
        read(&self.state)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The store generation of the group's last change.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// The current resource of type `kind` named `name`.
    pub fn get(&self, kind: TypeKind, name: &str) -> Option<Arc<Resource>> {
        self.read().types[kind.index()].resources.get(name).cloned()
    }

    /// How many resources of type `kind` the group holds.
    pub fn len(&self, kind: TypeKind) -> usize {
        self.read().types[kind.index()].resources.len()
    }

    /// The names of the resources of type `kind`, sorted.
    pub fn names(&self, kind: TypeKind) -> Vec<String> {
        let mut names: Vec<String> = self.read().types[kind.index()]
            .resources
            .keys()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        names
    }

    /// Whether the group holds no resources at all.
    pub fn is_empty(&self) -> bool {
        self.read().types.iter().all(|t| t.resources.is_empty())
    }

    /// The SotW version of type `kind`: a digest of the whole set.
    pub fn type_version(&self, kind: TypeKind) -> String {
        self.read().types[kind.index()].version()
    }
}

// === impl TypeTable ===

impl TypeTable {
    fn upsert(&mut self, seq: u64, r: Arc<Resource>) -> bool {
        if let Some(old) = self.resources.get(r.name()) {
            if old.version() == r.version() {
                return false;
            }
            self.fingerprint_sum = self.fingerprint_sum.wrapping_sub(old.fingerprint());
        }
        self.fingerprint_sum = self.fingerprint_sum.wrapping_add(r.fingerprint());
        self.record(seq, r.name().clone());
        self.resources.insert(r.name().clone(), r);
        true
    }

    fn remove(&mut self, seq: u64, name: &Arc<str>) -> bool {
        match self.resources.remove(name) {
            Some(old) => {
                self.fingerprint_sum = self.fingerprint_sum.wrapping_sub(old.fingerprint());
                self.record(seq, name.clone());
                true
            }
            None => false,
        }
    }

    fn record(&mut self, seq: u64, name: Arc<str>) {
        if self.log.len() == LOG_CAPACITY
            && let Some((old, _)) = self.log.pop_front()
        {
            self.log_floor = old;
        }
        self.log.push_back((seq, name));
        self.seq = seq;
    }

    /// The names changed after `since`.
    pub(crate) fn changes_since(&self, since: u64) -> Changes<'_> {
        if since < self.log_floor {
            return Changes::Everything;
        }
        let start = self.log.partition_point(|(s, _)| *s <= since);
        Changes::Names(self.log.range(start..).map(|(_, n)| n).collect())
    }

    /// The SotW version of the whole set.
    pub(crate) fn version(&self) -> String {
        type_version(self.fingerprint_sum)
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::pb::envoy::config::cluster::v3::Cluster;

    fn cluster(name: &str, timeout_ms: i32) -> Arc<Resource> {
        let c = Cluster {
            name: name.into(),
            connect_timeout: Some(tollgate_proto::pb::google::protobuf::Duration {
                seconds: 0,
                nanos: timeout_ms * 1_000_000,
            }),
            ..Default::default()
        };
        Resource::new(name, &c, vec![]).unwrap()
    }

    #[test]
    fn publish_bumps_generation_only_on_change() {
        let store = Store::new();
        let mut u = Update::new();
        u.upsert(cluster("a", 1));
        let g1 = store.publish("default", u.clone());
        assert_eq!(g1, 1);
        assert_eq!(store.publish("default", u), 1, "identical content is not a change");
        let mut u = Update::new();
        u.remove(TypeKind::Cluster, "missing");
        assert_eq!(store.publish("default", u), 1, "removing nothing is not a change");
        let mut u = Update::new();
        u.remove(TypeKind::Cluster, "a");
        assert_eq!(store.publish("default", u), 2);
        assert!(store.group("default").is_empty());
    }

    #[test]
    fn type_version_depends_on_content_not_history() {
        let (s1, s2) = (Store::new(), Store::new());
        let mut u = Update::new();
        u.upsert(cluster("a", 1)).upsert(cluster("b", 2));
        s1.publish("g", u);
        let mut u = Update::new();
        u.upsert(cluster("b", 2)).upsert(cluster("a", 5));
        s2.publish("g", u);
        let v_other = s2.group("g").type_version(TypeKind::Cluster);
        let mut u = Update::new();
        u.upsert(cluster("a", 1));
        s2.publish("g", u);
        assert_ne!(v_other, s1.group("g").type_version(TypeKind::Cluster));
        assert_eq!(
            s1.group("g").type_version(TypeKind::Cluster),
            s2.group("g").type_version(TypeKind::Cluster)
        );
    }

    #[test]
    fn changes_since_reports_only_new_names() {
        let store = Store::new();
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            let mut u = Update::new();
            u.upsert(cluster(n, i as i32 + 1));
            store.publish("g", u);
        }
        let g = store.group("g");
        let st = g.read();
        match st.types[TypeKind::Cluster.index()].changes_since(1) {
            Changes::Names(n) => assert_eq!(n.iter().map(|n| n.as_ref()).collect::<Vec<_>>(), vec!["b", "c"]),
            Changes::Everything => panic!("log should reach back"),
        }
        assert!(matches!(st.types[TypeKind::Endpoint.index()].changes_since(0), Changes::Names(n) if n.is_empty()));
    }

    #[test]
    fn a_truncated_log_asks_for_a_rescan() {
        let store = Store::new();
        for i in 0..(LOG_CAPACITY + 2) {
            let mut u = Update::new();
            u.upsert(cluster(&format!("c{i}"), 1));
            store.publish("g", u);
        }
        let g = store.group("g");
        let st = g.read();
        assert!(matches!(st.types[0].changes_since(1), Changes::Everything));
        assert!(matches!(st.types[0].changes_since(st.seq - 1), Changes::Names(n) if n.len() == 1));
    }

    #[test]
    fn unknown_clusters_resolve_to_the_default_group() {
        let store = Store::new();
        store.group("blue");
        assert_eq!(store.resolve("blue").name(), "blue");
        assert_eq!(store.resolve("green").name(), DEFAULT_GROUP);
        assert_eq!(store.group_names(), vec!["blue".to_string(), DEFAULT_GROUP.to_string()]);
    }
}
