//! A `RestApi` body from the management API, end to end short of the database: bounded parsing
//! (YAML or JSON), vhost filling, validation and resolution, then translation into Envoy resources.
//! Nothing may panic; a document that validates must translate, and its stored form (the JSON the
//! controller writes to SQLite and reads back at start) must resolve to the same API.
//!
//! Input: the first byte picks the syntax (even: YAML, odd: JSON), the rest is the body.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tollgate_model::parse::{self, Syntax};
use tollgate_model::{RestApiDoc, VhostDefaults, resolve, validate};
use tollgate_policies::Catalogue;
use tollgate_translate::{AuthzTarget, Settings, Translator};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let syntax = if mode & 1 == 0 { Syntax::Yaml } else { Syntax::Json };
    let Ok(mut doc) = parse::document(body, syntax) else {
        return;
    };
    let defaults = VhostDefaults::default();
    let catalogue = Catalogue::builtin();
    validate::fill_vhosts(&mut doc, &defaults);
    let api = match resolve(&doc, &defaults, &catalogue) {
        Ok(api) => api,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal names at least one field");
            return;
        }
    };

    let stored = serde_json::to_string(&doc).expect("a parsed document serializes");
    let restored: RestApiDoc = serde_json::from_str(&stored).expect("the stored form parses again");
    let again = resolve(&restored, &defaults, &catalogue).expect("the stored form validates again");
    assert_eq!(api, again, "the stored form resolves to the same API");

    let mut translator = Translator::new(Settings {
        authz: Some(AuthzTarget {
            host: "127.0.0.1".into(),
            port: 18001,
            timeout: Duration::from_secs(1),
            tls: None,
        }),
        ..Settings::default()
    });
    translator.initial().expect("the initial resources encode");
    translator.set_api(&api).expect("a valid API translates");
    translator.all().expect("the whole state encodes");
    translator.remove_api(&api.handle).expect("removing an API translates");
});
