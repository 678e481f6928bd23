//! Reading a spec file from disk and parsing it into a located YAML tree.
//!
//! Hostile or broken input is stopped here, before any decoding: things that are not
//! regular files, files that are too large (counted while reading), not UTF-8, empty,
//! several documents, or alias bombs (serde-saphyr's budget bounds the expanded node
//! count, so memory stays bounded).

use std::fs::{File, FileType};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::diagnostic::{Diagnostic, SourceFile};
use super::node::{Node, Pos};

/// Spec files are hand-written; anything this large is a mistake or an attack.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Far above any real spec (hundreds of nodes), far below what would hurt memory.
const MAX_NODES: usize = 100_000;

/// How `not_a_regular_file` names a directory, which callers word differently.
pub const DIRECTORY: &str = "a directory";

/// Reads and parses the file named on the command line. On failure, the single
/// diagnostic that stops us.
///
/// A FIFO is read here (bounded like any file), so `shakedown validate <(generate)`
/// works; devices, sockets and directories are refused by type, without opening them.
pub fn read(path: &Path) -> Result<(Arc<SourceFile>, Node), Diagnostic> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| at_start(path, format!("cannot read file: {e}"), None))?;
    let file_type = metadata.file_type();
    match not_a_regular_file(&file_type) {
        Some(DIRECTORY) => Err(at_start(
            path,
            "is a directory".into(),
            Some("give a .yaml file".into()),
        )),
        Some(kind) if !is_fifo(&file_type) => Err(at_start(
            path,
            format!("is {kind}, not a regular file"),
            Some("give a .yaml file".into()),
        )),
        _ => Ok(()),
    }?;
    read_resolved(path, path)
}

/// Reads and parses `real`, already checked to be a regular file, naming it `shown` in
/// diagnostics (the path as the user wrote it, not where its symlinks lead).
pub fn read_resolved(shown: &Path, real: &Path) -> Result<(Arc<SourceFile>, Node), Diagnostic> {
    let bytes = read_bounded(shown, real)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let col = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        // No quoted line: bytes that are not text are not ours to echo.
        Diagnostic {
            pos: pos(line, col),
            ..at_start(
                shown,
                "file is not valid UTF-8".into(),
                Some("save it as UTF-8; YAML spec files must be text".into()),
            )
        }
    })?;
    let file = SourceFile::new(shown, text);
    let node = parse(&file)?;
    Ok((file, node))
}

/// At most `MAX_FILE_BYTES`, counted while reading: `stat` says 0 bytes for `/proc`
/// files, pipes and devices, so it bounds nothing.
fn read_bounded(shown: &Path, real: &Path) -> Result<Vec<u8>, Diagnostic> {
    let cannot_read = |e: std::io::Error| at_start(shown, format!("cannot read file: {e}"), None);
    let file = File::open(real).map_err(cannot_read)?;
    let stated = file.metadata().map_err(cannot_read)?.len();
    if stated > MAX_FILE_BYTES {
        return Err(too_large(shown, Some(stated)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(shown, None));
    }
    Ok(bytes)
}

/// `stated` is the size from stat, when it knew; otherwise reading found the excess.
fn too_large(path: &Path, stated: Option<u64>) -> Diagnostic {
    let size = stated.map_or_else(String::new, |bytes| format!(" {bytes} bytes,"));
    at_start(
        path,
        format!("file is{size} over the {MAX_FILE_BYTES} byte limit for spec files"),
        Some("split it into scenario files referenced from an experiment".into()),
    )
}

/// A diagnostic about the whole file, pointing at its start, quoting nothing.
fn at_start(path: &Path, message: String, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        path: path.to_path_buf(),
        pos: Pos { line: 1, col: 1 },
        message,
        hint,
        line_text: None,
    }
}

/// What a path is when it is not a regular file (`"a directory"`, `"a FIFO"`, …).
pub fn not_a_regular_file(file_type: &FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some(DIRECTORY);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
        if file_type.is_char_device() {
            return Some("a character device");
        }
        if file_type.is_block_device() {
            return Some("a block device");
        }
    }
    Some("a special file")
}

fn is_fifo(file_type: &FileType) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        file_type.is_fifo()
    }
    #[cfg(not(unix))]
    {
        let _ = file_type;
        false
    }
}

/// Parses already-loaded text (used by `read` and by tests).
pub fn parse(file: &SourceFile) -> Result<Node, Diagnostic> {
    if file
        .text
        .trim_start_matches('\u{feff}')
        .lines()
        .all(is_blank_or_comment)
    {
        return Err(file.diagnostic(
            Pos { line: 1, col: 1 },
            "file is empty",
            Some("a spec starts with `apiVersion: shakedown.dev/v1alpha1` and `kind: Scenario` or `kind: Experiment`".into()),
        ));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_NODES,
            max_documents: 1,
        },
    };
    serde_saphyr::from_str_with_options::<Node>(&file.text, options)
        .map_err(|e| yaml_error(file, &e))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
}

fn yaml_error(file: &SourceFile, error: &serde_saphyr::Error) -> Diagnostic {
    let location = error.location();
    let at = location.map_or(Pos { line: 1, col: 1 }, |l| {
        pos(l.line() as usize, l.column() as usize)
    });
    let raw = error.without_snippet().to_string();
    let message = strip_location_prefix(raw.lines().next().unwrap_or("invalid YAML"));
    let message = if message.contains("Documents {") {
        "file holds more than one YAML document (`---`)".to_owned()
    } else if message.contains("Nodes {") {
        format!("YAML expands to more than {MAX_NODES} nodes")
    } else if let Some((_, breach)) = message.split_once("budget breached: ") {
        let kind = breach.split([' ', '{']).next().unwrap_or("limit");
        format!("YAML exceeds the parser's {kind} limit")
    } else if let Some(rest) = message.strip_prefix("duplicate mapping key") {
        // Drop serde-saphyr's advice to change its options: users cannot.
        format!(
            "duplicate mapping key{}",
            rest.split(", set DuplicateKeyPolicy").next().unwrap_or("")
        )
    } else {
        format!("invalid YAML: {message}")
    };
    let hint = hint_for(file, at, &message);
    file.diagnostic(at, message, hint)
}

fn hint_for(file: &SourceFile, at: Pos, message: &str) -> Option<String> {
    if message.starts_with("duplicate mapping key") {
        return Some(
            "each key may appear once per mapping; remove or merge the repeated one".into(),
        );
    }
    if message.starts_with("YAML expands") || message.starts_with("YAML exceeds") {
        return Some("anchors and aliases are limited to stop alias bombs (\"billion laughs\"); expand fewer aliases".into());
    }
    if message.starts_with("file holds more than one") {
        return Some("put one Scenario or Experiment in each file".into());
    }
    if message.contains("found a tab") {
        return Some("YAML indentation must use spaces, not tabs".into());
    }
    let line = file.line(at.line).unwrap_or_default();
    // `expect: >= 3` is the classic trap: `>` starts a folded block scalar in YAML.
    if let Some((_, value)) = line.split_once(':')
        && matches!(
            value.trim_start().chars().next(),
            Some('>' | '|' | '@' | '`' | '%')
        )
    {
        return Some(format!(
            "a value starting with `{}` must be quoted, e.g. expect: \"{}\"",
            value.trim_start().chars().next().unwrap_or('>'),
            value.trim()
        ));
    }
    // A flow collection left open on an earlier line surfaces as a confusing error here.
    let earlier = (at.line.saturating_sub(5).max(1)..at.line).filter_map(|n| file.line(n));
    for text in earlier {
        let opens = text.matches(['[', '{']).count();
        let closes = text.matches([']', '}']).count();
        if opens > closes {
            return Some(format!(
                "check for an unclosed `[` or `{{` in `{}`",
                text.trim()
            ));
        }
    }
    None
}

fn strip_location_prefix(message: &str) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    // serde-saphyr prefixes "line N column M: "; we print our own position.
    let mut message = message;
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, tail)) = rest.split_once(": ")
        && rest.split_whitespace().nth(1) == Some("column")
    {
        message = tail;
    }
    match message.rfind(" at line ") {
        Some(cut) if message[cut..].contains("column") => message[..cut].to_owned(),
        _ => message.to_owned(),
    }
}

fn pos(line: usize, col: usize) -> Pos {
    Pos {
        line: u32::try_from(line.max(1)).unwrap_or(u32::MAX),
        col: u32::try_from(col.max(1)).unwrap_or(u32::MAX),
    }
}
