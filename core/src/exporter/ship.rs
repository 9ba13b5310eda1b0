//! Shipping a batch: the staged events packed into datagrams (topped up
//! from the lanes) and handed to the transport.

use super::keys::Keys;
use super::staging::Staging;
use super::{Exporter, MAX_BATCHES_PER_POLL};
use crate::event::Event;
use crate::ring::Storage;
use crate::transport::Transport;
use crate::wire::PushError;

impl<'a, S: Storage<Event>, const SETS: usize, const BATCH: usize, const G: u32, const N: usize>
    Exporter<'a, S, SETS, BATCH, G, N>
{
    /// Packs the staged events into datagrams and sends them. Stops early if
    /// the breaker opens; what was not sent stays staged or encoded.
    pub(super) fn ship<T: Transport + ?Sized, K: Keys + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
        keys: &K,
    ) {
        self.telemetry.batches += 1;
        self.telemetry.batch_events += self.batch.len() as u64;
        self.batch_sizes.record(self.batch.len() as u64);
        // A transport that takes less than configured (but at least the
        // format's minimum) gets datagrams it takes.
        let max = self
            .config
            .encoder
            .max_datagram
            .min(transport.max_datagram());
        let _ = self.encoder.set_max_datagram(max);
        // Bounds the work of one flush when producers keep the lanes full.
        let mut top_ups = MAX_BATCHES_PER_POLL;
        let mut i = 0;
        loop {
            // Encode until the staged events are in or the outbox is full.
            while i < self.batch.len() {
                match self.encode_datagram(now, max, i, &mut top_ups, keys) {
                    Some(next) => i = next,
                    None => break,
                }
            }
            if self.outbox.is_empty() || !self.send_encoded(now, transport) || i == self.batch.len()
            {
                break;
            }
        }
        // Keep what was not encoded (the breaker opened) for later.
        let rest = self.batch.len() - i;
        self.batch.copy_within(i.., 0);
        self.batch.truncate(rest);
        self.oldest = self
            .batch
            .iter()
            .map(|e| e.timestamp)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Encodes the staged events from `i` into one datagram of at most
    /// `max` bytes; where the next datagram starts. When every staged
    /// event is in and there is room left, restages the batch from the
    /// lanes (while `top_ups` last), so that datagrams leave full when
    /// events are waiting. `None` if no datagram could be begun (the
    /// outbox is full).
    #[inline(always)]
    fn encode_datagram<K: Keys + ?Sized>(
        &mut self,
        now: u64,
        max: usize,
        mut i: usize,
        top_ups: &mut usize,
        keys: &K,
    ) -> Option<usize> {
        let Exporter {
            consumer,
            encoder,
            outbox,
            batch,
            oldest,
            batch_size,
            telemetry,
            lane_latency,
            end_to_end_latency,
            ..
        } = self;
        let buf = outbox.next_buffer(max)?;
        let mut writer = encoder.begin(buf, batch[i].timestamp).ok()?;
        loop {
            if i == batch.len() {
                if *top_ups == 0 {
                    break;
                }
                *top_ups -= 1;
                batch.clear();
                i = 0;
                *oldest = u64::MAX;
                let staging = Staging {
                    batch: &mut *batch,
                    oldest: &mut *oldest,
                    lane_latency: &*lane_latency,
                };
                staging.drain(consumer, now, *batch_size);
                telemetry.batch_events += batch.len() as u64;
                if batch.is_empty() {
                    break;
                }
            }
            match writer.push(&batch[i], |id| keys.key(id)) {
                Ok(()) => {
                    end_to_end_latency.record(now.saturating_sub(batch[i].timestamp));
                    i += 1;
                }
                Err(PushError::Full) => break,
                Err(_) => {
                    telemetry.events_refused += 1;
                    i += 1;
                }
            }
        }
        if !writer.is_empty() {
            let events = writer.events();
            let len = writer.finish().len();
            outbox.commit(len, events);
        }
        Some(i)
    }

    /// Hands the encoded datagrams to the transport while the breaker allows
    /// and the transport does not block. Returns whether all went (sent or
    /// lost to a failed send); the rest wait for later.
    pub(super) fn send_encoded<T: Transport + ?Sized>(
        &mut self,
        now: u64,
        transport: &mut T,
    ) -> bool {
        let latency = &self.send_latency;
        let sent = self
            .outbox
            .send(now, transport, &mut self.breaker, |ns| latency.record(ns));
        let t = &mut self.telemetry;
        t.send_calls += sent.calls;
        t.events_sent += sent.items;
        t.datagrams_sent += sent.datagrams;
        t.bytes_sent += sent.bytes;
        t.events_send_failed += sent.failed_items;
        t.send_errors += sent.failed_datagrams;
        t.bytes_send_failed += sent.failed_bytes;
        t.send_would_block += u64::from(sent.would_block);
        self.outbox.is_empty()
    }
}
