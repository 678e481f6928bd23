//! Alertmanager silences as ledger entries: a rehearsal's silence is created like a
//! fault is injected (its intent journaled durably first, its id recorded after) and
//! expired like a fault is reverted (`Undo::ExpireSilence` through `faults::undo`), so
//! every exit path that reverts faults expires it too.
//!
//! A silence is created with `endsAt` = its window's end + margin: Alertmanager ends it
//! by itself then, so it never outlives its window even if shakedown dies. Its
//! `createdBy` is [`CREATED_BY`] and its comment `shakedown run <run id>: <comment>`, so
//! `recover` can find a silence whose id never reached the journal.
//!
//! Every call goes through the run's Alertmanager endpoint (the Prometheus client:
//! same credentials, headers, TLS, timeouts and size cap). It needs no Kubernetes RBAC.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{RevertError, Reverted};
use crate::probes::prometheus::PrometheusEndpoint;
use crate::spec::SilenceMatcher;

/// The `createdBy` of every silence shakedown creates.
pub const CREATED_BY: &str = "shakedown";

/// The comment's prefix; the run id follows, then `: ` and the user's comment.
const COMMENT_PREFIX: &str = "shakedown run ";

/// What the comment says when the spec gives none.
const DEFAULT_COMMENT: &str = "chaos experiment in progress";

/// The Alertmanager a silence lives in. Two are the same when their URLs are.
#[derive(Clone)]
pub struct SilenceApi(pub Arc<PrometheusEndpoint>);

impl std::fmt::Debug for SilenceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.display_url())
    }
}

impl PartialEq for SilenceApi {
    fn eq(&self, other: &Self) -> bool {
        self.0.display_url() == other.0.display_url()
    }
}

impl Eq for SilenceApi {}

/// `shakedown run <id>: <comment>`: how a silence names the run that created it.
pub fn comment(run_id: &str, comment: Option<&str>) -> String {
    format!(
        "{COMMENT_PREFIX}{run_id}: {}",
        comment.unwrap_or(DEFAULT_COMMENT)
    )
}

/// The run id a shakedown silence's comment names.
pub fn run_of(comment: &str) -> Option<&str> {
    let rest = comment.strip_prefix(COMMENT_PREFIX)?;
    rest.split_once(": ")
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
}

/// When a silence for a window of `window` made now must end.
pub fn ends_at(now: Timestamp, window: Duration, margin: Duration) -> Timestamp {
    let span = jiff::SignedDuration::try_from(window + margin).unwrap_or(jiff::SignedDuration::MAX);
    now.checked_add(span).unwrap_or(Timestamp::MAX)
}

/// The API v2 `PostableSilence`.
pub fn postable(
    matchers: &[SilenceMatcher],
    comment: &str,
    starts_at: Timestamp,
    ends_at: Timestamp,
) -> Value {
    json!({
        "matchers": matchers,
        "startsAt": starts_at.to_string(),
        "endsAt": ends_at.to_string(),
        "createdBy": CREATED_BY,
        "comment": comment,
    })
}

/// POSTs a silence; its id.
pub async fn create(api: &SilenceApi, silence: &Value) -> Result<String, String> {
    let answer = api
        .0
        .post_json("api/v2/silences", silence)
        .await
        .map_err(|e| e.to_string())?;
    answer["silenceID"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "Alertmanager at {} created a silence but its answer has no silenceID",
                api.0.display_url()
            )
        })
}

/// Expires silence `id`: done, or gone already (expired by its `endsAt`, or unknown).
pub async fn expire(api: &SilenceApi, id: &str) -> Result<Reverted, RevertError> {
    let path = format!("api/v2/silence/{id}");
    match api.0.delete(&path).await {
        Ok(()) => Ok(Reverted::Undone(format!("silence {id} expired"))),
        Err(refused) => {
            // Alertmanager refuses to expire a silence that has already ended: look
            // before calling it a failure.
            match api.0.get_json(&path, &[], false).await {
                Ok(silence) if silence["status"]["state"] == "expired" => {
                    Ok(Reverted::Gone(format!("silence {id} had already expired")))
                }
                _ => Err(RevertError::Unreached(format!(
                    "silence {id} not expired: {refused}"
                ))),
            }
        }
    }
}

/// A silence shakedown created, as `recover` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: String,
    pub run_id: String,
    /// `active` or `pending`; expired ones are not listed.
    pub state: String,
}

/// Every silence in Alertmanager created by shakedown that has not ended.
pub async fn ours(api: &SilenceApi) -> Result<Vec<Found>, String> {
    let all = api
        .0
        .get_json("api/v2/silences", &[], false)
        .await
        .map_err(|e| e.to_string())?;
    let list = all.as_array().ok_or_else(|| {
        format!(
            "Alertmanager at {}: the answer of /api/v2/silences is not a list",
            api.0.display_url()
        )
    })?;
    Ok(list
        .iter()
        .filter(|s| s["createdBy"] == CREATED_BY)
        .filter_map(|s| {
            let state = s["status"]["state"].as_str()?;
            if state == "expired" {
                return None;
            }
            Some(Found {
                id: s["id"].as_str()?.to_owned(),
                run_id: run_of(s["comment"].as_str()?)?.to_owned(),
                state: state.to_owned(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_names_the_run_and_recover_reads_it_back() {
        let text = comment(
            "20261202T101010Z-abcdef",
            Some("game day: checkout: latency"),
        );
        assert_eq!(
            text,
            "shakedown run 20261202T101010Z-abcdef: game day: checkout: latency"
        );
        assert_eq!(run_of(&text), Some("20261202T101010Z-abcdef"));
        assert_eq!(run_of("maintenance by alice"), None);
        assert_eq!(run_of("shakedown run : x"), None);
    }

    #[test]
    fn ends_at_is_the_window_plus_the_margin() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("time");
        let end = ends_at(now, Duration::from_secs(90), Duration::from_secs(60));
        assert_eq!(end.to_string(), "2026-12-02T10:02:30Z");
    }
}
