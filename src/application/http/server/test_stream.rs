//! A byte stream for the server's unit tests.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::time::Duration;

use crate::application::net::ByteStream;

/// Reads come from `source`, which is given the read timeout last set;
/// the timeouts set are recorded; writes are recorded (at most `write_piece` bytes per write, each after
/// `write_delay`, as a client slow to read would take them), and the
/// other settings do nothing.
pub(super) struct TestStream<F> {
    source: F,
    pub(super) read_timeouts: RefCell<Vec<Duration>>,
    pub(super) write_timeouts: RefCell<Vec<Duration>>,
    pub(super) written: Vec<u8>,
    write_piece: usize,
    write_delay: Duration,
}

impl<F: FnMut(&mut [u8], Option<Duration>) -> io::Result<usize>> TestStream<F> {
    pub(super) fn new(source: F) -> TestStream<F> {
        TestStream {
            source,
            read_timeouts: RefCell::new(Vec::new()),
            write_timeouts: RefCell::new(Vec::new()),
            written: Vec::new(),
            write_piece: usize::MAX,
            write_delay: Duration::ZERO,
        }
    }

    /// Each write takes `delay` and at most `piece` bytes.
    pub(super) fn with_slow_writes(mut self, piece: usize, delay: Duration) -> TestStream<F> {
        self.write_piece = piece.max(1);
        self.write_delay = delay;
        self
    }
}

impl<F: FnMut(&mut [u8], Option<Duration>) -> io::Result<usize>> Read for TestStream<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let timeout = self.read_timeouts.borrow().last().copied();
        (self.source)(out, timeout)
    }
}

impl<F> Write for TestStream<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        std::thread::sleep(self.write_delay);
        let n = data.len().min(self.write_piece);
        self.written.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&mut [u8], Option<Duration>) -> io::Result<usize>> ByteStream for &mut TestStream<F> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if let Some(t) = timeout {
            self.read_timeouts.borrow_mut().push(t);
        }
        Ok(())
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if let Some(t) = timeout {
            self.write_timeouts.borrow_mut().push(t);
        }
        Ok(())
    }
    fn set_nodelay(&self, _: bool) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}
