//! `cargo bench --bench validate`: how long validating 100 scenario files takes, and
//! how fast an alias bomb is refused. Figures are reported beside a baseline measured
//! in the same run (reading the same files without parsing), so they compare across
//! machines as ratios.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{median, ratio};

fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let dir = std::env::temp_dir().join(format!("shakedown-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let template = std::fs::read_to_string("scenarios/pod-delete.yaml").expect("example scenario");
    let files: Vec<PathBuf> = (0..100)
        .map(|i| {
            let path = dir.join(format!("scenario-{i}.yaml"));
            let text = template.replace("checkout-pod-delete", &format!("checkout-pod-delete-{i}"));
            std::fs::write(&path, text).expect("write");
            path
        })
        .collect();

    let baseline = time(30, || {
        for f in &files {
            std::hint::black_box(std::fs::read_to_string(f).expect("read"));
        }
    });
    let texts: Vec<(PathBuf, String)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).expect("read")))
        .collect();
    let parse = time(30, || {
        for (path, text) in &texts {
            let file = shakedown::spec::diagnostic::SourceFile::new(path, text.clone());
            std::hint::black_box(shakedown::spec::source::parse(&file).expect("yaml"));
        }
    });
    // What `shakedown validate` does with a batch: the files on every core.
    let options = shakedown::spec::LoadOptions::with_working_dir();
    let validate = time(30, || {
        for result in shakedown::spec::load_all(&files, &options) {
            std::hint::black_box(result.expect("valid"));
        }
    });
    // The same work on one core: what each file costs.
    let one_by_one = time(30, || {
        for f in &files {
            std::hint::black_box(shakedown::spec::load(f).expect("valid"));
        }
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("read 100 files (baseline):  {:>9.2?}", baseline);
    println!(
        "validate 100 scenario files: {:>9.2?}  ({:.1}x baseline; as `shakedown validate` does, on {cores} cores)",
        validate,
        ratio(validate, baseline)
    );
    println!(
        "  one file after another:    {:>9.2?}  ({:.1}x baseline; one core)",
        one_by_one,
        ratio(one_by_one, baseline)
    );
    println!(
        "  of which the YAML parse:   {:>9.2?}  ({:.0}% of one after another; the rest is decoding and checking)",
        parse,
        100.0 * parse.as_secs_f64() / one_by_one.as_secs_f64().max(1e-9)
    );

    let bomb = dir.join("bomb.yaml");
    std::fs::write(&bomb, support::alias_bomb()).expect("write bomb");
    let refuse = time(5, || {
        std::hint::black_box(shakedown::spec::load(&bomb).expect_err("bomb"));
    });
    println!(
        "refuse a 1 MB alias bomb:    {:>9.2?}  ({:.1}x baseline)",
        refuse,
        ratio(refuse, baseline)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
