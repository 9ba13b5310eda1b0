//! Prometheus exposition, shared by the client's endpoint and the
//! collector (feature `alloc`): the text writer ([`Text`], behind the
//! [`Sink`] seam a remote write also implements), families and labels
//! ([`Families`], [`family_name`], [`labels`]), and distributions as
//! classic and native histograms ([`write_classic`], [`default_bounds`],
//! [`Exponential`], [`spans_and_deltas`]). Nothing here panics; it
//! allocates (the text it writes).

mod histogram;
mod names;
mod text;

pub use histogram::{
    Bounds, DefaultBounds, Exponential, MAX_DEFAULT_BOUNDS, cumulative, default_bounds,
    export_scale, spans_and_deltas, write_classic,
};
pub use names::{Families, family_name, family_type, labels};
pub use text::{Sink, Text, number, sanitize};
