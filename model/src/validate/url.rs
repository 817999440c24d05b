//! A deliberately small parser for upstream URLs: `http(s)://host[:port][/path][?query][#fragment]`.
//! Only what an upstream needs is accepted (no credentials, no zone ids); the query and fragment are
//! only noted, since callers reject them with their own messages.

/// A parsed upstream URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Url {
    pub tls: bool,
    /// Hostname or IP literal; IPv6 without its brackets.
    pub host: String,
    /// The explicit port, or 80/443 by scheme.
    pub port: u16,
    /// Everything from the first `/` after the authority up to `?`/`#`; may be empty.
    pub path: String,
    /// A `?` was present (even with nothing after it).
    pub query: bool,
    /// A `#` was present (even with nothing after it).
    pub fragment: bool,
}

/// Why a URL was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UrlError {
    Scheme,
    MissingHost,
    InvalidHost,
    Port,
    Credentials,
    Whitespace,
}

impl UrlError {
    /// The message reported to the client.
    pub fn message(self) -> &'static str {
        match self {
            UrlError::Scheme => "Upstream URL must use http or https scheme",
            UrlError::MissingHost => "Upstream URL must include a host",
            UrlError::InvalidHost => "Upstream URL has an invalid host",
            UrlError::Port => "Upstream URL has an invalid port (must be 1-65535)",
            UrlError::Credentials => "Upstream URL must not include user credentials",
            UrlError::Whitespace => "Upstream URL must not contain whitespace or control characters",
        }
    }
}

/// Parses an upstream URL.
pub(super) fn parse(s: &str) -> Result<Url, UrlError> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Whitespace);
    }
    let (scheme, rest) = s.split_once("://").ok_or(UrlError::Scheme)?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(UrlError::Scheme),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    let (host, port) = split_authority(authority)?;
    let port = match port {
        // `host:` with nothing after the colon means the default port, as in most URL parsers.
        None | Some("") => {
            if tls {
                443
            } else {
                80
            }
        }
        // Digits only: `parse` alone would also take a leading `+`.
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(UrlError::Port)?
        }
        Some(_) => return Err(UrlError::Port),
    };
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((b, _)) => (b, true),
        None => (tail, false),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, _)) => (p, true),
        None => (before_fragment, false),
    };
    Ok(Url {
        tls,
        host,
        port,
        path: path.to_string(),
        query,
        fragment,
    })
}

/// Splits `host[:port]` or `[v6]:port`, checking the host's characters.
fn split_authority(authority: &str) -> Result<(String, Option<&str>), UrlError> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']').ok_or(UrlError::InvalidHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
        };
        let v6_ok = v6.contains(':') && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        return if v6_ok {
            Ok((v6.to_string(), port))
        } else {
            Err(UrlError::InvalidHost)
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    // A second colon means an unbracketed IPv6 literal or garbage; both are refused.
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !host_ok || port.is_some_and(|p| p.contains(':')) {
        return Err(UrlError::InvalidHost);
    }
    Ok((host.to_string(), port))
}
