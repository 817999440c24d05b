//! The two archive formats the platform API sends artifacts in: a ZIP with one YAML entry
//! (single-artifact fetch) and a gzip-compressed tar of `{deploymentId}/{prefix}-{artifactId}.yaml`
//! entries (batch fetch). Sizes are bounded so a hostile archive cannot exhaust memory.

use std::io::{Cursor, Read};

/// The largest artifact document accepted, uncompressed.
pub const MAX_DOCUMENT: u64 = 8 * 1024 * 1024;
/// The largest batch accepted, uncompressed.
pub const MAX_BATCH: u64 = 256 * 1024 * 1024;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a valid archive: {0}")]
    Corrupt(String),
    #[error("the archive has no .yaml or .yml entry")]
    NoDocument,
    #[error("an archive entry is larger than {0} bytes")]
    TooLarge(u64),
}

/// One artifact of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    pub deployment_id: String,
    /// The artifact UUID from the file name (`api-{id}.yaml` and friends).
    pub artifact_id: String,
    pub document: String,
}

/// The first `.yaml`/`.yml` entry of a ZIP archive.
pub fn first_yaml_in_zip(bytes: &[u8]) -> Result<String, ArchiveError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
        if !entry.is_file() || !is_yaml(entry.name()) {
            continue;
        }
        return read_bounded(entry, MAX_DOCUMENT);
    }
    Err(ArchiveError::NoDocument)
}

/// Every `{deploymentId}/{prefix}-{artifactId}.yaml` file of a gzip-compressed tar.
pub fn batch_from_tar_gz(bytes: &[u8]) -> Result<Vec<BatchEntry>, ArchiveError> {
    let gz = flate2::read::GzDecoder::new(bytes).take(MAX_BATCH + 1);
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    let entries = archive.entries().map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| ArchiveError::Corrupt(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let Some((deployment_id, file)) = path.trim_start_matches("./").split_once('/') else {
            continue;
        };
        if !is_yaml(file) || file.contains('/') {
            continue;
        }
        let stem = file.trim_end_matches(".yaml").trim_end_matches(".yml");
        let Some(artifact_id) = artifact_id_of(stem) else {
            continue;
        };
        let document = read_bounded(entry, MAX_DOCUMENT)?;
        out.push(BatchEntry {
            deployment_id: deployment_id.to_string(),
            artifact_id,
            document,
        });
    }
    Ok(out)
}

/// `api-<uuid>` → `<uuid>` (the prefix is the artifact kind and may itself contain dashes).
fn artifact_id_of(stem: &str) -> Option<String> {
    // A UUID is 36 characters; the prefix is everything before `-` + UUID.
    if stem.len() > 37 && stem.is_char_boundary(stem.len() - 36) {
        let (prefix, id) = stem.split_at(stem.len() - 36);
        if prefix.ends_with('-') && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Some(id.to_string());
        }
    }
    stem.split_once('-')
        .map(|(_, id)| id.to_string())
        .filter(|id| !id.is_empty())
}

fn is_yaml(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

fn read_bounded(r: impl Read, limit: u64) -> Result<String, ArchiveError> {
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    if buf.len() as u64 > limit {
        return Err(ArchiveError::TooLarge(limit));
    }
    String::from_utf8(buf).map_err(|_| ArchiveError::Corrupt("entry is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in entries {
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            w.start_file(*name, opts).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn tar_gz_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut t = tar::Builder::new(gz);
        for (name, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        t.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn zip_yields_its_first_yaml_entry() {
        let z = zip_of(&[("README.txt", "x"), ("api-1.yaml", "kind: RestApi\n"), ("b.yml", "no")]);
        assert_eq!(first_yaml_in_zip(&z).unwrap(), "kind: RestApi\n");
        assert!(matches!(
            first_yaml_in_zip(&zip_of(&[("a.txt", "x")])),
            Err(ArchiveError::NoDocument)
        ));
        assert!(matches!(
            first_yaml_in_zip(b"PK\x03\x04garbage"),
            Err(ArchiveError::Corrupt(_))
        ));
    }

    #[test]
    fn batch_names_give_deployment_and_artifact() {
        let id = "23826f9e-8daf-4638-b295-14898312759f";
        let t = tar_gz_of(&[
            (&format!("dep-1/api-{id}.yaml"), "a"),
            (&format!("dep-2/llm-proxy-{id}.yaml"), "b"),
            ("stray.yaml", "c"),
        ]);
        let got = batch_from_tar_gz(&t).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].deployment_id, "dep-1");
        assert_eq!(got[0].artifact_id, id);
        assert_eq!(got[0].document, "a");
        assert_eq!(got[1].artifact_id, id);
        assert!(batch_from_tar_gz(b"not gzip").is_err());
    }
}
