//! Size claims of the wire format on the reference workload (see
//! `src/workload.rs`): events per 1,472-byte datagram, bytes per event, and
//! the ratio to JSON. Sizes are deterministic, so these are exact checks, not
//! timings.

use stats_core::wire::{DEFAULT_MAX_DATAGRAM, Encoder, EncoderConfig, decode};
use stats_pipeline::workload;

#[test]
fn reference_workload_packs_over_100_events_per_datagram_and_5x_smaller_than_json() {
    let (registry, ids) = workload::registry();
    let events = workload::events(&ids, 100_000, 1_700_000_000_000_000_000);
    let mut encoder = Encoder::new(EncoderConfig::new(42)).unwrap();
    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
    let (mut datagrams, mut bytes, mut decoded) = (0usize, 0usize, 0usize);
    let refused = workload::encode_all(&mut encoder, &registry, &events, &mut buf, |d| {
        datagrams += 1;
        bytes += d.len();
        assert!(d.len() <= DEFAULT_MAX_DATAGRAM);
        for event in decode(d).unwrap().events() {
            event.unwrap();
            decoded += 1;
        }
    });
    assert_eq!((refused, decoded), (0, events.len()));
    let per_datagram = events.len() as f64 / datagrams as f64;
    let per_event = bytes as f64 / events.len() as f64;
    let json: usize = events
        .iter()
        .map(|e| {
            serde_json::to_vec(&workload::json_event(&registry, e).unwrap())
                .unwrap()
                .len()
        })
        .sum();
    let json_per_event = json as f64 / events.len() as f64;
    println!(
        "reference workload: {per_datagram:.1} events/datagram, {per_event:.2} bytes/event \
         (JSON {json_per_event:.1} bytes/event, {:.1}x larger)",
        json_per_event / per_event
    );
    assert!(
        per_datagram >= 100.0,
        "{per_datagram:.1} events per datagram"
    );
    assert!(per_event < 100.0);
    assert!(
        json_per_event >= 5.0 * per_event,
        "JSON only {:.1}x larger",
        json_per_event / per_event
    );
}
