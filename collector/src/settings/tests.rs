//! The settings' tests: the file, the flags over it, and the checks.

use super::*;
use clap::Parser;
use stats_core::wire::Dialect;

fn cli(args: &[&str]) -> Result<Settings, String> {
    let cli = Cli::try_parse_from(std::iter::once("stats-collector").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    cli.settings().map_err(|e| e.to_string())
}

#[test]
fn defaults_come_from_one_place() {
    assert_eq!(cli(&[]).unwrap(), Settings::default());
    assert_eq!(Settings::from_toml("").unwrap(), Settings::default());
    assert_eq!(Settings::default().limits(), Limits::default());
}

#[test]
fn histogram_settings_from_the_file_and_the_flag() {
    let s = Settings::from_toml(
        "native_histograms = true\n[histogram_buckets]\n\"http.request\" = [0.005, 0.01, 1]\n",
    )
    .unwrap();
    assert!(s.native_histograms);
    assert_eq!(s.histograms().buckets["http.request"], [0.005, 0.01, 1.0]);
    assert!(cli(&["--native-histograms"]).unwrap().native_histograms);
    assert!(!cli(&[]).unwrap().native_histograms);
    for bad in ["[0.1, 0.05]", "[]", "[0.1, nan]"] {
        let e = Settings::from_toml(&format!("[histogram_buckets]\nx = {bad}\n")).unwrap_err();
        assert_eq!(e.field, "histogram_buckets", "{bad}");
    }
}

#[test]
fn flags_override_the_file() {
    let dir = std::env::temp_dir().join(format!("stats-collector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("collector.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\nmax_series = 5\nhttp = \"off\"\n\
         remote_write = [\"http://127.0.0.1:2/w\", \"http://127.0.0.1:3/w\"]\n\
         max_memory = \"64 MiB\"\n\
         [labels]\ncollector = \"a\"\nregion = \"eu\"\n\
         [forward]\ntarget = \"127.0.0.1:9001\"\ncodec = \"statsd\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let s = cli(&["--config", path]).unwrap();
    assert_eq!(s.listen, "127.0.0.1:9000");
    assert_eq!(s.max_series, 5);
    assert_eq!(s.limits().max_memory, 64 << 20);
    assert_eq!(s.http, None);
    assert_eq!(s.remote_write.len(), 2);
    assert_eq!(s.labels["collector"], "a");
    let f = s.forward.unwrap();
    assert_eq!(
        (f.target.as_str(), f.dialect),
        ("127.0.0.1:9001", Dialect::Etsy)
    );
    let s = cli(&[
        "--config",
        path,
        "--max-series",
        "7",
        "--http",
        "127.0.0.1:0",
        "--forward-codec",
        "dogstatsd",
        "--forward",
        "127.0.0.1:9002",
        "--remote-write",
        "http://127.0.0.1:1/api/v1/write",
        "--label",
        "collector=b",
        "--max-memory",
        "512MiB",
        "--listen-unix-stream",
        "/run/stats.stream.sock",
    ])
    .unwrap();
    assert_eq!((s.listen.as_str(), s.max_series), ("127.0.0.1:9000", 7));
    assert_eq!(s.remote_write, ["http://127.0.0.1:1/api/v1/write"]);
    assert_eq!(s.labels["collector"], "b");
    assert_eq!(s.labels["region"], "eu");
    assert_eq!(s.http.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(s.limits().max_memory, 512 << 20);
    assert_eq!(
        s.listen_unix_stream.as_deref(),
        Some(Path::new("/run/stats.stream.sock"))
    );
    let f = s.forward.unwrap();
    assert_eq!(
        (f.target.as_str(), f.dialect),
        ("127.0.0.1:9002", Dialect::DogStatsd)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_settings_are_named() {
    let e = Settings::from_toml("max_seris = 5").unwrap_err();
    assert!(e.message.contains("unknown field `max_seris`"), "{e}");
    let e = Settings::from_toml("[forward]\ntarget = \"h:1\"\ncodec = \"x\"").unwrap_err();
    assert!(e.message.contains("dogstatsd"), "{e}");
    for (args, named) in [
        (&["--max-series", "0"][..], "max_series"),
        (&["--max-senders", "0"], "max_senders"),
        (&["--export-interval", "0"], "export_interval_s"),
        (&["--max-memory", "100KiB"], "max_memory"),
        (
            &[
                "--listen-unix",
                "/run/s.sock",
                "--listen-unix-stream",
                "/run/s.sock",
            ],
            "listen_unix_stream",
        ),
        (
            &["--forward", "h:1", "--forward-codec", "x"],
            "forward_codec",
        ),
    ] {
        let e = cli(args).unwrap_err();
        assert!(e.starts_with(named), "{args:?}: {e}");
    }
    assert!(
        cli(&["--forward-codec", "statsd"]).is_err(),
        "needs --forward"
    );
    assert!(cli(&["--max-series", "many"]).is_err());
    assert!(cli(&["--max-memory", "lots"]).is_err());
    let e = cli(&["--config", "/nonexistent/collector.toml"]).unwrap_err();
    assert!(e.contains("/nonexistent/collector.toml"), "{e}");
}
