//! A [`Handler`] serving the files below a directory (RFC 9110 §9.3.1,
//! §9.3.2).
//!
//! GET and HEAD only; a file is streamed from disk with Content-Length,
//! a Content-Type guessed from its extension, and Last-Modified. A
//! directory is served as its `index.html`; a directory named without
//! the trailing slash is redirected (301) to the name with it, so that
//! relative links in the index resolve (the redirect's path starts with
//! one slash however many the request had, so that it cannot name
//! another host). The path is percent-decoded
//! (RFC 3986 §2.1) and the query ignored.
//!
//! Nothing outside the root is served: `..` segments (after decoding),
//! backslashes and NUL bytes are refused with 403, and the resolved path
//! is canonicalized and must still lie under the canonical root, so a
//! symbolic link cannot lead out either. Only regular files are served: a
//! FIFO, socket or device is refused with 403, judged on the file as
//! opened (without blocking), so that one swapped in after the lookup is
//! refused too; the Content-Length is that opened file's size.
//!
//! Not implemented: directory listings, ranges, conditional requests
//! (If-Modified-Since, ETag), content negotiation and compression.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::server::{Handler, Request, Response, format_http_date};

/// Serves the files below a directory.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
}

/// Why a path was not served, as a status.
type Refusal = u16;

impl StaticFiles {
    /// Serves `root`, which must be a directory. The path is
    /// canonicalized now, so the root may not move later.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let root = fs::canonicalize(root)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFiles { root })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a request path names, or the status refusing it; a
    /// directory named without its trailing slash is `Ok(None)`.
    fn resolve(&self, path: &str) -> Result<Option<PathBuf>, Refusal> {
        let decoded = percent_decode(path).ok_or(400u16)?;
        let decoded = String::from_utf8(decoded).map_err(|_| 404u16)?;
        if decoded.contains(['\0', '\\']) {
            return Err(403);
        }
        let mut candidate = self.root.clone();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(403),
                name => candidate.push(name),
            }
        }
        let found = self.inside_root(&candidate)?;
        let meta = fs::metadata(&found).map_err(|e| io_status(&e))?;
        if meta.is_dir() {
            if !path.ends_with('/') {
                return Ok(None);
            }
            let index = self.inside_root(&found.join("index.html"))?;
            let meta = fs::metadata(&index).map_err(|e| io_status(&e))?;
            return if meta.is_file() {
                Ok(Some(index))
            } else {
                Err(404)
            };
        }
        if !meta.is_file() {
            // A device, socket or FIFO (opening a FIFO would block).
            return Err(403);
        }
        Ok(Some(found))
    }

    /// `path` with every link resolved, if that is under the root.
    fn inside_root(&self, path: &Path) -> Result<PathBuf, Refusal> {
        let canonical = fs::canonicalize(path).map_err(|e| io_status(&e))?;
        if canonical.starts_with(&self.root) {
            Ok(canonical)
        } else {
            log::debug!("{} leads outside the root", path.display());
            Err(403)
        }
    }
}

/// The status for a failed file system lookup.
fn io_status(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::PermissionDenied => 403,
        // A name longer than the file system allows names nothing.
        io::ErrorKind::NotFound
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidFilename => 404,
        _ => {
            log::warn!("static file lookup failed: {e}");
            500
        }
    }
}

impl Handler for StaticFiles {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        if req.method() != "GET" && req.method() != "HEAD" {
            return Response::error(405).with_header("Allow", "GET, HEAD");
        }
        let path = match self.resolve(req.path()) {
            Ok(Some(found)) => found,
            Ok(None) => {
                // One leading slash: `//name/` would be a network-path
                // reference (RFC 3986 §4.2), sending the client to the
                // host `name` (an open redirect).
                let mut location = format!("/{}/", req.path().trim_start_matches('/'));
                if let Some(q) = req.query() {
                    location.push('?');
                    location.push_str(q);
                }
                return Response::error(301).with_header("Location", location);
            }
            Err(status) => return Response::error(status),
        };
        let (file, meta) = match open_regular(&path) {
            Ok(opened) => opened,
            Err(status) => return Response::error(status),
        };
        let mut response = Response::stream(200, content_type(&path), file, Some(meta.len()));
        if let Ok(modified) = meta.modified() {
            response = response.with_header("Last-Modified", format_http_date(modified));
        }
        response
    }
}

/// Opens `path` for reading if it is a regular file, judged on the file
/// opened rather than on an earlier lookup (the name may have been
/// replaced since). The open does not block: opening a FIFO for reading
/// would wait for a writer, forever; on a regular file the flag changes
/// nothing.
fn open_regular(path: &Path) -> Result<(File, Metadata), Refusal> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| io_status(&e))?;
    let meta = file.metadata().map_err(|e| io_status(&e))?;
    if !meta.is_file() {
        log::debug!("{} is not a regular file", path.display());
        return Err(403);
    }
    Ok((file, meta))
}

/// Decodes `%XX` escapes (RFC 3986 §2.1); `None` for a `%` not followed
/// by two hex digits.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The media type for a file name's extension (RFC 9110 §8.3), text
/// types in UTF-8; `application/octet-stream` for anything else.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/vnd.microsoft.icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::http::server::Body;
    use crate::application::http::{Headers, RequestHead, Version};
    use std::io::Read;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh directory under the system's temporary directory, removed
    /// when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("netstrata-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// root/www with files, and a secret beside it.
    fn site() -> (TempDir, StaticFiles) {
        let tmp = TempDir::new("static");
        let www = tmp.0.join("www");
        fs::create_dir_all(www.join("docs/empty")).unwrap();
        fs::write(www.join("index.html"), "<h1>home</h1>").unwrap();
        fs::write(www.join("docs/index.html"), "docs").unwrap();
        fs::write(www.join("docs/a b.txt"), "spaced").unwrap();
        fs::write(www.join("style.CSS"), "p{}").unwrap();
        fs::write(www.join("data.bin"), [0u8, 1, 2]).unwrap();
        fs::write(tmp.0.join("secret.txt"), "secret").unwrap();
        let files = StaticFiles::new(&www).unwrap();
        (tmp, files)
    }

    fn get(files: &StaticFiles, method: &str, target: &str) -> (u16, Headers, Vec<u8>) {
        let head = RequestHead {
            method: method.into(),
            target: target.into(),
            version: Version::Http11,
            headers: Headers::new(),
        };
        let mut empty = io::empty();
        let mut req = Request::new(head, "192.0.2.1:1".parse().unwrap(), &mut empty);
        let resp = files.handle(&mut req);
        let body = match resp.body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) => b,
            Body::Stream { mut reader, length } => {
                let mut v = Vec::new();
                reader.read_to_end(&mut v).unwrap();
                assert_eq!(length, Some(v.len() as u64));
                v
            }
        };
        (resp.status, resp.headers, body)
    }

    #[test]
    fn serves_files_and_indexes() {
        let (_tmp, files) = site();
        let (status, headers, body) = get(&files, "GET", "/");
        assert_eq!((status, body.as_slice()), (200, &b"<h1>home</h1>"[..]));
        assert_eq!(
            headers.get("content-type"),
            Some(&b"text/html; charset=utf-8"[..])
        );
        assert!(headers.contains("last-modified"));
        assert_eq!(get(&files, "GET", "/docs/").2, b"docs");
        assert_eq!(get(&files, "GET", "/docs/a%20b.txt?x=1").2, b"spaced");
        let (_, headers, _) = get(&files, "GET", "/style.CSS");
        assert_eq!(
            headers.get("content-type"),
            Some(&b"text/css; charset=utf-8"[..])
        );
        let (_, headers, _) = get(&files, "HEAD", "/data.bin");
        assert_eq!(
            headers.get("content-type"),
            Some(&b"application/octet-stream"[..])
        );
    }

    #[test]
    fn directories_redirect_and_need_an_index() {
        let (_tmp, files) = site();
        let (status, headers, _) = get(&files, "GET", "/docs?q=1");
        assert_eq!(status, 301);
        assert_eq!(headers.get("location"), Some(&b"/docs/?q=1"[..]));
        for target in ["//docs", "///docs"] {
            let (status, headers, _) = get(&files, "GET", target);
            assert_eq!(status, 301);
            assert_eq!(headers.get("location"), Some(&b"/docs/"[..]), "{target}");
        }
        assert_eq!(get(&files, "GET", "/docs/empty/").0, 404);
        assert_eq!(get(&files, "GET", "/missing.txt").0, 404);
        assert_eq!(get(&files, "GET", "/index.html/x").0, 404);
        // Longer than a file name may be: not a server error.
        assert_eq!(get(&files, "GET", &format!("/{}", "a".repeat(300))).0, 404);
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let (_tmp, files) = site();
        let (status, headers, _) = get(&files, "POST", "/");
        assert_eq!(status, 405);
        assert_eq!(headers.get("allow"), Some(&b"GET, HEAD"[..]));
    }

    #[test]
    fn nothing_outside_the_root() {
        let (_tmp, files) = site();
        for target in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/docs/../../secret.txt",
            "/..%5csecret.txt",
            "/docs%00.txt",
            "/a\\..\\secret.txt",
        ] {
            let (status, _, body) = get(&files, "GET", target);
            assert_eq!(status, 403, "{target}");
            assert!(!body.starts_with(b"secret"), "{target}");
        }
        assert_eq!(get(&files, "GET", "/%zz").0, 400);
        assert_eq!(get(&files, "GET", "/%").0, 400);
        assert_eq!(get(&files, "GET", "/%ff").0, 404);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_cannot_escape() {
        let (tmp, files) = site();
        let www = tmp.0.join("www");
        std::os::unix::fs::symlink(tmp.0.join("secret.txt"), www.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(&tmp.0, www.join("up")).unwrap();
        std::os::unix::fs::symlink(www.join("docs/a b.txt"), www.join("inside.txt")).unwrap();
        assert_eq!(get(&files, "GET", "/leak.txt").0, 403);
        assert_eq!(get(&files, "GET", "/up/secret.txt").0, 403);
        assert_eq!(get(&files, "GET", "/inside.txt").2, b"spaced");
    }

    /// A file replaced by a FIFO between the lookup and the open: the open
    /// must neither block (no writer will come) nor serve it. Devices are
    /// refused likewise.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_opened_and_without_blocking() {
        use std::sync::mpsc;
        use std::time::Duration;
        let (_tmp, files) = site();
        let path = files.resolve("/data.bin").unwrap().unwrap();
        fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = mpsc::channel();
        let opening = path.clone();
        std::thread::spawn(move || tx.send(open_regular(&opening).map(drop)));
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(opened) => assert_eq!(opened, Err(403)),
            Err(_) => {
                // Release the blocked open with a writer, then fail.
                let _ = OpenOptions::new().write(true).open(&path);
                panic!("opening a FIFO blocked");
            }
        }
        assert_eq!(open_regular(Path::new("/dev/zero")).map(drop), Err(403));
        assert_eq!(get(&files, "GET", "/data.bin").0, 403);
        let (status, _, body) = get(&files, "GET", "/docs/a%20b.txt");
        assert_eq!((status, body.as_slice()), (200, &b"spaced"[..]));
    }

    #[test]
    fn root_must_be_a_directory() {
        let (tmp, _files) = site();
        assert!(StaticFiles::new(tmp.0.join("secret.txt")).is_err());
        assert!(StaticFiles::new(tmp.0.join("nowhere")).is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b%2F").unwrap(), b"/a b/");
        assert_eq!(percent_decode("%e2%82%ac").unwrap(), "€".as_bytes());
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
    }
}
