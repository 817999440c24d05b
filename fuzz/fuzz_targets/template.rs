//! The template subset of API documents (`tollgate::secrets::template`): any string a document
//! may hold. Nothing may panic or recurse without bound; a template that parses renders (or
//! refuses) without panicking; the secrets it names are the ones rendering reads; and text without
//! `{{` is left exactly as it was.
//!
//! Input: any bytes, read as text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::secret::Secret;
use tollgate::secrets::template::{Lookup, Template, Used, has_action};

/// `HOST` is set, `EMPTY` is empty; secret `token` exists.
struct Fixed;

impl Lookup for Fixed {
    fn env(&self, name: &str) -> Option<String> {
        match name {
            "HOST" => Some("backend".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn secret(&self, id: &str) -> Option<Secret<String>> {
        (id == "token").then(|| Secret::new("s3cr3t".into()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Template::parse(text) else {
        return;
    };
    let mut used = Used::default();
    let rendered = t.render(&Fixed, &mut used);
    if !has_action(text) {
        assert_eq!(rendered.as_deref(), Ok(text));
    }
    // Every secret read was named literally (rendering may stop early, so a subset).
    let named = t.secret_ids();
    assert!(used.secret_ids.iter().all(|id| named.contains(id)), "{text:?}");
});
