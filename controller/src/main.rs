//! The `tollgate` command: `serve` (controller), `run` (controller plus a managed Envoy),
//! `authz-replica` (an ext_authz service fed by a controller over xDS), `hash-password` (an
//! argon2id hash for the config file). Parsing and the commands live in `tollgate::cli`.

use std::process::ExitCode;

use tollgate::cli::Command;

fn main() -> ExitCode {
    let env = |var: &str| std::env::var(var).ok();
    match Command::parse(std::env::args().skip(1), &env) {
        Ok(command) => command.run(),
        Err(e) => e.report(),
    }
}
