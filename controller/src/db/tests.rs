//! Round trips and conflicts of the storage layer.

use rusqlite::Connection;

use super::*;
use crate::origin::Origin;

fn row(handle: &str, name: &str) -> ApiRow {
    ApiRow {
        handle: handle.into(),
        uuid: format!("uuid-{handle}"),
        display_name: name.into(),
        version: "v1".into(),
        document: "{}".into(),
        deployed: true,
        origin: Origin::GatewayApi,
        created_at: "t0".into(),
        updated_at: "t0".into(),
        deployed_at: Some("t0".into()),
        cp_deployment_id: None,
        cp_performed_at: None,
    }
}

#[test]
fn insert_update_delete_round_trip() {
    let db = Db::memory().unwrap();
    db.insert_api(&row("a", "A")).unwrap();
    let mut r = row("a", "A2");
    r.deployed = false;
    assert!(db.update_api(&r).unwrap());
    assert_eq!(db.list_apis().unwrap(), vec![r]);
    assert!(!db.update_api(&row("zz", "Z")).unwrap());
    assert!(db.delete_api("a").unwrap());
    assert!(!db.delete_api("a").unwrap());
    assert!(db.list_apis().unwrap().is_empty());
}

#[test]
fn duplicates_are_conflicts_with_clear_messages() {
    let db = Db::memory().unwrap();
    db.insert_api(&row("a", "A")).unwrap();
    let mut dup = row("a", "B");
    dup.uuid = "other".into();
    let e = db.insert_api(&dup).unwrap_err().to_string();
    assert_eq!(e, "configuration with handle 'a' already exists");
    let e = db.insert_api(&row("b", "A")).unwrap_err().to_string();
    assert_eq!(e, "configuration with name 'A' and version 'v1' already exists");
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let dir = std::env::temp_dir().join(format!("tollgate-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.db");
    {
        let db = Db::open(&path).unwrap();
        db.insert_api(&row("a", "A")).unwrap();
        db.set_setting("k", "v").unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(db.list_apis().unwrap().len(), 1);
    assert_eq!(db.setting("k").unwrap().as_deref(), Some("v"));
    drop(db);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(Db::open(&path), Err(DbError::TooNew(99))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cp_objects_are_stored_by_typed_kind() {
    let db = Db::memory().unwrap();
    let o = CpObject {
        kind: CpKind::Plan,
        id: "p1".into(),
        api: None,
        body: "{}".into(),
        updated_at: "t0".into(),
    };
    db.put_cp_object(&o).unwrap();
    assert_eq!(db.get_cp_object(CpKind::Plan, "p1").unwrap(), Some(o));
    assert!(!db.has_cp_object(CpKind::Subscription, "p1").unwrap());
    assert_eq!(db.count_cp_objects(CpKind::Plan).unwrap(), 1);
    for k in [
        CpKind::Subscription,
        CpKind::Plan,
        CpKind::Application,
        CpKind::RevokedKey,
    ] {
        assert_eq!(k.as_str().parse::<CpKind>().unwrap(), k);
    }
    assert!("gadget".parse::<CpKind>().is_err());
}

#[test]
fn failures_are_recorded_cleared_and_go_with_their_api() {
    let db = Db::memory().unwrap();
    db.insert_api(&row("a", "A")).unwrap();
    db.insert_api(&row("b", "B")).unwrap();
    let failure = ApiFailure {
        message: "invalid regex".into(),
        served_document: Some("{}".into()),
        failed_at: "2026-01-01T00:00:00Z".into(),
    };
    db.set_api_failure("a", Some(&failure)).unwrap();
    db.set_api_failure("b", Some(&failure)).unwrap();
    let again = ApiFailure {
        served_document: None,
        ..failure.clone()
    };
    db.set_api_failure("a", Some(&again)).unwrap();
    assert_eq!(db.api_failures().unwrap()["a"], again);
    db.set_api_failure("a", None).unwrap();
    assert!(!db.api_failures().unwrap().contains_key("a"));
    db.delete_api("b").unwrap();
    assert!(
        db.api_failures().unwrap().is_empty(),
        "a deleted API's failure goes with it"
    );
}

/// Issue #13: key and API writes are synced at each commit (`synchronous=FULL`, 2), so a 2xx
/// survives a power loss; NORMAL (1) only on request.
#[test]
fn commits_are_synced_to_disk() {
    let dir = std::env::temp_dir().join(format!("tollgate-db-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let synchronous = |db: &Db| -> i64 { db.conn().pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap() };
    let journal = |db: &Db| -> String {
        db.conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap()
    };
    let db = Db::open(&dir.join("full.db")).unwrap();
    assert_eq!(synchronous(&db), 2, "FULL");
    assert_eq!(journal(&db), "wal");
    let normal = Db::open_with(&dir.join("normal.db"), Durability::Normal).unwrap();
    assert_eq!(synchronous(&normal), 1, "NORMAL");
    let _ = std::fs::remove_dir_all(&dir);
}
