//! `tollgate hash-password`: prints an argon2id hash of the line on standard input, for the
//! `password` of a user in the config file.

use std::process::ExitCode;

/// Reads one line, prints its hash; exit 1 when stdin cannot be read or hashing fails.
pub(super) fn run() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return ExitCode::FAILURE;
    }
    match crate::auth::hash_password(line.trim_end_matches(['\n', '\r'])) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::FAILURE
        }
    }
}
