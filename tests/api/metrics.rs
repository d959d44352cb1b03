//! `/metrics`: what it holds (the Prometheus text format, build info, the
//! process's metrics, latency per operation).

use std::collections::HashMap;

use escalations::domain::role::Role;
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};
use serde_json::json;

use crate::db_test;

/// Checks that every line of `text` is one the text format (0.0.4) allows
/// (a `# HELP`, a `# TYPE` given once per family before its samples, or a
/// sample of a typed family with well-formed labels and a number), then
/// parses it with `prometheus-parse`, which skips what it does not
/// understand rather than failing.
fn parse(text: &str) -> Scrape {
    let mut families: HashMap<String, SampleType> = HashMap::new();
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } => {}
            LineInfo::Type { metric_name, metric_alias, sample_type } => {
                let family = metric_alias.unwrap_or(metric_name);
                assert!(families.insert(family, sample_type).is_none(), "TYPE twice: {line}");
            }
            LineInfo::Sample { metric_name, labels, value, timestamp } => {
                assert!(timestamp.is_none(), "{line}");
                assert!(
                    value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                    "{line}"
                );
                let histogram = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| metric_name.strip_suffix(suffix))
                    .filter(|family| families.get(*family) == Some(&SampleType::Histogram));
                assert!(
                    histogram.is_some() || families.contains_key(metric_name),
                    "a sample of no family typed before it: {line}"
                );
                for label in labels.map(|l| l.split(',').collect::<Vec<_>>()).unwrap_or_default() {
                    let (key, value) = label.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(
                        key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    assert!(value.len() >= 2 && value.starts_with('"') && value.ends_with('"'));
                }
            }
            LineInfo::Empty | LineInfo::Ignored => panic!("not of the text format: {line:?}"),
        }
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
}

db_test!(metrics_parse_and_hold_build_info_process_metrics_and_latency_per_operation, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    for _ in 0..2 {
        app.gql_as_ok(&token, "query MyCases { cases { totalCount } }", json!({})).await;
    }
    app.gql_as_ok(&token, "query OneMore { __typename }", json!({})).await;
    let scrape = parse(&app.get("/metrics").await.text().await.unwrap());

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(value(&scrape, "escalations_build_info", &[("version", version)]), Some(1.0));

    // Latency per operation: a histogram per name, beside the request counter.
    let name = "escalations_graphql_operation_duration_seconds";
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("operation") == Some("MyCases"))
        .unwrap_or_else(|| panic!("no {name} for MyCases"));
    let Value::Histogram(buckets) = &histogram.value else { panic!("{histogram:?}") };
    assert_eq!(buckets.len(), 13, "12 bounds and +Inf: {buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count), "cumulative: {buckets:?}");
    assert_eq!(buckets.last().map(|b| (b.less_than, b.count)), Some((f64::INFINITY, 2.0)));
    let mine = [("operation", "MyCases")];
    assert_eq!(value(&scrape, &format!("{name}_count"), &mine), Some(2.0));
    assert!(value(&scrape, &format!("{name}_sum"), &mine).unwrap() > 0.0);
    assert_eq!(value(&scrape, &format!("{name}_count"), &[("operation", "OneMore")]), Some(1.0));
    let counted = [("operation", "MyCases"), ("outcome", "ok")];
    assert_eq!(value(&scrape, "escalations_graphql_requests_total", &counted), Some(2.0));
    // The histogram over every operation is still there.
    let all = value(&scrape, "escalations_graphql_request_duration_seconds_count", &[]).unwrap();
    assert!(all >= 3.0, "{all}");

    // The process's own, under the standard names (Linux only).
    if cfg!(target_os = "linux") {
        for gauge in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
        ] {
            let v = value(&scrape, gauge, &[]).unwrap_or_else(|| panic!("no {gauge}"));
            assert!(v >= 1.0, "{gauge} {v}");
        }
        assert!(value(&scrape, "process_cpu_seconds_total", &[]).unwrap() > 0.0);
        let started = value(&scrape, "process_start_time_seconds", &[]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(started <= now + 1.0 && started > now - 24.0 * 3600.0, "{started} vs {now}");
        assert!(
            value(&scrape, "process_resident_memory_bytes", &[]).unwrap()
                <= value(&scrape, "process_virtual_memory_bytes", &[]).unwrap()
        );
    }
});
