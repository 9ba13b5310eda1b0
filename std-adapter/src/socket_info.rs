//! What a transport's socket got from the kernel (or, for a transport
//! without one, nothing): the report's view of it, whatever the transport.

/// What the transport's socket got from the kernel: UDP, Unix datagram
/// and stream sockets fill what applies to them; the rest stays at its
/// default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// SO_SNDBUF the kernel granted, bytes (Linux reports double the
    /// bookkeeping size it uses).
    pub send_buffer_bytes: usize,
    /// Whether IP_TOS low-delay was set.
    pub low_delay: bool,
    /// A Unix stream: frames lost because the connection broke while they
    /// were part-written (counted as sent when they were taken in part).
    pub frames_cut: u64,
}
