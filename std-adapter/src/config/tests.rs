//! The configuration's tests: defaults, the file, the variables,
//! validation, and the README's table kept in step.

use super::*;
use std::collections::HashMap;

#[test]
fn defaults_are_the_documented_ones_and_valid() {
    let c = Config::default();
    assert_eq!(c.events.buffer_size, 16_384);
    assert_eq!((c.events.batch_size, c.events.max_batch_age_ms), (50, 100));
    assert_eq!(c.events.drop_policy, DropPolicy::DropByPriority);
    assert_eq!(c.address, "localhost:8125");
    assert!(c.interning.enabled);
    assert_eq!((c.max_memory_mb, c.transport.max_datagram), (10, None));
    assert_eq!(c.datagram_size(), 1432);
    assert_eq!(
        c.clone().with_address("unixgram:///run/s").datagram_size(),
        8192
    );
    assert_eq!(
        c.clone().with_address("unix:///run/s").datagram_size(),
        8192
    );
    assert_eq!(c.validate(), Ok(()));
    let set = c
        .with_address("unix:///run/s")
        .with_max_datagram(Some(4096));
    assert_eq!(set.datagram_size(), 4096);
}

#[test]
fn environment_overrides_every_field_it_names() {
    let env: HashMap<&str, &str> = [
        ("STATS_ADDRESS", "10.0.0.1:9000"),
        ("STATS_BUFFER_SIZE", "1024"),
        ("STATS_BATCH_SIZE", "20"),
        ("STATS_DROP_POLICY", "sampled:10:50"),
        ("STATS_INTERNING", "false"),
        ("STATS_HTTP", "true"),
        ("STATS_HTTP_ADDRESS", "127.0.0.1:9200"),
        ("STATS_CODEC", "dogstatsd"),
    ]
    .into();
    let mut c = Config::default();
    c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
    assert_eq!(c.address, "10.0.0.1:9000");
    assert_eq!((c.events.buffer_size, c.events.batch_size), (1024, 20));
    assert!(matches!(
        c.events.drop_policy,
        DropPolicy::DropSampled {
            threshold_percent: 50,
            ..
        }
    ));
    assert!(!c.interning.enabled);
    assert!(c.http.enabled);
    assert_eq!(c.http.address, "127.0.0.1:9200");
    assert_eq!(c.codec, Codec::Statsd(stats_core::wire::Dialect::DogStatsd));
    assert_eq!(c.validate(), Ok(()));
    let err = c
        .apply_env(|k| (k == "STATS_CODEC").then(|| "json".into()))
        .unwrap_err();
    assert!(err.to_string().contains("STATS_CODEC \"json\""), "{err}");
}

#[test]
fn bad_values_name_the_field_and_the_value() {
    let mut c = Config::default();
    let err = c
        .apply_env(|k| (k == "STATS_BATCH_SIZE").then(|| "fifty".into()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid STATS_BATCH_SIZE \"fifty\": expected a number"
    );
    let cases = [
        (
            Config::default().with_buffer_size(1000),
            "events.buffer_size",
            "1000",
        ),
        (
            Config::default().with_batch_size(0),
            "events.batch_size",
            "0",
        ),
        (Config::default().with_tick_ms(0), "events.tick_ms", "0"),
        (
            Config::default().with_breaker(0, 1_000),
            "breaker.failures",
            "0",
        ),
        (
            Config::default().with_address("localhost"),
            "address",
            "localhost",
        ),
        (
            Config::default().with_lane_sets(65),
            "events.lane_sets",
            "65",
        ),
        (
            Config::default().with_interner_capacity(70_000),
            "interning.capacity",
            "70000",
        ),
        (
            Config::default().with_http("localhost:80"),
            "http.address",
            "localhost:80",
        ),
        (
            Config::default().with_max_datagram(Some(100)),
            "transport.max_datagram",
            "100",
        ),
        (
            Config::default().with_interval_ms(5),
            "aggregation.interval_ms",
            "5",
        ),
    ];
    for (config, field, value) in cases {
        match config.validate() {
            Err(ConfigError::Invalid {
                field: f, value: v, ..
            }) => {
                assert_eq!((f, v.as_str()), (field, value));
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// Every variable and the field it sets, as the README's table names
/// them.
const FIELDS: [(&str, &str); 30] = [
    ("STATS_ADDRESS", "address"),
    ("STATS_CODEC", "codec"),
    ("STATS_TAGS", "tags"),
    ("STATS_MAX_MEMORY_MB", "max_memory_mb"),
    ("STATS_AGGREGATION", "aggregation.mode"),
    ("STATS_INTERVAL_MS", "aggregation.interval_ms"),
    ("STATS_REFRESH_INTERVAL_S", "aggregation.refresh_interval_s"),
    ("STATS_MAX_SERIES", "aggregation.max_series"),
    ("STATS_AGGREGATION_THREADS", "aggregation.threads"),
    ("STATS_BUFFER_SIZE", "events.buffer_size"),
    ("STATS_LANE_SETS", "events.lane_sets"),
    ("STATS_BATCH_SIZE", "events.batch_size"),
    ("STATS_MAX_BATCH_AGE_MS", "events.max_batch_age_ms"),
    ("STATS_TICK_MS", "events.tick_ms"),
    ("STATS_ADAPTIVE_BATCHING", "events.adaptive_batching"),
    ("STATS_DROP_POLICY", "events.drop_policy"),
    ("STATS_SAMPLE_ONE_IN", "events.sample_one_in"),
    ("STATS_MAX_DATAGRAM", "transport.max_datagram"),
    ("STATS_SEND_BUFFER_BYTES", "transport.send_buffer_bytes"),
    ("STATS_RESOLVE_INTERVAL_S", "transport.resolve_interval_s"),
    ("STATS_BREAKER_FAILURES", "breaker.failures"),
    ("STATS_BREAKER_OPEN_MS", "breaker.open_ms"),
    ("STATS_INTERNING", "interning.enabled"),
    ("STATS_INTERNER_CAPACITY", "interning.capacity"),
    ("STATS_HTTP", "http.enabled"),
    ("STATS_HTTP_ADDRESS", "http.address"),
    ("STATS_HTTP_MAX_CONNECTIONS", "http.max_connections"),
    ("STATS_ORIGIN_DETECTION", "dogstatsd.origin_detection"),
    ("STATS_TIMESTAMPS", "dogstatsd.timestamps"),
    ("STATS_CLIENT_TELEMETRY", "dogstatsd.client_telemetry"),
];

#[test]
fn the_readme_table_lists_every_variable() {
    let readme = include_str!("../../../README.md");
    let seen = std::cell::RefCell::new(Vec::new());
    let mut c = Config::default();
    let _ = c.apply_env(|name| {
        seen.borrow_mut().push(name.to_string());
        None
    });
    let mut seen = seen.into_inner();
    seen.sort();
    let mut listed: Vec<String> = FIELDS.iter().map(|(v, _)| v.to_string()).collect();
    listed.sort();
    assert_eq!(seen, listed, "every variable read is listed, once");
    for (name, field) in FIELDS {
        let row = format!("| `{field}` | `{name}` |");
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
}

#[test]
fn the_readme_s_file_example_reads() {
    let readme = include_str!("../../../README.md");
    let at = readme.find("A file sets what it names:").unwrap();
    let block = &readme[at..];
    let start = block.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + block[start..].find("```").unwrap();
    let c = Config::from_toml(&block[start..end]).unwrap();
    assert_eq!(c.address, "unixgram:///var/run/datadog/dsd.socket");
    assert_eq!(c.datagram_size(), 8_192);
    assert_eq!(c.events.drop_policy, DropPolicy::DropOldest);
    assert!(c.http.enabled);
}

#[test]
fn toml_groups_the_settings_as_the_table_names_them() {
    let c = Config::from_toml(
        "address = \"127.0.0.1:8125\"\ncodec = \"dogstatsd\"\ntags = [\"a:1\"]\n\
         [aggregation]\nmode = \"off\"\ninterval_ms = 500\n\
         [events]\nbatch_size = 100\ndrop_policy = \"oldest\"\nsample_one_in = 4\n\
         [transport]\nmax_datagram = 8192\n[breaker]\nfailures = 3\n\
         [interning]\nenabled = false\n[http]\nenabled = true\nmax_connections = 2\n\
         [dogstatsd]\norigin_detection = false\n",
    )
    .unwrap();
    assert_eq!(c.aggregation.mode, AggregationMode::Off);
    assert_eq!(c.aggregation.interval_ms, 500);
    assert_eq!(c.events.sample_one_in, 4);
    assert_eq!(c.transport.max_datagram, Some(8192));
    assert_eq!(
        c.breaker,
        BreakerSettings {
            failures: 3,
            open_ms: 30_000
        }
    );
    assert!(!c.interning.enabled && c.http.enabled && !c.dogstatsd.origin_detection);
    assert_eq!(c.http.max_connections, 2);
    assert_eq!(c.tags, ["a:1"]);
    // A field at the wrong level is unknown there.
    let err = Config::from_toml("batch_size = 100").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `batch_size`"),
        "{err}"
    );
    let err = Config::from_toml("[events]\nbatch_sise = 3").unwrap_err();
    assert!(err.to_string().contains("batch_sise"), "{err}");
}

#[test]
fn toml_sets_fields_and_rejects_unknown_ones() {
    let c = Config::from_toml(
        "address = \"127.0.0.1:8125\"\n[events]\nbatch_size = 100\ndrop_policy = \"oldest\"\n",
    )
    .unwrap();
    assert_eq!(
        (c.events.batch_size, c.events.drop_policy),
        (100, DropPolicy::DropOldest)
    );
    assert_eq!(c.events.buffer_size, 16_384);
    assert!(matches!(
        Config::from_toml("[events]\nbatch_sise = 3"),
        Err(ConfigError::File { .. })
    ));
    assert!(matches!(
        Config::from_toml("[events]\nbatch_size = 500"),
        Err(ConfigError::Invalid {
            field: "events.batch_size",
            ..
        })
    ));
    assert_eq!(
        Config::from_toml("codec = \"statsd\"").unwrap().codec,
        Codec::Statsd(stats_core::wire::Dialect::Etsy)
    );
    assert!(
        Config::from_toml("[events]\ndrop_policy = \"sometimes\"")
            .unwrap_err()
            .to_string()
            .contains("sometimes")
    );
}

fn with_env(config: Config, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    let mut c = config;
    c.apply_env(|k| env.get(k).map(|v| v.to_string()))?;
    c.validate()?;
    Ok(c)
}

#[test]
fn every_field_has_a_builder() {
    let c = Config::default()
        .with_adaptive_batching(true)
        .with_send_buffer_bytes(1 << 16)
        .with_resolve_interval_s(5)
        .with_http("127.0.0.1:0")
        .with_http_max_connections(2)
        .with_http_off();
    assert!(c.events.adaptive_batching && !c.http.enabled);
    assert_eq!(
        (
            c.transport.send_buffer_bytes,
            c.transport.resolve_interval_s,
            c.http.max_connections
        ),
        (1 << 16, 5, 2)
    );
    assert_eq!(c.http.address, "127.0.0.1:0");
}

#[test]
fn constant_tags_come_from_the_file_or_stats_tags_and_are_checked() {
    let c = Config::from_toml("tags = [\"team:core\", \"canary\"]").unwrap();
    assert_eq!(
        c.tag_pairs(),
        [
            ("team".into(), "core".into()),
            ("canary".into(), String::new())
        ]
    );
    let c = with_env(c, &[("STATS_TAGS", " a:1 , b:2,,")]).unwrap();
    assert_eq!(c.tags, ["a:1", "b:2"]);
    for bad in ["a:1,a:2", ":v", "t1,t2,t3,t4,t5,t6,t7,t8,t9"] {
        let err = with_env(Config::default(), &[("STATS_TAGS", bad)]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { field: "tags", .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn datadog_variables_apply_to_a_dogstatsd_codec_only() {
    let dd = [
        ("DD_AGENT_HOST", "agent.local"),
        ("DD_DOGSTATSD_PORT", "8126"),
        ("DD_ENV", "prod"),
        ("DD_SERVICE", "checkout"),
        ("DD_VERSION", "1.2.3"),
        ("DD_ENTITY_ID", "pod-uid-1"),
    ];
    let native = with_env(Config::default(), &dd).unwrap();
    assert_eq!(native.address, "localhost:8125");
    assert!(native.tags.is_empty());
    for codec in ["dogstatsd", "dogstatsd-distribution"] {
        let mut env = dd.to_vec();
        env.push(("STATS_CODEC", codec));
        let c = with_env(Config::default(), &env).unwrap();
        assert_eq!(c.address, "agent.local:8126");
        assert_eq!(
            c.tags,
            [
                "env:prod",
                "service:checkout",
                "version:1.2.3",
                "dd.internal.entity_id:pod-uid-1"
            ]
        );
    }
    let statsd = Config::default().with_codec(Codec::Statsd(stats_core::wire::Dialect::Etsy));
    assert_eq!(with_env(statsd, &dd).unwrap().address, "localhost:8125");
}

#[test]
fn datadog_addresses_take_each_form_datadog_go_takes() {
    let dog = Config::default().with_codec(Codec::Statsd(stats_core::wire::Dialect::DogStatsd));
    let cases = [
        (vec![("DD_AGENT_HOST", "10.1.2.3")], "10.1.2.3:8125"),
        (
            vec![("DD_AGENT_HOST", "unix:///var/run/dd.sock")],
            "unixgram:///var/run/dd.sock",
        ),
        (vec![("DD_DOGSTATSD_URL", "udp://h:9125")], "udp://h:9125"),
        (
            vec![("DD_DOGSTATSD_URL", "unix:///run/d.sock")],
            "unixgram:///run/d.sock",
        ),
        (
            vec![("DD_DOGSTATSD_URL", "unixgram:///run/d.sock")],
            "unixgram:///run/d.sock",
        ),
        (
            vec![("DD_DOGSTATSD_URL", "unixstream:///run/d.sock")],
            "unix:///run/d.sock",
        ),
        // The URL wins over host and port, as in datadog-go.
        (
            vec![("DD_DOGSTATSD_URL", "udp://u:1"), ("DD_AGENT_HOST", "h")],
            "udp://u:1",
        ),
    ];
    for (env, address) in cases {
        assert_eq!(
            with_env(dog.clone(), &env).unwrap().address,
            address,
            "{env:?}"
        );
    }
    let err = with_env(dog.clone(), &[("DD_DOGSTATSD_URL", "tcp://h:1")]).unwrap_err();
    assert!(
        err.to_string().contains("DD_DOGSTATSD_URL \"tcp://h:1\""),
        "{err}"
    );
    let err = with_env(dog, &[("DD_AGENT_HOST", "h"), ("DD_DOGSTATSD_PORT", "x")]).unwrap_err();
    assert!(err.to_string().contains("DD_DOGSTATSD_PORT \"x\""), "{err}");
}

#[test]
fn stats_variables_win_over_datadog_ones_which_win_over_the_file() {
    let file = Config::from_toml(
        "codec = \"dogstatsd\"\naddress = \"file:1\"\ntags = [\"env:file\", \"team:a\"]",
    )
    .unwrap();
    let dd = [
        ("DD_AGENT_HOST", "dd"),
        ("DD_ENV", "dd-env"),
        ("DD_SERVICE", "dd-svc"),
        ("DD_ORIGIN_DETECTION_ENABLED", "false"),
    ];
    let c = with_env(file.clone(), &dd).unwrap();
    assert_eq!(c.address, "dd:8125");
    assert_eq!(c.tags, ["team:a", "env:dd-env", "service:dd-svc"]);
    assert!(!c.dogstatsd.origin_detection);
    let mut both = dd.to_vec();
    both.extend([
        ("STATS_ADDRESS", "stats:2"),
        ("STATS_TAGS", "env:stats"),
        ("STATS_ORIGIN_DETECTION", "true"),
    ]);
    let c = with_env(file, &both).unwrap();
    assert_eq!(c.address, "stats:2");
    assert_eq!(c.tags, ["env:stats", "service:dd-svc"]);
    assert!(c.dogstatsd.origin_detection);
}

/// The ranges the errors name are the limits checked, which come from
/// the core and the lanes (written once, there).
#[test]
fn the_ranges_named_in_errors_are_the_limits_checked() {
    use stats_core::wire::{MAX_DATAGRAM, MIN_DATAGRAM};
    let max_sets = crate::lanes::SETS - 1;
    let cases = [
        (
            Config::default().with_batch_size(crate::BATCH_CAPACITY),
            Config::default().with_batch_size(crate::BATCH_CAPACITY + 1),
            format!("1 to {}", crate::BATCH_CAPACITY),
        ),
        (
            Config::default().with_lane_sets(max_sets),
            Config::default().with_lane_sets(max_sets + 1),
            format!("0 to {max_sets}"),
        ),
        (
            Config::default().with_max_datagram(Some(MIN_DATAGRAM)),
            Config::default().with_max_datagram(Some(MIN_DATAGRAM - 1)),
            format!("{MIN_DATAGRAM} to {MAX_DATAGRAM}"),
        ),
        (
            Config::default().with_max_datagram(Some(MAX_DATAGRAM)),
            Config::default().with_max_datagram(Some(MAX_DATAGRAM + 1)),
            format!("{MIN_DATAGRAM} to {MAX_DATAGRAM}"),
        ),
    ];
    for (edge, past, range) in cases {
        assert_eq!(edge.validate(), Ok(()), "{range}");
        match past.validate() {
            Err(ConfigError::Invalid { expected, .. }) => assert_eq!(expected, range),
            other => panic!("{range}: {other:?}"),
        }
    }
}
