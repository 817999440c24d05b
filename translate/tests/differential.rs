//! Differential check of validation against the real Envoy: documents are validated
//! (`tollgate_model::resolve`), translated (`Translator`) and judged by the pinned Envoy in
//! `--mode validate`. A document the validator accepts and Envoy rejects is a bug in the validator
//! (or the translator). Documents that found one are kept in `tests/corpus/` and replayed.
//!
//! Needs the pinned Envoy (`make envoy`, or `TOLLGATE_ENVOY_BIN`); without it the tests fail.
//! `make test` judges a fixed set of generated documents (a fixed seed); to hunt for new bugs run with
//! `DIFFERENTIAL_SEED=random DIFFERENTIAL_CASES=1000` (and `DIFFERENTIAL_ALL=1` to list them all).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed set-up step should panic

#[path = "differential/generate.rs"]
mod generate;
#[path = "differential/judge.rs"]
mod judge;
#[path = "differential/jwt.rs"]
mod jwt;
#[path = "differential/mediation.rs"]
mod mediation;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use tollgate_model::parse::{self, Syntax};
use tollgate_model::{Api, FieldError, RestApiDoc};
use tollgate_policies::Catalogue;

use judge::Judge;

/// The validator's verdict on `doc`.
fn validate(doc: &RestApiDoc) -> Result<Api, Vec<FieldError>> {
    tollgate_model::resolve(doc, &judge::defaults(), &Catalogue::builtin())
}

/// Judges documents together; on a rejection, finds the documents Envoy rejects alone (or reports the
/// whole set when only the combination is rejected). Returns a report of every failure.
fn failures(judge: &Judge, docs: &[RestApiDoc]) -> Vec<String> {
    let accepted: Vec<(&RestApiDoc, Api)> = docs
        .iter()
        .filter_map(|d| validate(d).ok().map(|api| (d, api)))
        .collect();
    let apis: Vec<Api> = accepted.iter().map(|(_, a)| a.clone()).collect();
    if apis.is_empty() || judge.verdict(&apis).is_ok() {
        return Vec::new();
    }
    let alone: Vec<String> = accepted
        .iter()
        .filter_map(|(doc, api)| {
            let msg = judge.verdict(std::slice::from_ref(api)).err()?;
            Some(report(&[doc], &msg))
        })
        .collect();
    if !alone.is_empty() {
        return alone;
    }
    let all: Vec<&RestApiDoc> = accepted.iter().map(|(d, _)| *d).collect();
    let msg = judge.verdict(&apis).err().unwrap_or_default();
    vec![report(&all, &format!("(only together) {msg}"))]
}

fn report(docs: &[&RestApiDoc], msg: &str) -> String {
    let yaml: Vec<String> = docs.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
    format!(
        "the validator accepts, Envoy rejects:\n---\n{}\nEnvoy: {msg}\n",
        yaml.join("---\n")
    )
}

/// Which documents to generate: a fixed seed by default, so `make test` judges the same documents
/// every run and CI cannot turn red by chance; `DIFFERENTIAL_SEED=random` (or a number) explores.
fn seed() -> RngSeed {
    match std::env::var("DIFFERENTIAL_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(n) => RngSeed::Fixed(n.parse().expect("DIFFERENTIAL_SEED is a number or `random`")),
        None => RngSeed::Fixed(0x7011_6a7e),
    }
}

/// How many generated batches to judge (`DIFFERENTIAL_CASES`, default 64).
fn cases() -> u32 {
    std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

#[test]
fn generated_documents_the_validator_accepts_envoy_accepts() {
    let judge = Judge::new("generated");
    // `DIFFERENTIAL_ALL=1` goes on after a failure (no shrinking) and lists every distinct one, for
    // hunting several bugs in one long run.
    let all = std::env::var_os("DIFFERENTIAL_ALL").is_some();
    let config = Config {
        cases: cases(),
        max_shrink_iters: 64,
        failure_persistence: None,
        rng_seed: seed(),
        ..Config::default()
    };
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let (total, accepted) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let result = TestRunner::new(config).run(&generate::batch(), |docs: Vec<RestApiDoc>| {
        total.fetch_add(docs.len(), Ordering::Relaxed);
        accepted.fetch_add(docs.iter().filter(|d| validate(d).is_ok()).count(), Ordering::Relaxed);
        let found = failures(&judge, &docs);
        if all {
            seen.lock().unwrap().extend(found);
            return Ok(());
        }
        prop_assert!(found.is_empty(), "{}", found.join("\n"));
        Ok(())
    });
    // How much reached Envoy: a generator whose documents the validator all refuses tests nothing.
    eprintln!(
        "{} of {} generated documents (shrinking included) passed the validator and went to Envoy",
        accepted.into_inner(),
        total.into_inner()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner().unwrap();
    assert!(seen.is_empty(), "{} failures:\n{}", seen.len(), seen.join("\n"));
}

#[test]
fn corpus_documents_are_refused_or_served() {
    let judge = Judge::new("corpus");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    let mut found = Vec::new();
    for file in &files {
        // A file may hold several documents (`---` lines between them), judged together.
        let text = std::fs::read_to_string(file).unwrap();
        let docs: Vec<RestApiDoc> = text
            .split("\n---\n")
            .map(|d| parse::document(d.as_bytes(), Syntax::Yaml).unwrap())
            .collect();
        for f in failures(&judge, &docs) {
            found.push(format!("{}: {f}", file.display()));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_validator_refuses_a_repetition_envoy_refuses() {
    // The repro of issue 12: Envoy's RE2 refuses `a{99999}` ("invalid repetition size").
    let yaml = r#"
metadata: {name: repro}
spec:
  displayName: Repro
  version: v1.0
  context: /repro
  upstream: {main: {url: "http://10.0.0.1:8080"}}
  operations:
    - match:
        method: GET
        path: {value: /items}
        headers:
          - {name: x-tenant, type: RegularExpression, value: "a{99999}"}
"#;
    let doc = parse::document(yaml.as_bytes(), Syntax::Yaml).unwrap();
    let errs = validate(&doc).expect_err("the validator must refuse a{99999}");
    assert!(
        errs.iter()
            .any(|e| e.field == "spec.operations[0].match.headers[0].value"),
        "{errs:?}"
    );
}

#[test]
fn the_judge_rejects_what_envoy_rejects() {
    // Without this the check could pass with a judge that accepts anything: the same repro, past the
    // validator (its header value changed after resolution), must be rejected by Envoy with RE2's words.
    let judge = Judge::new("sanity");
    let yaml = r#"
metadata: {name: sane}
spec:
  displayName: Sane
  version: v1.0
  context: /sane
  upstream: {main: {url: "https://10.0.0.1:8443"}}
  operations:
    - match:
        method: GET
        path: {value: /items}
        headers:
          - {name: x-tenant, type: RegularExpression, value: "^t-[0-9]+$"}
"#;
    let doc = parse::document(yaml.as_bytes(), Syntax::Yaml).unwrap();
    let mut api = validate(&doc).unwrap();
    judge.verdict(std::slice::from_ref(&api)).unwrap();
    api.operations[0].headers[0].value = "a{99999}".into();
    let msg = judge.verdict(&[api]).unwrap_err();
    assert!(msg.contains("invalid repetition size"), "{msg}");
}

#[test]
fn envoy_accepts_every_mediation_policy() {
    // The corpus check passes when the validator refuses a document too: this one must pass both.
    let judge = Judge::new("mediation");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mediation-every-policy.yaml");
    let doc = parse::document(&std::fs::read(path).unwrap(), Syntax::Yaml).unwrap();
    let api = validate(&doc).unwrap_or_else(|e| panic!("the validator refuses: {e:?}"));
    judge.verdict(&[api]).unwrap();
}
