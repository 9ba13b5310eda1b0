//! Unix stream connections: accepted, each read as length-prefixed
//! frames on a thread of its own.

use super::receive::{MAX_DATAGRAM_BYTES, RECV_WAKE, receive};
use crate::shards::Shards;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Unix stream connections read at once; one more is closed as it comes
/// (its sender sees the send fail, and counts it).
const MAX_STREAMS: usize = 64;

/// Takes connections on a Unix stream socket until the server stops, each
/// read by [`receive_frames`] on a thread of its own; waits for those
/// before it returns.
#[cfg(unix)]
pub(super) fn accept_streams(
    listener: &std::os::unix::net::UnixListener,
    shards: &Arc<Shards>,
    shard: usize,
    stopping: &Arc<AtomicBool>,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut accepted = 0usize;
    while !stopping.load(Ordering::Relaxed) {
        connections.retain(|c| !c.is_finished());
        let Ok((stream, _)) = listener.accept() else {
            std::thread::sleep(RECV_WAKE);
            continue;
        };
        if connections.len() >= MAX_STREAMS {
            continue;
        }
        let (c, s) = (shards.clone(), stopping.clone());
        // Within Linux's 15 characters for a thread's name.
        let name = format!("collector-uds{}", accepted % 100);
        accepted += 1;
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || receive_frames(stream, &c, shard, &s));
        if let Ok(connection) = spawned {
            connections.push(connection);
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// Reads a Unix stream connection's frames (each a datagram after its
/// length, 4 bytes little-endian, as the Datadog agent reads them) into
/// the collector with [`receive`], until the peer closes it or the server
/// stops.
#[cfg(unix)]
fn receive_frames(
    stream: std::os::unix::net::UnixStream,
    shards: &Shards,
    shard: usize,
    stopping: &AtomicBool,
) {
    if (stream.set_nonblocking(false))
        .and_then(|()| stream.set_read_timeout(Some(RECV_WAKE)))
        .is_err()
    {
        return;
    }
    let frames = std::cell::RefCell::new(Frames::new(stream));
    receive(
        shards,
        shard,
        stopping,
        |buf| frames.borrow_mut().next(buf),
        |on| frames.borrow().stream.set_nonblocking(on),
    );
}

/// A Unix stream read as frames: the bytes read and not yet handed out,
/// kept across reads that end within a frame.
#[cfg(unix)]
struct Frames {
    stream: std::os::unix::net::UnixStream,
    read: Box<[u8]>,
    /// The bytes of `read` not yet handed out.
    start: usize,
    end: usize,
}

/// A frame's length prefix.
const FRAME_PREFIX: usize = 4;

#[cfg(unix)]
impl Frames {
    fn new(stream: std::os::unix::net::UnixStream) -> Self {
        Frames {
            stream,
            read: vec![0; FRAME_PREFIX + MAX_DATAGRAM_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next frame's datagram, copied to the front of `out`: its
    /// length. Reads from the stream only when no whole frame is kept.
    /// Errors: the stream's own (`WouldBlock` when nothing came in time),
    /// `UnexpectedEof` once the peer has closed it, `InvalidData` for a
    /// frame longer than `out`.
    fn next(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        loop {
            let kept = &self.read[self.start..self.end];
            if let Some((prefix, rest)) = kept.split_first_chunk::<FRAME_PREFIX>() {
                let len = u32::from_le_bytes(*prefix) as usize;
                if len > out.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a frame of {len} bytes"),
                    ));
                }
                if let Some(datagram) = rest.get(..len) {
                    out[..len].copy_from_slice(datagram);
                    self.start += FRAME_PREFIX + len;
                    return Ok(len);
                }
            }
            // Part of a frame: moved to the front, and more read after it.
            self.read.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            match self.stream.read(&mut self.read[self.end..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.end += n,
            }
        }
    }
}
