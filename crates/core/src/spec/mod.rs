//! The YAML model: `Scenario` and `Experiment` files, validated with precise locations.
//!
//! `load` reads a file and every file it references, and either returns the whole
//! resolved tree or every problem found, each as `file:line:col: what (what is valid)`.
//! This module reads spec files and nothing else; it never imports the cluster client.

pub mod decode;
pub mod diagnostic;
pub use shakedown_vocab::duration;
pub mod model;
pub mod node;
pub mod read;
pub mod source;
pub mod url;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use model::*;

use decode::Decoder;
use diagnostic::SourceFile;
use duration::format_duration;
use node::Node;
use read::{Context, ExpectedKind, Reference};

/// A validated file with every referenced file loaded and resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub document: Document,
    /// The experiment's steps with their scenarios loaded; empty for a scenario file.
    pub steps: Vec<ResolvedStep>,
}

impl Loaded {
    pub fn name(&self) -> &str {
        match &self.document {
            Document::Scenario(s) => &s.metadata.name,
            Document::Experiment(e) => &e.metadata.name,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResolvedStep {
    /// The step's own `name`, else what it runs (scenario name, `pause 30s`, …).
    pub name: String,
    pub after: Duration,
    pub repeat: u32,
    pub action: ResolvedAction,
}

#[derive(Debug, Clone)]
pub enum ResolvedAction {
    Scenario {
        path: PathBuf,
        scenario: Box<Scenario>,
    },
    Experiment {
        path: PathBuf,
        steps: Vec<ResolvedStep>,
        /// The included experiment's own safety; the plan narrows it into its steps.
        safety: Option<Safety>,
    },
    Pause(Duration),
    Parallel(Vec<ResolvedStep>),
}

/// Where referenced files may live. The top-level file's own directory is always allowed;
/// `allow_paths` widens that (the CLI's `--allow-path`). `Default` allows nothing more.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub allow_paths: Vec<PathBuf>,
}

impl LoadOptions {
    /// What `load` uses: the working directory as well, so the documented layout
    /// (`experiments/x.yaml` referencing `../scenarios/y.yaml`, run from the project)
    /// keeps working. A working directory of `/` is left out: it would allow everything.
    pub fn with_working_dir() -> Self {
        let allow_paths = std::env::current_dir()
            .ok()
            .filter(|dir| dir.parent().is_some())
            .into_iter()
            .collect();
        Self { allow_paths }
    }
}

/// Loads and validates `path` and everything it references, allowing references under
/// the file's directory and the working directory (`LoadOptions::with_working_dir`).
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    load_with(path, &LoadOptions::with_working_dir())
}

/// Loads and validates `path` and everything it references; a referenced file must
/// resolve, after symlinks, inside `path`'s directory or one of `options.allow_paths`.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut loader = Loader {
        stack: vec![canonical(path)],
        roots: AllowedRoots::new(path, options),
        diagnostics: Diagnostics::default(),
    };
    let loaded = loader.load_file(source::read(path), &Context::default());
    match loaded {
        Some((document, steps)) if loader.diagnostics.is_empty() => Ok(Loaded {
            path: path.to_path_buf(),
            document,
            steps,
        }),
        _ => Err(loader.diagnostics.sorted()),
    }
}

/// Loads several files as `load_with` does, on up to as many threads as the machine has
/// cores, and returns each file's result in the order given. `shakedown validate
/// scenarios/*.yaml` in a release gate is a batch of independent files, and most of a
/// file's cost is CPU (the YAML parse and each hypothesis's PromQL), so a batch scales
/// with cores. Memory stays bounded: a worker holds one file at a time.
pub fn load_all(paths: &[PathBuf], options: &LoadOptions) -> Vec<Result<Loaded, Diagnostics>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(paths.len());
    if workers <= 1 {
        return paths.iter().map(|p| load_with(p, options)).collect();
    }
    // Workers take the next file from a shared counter, so one slow file (an experiment
    // with many references) does not leave the other cores idle behind a fixed split.
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<Loaded, Diagnostics>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..workers)
            .map(|_| {
                // The main thread's stack size, not a spawned thread's default 2 MiB: a
                // file is checked the same on either.
                std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn_scoped(scope, || {
                        let mut done = Vec::new();
                        loop {
                            let at = next.fetch_add(1, Ordering::Relaxed);
                            let Some(path) = paths.get(at) else {
                                return done;
                            };
                            done.push((at, load_with(path, options)));
                        }
                    })
            })
            .collect();
        let mut results = Vec::with_capacity(paths.len());
        for worker in workers {
            match worker.map(|w| w.join()) {
                Ok(Ok(done)) => results.extend(done),
                // A panic while loading is a bug; surface it as the panic it was.
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // No thread to be had (a process at its limit): this file's slot is
                // loaded below, on the calling thread.
                Err(_) => {}
            }
        }
        results
    });
    results.sort_unstable_by_key(|(at, _)| *at);
    // Files no worker reached (every spawn failed) are loaded here, one after another.
    let mut loaded = results.into_iter().peekable();
    (0..paths.len())
        .map(|at| match loaded.next_if(|(done, _)| *done == at) {
            Some((_, result)) => result,
            None => load_with(&paths[at], options),
        })
        .collect()
}

/// Removes `.` and `dir/..` lexically, so messages show `a/b.yaml`, not `a/x/../b.yaml`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// The directories referenced files must resolve into. A spec is often someone else's
/// file; confining its references stops `experiment: /proc/self/environ` or
/// `../../etc/passwd` from being read and quoted back in a diagnostic.
struct AllowedRoots {
    /// Each root resolved through symlinks, compared with a reference's resolved path.
    canonical: Vec<PathBuf>,
}

impl AllowedRoots {
    fn new(top_level: &Path, options: &LoadOptions) -> Self {
        let own_dir = match top_level.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dirs = std::iter::once(own_dir).chain(options.allow_paths.iter().map(PathBuf::as_path));
        let mut canonical: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            let root = dir.canonicalize().unwrap_or_else(|_| absolute(dir));
            if !canonical.contains(&root) {
                canonical.push(root);
            }
        }
        // A root inside another adds nothing and would only lengthen the message.
        let all = canonical.clone();
        canonical.retain(|root| {
            !all.iter()
                .any(|other| other != root && root.starts_with(other))
        });
        Self { canonical }
    }

    fn hold(&self, resolved: &Path) -> bool {
        self.canonical.iter().any(|root| resolved.starts_with(root))
    }

    /// For a path that does not resolve: whether its deepest existing ancestor does.
    /// Otherwise "not found" versus "outside" would tell a spec which files exist
    /// anywhere on the machine, directly or through a symlinked directory.
    fn hold_missing(&self, path: &Path) -> bool {
        absolute(path)
            .ancestors()
            .find_map(|ancestor| ancestor.canonicalize().ok())
            .is_some_and(|existing| self.hold(&existing))
    }

    /// The roots as shown to the user: `dir`, `dir and other`, `a, b and c`.
    fn describe(&self) -> String {
        let shown: Vec<String> = self
            .canonical
            .iter()
            .map(|root| root.display().to_string())
            .collect();
        match shown.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

struct Loader {
    /// Files being loaded, outermost first, for cycle detection.
    stack: Vec<PathBuf>,
    roots: AllowedRoots,
    diagnostics: Diagnostics,
}

type LoadedFile = (Document, Vec<ResolvedStep>);

impl Loader {
    fn load_file(
        &mut self,
        parsed: Result<(Arc<SourceFile>, Node), Diagnostic>,
        ctx: &Context,
    ) -> Option<LoadedFile> {
        let (file, root) = match parsed {
            Ok(parsed) => parsed,
            Err(diagnostic) => {
                self.diagnostics.0.push(diagnostic);
                return None;
            }
        };
        let mut decoder = Decoder::new(file.clone());
        let mut refs = Vec::new();
        let document = read::document(&mut decoder, &root, ctx, &mut refs);
        self.diagnostics.0.extend(decoder.errors);
        let document = document?;
        let Document::Experiment(experiment) = &document else {
            return Some((document, Vec::new()));
        };
        let child_ctx = Context {
            guards: ctx
                .guards
                .iter()
                .chain(&experiment.spec.safety)
                .cloned()
                .collect(),
            alertmanager: ctx.alertmanager || experiment.spec.alertmanager.is_some(),
            included: true,
        };
        let mut resolved = HashMap::new();
        for reference in &refs {
            if let Some(loaded) = self.load_reference(&file, reference, &child_ctx) {
                resolved.insert(reference.path.clone(), loaded);
            }
        }
        if resolved.len()
            < refs
                .iter()
                .map(|r| &r.path)
                .collect::<std::collections::HashSet<_>>()
                .len()
        {
            return None;
        }
        let steps = resolve_steps(&experiment.spec.steps, &resolved);
        Some((document, steps))
    }

    fn load_reference(
        &mut self,
        from: &Arc<SourceFile>,
        reference: &Reference,
        ctx: &Context,
    ) -> Option<(PathBuf, LoadedFile)> {
        let base = from.path.parent().unwrap_or(Path::new("."));
        let target = normalize(&base.join(&reference.path));
        let error =
            |message: String, hint: Option<String>| from.diagnostic(reference.pos, message, hint);
        let resolved = match self.resolve(&target) {
            Ok(resolved) => resolved,
            Err(refused) => {
                let (message, hint) = refused.explain(&reference.path, &target, &self.roots);
                self.diagnostics.0.push(error(message, hint));
                return None;
            }
        };
        let key = resolved.clone();
        if let Some(start) = self.stack.iter().position(|p| *p == key) {
            let chain: Vec<String> = self.stack[start..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| {
                    p.file_name().map_or_else(
                        || p.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            self.diagnostics.0.push(error(
                format!("cyclic reference: {}", chain.join(" → ")),
                Some("an experiment cannot include itself, directly or through others".into()),
            ));
            return None;
        }
        self.stack.push(key);
        let loaded = self.load_file(source::read_resolved(&target, &resolved), ctx);
        self.stack.pop();
        let (document, steps) = loaded?;
        let found = match &document {
            Document::Scenario(_) => ExpectedKind::Scenario,
            Document::Experiment(_) => ExpectedKind::Experiment,
        };
        if found != reference.expects {
            let (key, wanted, got) = match reference.expects {
                ExpectedKind::Scenario => ("scenario", "Scenario", "Experiment"),
                ExpectedKind::Experiment => ("experiment", "Experiment", "Scenario"),
            };
            self.diagnostics.0.push(error(
                format!(
                    "`{}` is an {got} file, but `{key}:` needs a {wanted}",
                    reference.path
                ),
                Some(format!(
                    "use `{}:` for this file",
                    if got == "Scenario" {
                        "scenario"
                    } else {
                        "experiment"
                    }
                )),
            ));
            return None;
        }
        Some((target, (document, steps)))
    }

    /// Where `target` really is, if it may be read: inside the roots after following
    /// symlinks, and a regular file. The type is checked without opening the file,
    /// because opening a FIFO blocks and a device never ends.
    fn resolve(&self, target: &Path) -> Result<PathBuf, Refused> {
        let resolved = match target.canonicalize() {
            Ok(resolved) => resolved,
            Err(_) if !self.roots.hold_missing(target) => return Err(Refused::Outside),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refused::NotFound),
            Err(e) => return Err(Refused::Unreadable(e)),
        };
        if !self.roots.hold(&resolved) {
            return Err(Refused::Outside);
        }
        let file_type = std::fs::metadata(&resolved)
            .map_err(Refused::Unreadable)?
            .file_type();
        match source::not_a_regular_file(&file_type) {
            None => Ok(resolved),
            Some(kind) => Err(Refused::NotRegular(kind)),
        }
    }
}

/// Why a referenced path is not read.
enum Refused {
    Outside,
    NotFound,
    NotRegular(&'static str),
    Unreadable(std::io::Error),
}

impl Refused {
    /// The message and hint, naming the reference as written, never what it points to.
    fn explain(
        &self,
        written: &str,
        target: &Path,
        roots: &AllowedRoots,
    ) -> (String, Option<String>) {
        match self {
            Refused::Outside => (
                format!(
                    "referenced file `{written}` is outside {}",
                    roots.describe()
                ),
                Some(
                    "references must resolve, after symlinks, inside the top-level file's \
                     directory or an allowed one; to allow another, pass `--allow-path DIR`"
                        .into(),
                ),
            ),
            Refused::NotFound => (
                format!("referenced file `{written}` not found"),
                Some(format!(
                    "paths are relative to this file; looked for {}",
                    target.display()
                )),
            ),
            Refused::NotRegular(source::DIRECTORY) => (
                format!("referenced path `{written}` is a directory"),
                Some("reference a .yaml file".into()),
            ),
            Refused::NotRegular(kind) => (
                format!("referenced file `{written}` is {kind}, not a regular file"),
                Some("spec files must be regular files".into()),
            ),
            Refused::Unreadable(e) => (
                format!("cannot read referenced file `{written}`: {e}"),
                None,
            ),
        }
    }
}

fn resolve_steps(
    steps: &[Step],
    resolved: &HashMap<String, (PathBuf, LoadedFile)>,
) -> Vec<ResolvedStep> {
    steps
        .iter()
        .filter_map(|step| {
            let (default_name, action) = match &step.action {
                StepAction::Scenario(p) | StepAction::Experiment(p) => {
                    let (path, (document, steps)) = resolved.get(p)?;
                    match document {
                        Document::Scenario(s) => (
                            s.metadata.name.clone(),
                            ResolvedAction::Scenario {
                                path: path.clone(),
                                scenario: Box::new(s.clone()),
                            },
                        ),
                        Document::Experiment(e) => (
                            e.metadata.name.clone(),
                            ResolvedAction::Experiment {
                                path: path.clone(),
                                steps: steps.clone(),
                                safety: e.spec.safety.clone(),
                            },
                        ),
                    }
                }
                StepAction::Pause(span) => (
                    format!("pause {}", format_duration(span.0)),
                    ResolvedAction::Pause(span.0),
                ),
                StepAction::Parallel(inner) => (
                    "parallel".to_owned(),
                    ResolvedAction::Parallel(resolve_steps(inner, resolved)),
                ),
            };
            Some(ResolvedStep {
                name: step.name.clone().unwrap_or(default_name),
                after: step.after.map_or(Duration::ZERO, |a| a.0),
                repeat: step.repeat,
                action,
            })
        })
        .collect()
}

/// The JSON Schema of both file kinds, as printed by `shakedown schema`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Document);
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "$id".into(),
            "https://shakedown.dev/schemas/v1alpha1.json".into(),
        );
        object.insert("title".into(), "shakedown Scenario or Experiment".into());
    }
    value
}
