//! HTTP probes: one request per sample, judged on its status, its body and, when the
//! hypothesis has an `expect`, its latency in seconds.
//!
//! A wrong status, a body that does not match, a timeout or a refused connection is a
//! breach of the hypothesis (the service is what is being measured), not a probe error.
//! Only a probe that cannot even be built (invalid method or URL) is an error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use prometheus_http_query::reqwest;
use shakedown_vocab::error_chain as chain;

use super::{Observation, Probe, SampleFuture};
use crate::events::SeriesValue;
use crate::spec::HttpProbe as HttpProbeSpec;

/// At most this much of a body is read to look for `bodyContains`.
const BODY_LIMIT: usize = 1 << 20;

/// Why an HTTP probe cannot even be built: every sample of it is an error.
#[derive(Debug, thiserror::Error)]
pub enum HttpProbeError {
    #[error("cannot build an HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("invalid HTTP method `{0}`")]
    Method(String),
}

pub struct HttpProbe {
    spec: HttpProbeSpec,
    client: Result<reqwest::Client, HttpProbeError>,
    method: Result<reqwest::Method, HttpProbeError>,
}

impl HttpProbe {
    pub fn new(spec: HttpProbeSpec) -> Self {
        let client = reqwest::Client::builder()
            .timeout(spec.timeout.0)
            .connect_timeout(spec.timeout.0)
            .build()
            .map_err(HttpProbeError::Client);
        let method = reqwest::Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HttpProbeError::Method(spec.method.clone()));
        Self {
            spec,
            client,
            method,
        }
    }

    async fn observe(&self) -> Observation {
        let (client, method) = match (&self.client, &self.method) {
            (Ok(c), Ok(m)) => (c, m.clone()),
            (Err(e), _) | (_, Err(e)) => return Observation::Error(chain(e)),
        };
        let started = Instant::now();
        let response = match client.request(method, &self.spec.url).send().await {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Observation::Error(format!("invalid request to {}: {e}", self.spec.url));
            }
            Err(e) => return self.unreachable(&e, started.elapsed()),
        };
        let status = response.status().as_u16();
        let body = match read_body(response).await {
            Ok(body) => body,
            Err(e) => return self.unreachable(&e, started.elapsed()),
        };
        let latency = started.elapsed();
        let values = vec![self.value(latency, Some(status))];
        if !self.spec.status.contains(&status) {
            return Observation::Violated {
                values,
                reason: format!(
                    "HTTP {status}, expected one of {:?} ({} ms)",
                    self.spec.status,
                    latency.as_millis()
                ),
            };
        }
        if let Some(needle) = &self.spec.body_contains
            && !body.contains(needle.as_str())
        {
            return Observation::Violated {
                values,
                reason: format!("the body does not contain `{needle}`"),
            };
        }
        Observation::Values(values)
    }

    fn unreachable(&self, error: &reqwest::Error, elapsed: Duration) -> Observation {
        let reason = if error.is_timeout() {
            format!("no answer within {:?}", self.spec.timeout.0)
        } else {
            format!("request failed: {}", chain(error))
        };
        Observation::Violated {
            values: vec![self.value(elapsed, None)],
            reason,
        }
    }

    fn value(&self, latency: Duration, status: Option<u16>) -> SeriesValue {
        let mut labels = BTreeMap::new();
        if let Some(status) = status {
            labels.insert("status".to_owned(), status.to_string());
        }
        SeriesValue {
            labels,
            value: Some(latency.as_secs_f64()),
        }
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() >= BODY_LIMIT {
            body.truncate(BODY_LIMIT);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

impl Probe for HttpProbe {
    fn describe(&self) -> String {
        crate::report::words::http_probe(&self.spec)
    }

    fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
        Box::pin(self.observe())
    }

    /// The service did not answer in time: a breach, as with the probe's own timeout.
    fn timed_out(&self, budget: Duration) -> Observation {
        Observation::Violated {
            values: vec![self.value(budget, None)],
            reason: format!("no answer within {budget:?} (before the next sample was due)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::judge;
    use crate::spec::read::parse_expectation;
    use crate::spec::{
        Hypothesis, NoDataPolicy, Percent, Phase, Probe as ProbeSpec, SeriesMatch, Span,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot-per-connection HTTP server on loopback: answers `status` and `body`
    /// after `delay`.
    async fn serve(status: u16, body: &'static str, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/healthz")
    }

    fn spec(url: String, body_contains: Option<&str>) -> HttpProbeSpec {
        HttpProbeSpec {
            url,
            method: "GET".into(),
            status: vec![200],
            timeout: Span(Duration::from_millis(500)),
            body_contains: body_contains.map(str::to_owned),
        }
    }

    fn hypothesis(expect: Option<&str>) -> Hypothesis {
        Hypothesis {
            name: "h".into(),
            probe: ProbeSpec::Promql("unused".into()),
            expect: expect.map(|e| parse_expectation(e).unwrap()),
            phases: vec![Phase::Before],
            every: Span(Duration::from_secs(1)),
            tolerance: Percent(100.0),
            abort: false,
            failure_threshold: 1,
            error_threshold: 2,
            series: SeriesMatch::All,
            no_data: NoDataPolicy::Inconclusive,
            weight: 1.0,
            line: None,
        }
    }

    async fn outcome(spec: HttpProbeSpec, expect: Option<&str>) -> crate::events::SampleOutcome {
        let observation = HttpProbe::new(spec).sample(Timestamp::now()).await;
        judge(&hypothesis(expect), &observation).0
    }

    #[tokio::test]
    async fn status_body_and_latency_are_judged() {
        use crate::events::SampleOutcome::{Fail, Pass};
        let ok = serve(200, "ok ready", Duration::ZERO).await;
        assert_eq!(outcome(spec(ok.clone(), Some("ready")), None).await, Pass);
        assert_eq!(outcome(spec(ok.clone(), Some("nope")), None).await, Fail);
        assert_eq!(outcome(spec(ok.clone(), None), Some("< 0.2")).await, Pass);
        let down = serve(503, "down", Duration::ZERO).await;
        assert_eq!(outcome(spec(down, None), None).await, Fail);
        let slow = serve(200, "ok", Duration::from_millis(150)).await;
        assert_eq!(outcome(spec(slow.clone(), None), Some("< 0.1")).await, Fail);
        assert_eq!(outcome(spec(slow, None), Some(">= 0.1")).await, Pass);
        let hung = serve(200, "ok", Duration::from_secs(5)).await;
        assert_eq!(outcome(spec(hung, None), None).await, Fail);
    }

    /// A sample cut at its budget (shorter than the interval) is, for a service, what
    /// its own timeout is: a breach, not a probe error.
    #[test]
    fn a_sample_cut_at_its_budget_is_a_breach() {
        let probe = HttpProbe::new(spec("http://127.0.0.1:9/".into(), None));
        let observation = probe.timed_out(Duration::from_millis(450));
        let (outcome, detail) = judge(&hypothesis(None), &observation);
        assert_eq!(outcome, crate::events::SampleOutcome::Fail);
        assert!(detail.is_some_and(|d| d.contains("450ms")));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_breach_not_a_pass() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(
            outcome(spec(url, None), None).await,
            crate::events::SampleOutcome::Fail
        );
    }
}
