//! Tests of the PromQL probe: secrets, URLs, decoding, retries and timeouts, against
//! canned loopback servers (the real Prometheus is in tests/prometheus_e2e.rs).

use prometheus_http_query::reqwest::StatusCode;

use super::auth::{base64, scrub};
use super::client::{eval_time, parse_response};
use super::decode::{instant_values, matrix_points};
use super::*;
use crate::spec::PrometheusSpec;

/// A timestamp `seconds` after the epoch.
fn at(seconds: f64) -> Timestamp {
    Timestamp::from_millisecond((seconds * 1000.0) as i64).unwrap()
}

#[test]
fn base64_matches_rfc_4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(b"admin:s3cret"), "YWRtaW46czNjcmV0");
}

#[test]
fn eval_time_keeps_milliseconds() {
    let at: Timestamp = "2026-01-01T00:00:00.042Z".parse().unwrap();
    assert_eq!(eval_time(at), "1767225600.042");
}

#[test]
fn vectors_scalars_nan_and_inf() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"service":"a"},"value":[1.5,"0.25"]},
        {"metric":{"service":"b"},"value":[1.5,"NaN"]},
        {"metric":{"service":"c"},"value":[1.5,"+Inf"]}]}}"#;
    let (data, warnings) = parse_response(StatusCode::OK, body).unwrap();
    let (values, stale) = instant_values(&data, at(1.5)).unwrap();
    assert_eq!(stale, None);
    assert_eq!(values.len(), 3);
    assert_eq!(values[0].value, Some(0.25));
    assert_eq!(values[0].labels["service"], "a");
    assert_eq!(values[1].value, None);
    assert_eq!(values[2].value, Some(f64::INFINITY));
    assert!(warnings.is_empty());
    let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
    let (data, _) = parse_response(StatusCode::OK, scalar).unwrap();
    assert_eq!(
        instant_values(&data, at(1.5)).unwrap().0[0].value,
        Some(3.0)
    );
}

#[test]
fn warnings_are_kept() {
    let body = r#"{"status":"success","warnings":["partial response: store-1 down"],
        "data":{"resultType":"vector","result":[]}}"#;
    let (_, warnings) = parse_response(StatusCode::OK, body).unwrap();
    assert_eq!(warnings, vec!["partial response: store-1 down"]);
}

#[test]
fn bad_queries_are_permanent_and_overload_is_transient() {
    let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
    let failure = parse_response(StatusCode::BAD_REQUEST, bad).unwrap_err();
    assert!(!failure.transient);
    assert!(
        failure.message.contains("parse error"),
        "{}",
        failure.message
    );
    let busy = parse_response(StatusCode::SERVICE_UNAVAILABLE, "upstream busy").unwrap_err();
    assert!(busy.transient);
    let unauthorized = parse_response(StatusCode::UNAUTHORIZED, "Unauthorized").unwrap_err();
    assert!(!unauthorized.transient);
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    let (data, _) = parse_response(StatusCode::OK, matrix).unwrap();
    assert!(instant_values(&data, at(1.0)).is_err());
    assert!(matrix_points(&data, at(0.0), at(1.0)).unwrap().0.is_empty());
}

#[test]
fn a_matrix_is_regrouped_by_step() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"s":"a"},"values":[[10,"1"],[11,"2"]]},
        {"metric":{"s":"b"},"values":[[11,"NaN"]]}]}}"#;
    let (data, _) = parse_response(StatusCode::OK, body).unwrap();
    let (points, outside) = matrix_points(&data, at(10.0), at(11.0)).unwrap();
    assert_eq!(outside, 0);
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].0.as_second(), 10);
    assert_eq!(points[0].1.len(), 1);
    assert_eq!(points[1].1.len(), 2);
    assert_eq!(points[1].1[0].value, Some(2.0));
    assert_eq!(points[1].1[1].value, None);
}

#[test]
fn secrets_never_print() {
    let secret = Secret::new("tok-123456");
    assert!(!format!("{secret:?}").contains("tok-123456"));
    let settings = PrometheusSettings {
        url: Some("http://127.0.0.1:9/prometheus/".into()),
        token: Some(secret),
        ..Default::default()
    };
    let endpoint = PrometheusEndpoint::new(&settings).unwrap();
    assert_eq!(endpoint.display_url(), "http://127.0.0.1:9/prometheus");
    assert!(!format!("{endpoint:?}").contains("tok-123456"));
    assert_eq!(
        scrub(
            "Bearer tok-123456 rejected".into(),
            &[Secret::new("tok-123456")]
        ),
        "Bearer *** rejected"
    );
}

#[tokio::test]
async fn without_a_url_every_promql_sample_is_an_error() {
    let endpoint = endpoint(&PrometheusSettings::default());
    let why = endpoint.as_ref().unwrap_err().to_string();
    assert!(why.contains("--prometheus-url"), "{why}");
    let probe = probe(&endpoint, "up");
    assert_eq!(probe.describe(), "up");
    assert!(matches!(
        probe.sample(Timestamp::now()).await,
        Observation::Error(_)
    ));
}

#[test]
fn credentials_in_the_url_are_refused() {
    let settings = PrometheusSettings {
        url: Some("http://admin:hunter22@127.0.0.1:9".into()),
        ..Default::default()
    };
    let err = PrometheusEndpoint::new(&settings).unwrap_err().to_string();
    assert!(!err.contains("hunter22"), "{err}");
    assert_eq!(display_url("http://admin:hunter22@h:9/p"), "http://h:9/p");
}

/// Regression (issue 10, finding 8): `?api_key=…` in the Prometheus URL was accepted
/// and copied into reports.
#[test]
fn credentials_in_the_query_string_are_refused_and_never_shown() {
    for url in [
        "http://127.0.0.1:9/prometheus?api_key=qry-secret-1",
        "http://127.0.0.1:9/?orgId=1&access_token=qry-secret-1",
    ] {
        let settings = PrometheusSettings {
            url: Some(url.into()),
            ..Default::default()
        };
        let err = PrometheusEndpoint::new(&settings).unwrap_err();
        assert!(matches!(err, SetupError::CredentialsInUrl(_)), "{err}");
        assert!(!err.to_string().contains("qry-secret-1"), "{err}");
        assert!(check_url_flag(url).is_err(), "{url}");
        assert!(!display_url(url).contains("qry-secret-1"));
    }
    assert!(check_url_flag("http://127.0.0.1:9/prometheus?dedup=true").is_ok());
    assert_eq!(
        display_url("http://h:9/p?dedup=true"),
        "http://h:9/p?dedup=true"
    );
}

#[test]
fn a_token_file_is_read_on_every_request() {
    let path = std::env::temp_dir().join(format!("shakedown-token-{}", std::process::id()));
    // Resolved secrets are scrubbed process-wide: no words other tests print.
    std::fs::write(&path, "tok-first-rotation\n").unwrap();
    let source = SecretSource::File(path.clone());
    assert_eq!(source.resolve().unwrap().expose(), "tok-first-rotation");
    std::fs::write(&path, "tok-second-rotation").unwrap();
    assert_eq!(source.resolve().unwrap().expose(), "tok-second-rotation");
    assert_eq!(
        crate::run::redact::scrub("old tok-first-rotation, new tok-second-rotation"),
        "old ***, new ***"
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn unreachable_prometheus_is_an_error_after_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = PrometheusSettings {
        url: Some(format!("http://127.0.0.1:{port}")),
        ..Default::default()
    };
    let probe = PromqlProbe::new(
        Arc::new(PrometheusEndpoint::new(&settings).unwrap()),
        "up".into(),
    );
    match probe.sample(Timestamp::now()).await {
        Observation::Error(e) => {
            assert!(e.contains("unreachable"), "{e}");
            assert!(e.contains("after 3 attempts"), "{e}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A loopback server that answers each connection with the next canned response
/// (and then the last one again), and records the requests it saw.
async fn canned(
    responses: Vec<(u16, &'static str)>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let (status, body) = responses[n.min(responses.len() - 1)];
            n += 1;
            let mut buf = vec![0u8; 8192];
            let len = stream.read(&mut buf).await.unwrap_or(0);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..len]).into_owned());
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn spec_with(timeout: Duration) -> PrometheusSpec {
    let mut spec = PrometheusSpec::default();
    spec.timeout = Some(crate::spec::Span(timeout));
    spec.headers
        .insert("X-Scope-OrgID".into(), "tenant-1".into());
    spec
}

#[tokio::test]
async fn a_transient_503_is_retried_with_auth_headers_prefix_and_pinned_time() {
    let ok = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767225600.5,"0.5"]}]}}"#;
    let (base, seen) = canned(vec![(503, "overloaded"), (200, ok)]).await;
    let settings = PrometheusSettings {
        url: Some(format!("{base}/prometheus/")),
        token: Some(Secret::new("tok-abcdef")),
        spec: Some(spec_with(Duration::from_secs(5))),
        ..Default::default()
    };
    let endpoint = PrometheusEndpoint::new(&settings).unwrap();
    let at: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
    let answer = endpoint.instant("up", at).await.unwrap();
    assert_eq!(answer.values[0].value, Some(0.5));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "retried once: {seen:?}");
    let request = seen[1].to_ascii_lowercase();
    assert!(
        request.starts_with("get /prometheus/api/v1/query?"),
        "{request}"
    );
    assert!(request.contains("time=1767225600.500"), "{request}");
    assert!(
        request.contains("authorization: bearer tok-abcdef"),
        "{request}"
    );
    assert!(request.contains("x-scope-orgid: tenant-1"), "{request}");
}

#[tokio::test]
async fn basic_auth_is_sent_and_a_401_is_not_retried() {
    let (base, seen) = canned(vec![(401, "Unauthorized")]).await;
    let path = std::env::temp_dir().join(format!("shakedown-pw-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").unwrap();
    let mut spec = spec_with(Duration::from_secs(5));
    spec.basic_auth = Some(crate::spec::BasicAuth {
        username: "admin".into(),
        password_env: None,
        password_file: Some(path.display().to_string()),
    });
    let settings = PrometheusSettings {
        url: Some(base),
        spec: Some(spec),
        ..Default::default()
    };
    let endpoint = PrometheusEndpoint::new(&settings).unwrap();
    let error = endpoint
        .instant("up", Timestamp::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("401"), "{error}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "a 401 is permanent");
    assert!(
        seen[0].contains("Basic YWRtaW46czNjcmV0"),
        "admin:s3cret: {}",
        seen[0]
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_hung_prometheus_times_out_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let settings = PrometheusSettings {
        url: Some(format!("http://{addr}")),
        spec: Some(spec_with(Duration::from_millis(400))),
        ..Default::default()
    };
    let endpoint = PrometheusEndpoint::new(&settings).unwrap();
    let started = std::time::Instant::now();
    let error = endpoint
        .instant("up", Timestamp::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("did not answer within"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_partial_answer_becomes_a_partial_observation() {
    let partial = r#"{"status":"success","warnings":["store unavailable"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1767225600,"0"]}]}}"#;
    let (base, _) = canned(vec![(200, partial)]).await;
    let settings = PrometheusSettings {
        url: Some(base),
        ..Default::default()
    };
    let probe = PromqlProbe::new(
        Arc::new(PrometheusEndpoint::new(&settings).unwrap()),
        "up".into(),
    );
    match probe.sample(at(1767225600.0)).await {
        Observation::Partial { reason, values } => {
            assert!(reason.contains("store unavailable"), "{reason}");
            assert_eq!(values.len(), 1);
        }
        other => panic!("expected a partial observation, got {other:?}"),
    }
}

/// A loopback server that answers every request with `status` and `body`, whatever was
/// asked: a broken server, not a Prometheus.
async fn always(status: u16, body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn endpoint_at(url: String) -> PrometheusEndpoint {
    let settings = PrometheusSettings {
        url: Some(url),
        spec: Some(spec_with(Duration::from_secs(2))),
        ..Default::default()
    };
    PrometheusEndpoint::new(&settings).unwrap()
}

/// Regression (issue 11): an HTTP 500 or 404 whose body said `"status":"success"` was
/// judged as data (held, exit 0). A non-2xx status is an error whatever the body says.
#[tokio::test]
async fn a_500_or_404_whose_body_claims_success_is_an_error() {
    let now = Timestamp::now();
    let success = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{},"0"]}}]}}}}"#,
        eval_time(now)
    );
    for status in [500, 404] {
        let endpoint = endpoint_at(always(status, success.clone()).await);
        let error = endpoint.instant("up", now).await.unwrap_err().to_string();
        assert!(error.contains(&format!("answered {status}")), "{error}");
        assert!(error.contains("claims success is not data"), "{error}");
    }
    let not_found = endpoint_at(always(404, success.clone()).await)
        .instant("up", now)
        .await
        .unwrap_err()
        .to_string();
    assert!(not_found.contains("path prefix"), "{not_found}");
    // The same body with a 200 is data.
    let ok = endpoint_at(always(200, success).await);
    assert_eq!(
        ok.instant("up", now).await.unwrap().values[0].value,
        Some(0.0)
    );
}

/// Regression (issue 11): old samples were judged as data. A sample older than the
/// staleness bound, or in the future of the evaluation time, is no data, and says so.
#[tokio::test]
async fn stale_and_future_samples_are_no_data() {
    let now = Timestamp::now();
    let hour_ago = now.as_millisecond() as f64 / 1000.0 - 3600.0;
    let minute_ahead = now.as_millisecond() as f64 / 1000.0 + 60.0;
    for (time, words) in [(hour_ago, "older"), (minute_ahead, "future")] {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"job":"x"}},"value":[{time},"0"]}}]}}}}"#
        );
        let probe = PromqlProbe::new(Arc::new(endpoint_at(always(200, body).await)), "up".into());
        let observation = probe.sample(now).await;
        match &observation {
            Observation::Stale { values, reason } => {
                assert!(reason.contains(words), "{reason}");
                assert_eq!(
                    values[0].value, None,
                    "a stale value is not recorded as one"
                );
            }
            other => panic!("a stale sample must be no data, got {other:?}"),
        }
        // No data, under the hypothesis's `noData` policy, and the verdict says why.
        for (policy, outcome) in [
            (
                crate::spec::NoDataPolicy::Inconclusive,
                crate::events::SampleOutcome::NoData,
            ),
            (
                crate::spec::NoDataPolicy::Fail,
                crate::events::SampleOutcome::Fail,
            ),
        ] {
            let mut h = hypothesis();
            h.no_data = policy;
            let (judged, detail) = crate::probes::judge(&h, &observation);
            assert_eq!(judged, outcome);
            assert!(detail.is_some_and(|d| d.contains(words)));
        }
    }
    // Within the bound (4 m old, 2 s ahead for clock skew) is data.
    for lag in [240.0, -2.0] {
        let (values, stale) = instant_values(
            &serde_json::json!({"resultType":"vector","result":[{"metric":{},"value":[1000.0 - lag,"1"]}]}),
            at(1000.0),
        )
        .unwrap();
        assert_eq!((values[0].value, stale), (Some(1.0), None));
    }
}

/// Regression (issue 11): samples 1–2 h old were counted as "3601/3601 points held" for
/// a 4 s window. Points outside the asked window are dropped; none is left to hold.
#[tokio::test]
async fn range_points_outside_the_window_are_not_points_that_held() {
    let now = Timestamp::now();
    let first = now.as_second() - 7200;
    let values: Vec<String> = (0..3601)
        .map(|i| format!("[{},\"0\"]", first + i))
        .collect();
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
        values.join(",")
    );
    let probe = PromqlProbe::new(Arc::new(endpoint_at(always(200, body).await)), "up".into());
    let start = now.checked_sub(jiff::SignedDuration::from_secs(4)).unwrap();
    let check = crate::probes::check_window(&hypothesis(), &probe, start, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((check.points, check.held), (0, 0));
}

/// `up < 1`, sampled every second during the fault.
fn hypothesis() -> crate::spec::Hypothesis {
    crate::spec::Hypothesis {
        name: "h".into(),
        probe: crate::spec::Probe::Promql("up".into()),
        expect: Some(crate::spec::read::parse_expectation("< 1").unwrap()),
        phases: vec![crate::spec::Phase::During],
        every: crate::spec::Span(Duration::from_secs(1)),
        tolerance: crate::spec::Percent(100.0),
        abort: false,
        failure_threshold: 1,
        error_threshold: 2,
        series: crate::spec::SeriesMatch::All,
        no_data: crate::spec::NoDataPolicy::Inconclusive,
        weight: 1.0,
        line: None,
    }
}

/// A server that streams an endless JSON body, without a Content-Length, and counts
/// the bytes the client accepted before it hung up.
async fn endless() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let series = r#"{"metric":{"pod":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"value":[1,"1"]},"#.repeat(256);
                // 256 MiB at most: far beyond any cap, and finite if the client never stops.
                for _ in 0..(256 << 20) / series.len() {
                    match stream.write_all(series.as_bytes()).await {
                        Ok(()) => {
                            counter.fetch_add(series.len(), std::sync::atomic::Ordering::Relaxed)
                        }
                        Err(_) => return,
                    };
                }
            });
        }
    });
    (format!("http://{addr}"), sent)
}

/// Regression (issue 11): a 56 MB answer cost 2 GB of memory. An answer over the cap is
/// an error, and reading stops at the cap (plus at most one chunk).
#[tokio::test]
async fn a_huge_answer_is_an_error_and_is_read_only_up_to_the_cap() {
    let (url, sent) = endless().await;
    let mut spec = spec_with(Duration::from_secs(20));
    spec.max_response_mib = Some(1);
    let endpoint = PrometheusEndpoint::new(&PrometheusSettings {
        url: Some(url),
        spec: Some(spec),
        ..Default::default()
    })
    .unwrap();
    let error = endpoint
        .instant("up", Timestamp::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("larger than 1 MiB"), "{error}");
    assert!(!error.contains("attempts"), "not retried: {error}");
    let read: usize = error
        .split("stopped reading after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("how much was read: {error}"));
    assert!(
        ((1 << 20)..(1 << 20) + (512 << 10)).contains(&read),
        "read {read} bytes for a 1 MiB cap"
    );
    // What the server got rid of includes the kernel's socket buffers, but the client
    // stopped long before the 256 MiB it would have sent.
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");

    // A declared Content-Length over the cap is refused before reading any of it.
    let big = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[]}},"pad":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let mut spec = spec_with(Duration::from_secs(5));
    spec.max_response_mib = Some(1);
    let endpoint = PrometheusEndpoint::new(&PrometheusSettings {
        url: Some(always(200, big).await),
        spec: Some(spec),
        ..Default::default()
    })
    .unwrap();
    let error = endpoint
        .instant("up", Timestamp::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("stopped reading after 0 bytes"), "{error}");
}

/// Preflight's question: a 401 names the credentials to check, a wrong path prefix (a
/// 404) says so, and neither shows a secret.
#[tokio::test]
async fn the_preflight_check_says_what_to_fix() {
    let settings = |url: String| PrometheusSettings {
        url: Some(url),
        token: Some(Secret::new("tok-9f8e7d6c")),
        spec: Some(spec_with(Duration::from_secs(2))),
        ..Default::default()
    };
    let unauthorized = PrometheusEndpoint::new(&settings(always(401, "Unauthorized".into()).await))
        .unwrap()
        .check()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unauthorized.contains("answered 401 Unauthorized")
            && unauthorized.contains("check --prometheus-token"),
        "{unauthorized}"
    );
    assert!(!unauthorized.contains("tok-9f8e7d6c"));
    let html = PrometheusEndpoint::new(&settings(always(200, "<html>Grafana</html>".into()).await))
        .unwrap()
        .check()
        .await
        .unwrap_err()
        .to_string();
    assert!(html.contains("not a Prometheus API answer"), "{html}");
}
