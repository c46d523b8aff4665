//! `http` URLs (RFC 9110 §4.2.1, with the generic syntax of RFC 3986) and
//! the resolution of a redirect's `Location` against the URL it came
//! from (RFC 3986 §5.2).
//!
//! A [`Url`] is `http://host[:port][/path][?query][#fragment]`:
//! - the scheme is matched case-insensitively; `https` is refused with
//!   its own error ([`UrlError::HttpsUnsupported`]), since there is no TLS
//!   here, and so is any other scheme;
//! - the host is an IPv4 literal (dotted decimal, as RFC 3986 §3.2.2's
//!   `IPv4address`) or a DNS name (letters, digits, `-` and `_`, labels of
//!   1 to 63 octets that neither start nor end with `-`, 253 octets at
//!   most, a trailing dot allowed; RFC 1035 §2.3.1, RFC 1123 §2.1),
//!   lowercased (RFC 3986 §6.2.2.1); a name whose last label is all digits
//!   must be a valid IPv4 literal;
//! - the port is 1 to 65535, 80 when absent or empty (RFC 3986 §3.2.3);
//! - the path is `/` when empty, and its dot segments are removed
//!   (RFC 3986 §5.2.4), as a client does before sending it;
//! - the query is kept as written (without its `?`), and the fragment is
//!   dropped: it is never sent (RFC 9110 §7.1).
//!
//! Percent-encoded octets (`%XX`) are left as they are; a `%` not followed
//! by two hex digits is an error. Other ASCII characters that RFC 3986
//! does not allow unencoded but servers take (`"`, `<`, `{`, ...) are left
//! alone too; spaces and control characters are refused, because they
//! would break the request line. Non-ASCII characters in the path or
//! query are percent-encoded as UTF-8 (as browsers do); in the host they
//! are an error (no IDNA).
//!
//! Not supported, each with its own error: `https`, userinfo
//! (`user:pass@host`, RFC 9110 §4.2.4 deprecates it), IPv6 literals
//! (`[::1]`), and internationalised domain names.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The default port of `http` (RFC 9110 §4.2.1).
pub const DEFAULT_PORT: u16 = 80;

/// The longest DNS name, in text without a trailing dot (RFC 1035 §2.3.4:
/// 255 octets on the wire).
const MAX_HOST_LEN: usize = 253;
/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` in front.
    #[error("missing scheme: expected http://HOST[:PORT][/PATH]")]
    MissingScheme,
    /// `https://`: there is no TLS here.
    #[error("https is not supported (no TLS); use an http:// URL")]
    HttpsUnsupported,
    /// A scheme other than http.
    #[error("unsupported scheme {0:?}: only http is supported")]
    UnsupportedScheme(String),
    /// `user[:password]@` before the host (RFC 9110 §4.2.4).
    #[error("user information (user@host) in URLs is not supported")]
    UserinfoUnsupported,
    /// An IPv6 literal (`[...]`).
    #[error("IPv6 addresses are not supported (the stack is IPv4 only)")]
    Ipv6Unsupported,
    /// Nothing between `//` and the path.
    #[error("empty host")]
    EmptyHost,
    /// The host is neither an IPv4 literal nor a valid DNS name.
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The port is not a number in 1..=65535.
    #[error("invalid port {0:?}: expected a number from 1 to 65535")]
    InvalidPort(String),
    /// A space or a control character (which would break the request
    /// line), or a character not allowed where it stands.
    #[error("invalid character {ch:?} at offset {at}")]
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Its byte offset in the input.
        at: usize,
    },
    /// A `%` not followed by two hexadecimal digits (RFC 3986 §2.1).
    #[error("bad percent-encoding at offset {0}")]
    BadPercentEncoding(usize),
}

/// Where a URL points: an address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 literal.
    Ipv4(Ipv4Addr),
    /// A DNS name, lowercased, as written otherwise (a trailing dot kept).
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(a) => a.fmt(f),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// An absolute `http` URL, ready to be requested.
///
/// Its [`Display`](fmt::Display) is the normalised URL (lowercase scheme
/// and host, port only when not 80, no fragment), which parses back to the
/// same `Url`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    host: Host,
    port: u16,
    path: String,
    query: Option<String>,
}

impl Url {
    /// Parses an absolute `http` URL.
    pub fn parse(input: &str) -> Result<Url, UrlError> {
        let rest = strip_scheme(input)?;
        let offset = input.len() - rest.len();
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, port) = parse_authority(&rest[..end], offset)?;
        let (path, query) = parse_path_and_query(&rest[end..], offset + end)?;
        Ok(Url {
            host,
            port,
            path: if path.is_empty() {
                "/".to_string()
            } else {
                remove_dot_segments(&path)
            },
            query,
        })
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port (80 unless the URL says otherwise).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, without its `?` (`Some("")` for a bare `?`).
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The request-target in origin-form (RFC 9112 §3.2.1): the path and
    /// the query.
    pub fn request_target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// The value of the `Host` header (RFC 9110 §7.2): the host, and the
    /// port when it is not 80.
    pub fn authority(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `other` has the same host and port (the same origin, the
    /// scheme being always http).
    pub fn same_origin(&self, other: &Url) -> bool {
        self.host == other.host && self.port == other.port
    }

    /// Resolves `reference` (a `Location` value, say) against this URL
    /// (RFC 3986 §5.2.2): an absolute URL stands alone, `//host/...`
    /// keeps the scheme, `/path` keeps the authority, and a relative path
    /// is merged with this URL's path (§5.2.3), dot segments removed. A
    /// fragment in `reference` is dropped.
    pub fn join(&self, reference: &str) -> Result<Url, UrlError> {
        if has_scheme(reference) {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("http:{reference}"));
        }
        let (path, query) = parse_path_and_query(reference, 0)?;
        let (path, query) = if path.is_empty() {
            (self.path.clone(), query.or_else(|| self.query.clone()))
        } else if path.starts_with('/') {
            (remove_dot_segments(&path), query)
        } else {
            // Merge (§5.2.3): the base path up to its last '/'.
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            (remove_dot_segments(&format!("{dir}{path}")), query)
        };
        Ok(Url {
            host: self.host.clone(),
            port: self.port,
            path,
            query,
        })
    }
}

impl FromStr for Url {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Url, UrlError> {
        Url::parse(s)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// Whether `s` starts with `scheme ":"` (RFC 3986 §3.1).
fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(colon) => is_scheme(&s[..colon]),
        None => false,
    }
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// Checks the scheme and returns what follows `http://`.
fn strip_scheme(input: &str) -> Result<&str, UrlError> {
    let Some(colon) = input.find(':') else {
        return Err(UrlError::MissingScheme);
    };
    let scheme = &input[..colon];
    if !is_scheme(scheme) {
        return Err(UrlError::MissingScheme);
    }
    if scheme.eq_ignore_ascii_case("https") {
        return Err(UrlError::HttpsUnsupported);
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(UrlError::UnsupportedScheme(scheme.to_ascii_lowercase()));
    }
    input[colon + 1..]
        .strip_prefix("//")
        .ok_or(UrlError::MissingScheme)
}

/// `host [ ":" port ]`, `offset` being where it starts in the input.
fn parse_authority(authority: &str, offset: usize) -> Result<(Host, u16), UrlError> {
    if authority.contains('@') {
        return Err(UrlError::UserinfoUnsupported);
    }
    if authority.starts_with('[') {
        return Err(UrlError::Ipv6Unsupported);
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) => (&authority[..i], parse_port(&authority[i + 1..])?),
        None => (authority, DEFAULT_PORT),
    };
    if host.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    if let Some((at, ch)) = host.char_indices().find(|&(_, c)| is_forbidden(c)) {
        return Err(UrlError::InvalidCharacter {
            ch,
            at: offset + at,
        });
    }
    Ok((parse_host(host)?, port))
}

/// A port: empty means the default (RFC 3986 §3.2.3).
fn parse_port(s: &str) -> Result<u16, UrlError> {
    if s.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    let bad = || UrlError::InvalidPort(s.to_string());
    if s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

fn parse_host(host: &str) -> Result<Host, UrlError> {
    let invalid = |reason| UrlError::InvalidHost {
        host: host.to_string(),
        reason,
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    let last_label = name.rsplit('.').next().unwrap_or(name);
    if !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit()) {
        // RFC 3986 §3.2.2: a registered name cannot look like an address;
        // anything that ends in a number must be an IPv4 literal.
        return host
            .parse::<Ipv4Addr>()
            .map(Host::Ipv4)
            .map_err(|_| invalid("not a valid IPv4 address"));
    }
    if name.len() > MAX_HOST_LEN {
        return Err(invalid("longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(invalid("label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "only letters, digits, '-', '_' and '.' are allowed in a host name",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with '-'"));
        }
    }
    Ok(Host::Name(host.to_ascii_lowercase()))
}

/// Spaces and control characters: never allowed anywhere in a URL here.
fn is_forbidden(c: char) -> bool {
    c == ' ' || c.is_control()
}

/// Splits `[path][?query][#fragment]` (what follows the authority, or a
/// relative reference), checking every character and percent-encoding
/// non-ASCII ones. Returns the path (possibly empty) and the query.
fn parse_path_and_query(s: &str, offset: usize) -> Result<(String, Option<String>), UrlError> {
    let s = &s[..s.find('#').unwrap_or(s.len())];
    let (path, query) = match s.find('?') {
        Some(q) => (&s[..q], Some((&s[q + 1..], offset + q + 1))),
        None => (s, None),
    };
    let path = encode_component(path, offset)?;
    let query = match query {
        Some((q, at)) => Some(encode_component(q, at)?),
        None => None,
    };
    Ok((path, query))
}

/// Checks a path or query: refuses spaces and controls, checks `%XX`,
/// and percent-encodes non-ASCII characters as UTF-8.
fn encode_component(s: &str, offset: usize) -> Result<String, UrlError> {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    for (i, c) in s.char_indices() {
        if is_forbidden(c) {
            return Err(UrlError::InvalidCharacter {
                ch: c,
                at: offset + i,
            });
        }
        if c == '%' {
            let hex = |j: usize| bytes.get(i + j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(1) && hex(2)) {
                return Err(UrlError::BadPercentEncoding(offset + i));
            }
        }
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut utf8 = [0u8; 4];
            for b in c.encode_utf8(&mut utf8).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986 §5.2.4);
/// `..` never climbs above the root.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A final `.` or `..` leaves the path ending in '/'.
        if i == last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parts_of_a_full_url() {
        let u = url("HTTP://Example.COM:8080/a/b%20c?x=1&y=%2F#frag");
        assert_eq!(u.host(), &Host::Name("example.com".into()));
        assert_eq!(u.port(), 8080);
        assert_eq!(u.path(), "/a/b%20c");
        assert_eq!(u.query(), Some("x=1&y=%2F"));
        assert_eq!(u.request_target(), "/a/b%20c?x=1&y=%2F");
        assert_eq!(u.authority(), "example.com:8080");
        assert_eq!(u.to_string(), "http://example.com:8080/a/b%20c?x=1&y=%2F");
    }

    #[test]
    fn defaults_and_literals() {
        let u = url("http://192.0.2.7");
        assert_eq!(u.host(), &Host::Ipv4(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!((u.port(), u.path(), u.query()), (80, "/", None));
        assert_eq!(u.authority(), "192.0.2.7");
        assert_eq!(url("http://h:/").port(), 80);
        assert_eq!(url("http://h:80/").to_string(), "http://h/");
        assert_eq!(url("http://h?q").request_target(), "/?q");
        assert_eq!(url("http://h/?").query(), Some(""));
        assert_eq!(url("http://h#f").to_string(), "http://h/");
        assert_eq!(url("http://h.example.").authority(), "h.example.");
        assert_eq!(url("http://a_b.example/").authority(), "a_b.example");
        assert_eq!(url("http://h:65535/").port(), 65535);
        assert_eq!(url("http://h/ü?é").request_target(), "/%C3%BC?%C3%A9");
    }

    #[test]
    fn refusals() {
        let err = |s: &str| Url::parse(s).unwrap_err();
        assert_eq!(err("https://example.com/"), UrlError::HttpsUnsupported);
        assert_eq!(err("HTTPS://example.com/"), UrlError::HttpsUnsupported);
        assert_eq!(err("ftp://h/"), UrlError::UnsupportedScheme("ftp".into()));
        assert_eq!(err("example.com/x"), UrlError::MissingScheme);
        assert_eq!(err("http:/h/"), UrlError::MissingScheme);
        assert_eq!(err("1http://h/"), UrlError::MissingScheme);
        assert_eq!(err(""), UrlError::MissingScheme);
        assert_eq!(err("http://u:p@h/"), UrlError::UserinfoUnsupported);
        assert_eq!(err("http://[::1]:80/"), UrlError::Ipv6Unsupported);
        assert_eq!(err("http:///x"), UrlError::EmptyHost);
        assert_eq!(err("http://:80/"), UrlError::EmptyHost);
        for port in ["0", "65536", "99999999999", "8o", "-1", "+80"] {
            assert_eq!(
                err(&format!("http://h:{port}/")),
                UrlError::InvalidPort(port.into())
            );
        }
        for host in [
            "a..b",
            ".a",
            "-a.b",
            "a-.b",
            "a.b$",
            "1.2.3",
            "256.1.1.1",
            "01.2.3.4",
            "a.123",
            "exämple.com",
        ] {
            assert!(
                matches!(
                    err(&format!("http://{host}/")),
                    UrlError::InvalidHost { .. }
                ),
                "{host}"
            );
        }
        let long_label = "a".repeat(64);
        assert!(matches!(
            err(&format!("http://{long_label}.com/")),
            UrlError::InvalidHost { .. }
        ));
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert_eq!(long_name.len(), 259);
        assert!(matches!(
            err(&format!("http://{long_name}/")),
            UrlError::InvalidHost { .. }
        ));
        assert_eq!(
            err("http://h/a b"),
            UrlError::InvalidCharacter { ch: ' ', at: 10 }
        );
        assert_eq!(
            err("http://h/?a\r\nb"),
            UrlError::InvalidCharacter { ch: '\r', at: 11 }
        );
        assert_eq!(
            err("http://h\t/"),
            UrlError::InvalidCharacter { ch: '\t', at: 8 }
        );
        assert_eq!(err("http://h/%zz"), UrlError::BadPercentEncoding(9));
        assert_eq!(err("http://h/?%4"), UrlError::BadPercentEncoding(10));
        // A refused URL's message says what to do.
        assert!(
            err("https://x/")
                .to_string()
                .contains("https is not supported")
        );
    }

    #[test]
    fn dot_segments() {
        assert_eq!(url("http://h/a/./b/../c").path(), "/a/c");
        assert_eq!(url("http://h/../../x").path(), "/x");
        assert_eq!(url("http://h/a/..").path(), "/");
        assert_eq!(url("http://h/a/b/.").path(), "/a/b/");
        assert_eq!(url("http://h/a//b").path(), "/a//b");
        assert_eq!(url("http://h/.a/..b/").path(), "/.a/..b/");
    }

    /// RFC 3986 §5.4: every example with an http result.
    #[test]
    fn rfc3986_reference_resolution() {
        let base = url("http://a/b/c/d;p?q");
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("g?y#s", "http://a/b/c/g?y"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            // §5.4.2, abnormal examples.
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g"),
            ("g#s/../x", "http://a/b/c/g"),
            ("http:g", "MissingScheme"),
            ("HTTP://Other:81/x", "http://other:81/x"),
        ];
        for (reference, expected) in cases {
            let got = match base.join(reference) {
                Ok(u) => u.to_string(),
                Err(e) => format!("{e:?}"),
            };
            assert_eq!(got, expected, "{reference:?}");
        }
        assert_eq!(
            base.join("https://a/").unwrap_err(),
            UrlError::HttpsUnsupported
        );
        assert_eq!(
            base.join("/a b").unwrap_err(),
            UrlError::InvalidCharacter { ch: ' ', at: 2 }
        );
        let with_port = url("http://a:8080/x/y");
        assert_eq!(
            with_port.join("z").unwrap().to_string(),
            "http://a:8080/x/z"
        );
        assert!(with_port.same_origin(&with_port.join("/q").unwrap()));
        assert!(!with_port.same_origin(&url("http://a/")));
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9_-]{0,10}[a-z0-9])?"
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(label(), 1..5).prop_map(|l| l.join("."))
    }

    fn host() -> impl Strategy<Value = Host> {
        prop_oneof![
            any::<u32>().prop_map(|a| Host::Ipv4(Ipv4Addr::from(a))),
            name().prop_map(Host::Name),
        ]
    }

    /// Path segments that are neither `.` nor `..`, with `%XX` escapes.
    fn path() -> impl Strategy<Value = String> {
        let segment = "([a-zA-Z0-9_~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,8}"
            .prop_filter("dot segment", |s| s != "." && s != "..");
        prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn query() -> impl Strategy<Value = Option<String>> {
        prop::option::of("([a-zA-Z0-9/?=&.-]|%[0-9a-f]{2}){0,12}")
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "(?s).{0,60}") {
            let _ = Url::parse(&s);
            let _ = url("http://a/b/c").join(&s);
        }

        #[test]
        fn parse_never_panics_on_http_prefixed(s in "http://[ -~\u{80}-\u{10ffff}]{0,60}") {
            if let Ok(u) = Url::parse(&s) {
                // Whatever parses prints as a URL that parses to itself.
                prop_assert_eq!(Url::parse(&u.to_string()), Ok(u));
            }
        }

        #[test]
        fn parts_round_trip(
            host in host(),
            port in 1u16..=u16::MAX,
            path in path(),
            query in query(),
            fragment in prop::option::of("[a-z]{0,5}"),
            upper_scheme in any::<bool>(),
        ) {
            let scheme = if upper_scheme { "HTTP" } else { "http" };
            let mut s = format!("{scheme}://{host}:{port}{path}");
            if let Some(q) = &query {
                s.push('?');
                s.push_str(q);
            }
            if let Some(f) = &fragment {
                s.push('#');
                s.push_str(f);
            }
            let u = Url::parse(&s).unwrap();
            prop_assert_eq!(u.host(), &host);
            prop_assert_eq!(u.port(), port);
            prop_assert_eq!(u.path(), path.as_str());
            prop_assert_eq!(u.query(), query.as_deref());
            prop_assert_eq!(Url::parse(&u.to_string()), Ok(u));
        }
    }
}
