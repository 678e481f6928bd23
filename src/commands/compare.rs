//! `shakedown compare A B`: a Markdown diff of two runs, to paste into a post-mortem.

use crate::cli::GlobalArgs;
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::report::history;

/// Prints how run `b` differs from run `a` (run ids, folders, `latest`, `previous`).
/// Exit 0 once printed; 2 when either run cannot be found or read.
pub fn compare(a: &str, b: &str, global: &GlobalArgs) -> Result<Outcome, Failure> {
    let find = |reference: &str| {
        history::resolve(&global.output_dir, reference)
            .map_err(|why| Failure::from(InvalidInput::Flag(why.into())))
    };
    let (before, after) = (find(a)?, find(b)?);
    crate::out_raw!("{}", history::compare(&before, &after));
    Ok(Outcome::Passed)
}
