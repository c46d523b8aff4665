//! Keeps the layering true: dependencies point down only.
//!
//! Every `.rs` file under `src/` is scanned (comments, strings and
//! character literals removed first) for paths into the crate:
//!
//! - `crate::X...` anywhere in code: `use` items, grouped `use
//!   crate::{a::.., b::..}`, and paths inside expressions and types such as
//!   `crate::link::arp_cache::ArpDrop::Failed`;
//! - `super::` chains, resolved against the file's module path and any
//!   inline `mod name { .. }` they sit in, so that `super::super::x` from
//!   inside a layer is caught when it climbs out of it.
//!
//! The rules (see /work/shared/STYLE.md, "The shape"):
//!
//! - layers, low to high: link < internet < transport < iface (the stack
//!   that wires the three together) < blocking (the runtime and std-like
//!   sockets, which own an interface) < tokio (the async adapter, which
//!   shares blocking's error mapping) < application (which uses only the
//!   blocking sockets); a layer may use itself and the layers below it;
//! - the shared crate-root modules (buf, checksum, error, rand, ratelimit,
//!   siphash, slab, time) may be used by anyone and use no layer and no wiring;
//! - the wiring (`lib.rs`, `sim.rs`) may use anything, and no layer or
//!   shared module may use it.
//!
//! A top-level module or crate-root item the table below does not know is
//! an error too, so that a new module is classified when it is added.
//!
//! The scanner is deliberately small (a tokenizer, no parser). Its own
//! tests, on synthetic source text, show that each kind of upward path is
//! caught and that comments and strings are ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a module sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Usable by anyone; uses no layer.
    Shared,
    /// A layer, by rank (low to high).
    Layer(u8),
    /// Wiring on top: uses anything; used by nothing in the layers.
    Wiring,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::Shared => f.write_str("shared"),
            Class::Layer(r) => f.write_str(LAYERS[usize::from(*r)]),
            Class::Wiring => f.write_str("wiring"),
        }
    }
}

/// The layers, low to high.
const LAYERS: [&str; 7] = [
    "link",
    "internet",
    "transport",
    "iface",
    "blocking",
    "tokio",
    "application",
];
const SHARED: [&str; 10] = [
    "buf",
    "checksum",
    "epoch",
    "error",
    "hash",
    "rand",
    "ratelimit",
    "siphash",
    "slab",
    "time",
];
const WIRING: [&str; 1] = ["sim"];

/// The class of a top-level module, if known.
fn classify(top: &str) -> Option<Class> {
    if let Some(rank) = LAYERS.iter().position(|l| *l == top) {
        return Some(Class::Layer(rank as u8));
    }
    if SHARED.contains(&top) {
        return Some(Class::Shared);
    }
    if WIRING.contains(&top) || top == "lib" {
        return Some(Class::Wiring);
    }
    None
}

/// Whether code of class `from` may use code of class `to`.
fn allowed(from: Class, to: Class) -> bool {
    match (from, to) {
        (Class::Wiring, _) => true,
        (_, Class::Wiring) => false,
        (Class::Shared, Class::Shared) => true,
        (Class::Shared, Class::Layer(_)) => false,
        (Class::Layer(_), Class::Shared) => true,
        (Class::Layer(a), Class::Layer(b)) => b <= a,
    }
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits Rust source into identifiers and punctuation, dropping
/// whitespace, comments (line, block — nested — and doc comments), string
/// literals (plain, byte, raw with any number of `#`), character and byte
/// literals, lifetimes and numbers.
fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    // Skips a quoted literal starting at the opening quote `c[i]`; escapes
    // are honoured. Returns the index after the closing quote.
    let skip_quoted = |mut i: usize, quote: char, line: &mut usize| -> usize {
        i += 1;
        while i < c.len() && c[i] != quote {
            if c[i] == '\n' {
                *line += 1;
            }
            if c[i] == '\\' {
                i += 1;
                if i < c.len() && c[i] == '\n' {
                    *line += 1;
                }
            }
            i += 1;
        }
        i + 1
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_quoted(i, '"', &mut line);
        } else if (ch == 'r' || (ch == 'b' && next == Some('r'))) && {
            // A raw string: r"..", r#".."#, br#".."#.
            let mut j = if ch == 'b' { i + 2 } else { i + 1 };
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            c.get(j) == Some(&'"') && (i == 0 || !is_ident_continue(c[i - 1]))
        } {
            let mut j = if ch == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '\n' {
                    line += 1;
                }
                if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if ch == 'b' && (next == Some('"') || next == Some('\'')) {
            i = skip_quoted(i + 1, next.unwrap_or('"'), &mut line);
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i = skip_quoted(i, '\'', &mut line);
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && is_ident_continue(c[i]) {
                    i += 1;
                }
            }
        } else if is_ident_start(ch) {
            let start = i;
            while i < c.len() && is_ident_continue(c[i]) {
                i += 1;
            }
            // `r#ident`: a raw identifier.
            if i == start + 1
                && ch == 'r'
                && c.get(i) == Some(&'#')
                && c.get(i + 1).is_some_and(|&n| is_ident_start(n))
            {
                i += 1;
                while i < c.len() && is_ident_continue(c[i]) {
                    i += 1;
                }
            }
            let raw = i > start + 2 && c[start + 1] == '#';
            let from = if raw { start + 2 } else { start };
            let word: String = c[from..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(word),
                line,
            });
        } else if ch.is_ascii_digit() {
            while i < c.len() && (is_ident_continue(c[i]) || c[i] == '.') {
                // Stop at `..` (a range) after a number.
                if c[i] == '.' && c.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
        } else if ch == ':' && next == Some(':') {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Scanner
// ---------------------------------------------------------------------------

/// One path into the crate found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    /// The top-level module the path reaches (or a crate-root item).
    target: String,
    /// The path as written, for the message.
    text: String,
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is(t: Option<&Token>, tok: &Tok) -> bool {
    t.map(|t| &t.tok) == Some(tok)
}

/// The first segments of the items of a `{ .. }` use group starting at
/// `toks[open]`: `{a::b, c, d::{e, f}}` gives a, c, d. Returns them and
/// the index after the closing brace.
fn group_heads(toks: &[Token], open: usize) -> (Vec<String>, usize) {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    let mut i = open;
    while i < toks.len() {
        match &toks[i].tok {
            Tok::Punct('{') => {
                depth += 1;
                if depth == 1 {
                    expect_head = true;
                }
            }
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return (heads, i + 1);
                }
            }
            Tok::Punct(',') if depth == 1 => expect_head = true,
            Tok::Ident(s) if depth == 1 && expect_head => {
                heads.push(s.clone());
                expect_head = false;
            }
            Tok::Punct('*') if depth == 1 && expect_head => {
                heads.push("*".to_owned());
                expect_head = false;
            }
            _ => {
                if depth == 1 {
                    expect_head = false;
                }
            }
        }
        i += 1;
    }
    (heads, i)
}

/// Every path into the crate in `src`, the text of the file whose module
/// path is `module` (e.g. `["transport", "udp", "table"]`; empty for
/// `lib.rs`). Each reference names the top-level module (or crate-root
/// item) it reaches.
fn references(module: &[String], src: &str) -> Vec<Reference> {
    let toks = tokenize(src);
    let mut refs = Vec::new();
    // Inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match &t.tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let Some(name) = ident(toks.get(i + 1))
                    && is(toks.get(i + 2), &Tok::Punct('{'))
                {
                    inline.push((name.to_owned(), depth + 1));
                }
            }
            // `crate::` (or `$crate::`) not preceded by `::` (so not
            // `foo::crate`, which is not valid anyway).
            Tok::Ident(kw)
                if kw == "crate"
                    && is(toks.get(i + 1), &Tok::PathSep)
                    && !(i > 0 && is(toks.get(i - 1), &Tok::PathSep)) =>
            {
                match toks.get(i + 2).map(|t| &t.tok) {
                    Some(Tok::Ident(x)) => refs.push(Reference {
                        line: t.line,
                        target: x.clone(),
                        text: format!("crate::{x}"),
                    }),
                    Some(Tok::Punct('{')) => {
                        let (heads, _) = group_heads(&toks, i + 2);
                        for h in heads {
                            if h != "self" {
                                refs.push(Reference {
                                    line: t.line,
                                    target: h.clone(),
                                    text: format!("crate::{{{h}, ..}}"),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            Tok::Ident(kw)
                if kw == "super"
                    && is(toks.get(i + 1), &Tok::PathSep)
                    && !(i > 0 && is(toks.get(i - 1), &Tok::PathSep)) =>
            {
                // Count the chain: super::super::...
                let mut k = 0;
                let mut j = i;
                while ident(toks.get(j)) == Some("super") && is(toks.get(j + 1), &Tok::PathSep) {
                    k += 1;
                    j += 2;
                }
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(n, _)| n.clone()))
                    .collect();
                let text = "super::".repeat(k);
                if k > here.len() {
                    refs.push(Reference {
                        line: t.line,
                        target: "<above the crate root>".to_owned(),
                        text,
                    });
                } else {
                    let base = &here[..here.len() - k];
                    let heads: Vec<String> = match toks.get(j).map(|t| &t.tok) {
                        Some(Tok::Ident(x)) => vec![x.clone()],
                        Some(Tok::Punct('{')) => group_heads(&toks, j).0,
                        Some(Tok::Punct('*')) => vec!["*".to_owned()],
                        _ => Vec::new(),
                    };
                    for h in heads {
                        let target = match base.first() {
                            Some(top) => top.clone(),
                            // At the crate root: the head is the top-level
                            // module (or root item); `*` or `self` is the
                            // whole root.
                            None if h == "*" || h == "self" => "lib".to_owned(),
                            None => h.clone(),
                        };
                        refs.push(Reference {
                            line: t.line,
                            target,
                            text: format!("{text}{h}"),
                        });
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    refs
}

/// Items re-exported at the crate root (`pub use m::{A, B};` in lib.rs),
/// mapped to the module they come from.
fn root_reexports(lib_rs: &str) -> BTreeMap<String, String> {
    let toks = tokenize(lib_rs);
    let mut map = BTreeMap::new();
    let mut i = 0;
    while i + 2 < toks.len() {
        if ident(toks.get(i)) == Some("use") {
            let mut j = i + 1;
            if ident(toks.get(j)) == Some("crate") && is(toks.get(j + 1), &Tok::PathSep) {
                j += 2;
            }
            if let Some(m) = ident(toks.get(j)) {
                // Every identifier up to the `;` that is the last segment of
                // an item names something re-exported from `m`.
                let mut k = j + 1;
                while k < toks.len() && !is(toks.get(k), &Tok::Punct(';')) {
                    if let Some(name) = ident(toks.get(k))
                        && !is(toks.get(k + 1), &Tok::PathSep)
                        && name != "self"
                        && name != "as"
                    {
                        map.insert(name.to_owned(), m.to_owned());
                    }
                    k += 1;
                }
                i = k;
            }
        }
        i += 1;
    }
    map
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The module path of a file relative to `src/`: `link/arp.rs` gives
/// `[link, arp]`, `link/mod.rs` gives `[link]`, `lib.rs` gives `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_owned();
        if stem != "mod" && !(parts.is_empty() && (stem == "lib" || stem == "main")) {
            parts.push(stem);
        }
    }
    parts
}

/// Checks one file: `rel` is its path under `src/`.
fn check_file(rel: &str, src: &str, reexports: &BTreeMap<String, String>) -> Vec<Violation> {
    let module = module_path(Path::new(rel));
    let top = module.first().map_or("lib", String::as_str);
    let mut out = Vec::new();
    let Some(from) = classify(top) else {
        out.push(Violation {
            file: rel.to_owned(),
            line: 1,
            message: format!(
                "top-level module `{top}` is not classified: add it to LAYERS, SHARED or \
                 WIRING in tests/layering.rs"
            ),
        });
        return out;
    };
    for r in references(&module, src) {
        let target_module = reexports
            .get(&r.target)
            .map_or(r.target.as_str(), String::as_str);
        let Some(to) = classify(target_module) else {
            out.push(Violation {
                file: rel.to_owned(),
                line: r.line,
                message: format!(
                    "`{}` reaches `{}`, which tests/layering.rs does not classify",
                    r.text, r.target
                ),
            });
            continue;
        };
        if !allowed(from, to) {
            out.push(Violation {
                file: rel.to_owned(),
                line: r.line,
                message: format!(
                    "{from} module uses {to} module `{target_module}` through `{}`",
                    r.text
                ),
            });
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut violations = Vec::new();
    let mut refs = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let rel = rel.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(f).expect("readable source");
        refs += references(&module_path(Path::new(&rel)), &text).len();
        violations.extend(check_file(&rel, &text, &reexports));
    }
    // The scan must actually see the crate's paths.
    assert!(
        refs > 50,
        "only {refs} crate paths found: is the scanner broken?"
    );
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------
// Tests of the scanner itself, on synthetic source text
// ---------------------------------------------------------------------------

fn reexports_fixture() -> BTreeMap<String, String> {
    root_reexports(
        "pub mod iface;\n\
         pub use iface::{Counters, Interface as Iface};\n\
         pub use time::{Duration, Instant};\n",
    )
}

fn violations(rel: &str, src: &str) -> Vec<Violation> {
    check_file(rel, src, &reexports_fixture())
}

#[test]
fn scanner_reads_root_reexports() {
    let m = reexports_fixture();
    assert_eq!(m.get("Counters").map(String::as_str), Some("iface"));
    assert_eq!(m.get("Iface").map(String::as_str), Some("iface"));
    assert_eq!(m.get("Instant").map(String::as_str), Some("time"));
}

#[test]
fn scanner_detects_upward_use() {
    let v = violations(
        "link/endpoint.rs",
        "use crate::buf::PacketBuf;\nuse crate::internet::Ipv4Repr;\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].line, 2);
    assert!(v[0].message.contains("internet"), "{}", v[0]);
}

#[test]
fn scanner_detects_upward_path_in_expression() {
    let v = violations(
        "internet/endpoint.rs",
        "fn f() {\n    let x = 1;\n    match y {\n        \
         crate::transport::udp::Thing::A => crate::link::arp_cache::ArpDrop::Failed,\n    }\n}\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].line, 4);
    assert!(v[0].message.contains("transport"), "{}", v[0]);
}

#[test]
fn scanner_detects_grouped_and_spaced_use() {
    let v = violations(
        "transport/udp/table.rs",
        "use crate::{buf::PacketBuf, internet::IpSender, blocking::{A, B}};\n\
         use crate :: application :: Http;\n",
    );
    let targets: Vec<_> = v.iter().map(|v| v.line).collect();
    assert_eq!(targets, vec![1, 2], "{v:?}");
    assert!(v[0].message.contains("`blocking`"), "{}", v[0]);
    assert!(v[1].message.contains("`application`"), "{}", v[1]);
}

#[test]
fn scanner_detects_super_chains_leaving_a_layer() {
    // From src/link/arp.rs, super::super is the crate root.
    let v = violations("link/arp.rs", "use super::super::internet::Ipv4Repr;\n");
    assert_eq!(v.len(), 1, "{v:?}");
    // Inside an inline module one more `super` is needed to get there.
    let v = violations(
        "link/arp.rs",
        "mod tests {\n    use super::super::ethernet::X;\n    use super::*;\n}\n\
         mod a { mod b { fn f() { super::super::super::super::transport::x(); } } }\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].line, 5);
    assert!(v[0].message.contains("transport"), "{}", v[0]);
    // A super chain that stays inside the layer is fine.
    assert!(violations("transport/udp/table.rs", "use super::packet::UdpRepr;\n").is_empty());
    // Climbing above the crate root is reported, not ignored.
    assert_eq!(
        violations("link/arp.rs", "use super::super::super::x;\n").len(),
        1
    );
}

#[test]
fn scanner_ignores_comments_and_strings() {
    let src = r####"
        // use crate::transport::X;
        /// use crate::transport::X;
        //! crate::blocking::Y
        /* crate::blocking::Y /* nested */ crate::blocking::Y */
        const A: &str = "crate::transport::X";
        const B: &str = r#"crate::transport::X "quoted" "#;
        const C: &[u8] = b"crate::blocking::Y";
        const D: char = '"';
        fn f<'a>(x: &'a str) -> &'a str { let r#type = x; r#type }
        use crate::link::Device;
    "####;
    assert!(violations("internet/x.rs", src).is_empty());
    // The same text uncommented is caught.
    assert_eq!(
        violations("internet/x.rs", "use crate::transport::X;").len(),
        1
    );
}

#[test]
fn scanner_enforces_shared_and_wiring_rules() {
    // Shared modules use no layer, but may use each other.
    assert_eq!(violations("buf.rs", "use crate::link::Device;").len(), 1);
    assert!(violations("ratelimit.rs", "use crate::time::Instant;").is_empty());
    // Nothing but wiring uses the wiring, directly or through a root
    // re-export.
    assert_eq!(violations("blocking/tcp.rs", "use crate::sim::X;").len(), 1);
    assert_eq!(
        violations("transport/x.rs", "use crate::iface::X;").len(),
        1
    );
    assert_eq!(violations("link/x.rs", "fn f(_: crate::Iface) {}").len(), 1);
    // The blocking layer sits on the stack (iface); the application only on
    // the blocking layer and below.
    assert!(violations("blocking/tcp.rs", "use crate::iface::Interface;").is_empty());
    assert_eq!(
        violations("blocking/tcp.rs", "use crate::application::dns::X;").len(),
        1
    );
    assert_eq!(
        violations("time.rs", "use crate::sim::Simulation;").len(),
        1
    );
    // A root re-export of a shared module is fine.
    assert!(violations("link/x.rs", "use crate::Instant;").is_empty());
    // Wiring may use anything.
    assert!(
        violations(
            "sim.rs",
            "use crate::blocking::X; use crate::link::Y; use crate::iface::Z;"
        )
        .is_empty()
    );
    // Downward and same-layer uses are fine.
    assert!(
        violations(
            "blocking/tcp.rs",
            "use crate::transport::tcp::Tcb; use crate::blocking::runtime::R; use crate::link::L;"
        )
        .is_empty()
    );
}

#[test]
fn scanner_rejects_unclassified_modules() {
    assert_eq!(violations("dns/mod.rs", "").len(), 1);
    assert_eq!(violations("link/x.rs", "use crate::mystery::X;").len(), 1);
}
