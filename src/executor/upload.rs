//! Reports that leave the machine: once a run's reports are written (so after every
//! revert), every file of its folder is PUT to `URL/<run-id>/<path>`, `URL` being
//! `run --upload` or the experiment's `upload.url`, with the `upload:` block's connection
//! options (the Prometheus client's: `probes::prometheus`).
//!
//! An upload never changes what the run did or its exit code: the folder stays on disk
//! (a PersistentVolumeClaim in the deploy kit), and a failure is said on stderr with the
//! files that did not arrive. It is bounded: a few files at a time, each with the
//! timeout per attempt and a few attempts, and the whole folder within one file's worst
//! case, so a hung receiver holds the process for that long at most.
//!
//! It must not append anything to the run's folder: the files a receiver gets are the
//! files on disk, byte for byte.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt as _;

use crate::probes::prometheus::{PrometheusEndpoint, SetupError};
use crate::spec::{Document, Loaded, PrometheusSpec};

/// Files in flight at once.
pub const CONCURRENCY: usize = 4;

/// Where a run's folder goes, if anywhere: `--upload URL` (over the block's url), with the
/// connection options of the experiment's `upload:` block. `Err` before anything is
/// touched when it cannot be set up (no URL, an unreadable CA bundle, a bad header).
pub fn target(
    flag: Option<&str>,
    file: &Loaded,
) -> Option<Result<Arc<PrometheusEndpoint>, SetupError>> {
    let block = match &file.document {
        Document::Experiment(e) => e.spec.upload.as_ref(),
        Document::Scenario(_) => None,
    };
    if flag.is_none() && block.is_none() {
        return None;
    }
    let mut spec: PrometheusSpec = block.cloned().unwrap_or_default();
    if let Some(url) = flag {
        spec.url = Some(url.to_owned());
    }
    Some(PrometheusEndpoint::upload_target(&spec).map(Arc::new))
}

/// What became of one run's upload.
#[derive(Debug, Default)]
pub struct Shipped {
    pub uploaded: usize,
    /// One line per file that did not arrive, saying why.
    pub failed: Vec<String>,
}

/// PUTs every file under `dir` to `<run_id>/<relative path>` below the target.
pub async fn ship(target: &PrometheusEndpoint, dir: &Path, run_id: &str) -> Shipped {
    let files = match files_under(dir) {
        Ok(files) => files,
        Err(e) => {
            return Shipped {
                uploaded: 0,
                failed: vec![format!("cannot list {}: {e}", dir.display())],
            };
        }
    };
    let deadline = tokio::time::Instant::now() + target.put_budget();
    let mut pending: Vec<String> = files.clone();
    let mut puts = futures::stream::iter(files)
        .map(|relative| async move {
            let result = match tokio::fs::read(dir.join(&relative)).await {
                Ok(body) => target
                    .put(
                        &remote_path(run_id, &relative),
                        &body,
                        content_type(&relative),
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot read {relative}: {e}")),
            };
            (relative, result)
        })
        .buffer_unordered(CONCURRENCY);
    let mut shipped = Shipped::default();
    while let Ok(Some((relative, result))) = tokio::time::timeout_at(deadline, puts.next()).await {
        pending.retain(|p| *p != relative);
        match result {
            Ok(()) => shipped.uploaded += 1,
            Err(why) => shipped.failed.push(why),
        }
    }
    if !pending.is_empty() {
        shipped.failed.push(format!(
            "not sent within {:?} (the upload's bound): {}",
            target.put_budget(),
            pending.join(", ")
        ));
    }
    shipped
}

/// Every regular file under `dir`, as `/`-separated relative paths, sorted; temporary
/// files of a write in progress (`*.tmp`) are not reports.
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(dir.join(&folder))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let relative = folder.join(entry.file_name());
            if kind.is_dir() {
                folders.push(relative);
            } else if kind.is_file() && relative.extension().is_none_or(|e| e != "tmp") {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `<run-id>/<path>`, each segment percent-encoded so a name cannot become a query or
/// climb out of the run's folder on the receiver.
pub fn remote_path(run_id: &str, relative: &str) -> String {
    std::iter::once(run_id)
        .chain(relative.split('/'))
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(byte as char);
        } else if byte == b'.' && segment != "." && segment != ".." {
            out.push('.');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `Content-Type` a receiver (an object store, a web server) serves the file with.
fn content_type(relative: &str) -> &'static str {
    match relative.rsplit_once('.').map(|(_, ext)| ext) {
        Some("md") => "text/markdown; charset=utf-8",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("svg") => "image/svg+xml",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_keep_every_name_inside_the_run_folder() {
        assert_eq!(
            remote_path("20261202T160000Z-abc123", "report.md"),
            "20261202T160000Z-abc123/report.md"
        );
        assert_eq!(
            remote_path("r", "charts/p95 latency?.svg"),
            "r/charts/p95%20latency%3F.svg"
        );
        assert_eq!(remote_path("r", "../x"), "r/%2E%2E/x");
    }

    #[test]
    fn files_under_lists_nested_files_and_skips_writes_in_progress() {
        let dir =
            std::env::temp_dir().join(format!("shakedown-upload-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("charts")).expect("tmp");
        for file in ["report.md", "junit.xml.tmp", "charts/a.svg"] {
            std::fs::write(dir.join(file), b"x").expect("write");
        }
        let files = files_under(&dir).expect("list");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(files, ["charts/a.svg", "report.md"]);
    }
}
