//! Datagrams encoded and waiting for the transport, packed back to back in
//! one caller-provided buffer, and the sending of them through a circuit
//! breaker: shared by the event exporter and the aggregate exporter.

use crate::circuit_breaker::CircuitBreaker;
use crate::transport::{PartialSend, SendError, Transport};

/// Datagrams handed to the transport in one [`Transport::send_batch`] call
/// at most (as many as fit the buffer).
pub const MAX_DATAGRAMS_PER_SEND: usize = 16;

/// An encoded datagram waiting in the buffer to be sent: 8 bytes (a
/// microcontroller keeps 16 of them). A datagram is at most 65,507 bytes
/// and 65,535 items (events or series); the buffer holds at most 16.
#[derive(Clone, Copy, Debug)]
struct Encoded {
    start: u32,
    len: u16,
    items: u16,
}

impl Encoded {
    fn range(&self) -> core::ops::Range<usize> {
        let start = self.start as usize;
        start..start + usize::from(self.len)
    }
}

/// What one [`Outbox::send`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Calls to the transport.
    pub(crate) calls: u64,
    /// Datagrams the transport accepted, their bytes and items.
    pub(crate) datagrams: u64,
    pub(crate) bytes: u64,
    pub(crate) items: u64,
    /// Datagrams the transport refused (each lost, with its items), and
    /// their bytes.
    pub(crate) failed_datagrams: u64,
    pub(crate) failed_items: u64,
    pub(crate) failed_bytes: u64,
    /// Whether the transport would block (the rest waits).
    pub(crate) would_block: bool,
}

/// Encoded datagrams in a buffer, in order, not yet sent.
pub(crate) struct Outbox<'a> {
    buf: &'a mut [u8],
    encoded: heapless::Vec<Encoded, MAX_DATAGRAMS_PER_SEND>,
}

impl<'a> Outbox<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Outbox {
            buf,
            encoded: heapless::Vec::new(),
        }
    }

    /// Bytes of the buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Whether no datagram is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// Items (events or series) in the datagrams waiting.
    pub(crate) fn items(&self) -> usize {
        self.encoded.iter().map(|d| usize::from(d.items)).sum()
    }

    /// The buffer for the next datagram of up to `max` bytes, or `None`
    /// when the buffer or the list is full. Seal it with
    /// [`Outbox::commit`].
    pub(crate) fn next_buffer(&mut self, max: usize) -> Option<&mut [u8]> {
        if self.encoded.is_full() {
            return None;
        }
        let end = self.end();
        self.buf.get_mut(end..end.checked_add(max)?)
    }

    /// Keeps the `len` bytes just written into [`Outbox::next_buffer`] as
    /// a datagram of `items` items.
    pub(crate) fn commit(&mut self, len: usize, items: usize) {
        let start = self.end();
        // Cannot fail: `next_buffer` said there was room.
        let _ = self.encoded.push(Encoded {
            start: start as u32,
            len: len as u16,
            items: items as u16,
        });
    }

    fn end(&self) -> usize {
        self.encoded.last().map_or(0, |d| d.range().end)
    }

    /// Hands the waiting datagrams to `transport` while `breaker` allows
    /// and the transport does not block, telling the breaker each outcome
    /// and `latency` each call's duration (when the transport has a
    /// clock). A refused datagram is lost (counted); what was not tried
    /// moves to the front of the buffer for later.
    pub(crate) fn send<T: Transport + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        breaker: &mut CircuitBreaker,
        mut latency: impl FnMut(u64),
    ) -> Sent {
        let mut sent = Sent::default();
        let mut done = 0;
        while done < self.encoded.len() && breaker.allow(now) {
            let mut datagrams: heapless::Vec<&[u8], MAX_DATAGRAMS_PER_SEND> = heapless::Vec::new();
            for d in &self.encoded[done..] {
                // Cannot fail: same capacity as `encoded`.
                let _ = datagrams.push(&self.buf[d.range()]);
            }
            let started = transport.clock_ns();
            let result = transport.send_batch(&datagrams);
            if let (Some(start), Some(end)) = (started, transport.clock_ns()) {
                latency(end.saturating_sub(start));
            }
            sent.calls += 1;
            let (accepted, failed) = match result {
                Ok(()) => (datagrams.len(), None),
                Err(PartialSend { sent, error }) => (sent.min(datagrams.len()), Some(error)),
            };
            for d in &self.encoded[done..done + accepted] {
                sent.items += u64::from(d.items);
                sent.datagrams += 1;
                sent.bytes += u64::from(d.len);
            }
            if accepted > 0 {
                breaker.on_success();
            }
            done += accepted;
            if failed == Some(SendError::WouldBlock) {
                // Flow control, not failure: keep the rest for later.
                sent.would_block = true;
                break;
            }
            if failed.is_some() && done < self.encoded.len() {
                sent.failed_items += u64::from(self.encoded[done].items);
                sent.failed_bytes += u64::from(self.encoded[done].len);
                sent.failed_datagrams += 1;
                breaker.on_failure(now);
                done += 1;
            }
        }
        // Move what is left to the front of the buffer.
        let mut to = 0;
        for k in done..self.encoded.len() {
            let d = self.encoded[k];
            self.buf.copy_within(d.range(), to);
            self.encoded[k - done] = Encoded {
                start: to as u32,
                ..d
            };
            to += usize::from(d.len);
        }
        let left = self.encoded.len() - done;
        self.encoded.truncate(left);
        sent
    }
}
