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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use model::*;

use decode::Decoder;
use diagnostic::SourceFile;
use duration::format_duration;
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

/// Loads and validates `path` and everything it references.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let mut loader = Loader::default();
    loader.stack.push(canonical(path));
    let loaded = loader.load_file(path, &Context::default());
    match loaded {
        Some((document, steps)) if loader.diagnostics.is_empty() => Ok(Loaded {
            path: path.to_path_buf(),
            document,
            steps,
        }),
        _ => Err(loader.diagnostics.sorted()),
    }
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

#[derive(Default)]
struct Loader {
    /// Files being loaded, outermost first, for cycle detection.
    stack: Vec<PathBuf>,
    diagnostics: Diagnostics,
}

type LoadedFile = (Document, Vec<ResolvedStep>);

impl Loader {
    fn load_file(&mut self, path: &Path, ctx: &Context) -> Option<LoadedFile> {
        let (file, root) = match source::read(path) {
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
        if !target.is_file() {
            self.diagnostics.0.push(error(
                format!("referenced file `{}` not found", reference.path),
                Some(format!(
                    "paths are relative to this file; looked for {}",
                    target.display()
                )),
            ));
            return None;
        }
        let key = canonical(&target);
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
        let loaded = self.load_file(&target, ctx);
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
