//! The platform archive reader: a single-artifact ZIP or a batch `.tar.gz` as the platform API sends
//! them, then each document through the artifact reader (`payload::artifact_document`, the same
//! bounded YAML parser as a REST body). Nothing may panic, nothing may grow past the size bounds,
//! and every batch entry has the shape its file name promised.
//!
//! Input: the first byte picks the format (even: ZIP, odd: tar.gz), the rest is the archive.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::platform::archive::{self, MAX_DOCUMENT};
use tollgate::platform::payload;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(document) = archive::first_yaml_in_zip(bytes) {
            assert!(document.len() as u64 <= MAX_DOCUMENT);
            let _ = payload::artifact_document(&document);
        }
    } else if let Ok(batch) = archive::batch_from_tar_gz(bytes) {
        for entry in batch {
            assert!(entry.document.len() as u64 <= MAX_DOCUMENT);
            assert!(!entry.artifact_id.is_empty(), "an entry has an artifact id");
            assert!(
                !entry.deployment_id.contains('/'),
                "a deployment id is one path segment"
            );
            let _ = payload::artifact_document(&entry.document);
        }
    }
});
