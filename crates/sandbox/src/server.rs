//! HTTP/1.1 on 127.0.0.1 with hyper: reads requests, applies configured API faults,
//! hands them to `api`, writes JSON or streamed watch responses, and logs each one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::api::{self, ApiRequest, Reply};
use super::exec;
use super::status::ApiError;
use super::{REQUEST_LOG_LIMIT, RequestRecord, State, lock};

type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted, like the API server's 3 MiB limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        None => serve_connection(stream, state).await,
                        Some(acceptor) => {
                            // A failed handshake is the client's problem, as on a real server.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_connection(stream, state).await;
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

async fn serve_connection<S>(stream: S, state: Arc<State>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// A streamed body fed from a channel: one frame per watch event.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Query parameters, decoded as Go's `url.ParseQuery` (which kube-apiserver uses)
/// decodes them: `%XX` escapes and `+` as a space. A repeated key keeps its last value.
pub fn parse_query(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn json_response(code: u16, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    raw_json_response(code, Bytes::from(bytes))
}

fn raw_json_response(code: u16, bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(bytes).boxed());
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut response = json_response(err.code, &err.to_status());
    let retry = err
        .details
        .as_ref()
        .and_then(|d| d["retryAfterSeconds"].as_u64());
    if let Some(value) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    } else if err.code == 429 && err.message.starts_with("sandbox fault") {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// `pods/exec` with a WebSocket upgrade: check the pod and container, record the
/// command, answer 101 and let `exec::serve` speak the channel protocol.
fn exec_upgrade(
    state: &Arc<State>,
    mut req: Request<Incoming>,
    path: &str,
    query: &str,
) -> Response<Body> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", namespace, "pods", pod, "exec"] = segments.as_slice() else {
        return error_response(&ApiError::not_found_path());
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let Some(protocol) = exec::negotiate(&header("sec-websocket-protocol")) else {
        return error_response(&ApiError::bad_request(
            "unsupported exec protocol: this sandbox speaks v5.channel.k8s.io and v4.channel.k8s.io",
        ));
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let wanted = pairs
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone());
    let container = {
        let store = state.store();
        let Some(obj) = store.get("pods", namespace, pod) else {
            return error_response(&ApiError::not_found("pods", pod));
        };
        let names: Vec<String> = ["containers", "ephemeralContainers"]
            .iter()
            .flat_map(|k| obj["spec"][*k].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        match wanted {
            Some(c) if names.contains(&c) => c,
            Some(c) => {
                return error_response(&ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod}"
                )));
            }
            None => names.first().cloned().unwrap_or_default(),
        }
    };
    if command.is_empty() {
        return error_response(&ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    lock(&state.exec_log).push(exec::ExecRecord {
        namespace: (*namespace).to_owned(),
        pod: (*pod).to_owned(),
        container,
        command,
        protocol: protocol.to_owned(),
        time: SystemTime::now(),
    });
    let accept = exec::accept_key(&header("sec-websocket-key"));
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            exec::serve(upgraded).await;
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// Whether a configured fault should answer this request instead of the API.
fn injected_fault(state: &State, method: &str, path: &str) -> Option<ApiError> {
    if !is_api(path) {
        return None;
    }
    let faults = state.faults();
    if faults.error_share <= 0.0 || !faults.applies_to(method, path) {
        return None;
    }
    let mut budget = lock(&state.fault_budget);
    *budget += faults.error_share.min(1.0);
    if *budget < 1.0 {
        return None;
    }
    *budget -= 1.0;
    Some(if faults.error_code == 429 {
        ApiError::too_many_requests(
            "sandbox fault: too many requests, please try again later",
            None,
        )
    } else {
        ApiError::internal(
            "sandbox fault: an error on the server (\"\") has prevented the request from succeeding",
        )
    })
}

/// A read at a resourceVersion the store has not reached waits for it a while, as
/// the watch cache does; the handler then answers 504 if it is still ahead.
async fn wait_for_version(state: &State, query: &HashMap<String, String>) {
    let watch = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    let Some(wanted) = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .filter(|_| !watch)
    else {
        return;
    };
    let deadline = tokio::time::Instant::now() + state.config.timings.future_resource_version_wait;
    while state.store().resource_version() < wanted && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// API paths, as opposed to `/metrics` and health checks, which faults leave alone.
fn is_api(path: &str) -> bool {
    path.starts_with("/api") || path == "/version"
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let received = SystemTime::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let accept = header(header::ACCEPT);
    let content_type = header(header::CONTENT_TYPE);
    let user_agent = header(header::USER_AGENT);
    let mut logged_body = None;
    let faults = state.faults();
    if is_api(&path) && !faults.latency.is_zero() && faults.applies_to(method.as_str(), &path) {
        tokio::time::sleep(faults.latency).await;
    }
    let upgrade = header(header::UPGRADE);
    let mut dry_run = raw_query.split('&').any(|kv| kv == "dryRun=All");
    // Authentication, then (with RBAC on) authorization, before anything is served.
    let admitted = admit(
        &state,
        &header(header::AUTHORIZATION),
        &method,
        &path,
        &raw_query,
    );
    let refused = admitted.as_ref().err().cloned();
    let user = admitted.unwrap_or_else(|_| crate::rbac::UserInfo::admin());
    let record_user = user.clone();
    let mut response = match refused.or_else(|| injected_fault(&state, method.as_str(), &path)) {
        Some(err) => error_response(&err),
        None if upgrade.eq_ignore_ascii_case("websocket") && path.ends_with("/exec") => {
            exec_upgrade(&state, req, &path, &raw_query)
        }
        None if upgrade.to_ascii_uppercase().starts_with("SPDY") => {
            error_response(&ApiError::bad_request(
                "the shakedown sandbox does not speak SPDY: exec needs a WebSocket client (kubectl 1.30 or newer, kube-rs `ws`)",
            ))
        }
        None => match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Err(_) => error_response(&ApiError {
                code: 413,
                reason: "RequestEntityTooLarge",
                message: "the request body is too large".into(),
                details: None,
            }),
            Ok(body) => {
                let body = body.to_bytes();
                dry_run |= body_asks_dry_run(&body);
                let query = parse_query(&raw_query);
                if method == http::Method::GET {
                    wait_for_version(&state, &query).await;
                }
                if !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
                    logged_body = serde_json::from_slice(&body).ok();
                }
                let request = ApiRequest {
                    method: method.clone(),
                    query,
                    path: path.clone(),
                    accept,
                    content_type,
                    body,
                    warnings: std::sync::Mutex::new(Vec::new()),
                    user,
                };
                let mut response = match api::route(&state, &request) {
                    Ok(Reply::Json(code, value)) => json_response(code, &value),
                    Ok(Reply::Raw(code, bytes)) => raw_json_response(code, bytes),
                    Ok(Reply::Binary(code, content_type, bytes)) => {
                        let mut r = Response::new(Full::new(bytes).boxed());
                        *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                        r.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                        r
                    }
                    Ok(Reply::Text(code, content_type, text)) => {
                        let mut r = Response::new(Full::new(Bytes::from(text)).boxed());
                        *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                        r.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                        r
                    }
                    Ok(Reply::Delayed(delay, code, text)) => {
                        tokio::time::sleep(delay).await;
                        let mut r = Response::new(Full::new(Bytes::from(text)).boxed());
                        *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                        r.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                        r
                    }
                    Ok(Reply::Stream(rx)) => {
                        let mut r = Response::new(BodyExt::boxed(ChannelBody(rx)));
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        r
                    }
                    Err(err) => error_response(&err),
                };
                for text in lock(&request.warnings).iter() {
                    let value = format!("299 - {}", crate::status::quote(text));
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        response.headers_mut().append(header::WARNING, value);
                    }
                }
                response
            }
        },
    };
    let record = RequestRecord {
        method: method.to_string(),
        path,
        query: raw_query,
        status: response.status().as_u16(),
        received,
        time: SystemTime::now(),
        dry_run,
        user_agent,
        body: logged_body,
        user: record_user,
    };
    audit(&state, &record, &mut response);
    let mut log = lock(&state.log);
    if log.len() >= REQUEST_LOG_LIMIT {
        log.drain(..REQUEST_LOG_LIMIT / 10);
    }
    log.push(record);
    response
}

/// Who sent the request, refused with 401 (an unknown token) or, when RBAC is on, 403
/// (its rules do not allow it) as kube-apiserver refuses before any handler runs.
fn admit(
    state: &State,
    authorization: &str,
    method: &http::Method,
    path: &str,
    raw_query: &str,
) -> Result<crate::rbac::UserInfo, ApiError> {
    if !state.config.rbac && authorization.is_empty() {
        // The common case needs no look at the store.
        return Ok(crate::rbac::UserInfo::admin());
    }
    let store = state.store();
    let user = crate::rbac::authenticate(&store, state.config.rbac, authorization)?;
    if !state.config.rbac {
        return Ok(user);
    }
    let attributes =
        crate::rbac::request_attributes(method.as_str(), path, &parse_query(raw_query));
    let decision = crate::rbac::authorize(&store, &user, &attributes);
    if decision.allowed {
        Ok(user)
    } else {
        Err(crate::rbac::forbidden(&user, &attributes, &decision.reason))
    }
}

/// Writes the request's audit event, when an audit log is configured, and answers
/// with its `Audit-Id` header as kube-apiserver does, so the two can be matched. A
/// watch's stream carries a guard that writes its `ResponseComplete` line when the
/// stream ends (hyper drops the body then, whoever hung up).
fn audit(state: &Arc<State>, record: &RequestRecord, response: &mut Response<Body>) {
    let Some(audit_log) = &state.audit else {
        return;
    };
    let id = audit_log.next_id();
    let stage = crate::audit::first_stage(record);
    audit_log.write(record, &id, stage);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("audit-id", value);
    }
    if stage == crate::audit::Stage::ResponseStarted {
        let inner = std::mem::replace(response.body_mut(), Full::new(Bytes::new()).boxed());
        *response.body_mut() = BodyExt::boxed(AuditedStream {
            inner,
            state: state.clone(),
            record: record.clone(),
            id,
        });
    }
}

/// A streamed body that writes its request's `ResponseComplete` audit line when it
/// is dropped, i.e. when the stream has ended.
struct AuditedStream {
    inner: Body,
    state: Arc<State>,
    record: RequestRecord,
    id: String,
}

impl http_body::Body for AuditedStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

impl Drop for AuditedStream {
    fn drop(&mut self) {
        if let Some(audit_log) = &self.state.audit {
            self.record.time = SystemTime::now();
            audit_log.write(
                &self.record,
                &self.id,
                crate::audit::Stage::ResponseComplete,
            );
        }
    }
}

/// A DeleteOptions body (a DELETE, or an eviction's `deleteOptions`) that asks for
/// `dryRun: ["All"]`: clients send a delete's dry run there, not in the query.
fn body_asks_dry_run(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let all = |v: &serde_json::Value| {
        v.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x == "All"))
    };
    all(&value["dryRun"]) || all(&value["deleteOptions"]["dryRun"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_decoded() {
        let q =
            parse_query("fieldSelector=spec.nodeName%3Dnode-1&labelSelector=app+in+(a%2Cb)&watch");
        assert_eq!(q["fieldSelector"], "spec.nodeName=node-1");
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert_eq!(q["watch"], "");
    }

    #[test]
    fn broken_escapes_in_queries_are_kept_as_text() {
        let q = parse_query("a=100%&b=%zz&c=%e9%&d=%C3%A9&e=%1é");
        assert_eq!(q["a"], "100%");
        assert_eq!(q["b"], "%zz");
        assert_eq!(q["c"], "\u{fffd}%");
        assert_eq!(q["d"], "é");
        assert_eq!(q["e"], "%1é");
    }
}
