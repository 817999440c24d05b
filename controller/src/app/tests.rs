//! The application layer over an in-memory database: what each write path changes, and what it
//! refuses.

use std::sync::Arc;

use tollgate_policies::Catalogue;
use tollgate_policies::authz::{Decision, SharedIndex};
use tollgate_xds::Store;

use super::*;
use crate::db::Db;
use crate::keys::{Keys, NewKey};
use tollgate_model::VhostDefaults;
use tollgate_translate::{Settings, Translator};

struct Fixture {
    app: App,
    db: Arc<Db>,
    index: Arc<SharedIndex>,
}

async fn fixture() -> Fixture {
    let db = Arc::new(Db::memory().unwrap());
    let index = Arc::new(SharedIndex::default());
    let keys = Arc::new(Keys::load(db.clone(), index.clone(), 10, None).unwrap());
    let vhosts = VhostDefaults::default();
    let settings = Settings {
        vhosts: vhosts.clone(),
        ..Settings::default()
    };
    let store = Arc::new(Store::new());
    let translator = Translator::new(settings);
    let repo = ApiRepo::load(RepoParts {
        db: db.clone(),
        xds: store,
        status: Arc::new(tollgate_xds::StatusRegistry::default()),
        ack_timeout: std::time::Duration::from_secs(1),
        catalogue: Catalogue::builtin(),
        vhosts,
        translator,
        secrets: Arc::new(
            crate::secrets::Secrets::load(db.clone(), crate::secrets::Keyring::random("t1").unwrap()).unwrap(),
        ),
    })
    .await
    .unwrap();
    Fixture {
        app: App::new(
            repo,
            keys,
            Arc::new(crate::subs::Subs::load(db.clone(), crate::subs::Feed::new(Default::default())).unwrap()),
            db.clone(),
        ),
        db,
        index,
    }
}

fn doc(name: &str) -> RestApiDoc {
    serde_yaml::from_str(&format!(
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: {name}\nspec:\n  \
         displayName: {name}\n  version: v1\n  context: /{name}\n  upstream:\n    main:\n      url: http://127.0.0.1:9\n  \
         operations:\n    - {{method: GET, path: /x}}\n"
    ))
    .unwrap()
}

fn deployment(artifact: &str, at: &str) -> Deployment {
    Deployment {
        artifact_id: artifact.into(),
        deployment_id: format!("d-{artifact}"),
        performed_at: at.into(),
    }
}

fn allows(index: &SharedIndex, api: &str, key: &str) -> bool {
    let now = crate::clock::unix_secs() as u64;
    matches!(index.load().decide(api, key.as_bytes(), now), Decision::Allow(_))
}

#[tokio::test]
async fn deleting_an_api_deletes_its_keys_everywhere() {
    let f = fixture().await;
    f.app.create_api(doc("orders")).await.unwrap();
    let (_, plain) = f.app.keys.create("orders", "alice", NewKey::default()).await.unwrap();
    let plain = plain.unwrap();
    assert!(allows(&f.index, "orders", &plain));
    f.app.delete_api("orders").await.unwrap();
    assert!(!allows(&f.index, "orders", &plain));
    assert!(f.db.list_keys().unwrap().is_empty());
    assert!(matches!(f.app.delete_api("orders").await, Err(AppError::NotFound(_))));
}

#[tokio::test]
async fn duplicates_are_structured_conflicts() {
    let f = fixture().await;
    let w = f.app.create_api(doc("orders")).await.unwrap();
    assert_eq!(w.entry.unwrap().row.origin, Origin::GatewayApi);
    let e = f.app.create_api(doc("orders")).await.unwrap_err();
    assert!(matches!(&e, AppError::Conflict(crate::db::Conflict::Handle(h)) if h == "orders"));
    assert!(e.is_conflict());
    assert_eq!(e.to_string(), "configuration with handle 'orders' already exists");
}

#[tokio::test]
async fn the_control_plane_never_replaces_or_deletes_a_local_api() {
    let f = fixture().await;
    let local = f.app.create_api(doc("orders")).await.unwrap().entry.unwrap();
    let d = deployment("art-1", "2026-03-04T10:30:00Z");
    let e = f.app.deploy_artifact(doc("orders"), &d).await.unwrap_err();
    assert!(matches!(e, AppError::LocalApi(ref h) if h == "orders"), "{e}");
    let e = f.app.delete_artifact(&local.row.uuid).await.unwrap_err();
    assert!(matches!(e, AppError::NotControlPlane(_)), "{e}");
    assert!(f.app.api("orders").is_some());
}

#[tokio::test]
async fn artifacts_deploy_undeploy_and_delete_with_their_subscriptions() {
    let f = fixture().await;
    let d = deployment("art-1", "2026-03-04T10:30:00Z");
    let w = f.app.deploy_artifact(doc("weather"), &d).await.unwrap();
    let entry = w.entry.unwrap();
    assert!(entry.from_control_plane());
    // No Envoy is connected: stored and published, not yet confirmed.
    assert_eq!(entry.state(), ApiState::Pending);
    assert!(entry.api.deployed);
    assert_eq!(f.app.api_by_artifact("art-1").unwrap().row.handle, "weather");
    let moved = f.app.deploy_artifact(doc("other"), &d).await.unwrap_err();
    assert!(matches!(moved, AppError::ArtifactMoved { .. }), "{moved}");

    let later = deployment("art-1", "2026-03-04T10:31:00Z");
    let w = f.app.undeploy_artifact(&entry, &later).await.unwrap();
    assert!(!w.entry.unwrap().api.deployed);

    let sub =
        serde_json::json!({"subscriptionId": "s1", "apiId": "art-1", "subscriptionToken": "tok", "status": "ACTIVE"});
    assert_eq!(
        f.app.put_pushed_subscription(sub.clone()).await.unwrap(),
        Stored::Applied
    );
    assert_eq!(f.app.put_pushed_subscription(sub).await.unwrap(), Stored::Unchanged);
    assert_eq!(f.app.count_subscriptions().await.unwrap(), 1);
    assert!(f.app.delete_artifact("art-1").await.unwrap());
    assert!(!f.app.delete_artifact("art-1").await.unwrap());
    assert_eq!(
        f.app.count_subscriptions().await.unwrap(),
        0,
        "the API's subscriptions go with it"
    );
    assert!(f.app.apis().is_empty());
}
