//! The StatsD lines' tests: written, joined into datagrams, read back.

use super::*;
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;

fn line(
    dialect: Dialect,
    name: &str,
    tags: &[(&str, &str)],
    kind: Kind,
    value: f64,
    relative: bool,
    rate: f64,
) -> Result<String, LineError> {
    let mut buf = [0u8; 600];
    let l = Line {
        name,
        tags: tags.iter().copied(),
        kind,
        values: &[value],
        relative,
        sample_rate: rate,
        container_id: "",
        timestamp: None,
    };
    let n = write_line(dialect, &l, &mut buf)?;
    Ok(String::from(core::str::from_utf8(&buf[..n]).unwrap()))
}

/// The first line of `text`, a metric.
fn first_metric(text: &str) -> ParsedLine<'_> {
    parse(text.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .metric()
        .unwrap()
}

fn simple(dialect: Dialect, kind: Kind, value: f64) -> String {
    line(dialect, "m", &[], kind, value, false, 1.0).unwrap()
}

#[test]
fn dialects_are_found_by_their_codec_names() {
    assert_eq!(Dialect::from_name("statsd"), Some(Dialect::Etsy));
    assert_eq!(Dialect::from_name("dogstatsd"), Some(Dialect::DogStatsd));
    assert_eq!(
        Dialect::from_name("dogstatsd-distribution"),
        Some(Dialect::DogStatsdDistribution)
    );
    assert_eq!(Dialect::from_name("native"), None);
    assert_eq!(Dialect::from_name("graphite"), None);
}

#[test]
fn every_kind_in_every_dialect() {
    use Dialect::*;
    use Kind::*;
    let cases: &[(Dialect, Kind, f64, &str)] = &[
        (Etsy, Counter, 3.0, "m:3|c"),
        (Etsy, Gauge, 7.0, "m:7|g"),
        (Etsy, Timer, 1_500_000.0, "m:1.5|ms"),
        (Etsy, Histogram, 42.0, "m:42|ms"),
        (DogStatsd, Timer, 2_000_000.0, "m:2|ms"),
        (DogStatsd, Histogram, 42.5, "m:42.5|h"),
        (DogStatsdDistribution, Timer, 250_000.0, "m:0.25|d"),
        (DogStatsdDistribution, Histogram, 42.0, "m:42|d"),
        (DogStatsd, Counter, -2.0, "m:-2|c"),
        (Etsy, Counter, 0.1, "m:0.1|c"),
        (Etsy, Timer, 1.0, "m:0.000001|ms"),
        (Etsy, Timer, 1_234_567_890.0, "m:1234.56789|ms"),
        (Etsy, Gauge, 1e20, "m:1e20|g"),
        (Etsy, Gauge, 1.5e-7, "m:1.5e-7|g"),
        (Etsy, Gauge, -0.0, "m:0|g"),
    ];
    for &(dialect, kind, value, want) in cases {
        assert_eq!(
            simple(dialect, kind, value),
            want,
            "{dialect:?} {kind:?} {value}"
        );
    }
}

#[test]
fn negative_gauges_are_set_through_zero_and_changes_carry_a_sign() {
    let tags = [("host", "a")];
    assert_eq!(
        line(Dialect::Etsy, "g", &tags, Kind::Gauge, -7.0, false, 1.0).unwrap(),
        "g:0|g\ng:-7|g"
    );
    assert_eq!(
        line(
            Dialect::DogStatsd,
            "g",
            &tags,
            Kind::Gauge,
            -7.0,
            false,
            1.0
        )
        .unwrap(),
        "g:0|g|#host:a\ng:-7|g|#host:a"
    );
    assert_eq!(
        line(Dialect::Etsy, "g", &[], Kind::Gauge, 2.0, true, 1.0).unwrap(),
        "g:+2|g"
    );
    assert_eq!(
        line(Dialect::Etsy, "g", &[], Kind::Gauge, -2.5, true, 1.0).unwrap(),
        "g:-2.5|g"
    );
    assert_eq!(
        line(Dialect::Etsy, "g", &[], Kind::Gauge, 0.0, true, 1.0).unwrap(),
        "g:+0|g"
    );
}

#[test]
fn tags_rates_and_forbidden_characters() {
    let tags = [("env", "prod"), ("bare", ""), ("a:b", "c,d|e#f:g")];
    assert_eq!(
        line(
            Dialect::DogStatsd,
            "x:y|z@w",
            &tags,
            Kind::Counter,
            1.0,
            false,
            0.25
        )
        .unwrap(),
        "x_y_z_w:1|c|@0.25|#env:prod,bare,a_b:c_d_e_f:g"
    );
    // Etsy has no tags.
    assert_eq!(
        line(Dialect::Etsy, "n", &tags, Kind::Histogram, 5.0, false, 0.5).unwrap(),
        "n:5|ms|@0.5"
    );
}

#[test]
fn dogstatsd_lines_carry_the_container_id_after_the_tags() {
    let tags = [("env", "prod")];
    let at = |dialect, kind, value| {
        let l = Line {
            name: "m",
            tags: tags.iter().copied(),
            kind,
            values: &[value],
            relative: false,
            sample_rate: 0.5,
            container_id: "3c0ffee|x",
            timestamp: None,
        };
        let mut buf = [0u8; 200];
        let n = write_line(dialect, &l, &mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    assert_eq!(
        at(Dialect::DogStatsd, Kind::Counter, 2.0),
        "m:2|c|@0.5|#env:prod|c:3c0ffee_x"
    );
    assert_eq!(
        at(Dialect::DogStatsdDistribution, Kind::Gauge, -1.0),
        "m:0|g|#env:prod|c:3c0ffee_x\nm:-1|g|@0.5|#env:prod|c:3c0ffee_x"
    );
    assert_eq!(at(Dialect::Etsy, Kind::Counter, 2.0), "m:2|c|@0.5");
    let text = at(Dialect::DogStatsd, Kind::Counter, 2.0);
    let parsed = first_metric(&text);
    assert_eq!(
        (parsed.tags, parsed.container_id),
        ("env:prod", "3c0ffee_x")
    );
}

#[test]
fn several_values_share_a_dogstatsd_line_and_times_follow_the_fields() {
    let write = |dialect, kind, values: &[f64], timestamp| {
        let l = Line {
            name: "m",
            tags: [("k", "v")].into_iter(),
            kind,
            values,
            relative: false,
            sample_rate: 0.5,
            container_id: "c1",
            timestamp,
        };
        let mut buf = [0u8; 200];
        let n = write_line(dialect, &l, &mut buf)?;
        Ok::<_, LineError>(String::from_utf8(buf[..n].to_vec()).unwrap())
    };
    let three = [1.0, 2.5, 3.0];
    assert_eq!(
        write(
            Dialect::DogStatsdDistribution,
            Kind::Histogram,
            &three,
            None
        )
        .unwrap(),
        "m:1:2.5:3|d|@0.5|#k:v|c:c1"
    );
    assert_eq!(
        write(Dialect::DogStatsd, Kind::Timer, &[1.5e6, 2e6], None).unwrap(),
        "m:1.5:2|ms|@0.5|#k:v|c:c1"
    );
    // Etsy StatsD, and counters and gauges anywhere: a line each.
    assert_eq!(
        write(Dialect::Etsy, Kind::Histogram, &three, None).unwrap(),
        "m:1|ms|@0.5\nm:2.5|ms|@0.5\nm:3|ms|@0.5"
    );
    assert_eq!(
        write(Dialect::DogStatsd, Kind::Gauge, &[1.0, -2.0], None).unwrap(),
        "m:1|g|@0.5|#k:v|c:c1\nm:0|g|#k:v|c:c1\nm:-2|g|@0.5|#k:v|c:c1"
    );
    assert_eq!(
        write(
            Dialect::DogStatsd,
            Kind::Counter,
            &[4.0],
            Some(1_700_000_000)
        )
        .unwrap(),
        "m:4|c|@0.5|#k:v|c:c1|T1700000000"
    );
    assert_eq!(
        write(Dialect::Etsy, Kind::Counter, &[4.0], Some(1_700_000_000)).unwrap(),
        "m:4|c|@0.5"
    );
    assert_eq!(
        write(Dialect::DogStatsd, Kind::Counter, &[], None),
        Err(LineError::NoValue)
    );
    assert_eq!(
        write(Dialect::DogStatsd, Kind::Timer, &[1.0, f64::NAN], None),
        Err(LineError::NotFinite)
    );
    let text = write(
        Dialect::DogStatsdDistribution,
        Kind::Histogram,
        &three,
        None,
    )
    .unwrap();
    let parsed = first_metric(&text);
    let values: Vec<Option<f64>> = parsed.numbers().collect();
    assert_eq!(values, [Some(1.0), Some(2.5), Some(3.0)]);
    assert_eq!(parsed.number(), None, "several values are not one number");
}

#[test]
fn refuses_what_statsd_cannot_say_and_reports_room_needed() {
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            line(Dialect::Etsy, "m", &[], Kind::Counter, v, false, 1.0),
            Err(LineError::NotFinite)
        );
    }
    let l = Line {
        name: "twelve_bytes",
        tags: [("k", "v")].into_iter(),
        kind: Kind::Counter,
        values: &[1.0],
        relative: false,
        sample_rate: 1.0,
        container_id: "",
        timestamp: None,
    };
    let mut small = [0u8; 10];
    assert_eq!(
        write_line(Dialect::DogStatsd, &l, &mut small),
        Err(LineError::NoRoom { needed: 21 })
    );
    let mut exact = [0u8; 21];
    assert_eq!(write_line(Dialect::DogStatsd, &l, &mut exact), Ok(21));
}

#[test]
fn parses_what_agents_send_and_rejects_garbage() {
    let lines: Vec<_> =
        parse(b"a:1|c\n\nb:+2|g|#k:v,bare\r\nc:1.5|ms|@0.5\nd:x|s\nbad\ne:1|zz\nf:1|c|@2")
            .collect();
    let metric = |i: usize| lines[i].unwrap().metric().unwrap();
    let a = metric(0);
    assert_eq!(
        (a.name, a.number(), a.metric_type),
        ("a", Some(1.0), MetricType::Counter)
    );
    let b = metric(1);
    assert!(b.is_change());
    assert_eq!(
        b.tag_pairs().collect::<Vec<_>>(),
        [("k", "v"), ("bare", "")]
    );
    let c = metric(2);
    assert_eq!((c.metric_type, c.sample_rate), (MetricType::Timer, 0.5));
    assert_eq!(metric(3).number(), None);
    assert_eq!(lines[4], Err(ParseError::Malformed));
    assert_eq!(lines[5], Err(ParseError::UnknownType));
    assert_eq!(lines[6], Err(ParseError::BadSampleRate));
    assert_eq!(lines.len(), 7);
}

#[test]
fn codec_names_round_trip() {
    let all = [
        Codec::Native,
        Codec::Statsd(Dialect::Etsy),
        Codec::Statsd(Dialect::DogStatsd),
        Codec::Statsd(Dialect::DogStatsdDistribution),
    ];
    for codec in all {
        assert_eq!(Codec::from_name(codec.name()), Some(codec));
    }
    assert_eq!(Codec::from_name("json"), None);
    assert_eq!(
        Codec::from_name("postcard"),
        Some(Codec::Native),
        "the old name"
    );
    assert_eq!(Codec::default(), Codec::Native);
}

proptest! {
    /// Any bytes give lines or errors, never a panic.
    #[test]
    fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for l in parse(&bytes).flatten().filter_map(Parsed::metric) {
            let _ = (l.number(), l.is_change(), l.tag_pairs().count());
        }
    }

    /// Whatever the value, the line parses back to the same number (as
    /// milliseconds for timers), kind and sign convention.
    #[test]
    fn lines_read_back(
        value in prop_oneof![any::<f64>(), (-1_000_000_000i64..1_000_000_000).prop_map(|i| i as f64)],
        kind in 0u8..4,
        relative: bool,
        dialect in 0usize..3,
    ) {
        let kind = Kind::from_code(kind).unwrap();
        let relative = relative && kind == Kind::Gauge;
        let dialect = [Dialect::Etsy, Dialect::DogStatsd, Dialect::DogStatsdDistribution][dialect];
        let text = line(dialect, "m", &[("k", "v")], kind, value, relative, 1.0);
        if !value.is_finite() {
            prop_assert_eq!(text, Err(LineError::NotFinite));
            return Ok(());
        }
        let text = text.unwrap();
        let parsed: Vec<_> = parse(text.as_bytes()).map(|l| l.unwrap().metric().unwrap()).collect();
        let last = parsed.last().unwrap();
        let want = if kind == Kind::Timer { value / 1e6 } else { value };
        let got = last.number().unwrap();
        prop_assert!((got - want).abs() <= want.abs() * 1e-15, "{} from {}", got, text);
        prop_assert_eq!(last.is_change(), relative || (kind == Kind::Gauge && value < 0.0));
        prop_assert_eq!(parsed.len(), if kind == Kind::Gauge && !relative && value < 0.0 { 2 } else { 1 });
        if dialect != Dialect::Etsy {
            prop_assert_eq!(last.tags, "k:v");
        }
    }
}

proptest! {
    #[test]
    fn a_value_reads_as_the_standard_parser_reads_it(
        text in "[+-]?[0-9]{0,18}(\\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})?|[+-]?[0-9a-z.]{0,6}"
    ) {
        let line = std::format!("x:{text}|g");
        let want = text.parse::<f64>().ok().filter(|v| v.is_finite());
        let got = match parse(line.as_bytes()).next() {
            Some(Ok(Parsed::Metric(l))) => l.number(),
            _ => None,
        };
        // Both refuse, or both read the same bits (-0 stays -0).
        prop_assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{}", text);
    }
}
