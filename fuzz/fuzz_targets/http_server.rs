//! The HTTP server's handling of one connection ([`serve_connection`]),
//! fed a fuzzed client byte stream through an in-memory [`ByteStream`].
//!
//! Input: one byte that seeds how the stream is cut into reads (and,
//! with its bit 0x40, where reads time out) and picks small or default
//! limits (bit 0x80); then the bytes the client sends, after which the
//! client closes. The handler's behaviour is chosen by the request path
//! (see [`handle`]): plain text, echoing the body, reading part of it,
//! chunked and streamed responses, 204, 304, `Connection: close`,
//! invalid fields and an invalid status.
//!
//! Checked, beyond "no panic" and "returns": when the connection ends
//! without an I/O error, what the server wrote is a sequence of
//! well-formed responses (heads that parse, bodies framed as their heads
//! say, nothing after the last), one final response per request it
//! counted.
#![no_main]

use std::cell::Cell;
use std::io::{self, Cursor, Read, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netstrata::application::http::server::{
    Body, Request, Response, ServerConfig, serve_connection,
};
use netstrata::application::http::{
    BodyKind, ChunkedDecoder, Limits, Status, parse_response, response_body_kind,
};
use netstrata::application::net::ByteStream;
use netstrata_fuzz::{Input, SplitMix};

/// A client that sends fixed bytes in seeded pieces, then closes; what
/// the server writes is kept.
struct Client<'a> {
    bytes: &'a [u8],
    cuts: SplitMix,
    /// Whether some reads time out instead of returning data.
    stalls: bool,
    written: Vec<u8>,
    write_shut: Cell<bool>,
}

impl Read for Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stalls && self.cuts.below(16) == 0 {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "fuzzed timeout"));
        }
        let n = (1 + self.cuts.below(64))
            .min(buf.len())
            .min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

impl Write for Client<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        assert!(!self.write_shut.get(), "write after shutdown");
        self.written.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ByteStream for &mut Client<'_> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        assert!(timeout != Some(Duration::ZERO), "zero read timeout");
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        assert!(timeout != Some(Duration::ZERO), "zero write timeout");
        Ok(())
    }

    fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.write_shut.set(true);
        Ok(())
    }
}

/// The handler: what it does depends on the first character of the path.
fn handle(req: &mut Request<'_>, methods: &Mutex<Vec<String>>) -> Response {
    methods.lock().unwrap().push(req.method().to_string());
    let choice = req.path().as_bytes().get(1).copied().unwrap_or(0) % 10;
    match choice {
        0 => Response::text(200, format!("hello {}\n", req.path())),
        1 => match req.body().read_to_vec() {
            Ok(body) => Response::bytes(200, "application/octet-stream", body),
            Err(_) => Response::error(400),
        },
        2 => {
            let mut part = [0u8; 16];
            let n = req.body().read(&mut part).unwrap_or(0);
            Response::text(200, format!("read {n}\n"))
        }
        3 => Response::stream(200, "text/plain", Cursor::new(vec![b'x'; 3000]), None),
        4 => Response::new(204),
        5 => Response::new(304).with_header("Content-Length", "1234"),
        6 => Response::text(200, "bye\n").with_header("Connection", "close"),
        7 => Response::text(200, "odd\n")
            .with_header("X-Split", "a\r\nInjected: yes")
            .with_header("Bad Name", "v")
            .with_reason("Fine\r\n"),
        8 => Response::new(99),
        _ => Response::new(200).with_body(Body::stream(Cursor::new(b"12345".to_vec()), Some(5))),
    }
}

/// Splits what the server wrote into responses and checks each is
/// well-formed; returns how many final (non-1xx) responses there were.
fn check_output(mut out: &[u8], methods: &[String]) -> u64 {
    let limits = Limits {
        max_header_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut finals = 0u64;
    while !out.is_empty() {
        let (head, used) = match parse_response(out, &limits) {
            Ok(Status::Complete(head, used)) => (head, used),
            other => panic!("server wrote a bad response head: {other:?}"),
        };
        out = &out[used..];
        if (100..200).contains(&head.status) {
            continue;
        }
        // A response after the handler's ones is the server's own
        // refusal, always with its body.
        let method = methods.get(finals as usize).map_or("GET", String::as_str);
        finals += 1;
        match response_body_kind(&head, method).expect("server wrote bad framing") {
            BodyKind::None => {}
            BodyKind::ContentLength(n) => {
                let n = usize::try_from(n).unwrap();
                assert!(n <= out.len(), "body shorter than its Content-Length");
                out = &out[n..];
            }
            BodyKind::Chunked => {
                let mut decoder = ChunkedDecoder::new(&Limits::default());
                let used = decoder
                    .decode(out, &mut Vec::new())
                    .expect("server wrote a bad chunked body");
                assert!(decoder.is_done(), "chunked body not finished");
                out = &out[used..];
            }
            BodyKind::CloseDelimited => out = &[],
        }
    }
    finals
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let seed = input.u8();
    let mut client = Client {
        bytes: input.rest(),
        cuts: SplitMix::new(u64::from(seed)),
        stalls: seed & 0x40 != 0,
        written: Vec::new(),
        write_shut: Cell::new(false),
    };
    let mut config = ServerConfig::default();
    if seed & 0x80 != 0 {
        config.limits = Limits {
            max_request_line: 64,
            max_header_count: 4,
            max_header_bytes: 256,
            max_chunk_line: 16,
            max_trailer_bytes: 32,
        };
        config.max_body_size = 64;
        config.max_drain = 32;
        config.max_requests_per_connection = 3;
    }
    let methods = Mutex::new(Vec::new());
    let handler = |req: &mut Request<'_>| handle(req, &methods);
    let peer: SocketAddr = "192.0.2.2:40000".parse().unwrap();
    let result = serve_connection(&mut client, peer, &handler, &config);
    if let Ok(stats) = result {
        let methods = methods.into_inner().unwrap();
        let finals = check_output(&client.written, &methods);
        assert_eq!(finals, stats.requests, "responses written vs counted");
        assert_eq!(stats.bytes_written, client.written.len() as u64);
    }
});
