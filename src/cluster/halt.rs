//! The kill switch's marker: a ConfigMap named [`MARKER_NAME`] in the halt namespace
//! ([`DEFAULT_NAMESPACE`] unless `--halt-namespace` says otherwise), whose `data` says
//! who halted (`who`), when (`when`, RFC 3339 UTC) and why (`reason`). A cluster object,
//! so `shakedown halt` works from any machine and `kubectl get configmap shakedown-halt
//! -o yaml` reads it.
//!
//! This module reads, writes and waits for the marker; what a halt does to a run (revert
//! and stop) is the executor's. It never touches anything but that one object.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};

use crate::exit::HaltNotice;

/// The marker's name: one per halt namespace, so one `--clear` lifts the halt.
pub const MARKER_NAME: &str = "shakedown-halt";

/// Where the marker lives unless `--halt-namespace` (or `SHAKEDOWN_HALT_NAMESPACE`) says
/// otherwise. `default` exists in every cluster and cannot be deleted, so the kill switch
/// never fails for a missing namespace, and a plain `kubectl get configmap
/// shakedown-halt` (kubectl's own default namespace) finds it. It must not follow the
/// kubeconfig's namespace: the runner (a CI pod's service account) and whoever halts
/// (a laptop) would then look in different places.
pub const DEFAULT_NAMESPACE: &str = "default";

/// How often a running shakedown reads the marker even while its watch is open: the
/// bound on noticing a halt if the watch stalls silently (2 s to revert, DESIGN.md).
pub const POLL: Duration = Duration::from_secs(1);

/// How long one read of the marker may take before it counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Set on the marker so it says what made it.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "shakedown");

#[derive(Debug, thiserror::Error)]
pub enum HaltError {
    #[error("cannot read the halt marker configmap {namespace}/{MARKER_NAME}: {source}")]
    Read {
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "reading the halt marker configmap {namespace}/{MARKER_NAME} took longer than {READ_TIMEOUT:?}"
    )]
    ReadTimeout { namespace: String },
    #[error("cannot create the halt marker configmap {namespace}/{MARKER_NAME}: {source}")]
    Create {
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot delete the halt marker configmap {namespace}/{MARKER_NAME}: {source}")]
    Delete {
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// What `shakedown halt` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The marker was created (or, with a server dry run, would have been).
    Created(HaltNotice),
    /// Someone halted first: their marker stays as it is.
    AlreadyHalted(HaltNotice),
}

/// The notice a marker carries. A key someone removed by hand reads as unknown rather
/// than failing: a marker's presence alone means halted.
pub fn notice_of(marker: &ConfigMap) -> HaltNotice {
    let data = marker.data.as_ref();
    let field = |key: &str| {
        data.and_then(|d| d.get(key))
            .filter(|v| !v.trim().is_empty())
            .cloned()
    };
    HaltNotice {
        who: field("who").unwrap_or_else(|| "someone".into()),
        when: field("when")
            .or_else(|| {
                marker
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
            })
            .unwrap_or_else(|| "an unknown time".into()),
        reason: field("reason").unwrap_or_else(|| "no reason given".into()),
    }
}

/// A notice for a halt made now by this user on this machine.
pub fn notice_now(reason: Option<&str>) -> HaltNotice {
    HaltNotice {
        who: who(),
        when: jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
        reason: reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("no reason given")
            .to_owned(),
    }
}

/// `user@host`: who is at the keyboard (or which CI pod), from the environment. Cheap
/// and honest; the API server's audit log has the authenticated identity.
pub fn who() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            // No login name in the environment (a container, a service): the uid is
            // still someone.
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
        });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
}

fn marker(namespace: &str, notice: &HaltNotice) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(MARKER_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_owned(),
                MANAGED_BY.1.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("who".to_owned(), notice.who.clone()),
            ("when".to_owned(), notice.when.clone()),
            ("reason".to_owned(), notice.reason.clone()),
        ])),
        ..ConfigMap::default()
    }
}

/// The marker's notice, or `None` when the cluster is not halted. Transient failures
/// (throttling, 5xx, a dropped connection) are retried for up to [`READ_TIMEOUT`].
pub async fn read(client: &Client, namespace: &str) -> Result<Option<HaltNotice>, HaltError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let reading = super::with_retries(deadline, || api.get_opt(MARKER_NAME));
    match tokio::time::timeout(READ_TIMEOUT, reading).await {
        Ok(Ok(found)) => Ok(found.as_ref().map(notice_of)),
        Ok(Err(e)) => Err(HaltError::Read {
            namespace: namespace.into(),
            source: Box::new(e),
        }),
        Err(_) => Err(HaltError::ReadTimeout {
            namespace: namespace.into(),
        }),
    }
}

/// Creates the marker (with `dryRun=All` when `dry_run`). An existing marker is left
/// alone: the first halt's who, when and why are what every run reports.
pub async fn halt(
    client: &Client,
    namespace: &str,
    notice: HaltNotice,
    dry_run: bool,
) -> Result<Halt, HaltError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let params = PostParams {
        dry_run,
        ..PostParams::default()
    };
    match api.create(&params, &marker(namespace, &notice)).await {
        Ok(_) => Ok(Halt::Created(notice)),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match read(client, namespace).await? {
                Some(existing) => Ok(Halt::AlreadyHalted(existing)),
                // Cleared between the two calls: try once more rather than report a
                // halt that is not there.
                None => api
                    .create(&params, &marker(namespace, &notice))
                    .await
                    .map(|_| Halt::Created(notice))
                    .map_err(|e| HaltError::Create {
                        namespace: namespace.into(),
                        source: Box::new(e),
                    }),
            }
        }
        Err(e) => Err(HaltError::Create {
            namespace: namespace.into(),
            source: Box::new(e),
        }),
    }
}

/// Deletes the marker (with `dryRun=All` when `dry_run`); returns the notice it
/// carried, or `None` when there was no marker.
pub async fn clear(
    client: &Client,
    namespace: &str,
    dry_run: bool,
) -> Result<Option<HaltNotice>, HaltError> {
    let Some(notice) = read(client, namespace).await? else {
        return Ok(None);
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        dry_run,
        ..DeleteParams::default()
    };
    match api.delete(MARKER_NAME, &params).await {
        Ok(_) => Ok(Some(notice)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(HaltError::Delete {
            namespace: namespace.into(),
            source: Box::new(e),
        }),
    }
}

/// Returns once the marker exists. A watch on that one object sees it at once; a read
/// every [`POLL`], running beside it, bounds the wait if the watch fails, hangs or
/// stalls without a word. `on_blind` hears every failed read, so the caller can say the
/// switch cannot see.
pub async fn wait_for_halt(
    client: &Client,
    namespace: &str,
    mut on_blind: impl FnMut(&HaltError),
) -> HaltNotice {
    let watched = async {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let params = WatchParams::default()
            .fields(&format!("metadata.name={MARKER_NAME}"))
            .timeout(290);
        loop {
            // "0": start with the current state (an existing marker arrives as ADDED).
            if let Ok(Ok(stream)) =
                tokio::time::timeout(READ_TIMEOUT, api.watch(&params, "0")).await
            {
                let mut stream = stream.boxed();
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(WatchEvent::Added(marker) | WatchEvent::Modified(marker)) => {
                            return notice_of(&marker);
                        }
                        Ok(WatchEvent::Deleted(_) | WatchEvent::Bookmark(_)) => {}
                        // Expired or broken: reopen; the poll covers the gap.
                        Ok(WatchEvent::Error(_)) | Err(_) => break,
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    };
    let polled = async {
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            match read(client, namespace).await {
                Ok(Some(notice)) => return notice,
                Ok(None) => {}
                Err(e) => on_blind(&e),
            }
        }
    };
    tokio::select! {
        notice = watched => notice,
        notice = polled => notice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_as_the_notice_it_was_written_from() {
        let notice = HaltNotice {
            who: "alice@laptop".into(),
            when: "2026-12-02T09:44:11.123Z".into(),
            reason: "payments incident".into(),
        };
        let written = marker("default", &notice);
        assert_eq!(written.metadata.name.as_deref(), Some(MARKER_NAME));
        assert_eq!(notice_of(&written), notice);
    }

    #[test]
    fn a_marker_edited_by_hand_still_halts_with_what_it_says() {
        let bare = ConfigMap {
            metadata: ObjectMeta {
                name: Some(MARKER_NAME.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        let notice = notice_of(&bare);
        assert_eq!(notice.who, "someone");
        assert_eq!(notice.reason, "no reason given");
    }

    #[test]
    fn a_halt_made_now_is_stamped_in_utc_and_says_who() {
        let notice = notice_now(Some("  "));
        assert!(notice.when.ends_with('Z'), "{}", notice.when);
        assert!(
            notice.when.parse::<jiff::Timestamp>().is_ok(),
            "{}",
            notice.when
        );
        assert_eq!(notice.reason, "no reason given");
        assert!(notice.who.contains('@'), "{}", notice.who);
    }
}
