//! Whether one API's routes would take requests meant for another's.
//!
//! All APIs share one route table per virtual host, ordered by specificity, so a request that two
//! APIs' routes both match goes to one of them, with its upstream, its policies and the key headers
//! the client sent for the other. [`first_overlap`] finds such a pair of operations.
//!
//! Two operations of different APIs overlap when all of these hold:
//! - both APIs are deployed and share a virtual host (the same vhost string, compared without regard
//!   to ASCII case, among each API's main vhosts and sandbox vhost; Envoy sends a request to exactly
//!   one virtual host, so routes of different vhosts never compete);
//! - they have the same method;
//! - some request path is matched by both, exactly as the translator matches them: a literal path
//!   with or without a trailing slash, `type: Exact` only as written, `{param}` as one non-empty
//!   segment (or part of one), `/*` as the bare prefix or anything below it, `/` as the context with
//!   or without its slash. So the same method and full path on a shared vhost overlap, and so does a
//!   wildcard or parameter operation of one API that matches a full path of the other (an API on
//!   context `/shop` with `GET /*` captures `GET /shop/admin/x` of an API on `/shop/admin`);
//! - their header conditions do not exclude each other: only an exact condition on the same header
//!   with different values does (regex conditions are assumed to overlap anything).

use crate::{Api, HeaderMatch, Method, Operation, PathKind};

/// A pair of overlapping operations: where, and the full path templates of both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// The shared virtual host.
    pub vhost: String,
    pub method: Method,
    /// The full path template (context included) of the first API's operation.
    pub path: String,
    /// The full path template of the other API's operation.
    pub other_path: String,
}

/// The first operation of `api` (in document order) that overlaps an operation of `other`, with
/// the first such operation of `other`; `None` when their routes can never match the same request.
pub fn first_overlap(api: &Api, other: &Api) -> Option<Overlap> {
    if !api.deployed || !other.deployed || !contexts_related(&api.context, &other.context) {
        return None;
    }
    let vhost = vhosts(api).find(|v| vhosts(other).any(|w| w.eq_ignore_ascii_case(v)))?;
    let theirs: Vec<(&Operation, Nfa)> = other
        .operations
        .iter()
        .map(|o| (o, Nfa::of(&other.context, o)))
        .collect();
    for op in &api.operations {
        let ours = Nfa::of(&api.context, op);
        for (o, nfa) in &theirs {
            if o.method == op.method && headers_compatible(&op.headers, &o.headers) && ours.intersects(nfa) {
                return Some(Overlap {
                    vhost: vhost.to_string(),
                    method: op.method,
                    path: crate::path::full_path(&api.context, &op.path),
                    other_path: crate::path::full_path(&other.context, &o.path),
                });
            }
        }
    }
    None
}

fn vhosts(api: &Api) -> impl Iterator<Item = &str> {
    let sandbox = api.sandbox.as_ref().and(api.sandbox_vhost.as_deref());
    api.main_vhosts.iter().map(String::as_str).chain(sandbox)
}

/// Every path of an API is its context or below it; contexts are literal. So two APIs can share a
/// path only when one context is the other or a segment prefix of it (`/` is a prefix of all).
fn contexts_related(a: &str, b: &str) -> bool {
    let below = |long: &str, short: &str| {
        short == "/" || long == short || long.strip_prefix(short).is_some_and(|r| r.starts_with('/'))
    };
    below(a, b) || below(b, a)
}

/// Header conditions exclude each other only through exact values that differ on one header.
fn headers_compatible(a: &[HeaderMatch], b: &[HeaderMatch]) -> bool {
    !a.iter().any(|x| {
        !x.regex
            && b.iter()
                .any(|y| !y.regex && y.name.eq_ignore_ascii_case(&x.name) && y.value != x.value)
    })
}

/// What one NFA transition reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Char(char),
    /// Any character but `/`.
    NotSlash,
    Any,
}

impl Class {
    /// Whether some character is read by both.
    fn meets(self, other: Class) -> bool {
        match (self, other) {
            (Class::Char(a), Class::Char(b)) => a == b,
            (Class::Char(c), Class::NotSlash) | (Class::NotSlash, Class::Char(c)) => c != '/',
            _ => true,
        }
    }
}

/// The request paths one route matches, as a small automaton: state 0 starts, the last state accepts.
#[derive(Debug, Default)]
struct Nfa {
    moves: Vec<Vec<(Class, usize)>>,
    empty: Vec<Vec<usize>>,
    accept: usize,
}

impl Nfa {
    /// The paths operation `op` of an API on `context` matches (see `path_plans` in the translator).
    fn of(context: &str, op: &Operation) -> Nfa {
        let ctx = if context == "/" { "" } else { context };
        let mut n = Nfa::default();
        let start = n.state();
        let full = format!("{ctx}{}", op.path);
        n.accept = if op.kind == PathKind::Exact {
            n.literal(start, &full)
        } else if op.path.contains('{') {
            n.template(start, &crate::path::full_path(context, &op.path))
        } else if op.path == "/" && !ctx.is_empty() {
            // `{ctx}/`, and `{ctx}` itself.
            let s = n.literal(start, ctx);
            n.optional_slash(s)
        } else if let Some(prefix) = op.path.strip_suffix("/*") {
            // The bare prefix, or it followed by `/` and anything.
            let s = n.literal(start, &format!("{ctx}{prefix}"));
            n.slash_rest(s)
        } else {
            // A literal with and without its trailing slash (the root of the root context is `/`).
            let s = n.literal(start, &full);
            if full.ends_with('/') { s } else { n.optional_slash(s) }
        };
        n
    }

    fn state(&mut self) -> usize {
        self.moves.push(Vec::new());
        self.empty.push(Vec::new());
        self.moves.len() - 1
    }

    fn step(&mut self, from: usize, class: Class) -> usize {
        let to = self.state();
        self.moves[from].push((class, to));
        to
    }

    fn literal(&mut self, mut s: usize, text: &str) -> usize {
        for c in text.chars() {
            s = self.step(s, Class::Char(c));
        }
        s
    }

    /// Literals, and each `{param}` as one or more characters other than `/`.
    fn template(&mut self, mut s: usize, template: &str) -> usize {
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            s = self.literal(s, &rest[..open]);
            let Some(close) = rest[open..].find('}') else { break };
            s = self.step(s, Class::NotSlash);
            self.moves[s].push((Class::NotSlash, s));
            rest = &rest[open + close + 1..];
        }
        self.literal(s, rest)
    }

    fn optional_slash(&mut self, s: usize) -> usize {
        let end = self.step(s, Class::Char('/'));
        self.empty[s].push(end);
        end
    }

    fn slash_rest(&mut self, s: usize) -> usize {
        let any = self.step(s, Class::Char('/'));
        self.moves[any].push((Class::Any, any));
        let end = self.state();
        self.empty[s].push(end);
        self.empty[any].push(end);
        end
    }

    fn closure(&self, s: usize) -> Vec<usize> {
        let mut out = vec![s];
        let mut i = 0;
        while let Some(&x) = out.get(i) {
            for &y in &self.empty[x] {
                if !out.contains(&y) {
                    out.push(y);
                }
            }
            i += 1;
        }
        out
    }

    /// Whether some path is accepted by both (a walk of the product automaton).
    fn intersects(&self, other: &Nfa) -> bool {
        let (accept_a, accept_b) = (self.accept, other.accept);
        let mut seen = vec![false; self.moves.len() * other.moves.len()];
        let mut stack = vec![(0, 0)];
        while let Some((a, b)) = stack.pop() {
            for x in self.closure(a) {
                for y in other.closure(b) {
                    if x == accept_a && y == accept_b {
                        return true;
                    }
                    for &(ca, na) in &self.moves[x] {
                        for &(cb, nb) in &other.moves[y] {
                            let key = na * other.moves.len() + nb;
                            if ca.meets(cb) && !seen[key] {
                                seen[key] = true;
                                stack.push((na, nb));
                            }
                        }
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;
