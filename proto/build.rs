//! Generates the schema table behind `canonical`: for every protobuf message that can reach a
//! map field or a `google.protobuf.Any`, which of its fields lead there.
//!
//! envoy-types ships the file-descriptor set it was generated from but does not export it, so we
//! read it from the crate's source folder in cargo's registry. Set `TOLLGATE_ENVOY_DESCRIPTORS` to
//! the path of `types.bin` when building from a vendored tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

const ANY: &str = ".google.protobuf.Any";

fn main() {
    println!("cargo:rerun-if-env-changed=TOLLGATE_ENVOY_DESCRIPTORS");
    println!("cargo:rerun-if-changed=build.rs");
    let path = match descriptor_path() {
        Ok(p) => p,
        Err(e) => {
            println!("cargo:error={e}");
            std::process::exit(1);
        }
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let set = FileDescriptorSet::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("decoding descriptors: {e}"));
    let table = Table::new(&set);
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("schema.rs");
    std::fs::write(&out, table.render()).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// Finds envoy-types' `types.bin` for the version pinned in Cargo.lock.
fn descriptor_path() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("TOLLGATE_ENVOY_DESCRIPTORS") {
        return Ok(PathBuf::from(p));
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let lock =
        std::fs::read_to_string(manifest.join("../Cargo.lock")).map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let version = locked_version(&lock, "envoy-types").ok_or("envoy-types is not in Cargo.lock")?;
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map_err(|_| "neither CARGO_HOME nor HOME is set")?;
    let registry = home.join("registry/src");
    let entries = std::fs::read_dir(&registry).map_err(|e| format!("reading {}: {e}", registry.display()))?;
    for entry in entries.flatten() {
        let candidate = entry
            .path()
            .join(format!("envoy-types-{version}/src/generated/types.bin"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "envoy-types {version} descriptors not found under {}; set TOLLGATE_ENVOY_DESCRIPTORS to its src/generated/types.bin",
        registry.display()
    ))
}

fn locked_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle {
            let v = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(v.to_string());
        }
    }
    None
}

/// What a field leads to, as far as canonical encoding cares.
#[derive(Clone, Debug)]
enum Kind {
    /// A nested message (by full name) that itself leads to maps or `Any`.
    Message(String),
    /// A `google.protobuf.Any`.
    Any,
    /// A map; the value is `Some` when it needs canonicalising too.
    Map(Option<Box<Kind>>),
}

struct Table {
    /// Full name (no leading dot) → fields that matter.
    messages: BTreeMap<String, Vec<(u32, Kind)>>,
}

impl Table {
    fn new(set: &FileDescriptorSet) -> Self {
        let mut all = BTreeMap::new();
        for file in &set.file {
            let pkg = file.package.clone().unwrap_or_default();
            for m in &file.message_type {
                collect(&format!(".{pkg}"), m, &mut all);
            }
        }
        // Fixed point: a message is interesting if one of its fields leads to a map or an Any.
        let mut interesting: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = interesting.len();
            for (name, m) in &all {
                if is_map_entry(m) || interesting.contains(name) {
                    continue;
                }
                if m.field.iter().any(|f| field_kind(f, &all, &interesting).is_some()) {
                    interesting.insert(name.clone());
                }
            }
            if interesting.len() == before {
                break;
            }
        }
        let mut messages = BTreeMap::new();
        for name in &interesting {
            let m = &all[name];
            let fields = m
                .field
                .iter()
                .filter_map(|f| Some((f.number? as u32, field_kind(f, &all, &interesting)?)))
                .collect();
            messages.insert(name.trim_start_matches('.').to_string(), fields);
        }
        Table { messages }
    }

    fn render(&self) -> String {
        let index: BTreeMap<&str, usize> = self.messages.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
        let kind = |k: &Kind| -> String {
            match k {
                Kind::Message(n) => format!("Kind::Message({})", index[n.trim_start_matches('.')]),
                Kind::Any => "Kind::Any".into(),
                Kind::Map(None) => "Kind::Map(Value::Plain)".into(),
                Kind::Map(Some(v)) => match v.as_ref() {
                    Kind::Message(n) => format!("Kind::Map(Value::Message({}))", index[n.trim_start_matches('.')]),
                    _ => "Kind::Map(Value::Any)".into(),
                },
            }
        };
        let mut s = String::from("// @generated by build.rs from envoy-types' descriptor set.\n");
        let _ = writeln!(s, "pub(crate) static NAMES: [&str; {}] = [", self.messages.len());
        for name in self.messages.keys() {
            let _ = writeln!(s, "    {name:?},");
        }
        s.push_str("];\n");
        let _ = writeln!(
            s,
            "pub(crate) static FIELDS: [&[(u32, Kind)]; {}] = [",
            self.messages.len()
        );
        for fields in self.messages.values() {
            let parts: Vec<String> = fields.iter().map(|(n, k)| format!("({n}, {})", kind(k))).collect();
            let _ = writeln!(s, "    &[{}],", parts.join(", "));
        }
        s.push_str("];\n");
        s
    }
}

fn collect(prefix: &str, m: &DescriptorProto, out: &mut BTreeMap<String, DescriptorProto>) {
    let name = format!("{prefix}.{}", m.name());
    for nested in &m.nested_type {
        collect(&name, nested, out);
    }
    out.insert(name, m.clone());
}

fn is_map_entry(m: &DescriptorProto) -> bool {
    m.options.as_ref().and_then(|o| o.map_entry).unwrap_or(false)
}

fn field_kind(
    f: &prost_types::FieldDescriptorProto,
    all: &BTreeMap<String, DescriptorProto>,
    interesting: &BTreeSet<String>,
) -> Option<Kind> {
    if f.r#type() != Type::Message {
        return None;
    }
    let ty = f.type_name();
    if ty == ANY {
        return Some(Kind::Any);
    }
    let target = all.get(ty)?;
    if is_map_entry(target) && f.label() == Label::Repeated {
        let value = target.field.iter().find(|v| v.number == Some(2))?;
        let inner = field_kind(value, all, interesting).map(Box::new);
        return Some(Kind::Map(inner));
    }
    interesting.contains(ty).then(|| Kind::Message(ty.to_string()))
}
