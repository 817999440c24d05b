//! Path templates and the regular expressions they become. The validator checks these regexes against
//! Envoy's limits and the translator puts them in routes, so both read them from here.

/// The full path template of an operation: context + operation path, without a doubled slash.
pub fn full_path(context: &str, path: &str) -> String {
    if context == "/" {
        return path.to_string();
    }
    if path == "/" {
        return format!("{context}/");
    }
    format!("{context}{path}")
}

/// The RE2 regex matching a path template: literals escaped, each `{param}` one segment.
pub fn template_regex(template: &str) -> String {
    let mut out = String::from("^");
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&re_escape(&rest[..open]));
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str("[^/]+");
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(&re_escape(rest));
    out.push('$');
    out
}

/// The RE2 regex that captures what follows a context (for rewriting a templated path upstream).
pub fn after_context_regex(context: &str) -> String {
    format!("^{}(.*)$", re_escape(context))
}

/// Escapes RE2 metacharacters.
pub fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_paths_never_double_slashes() {
        assert_eq!(full_path("/", "/a"), "/a");
        assert_eq!(full_path("/ctx", "/"), "/ctx/");
        assert_eq!(full_path("/ctx", "/a/{b}"), "/ctx/a/{b}");
    }

    #[test]
    fn params_become_segment_classes_and_literals_are_escaped() {
        assert_eq!(template_regex("/w/v1.0/{c}/{city}"), "^/w/v1\\.0/[^/]+/[^/]+$");
        assert_eq!(re_escape("/a+b(c)"), "/a\\+b\\(c\\)");
        assert_eq!(after_context_regex("/v1.0"), "^/v1\\.0(.*)$");
    }
}
