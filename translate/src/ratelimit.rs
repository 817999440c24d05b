//! `basic-ratelimit` and `advanced-ratelimit` on a route: the quota lines the ext_authz service
//! counts (`tollgate.rl`, see `tollgate_policies::catalogue::ratelimit`) and the headers it must
//! be sent for their key parts. Every policy that applies is enforced: the API's and the
//! operation's both count (as in WSO2), each in its own scope.

use tollgate_model::Api;
use tollgate_policies::catalogue::ratelimit::{QuotaLine, Scope, lower};

/// What a route's rate-limit policies hand the ext_authz service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLimits {
    /// The quota lines, one per line.
    pub lines: String,
    /// The lower-case request headers the keys read.
    pub headers: Vec<String>,
}

/// The rate limits of operation `i` of `api`; `None` when it has none.
pub fn route_limits(api: &Api, i: usize) -> Option<RouteLimits> {
    let op = api.operations.get(i)?;
    let mut route = format!("{} {}", op.method.as_str(), super::full_path(&api.context, &op.path));
    let mut conditions: Vec<_> = op.headers.iter().collect();
    conditions.sort();
    for h in conditions {
        route.push_str(&format!(" {}{}{}", h.name, if h.regex { "~" } else { "=" }, h.value));
    }
    let scope = |operation| Scope {
        api: &api.handle,
        api_name: &api.display_name,
        api_version: &api.version,
        route: &route,
        operation,
    };
    let quotas: Vec<QuotaLine> = api
        .policies
        .iter()
        .map(|p| (p, false))
        .chain(op.policies.iter().map(|p| (p, true)))
        .flat_map(|(p, operation)| lower(&p.name, &p.params, &scope(operation)))
        .filter(|q| !q.limits.is_empty())
        .collect();
    if quotas.is_empty() {
        return None;
    }
    let mut headers: Vec<String> = quotas
        .iter()
        .flat_map(|q| q.parts.iter().filter_map(|p| p.strip_prefix("h:")).map(str::to_string))
        .collect();
    headers.sort();
    headers.dedup();
    let lines: Vec<String> = quotas.iter().map(QuotaLine::encode).collect();
    Some(RouteLimits {
        lines: lines.join("\n"),
        headers,
    })
}
