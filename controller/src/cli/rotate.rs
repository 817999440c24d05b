//! `tollgate secrets rotate`: re-encrypts every stored secret with the current key (the first of
//! `TOLLGATE_SECRET_KEYS`, else the highest-versioned key file), so an older key can then be
//! removed. Works on the database directly, in one transaction; a running controller keeps its
//! decrypted copies and is not disturbed.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::db::Db;
use crate::secrets::{Keyring, rotate};

use super::CliError;

/// Runs the rotation and prints what it did.
pub(super) fn run(config_path: Option<&Path>, sets: &[crate::config::FlagValue]) -> ExitCode {
    let env = |var: &str| std::env::var(var).ok();
    let config = match Config::load_from(config_path, &env, sets) {
        Ok((config, _)) => config,
        Err(e) => return CliError::from(e).report(),
    };
    let data = &config.server.data_dir;
    let result = (|| -> anyhow::Result<(usize, String)> {
        let db = Db::open(&data.join("tollgate.db"))?;
        let (keyring, _) = Keyring::load(data, &env, db.count_secrets()?)?;
        let n = rotate(&db, &keyring)?;
        Ok((n, keyring.current().to_string()))
    })();
    match result {
        Ok((n, version)) => {
            println!("re-encrypted {n} secret(s) with key '{version}'");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: secrets rotate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
