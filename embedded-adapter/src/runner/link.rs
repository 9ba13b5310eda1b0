//! What both runners drive their exporter through: the socket, the poll
//! loop that waits for the network and for the times the exporter asks,
//! and the breaker's log.

use super::{Config, Error, Resources};
use crate::fmt::log_info;
use crate::transport::UdpTransport;
use embassy_net::Stack;
use embassy_net::udp::UdpSocket;
use embassy_time::{Duration, Timer};
use stats_core::CircuitBreaker;

/// What both runners drive their exporter through: the socket, the poll
/// interval and the breaker log.
pub(super) struct Link<'a> {
    pub(super) transport: UdpTransport<'a>,
    pub(super) poll_interval: Duration,
    /// The same in nanoseconds (saturating).
    pub(super) poll_interval_ns: u32,
    pub(super) breaker_log: BreakerLog,
}

impl<'a> Link<'a> {
    /// Binds a socket in `resources` (at most `max_datagram` bytes a
    /// datagram) for sending to `destination`.
    pub(super) fn new<const DATAGRAM: usize, const TX: usize, E>(
        stack: Stack<'a>,
        resources: &'a mut Resources<DATAGRAM, TX>,
        config: &Config<E>,
        max_datagram: usize,
    ) -> Result<(Self, &'a mut [u8; DATAGRAM]), Error> {
        if TX < DATAGRAM {
            return Err(Error::TxBufferTooSmall {
                datagram: DATAGRAM,
                tx: TX,
            });
        }
        let Resources {
            rx_meta,
            rx_buf,
            tx_meta,
            tx_buf,
            datagram,
        } = resources;
        let mut socket = UdpSocket::new(stack, rx_meta, rx_buf, tx_meta, tx_buf);
        socket.bind(config.local_port).map_err(Error::Bind)?;
        let link = Link {
            transport: UdpTransport::new(socket, stack, config.destination, max_datagram),
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            poll_interval_ns: u32::try_from(config.poll_interval_ms.saturating_mul(1_000_000))
                .unwrap_or(u32::MAX),
            breaker_log: BreakerLog::default(),
        };
        Ok((link, datagram))
    }

    /// Waits for the network (link and IP configuration, checked every poll
    /// interval), then calls `poll` at the times it asks for (and every
    /// poll interval); a full socket buffer or more work than one poll does
    /// brings it back after a millisecond. Never returns.
    pub(super) async fn run(
        &mut self,
        mut poll: impl FnMut(u64, &mut UdpTransport<'a>, &mut BreakerLog) -> Option<u64>,
    ) -> ! {
        let stack = self.transport.stack;
        let mut up = false;
        loop {
            // One await point: each one is code in the task's state machine.
            let wait = if up || (stack.is_link_up() && stack.is_config_up()) {
                if !up {
                    up = true;
                    log_info!("stats: sending to {}", self.transport.destination());
                }
                let now = crate::now_ns();
                match poll(now, &mut self.transport, &mut self.breaker_log) {
                    // More waiting, or the socket is full: a tick, letting
                    // other tasks run (and the stack send).
                    Some(due) if due <= now => Duration::from_millis(1),
                    // Until `due`, a poll interval at most: the wait fits 32
                    // bits of nanoseconds, so no 64-bit division (a library
                    // routine on Cortex-M).
                    Some(due) => {
                        let wait_ns = due
                            .saturating_sub(now)
                            .min(u64::from(self.poll_interval_ns));
                        Duration::from_micros(u64::from(wait_ns as u32 / 1_000))
                    }
                    None => self.poll_interval,
                }
            } else {
                self.poll_interval
            };
            Timer::after(wait).await;
        }
    }
}

/// Logs the breaker's transitions once each with defmt; without it,
/// nothing (the telemetry's breaker counters tell the same).
#[derive(Default)]
pub(super) struct BreakerLog {
    /// Transitions already logged.
    #[cfg(feature = "defmt")]
    seen: stats_core::BreakerTransitions,
}

impl BreakerLog {
    pub(super) fn observe(&mut self, _breaker: &CircuitBreaker) {
        #[cfg(feature = "defmt")]
        {
            let t = _breaker.transitions();
            if t != self.seen {
                if t.opened != self.seen.opened {
                    defmt::warn!("stats: sends failing, circuit breaker open");
                }
                if t.closed != self.seen.closed {
                    defmt::info!("stats: sends recovered, circuit breaker closed");
                }
                self.seen = t;
            }
        }
    }
}
