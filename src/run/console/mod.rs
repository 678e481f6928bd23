//! The console: what people watching a run see on stderr, the event bus's one
//! renderer (no second one beside it).
//!
//! - **Plain** (off a terminal, or in CI even when it fakes one): one line per event in
//!   the report's words (`report::words`), and while the run waits a heartbeat line at
//!   most every [`HEARTBEAT`]: the step, its fault, the time left, each value against its
//!   limit. Never a progress bar or a control sequence.
//! - **Live** (a terminal outside CI): the permanent log scrolls above a live area that
//!   is redrawn in place, one write per frame (cursor up, clear to the end, draw): the
//!   step `N/M`, the fault with a countdown and a bar, each hypothesis's latest value
//!   against its threshold, coloured, with a sparkline, and the score. Keys steer the run
//!   through the stop channel (`run::stop`), the same path a signal or an `abort: true`
//!   breach takes: `a` aborts, `s` skips the rest of the step; `p` closes the pause gate
//!   the executor waits on before each step; `?` shows the keys.
//!
//! The terminal is restored (`term::restore`) when the console ends, when it is dropped
//! and from a panic hook; a signal ends the run, and so the console, in order.

pub mod model;
mod term;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::watch;

use self::model::{Model, Shade};
use super::stop::{PauseGate, Stop};
use crate::events::Record;

/// Plain output says something at least this often while a step waits.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How often the live area is redrawn (the countdown moves every second).
const FRAME: Duration = Duration::from_millis(250);

/// The reason an abort from the console's `a` key records (`Stop::Aborted`).
pub const CONSOLE_ABORT: &str = "the console's abort key (a)";

/// The live console's screen, reachable by [`say_above`] while it is drawn.
static LIVE: Mutex<Option<Weak<Mutex<Screen>>>> = Mutex::new(None);

/// How the console was asked to look.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    pub verbose: bool,
    /// `--color`: `Some` when forced on or off, `None` for auto ([`auto_color`]).
    pub color: Option<bool>,
    /// The run's stop channel: the keys act through it. Without it, no keys.
    pub stop: Option<watch::Sender<Stop>>,
    /// The gate `p` closes and opens (the executor waits on it before each step).
    pub pause: Option<PauseGate>,
}

/// `--color auto` for the live view: on, unless `NO_COLOR` is set to something
/// non-empty (no-color.org: set but empty does not disable) or `TERM=dumb`.
pub fn auto_color() -> bool {
    auto_color_in(|name| std::env::var_os(name))
}

fn auto_color_in(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let no_color = var("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = var("TERM").is_some_and(|t| t == "dumb");
    !no_color && !dumb
}

/// Whether stderr gets the live view: a terminal, outside CI, that can move its cursor.
pub fn live_possible() -> bool {
    std::io::stderr().is_terminal()
        && !super::ci::detected()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// The running console: its screen and the threads that tick it and read keys.
pub struct Console {
    screen: Arc<Mutex<Screen>>,
    /// Set when the console ends: its threads stop, and a second end does nothing.
    done: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

struct Screen {
    model: Model,
    verbose: bool,
    mode: Mode,
}

enum Mode {
    Plain {
        /// When the last line was written.
        last: Instant,
    },
    Live(Live),
}

struct Live {
    color: bool,
    pause: Option<PauseGate>,
    keys: bool,
    help: bool,
    /// Rows of the live area on screen now (what the next frame moves up over).
    drawn: usize,
    /// Permanent lines not yet written above the live area.
    pending: Vec<String>,
    ended: bool,
}

impl Console {
    /// One line per event and a heartbeat while waiting.
    pub fn plain(verbose: bool) -> Self {
        let screen = Arc::new(Mutex::new(Screen {
            model: Model::default(),
            verbose,
            mode: Mode::Plain {
                last: Instant::now(),
            },
        }));
        let done = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (screen, done) = (Arc::clone(&screen), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    std::thread::park_timeout(Duration::from_secs(1));
                    lock(&screen).heartbeat(Instant::now(), Timestamp::now());
                }
            })
        };
        Self {
            screen,
            done,
            threads: vec![ticker],
        }
    }

    /// The live view on stderr, with keys when stdin is a terminal and a stop channel
    /// is given.
    pub fn live(options: ConsoleOptions) -> Self {
        let keys = term::enter() && options.stop.is_some();
        let screen = Arc::new(Mutex::new(Screen {
            model: Model::default(),
            verbose: options.verbose,
            mode: Mode::Live(Live {
                color: options.color.unwrap_or_else(auto_color),
                pause: options.pause,
                keys,
                help: false,
                drawn: 0,
                pending: Vec::new(),
                ended: false,
            }),
        }));
        if let Ok(mut live) = LIVE.lock() {
            *live = Some(Arc::downgrade(&screen));
        }
        let done = Arc::new(AtomicBool::new(false));
        let mut threads = vec![{
            let (screen, done) = (Arc::clone(&screen), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    std::thread::park_timeout(FRAME);
                    lock(&screen).draw();
                }
            })
        }];
        if let (true, Some(stop)) = (keys, options.stop) {
            let (screen, done) = (Arc::clone(&screen), Arc::clone(&done));
            threads.push(std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    match term::read_key(Duration::from_millis(100)) {
                        Ok(Some(key)) => lock(&screen).key(key, &stop),
                        Ok(None) => {}
                        Err(()) => return,
                    }
                }
            }));
        }
        Self {
            screen,
            done,
            threads,
        }
    }

    /// Shows one event: `line` (its words, already stamped) above, and the model moved on.
    pub fn show(&self, record: &Record, line: Option<String>) {
        let mut screen = lock(&self.screen);
        screen.model.apply(record);
        let verbose = screen.verbose;
        let line = line.filter(|_| {
            verbose || !matches!(record.event, crate::events::RunEvent::ProbeSample(_))
        });
        match &mut screen.mode {
            Mode::Plain { last } => {
                if let Some(line) = line {
                    let _ = writeln!(std::io::stderr(), "{line}");
                    *last = Instant::now();
                }
            }
            Mode::Live(live) => {
                live.pending.extend(line);
                screen.draw();
            }
        }
    }

    /// Ends the console: the live area is cleared (the log stays), the terminal restored.
    pub fn finish(&mut self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        for thread in self.threads.drain(..) {
            thread.thread().unpark();
            let _ = thread.join();
        }
        lock(&self.screen).end();
        if let Ok(mut live) = LIVE.lock()
            && live
                .as_ref()
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.screen)))
        {
            *live = None;
        }
        if matches!(lock(&self.screen).mode, Mode::Live(_)) {
            term::restore();
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Writes `line` above the live area when a live console is drawn (so `say!` does not
/// tear it); false when there is none and the caller writes it itself.
pub fn say_above(line: &str) -> bool {
    let screen = LIVE
        .lock()
        .ok()
        .and_then(|live| live.as_ref().and_then(Weak::upgrade));
    let Some(screen) = screen else {
        return false;
    };
    let mut screen = lock(&screen);
    if let Mode::Live(live) = &mut screen.mode
        && !live.ended
    {
        live.pending.push(line.to_owned());
        screen.draw();
        return true;
    }
    false
}

fn lock(screen: &Mutex<Screen>) -> std::sync::MutexGuard<'_, Screen> {
    screen.lock().unwrap_or_else(|p| p.into_inner())
}

impl Screen {
    fn heartbeat(&mut self, now: Instant, at: Timestamp) {
        let Mode::Plain { last } = &mut self.mode else {
            return;
        };
        if now.duration_since(*last) < HEARTBEAT {
            return;
        }
        if let Some(line) = self.model.heartbeat(at) {
            let _ = writeln!(
                std::io::stderr(),
                "{} {}",
                crate::report::words::clock(at),
                crate::report::text::clean_line(&line)
            );
            *last = now;
        }
    }

    /// One frame: up over the old live area, clear to the end, the new log lines, the
    /// new live area; a single write, so the screen never shows half a frame.
    fn draw(&mut self) {
        let Mode::Live(live) = &mut self.mode else {
            return;
        };
        if live.ended {
            return;
        }
        let (cols, rows) = term::size();
        let area = frame(&self.model, live, cols, rows, Timestamp::now());
        let mut out = String::new();
        if live.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", live.drawn));
        }
        out.push_str("\r\x1b[J");
        for line in live.pending.drain(..) {
            out.push_str(&line);
            out.push('\n');
        }
        for line in &area {
            out.push_str(line);
            out.push('\n');
        }
        live.drawn = area.len();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    fn end(&mut self) {
        if let Mode::Live(live) = &mut self.mode {
            let mut out = String::new();
            if live.drawn > 0 {
                out.push_str(&format!("\x1b[{}A", live.drawn));
            }
            out.push_str("\r\x1b[J");
            for line in live.pending.drain(..) {
                out.push_str(&line);
                out.push('\n');
            }
            live.drawn = 0;
            live.ended = true;
            let _ = std::io::stderr().write_all(out.as_bytes());
        }
    }

    fn pause(&self) -> Option<PauseGate> {
        match &self.mode {
            Mode::Live(live) => live.pause.clone(),
            Mode::Plain { .. } => None,
        }
    }

    /// A key pressed while live: every action goes through the run's stop channel.
    fn key(&mut self, key: u8, stop: &watch::Sender<Stop>) {
        let step = self.model.current.as_ref().map(|c| c.id.clone());
        let said = match key {
            b'a' | b'A' => {
                let aborted = stop.send_if_modified(|s| {
                    let running = matches!(s, Stop::Running | Stop::SkipStep);
                    if running {
                        *s = Stop::Aborted(CONSOLE_ABORT.into());
                    }
                    running
                });
                aborted.then(|| {
                    "key a: aborting: every fault is reverted now; recovery is still measured"
                        .to_owned()
                })
            }
            b's' | b'S' => match step {
                Some(step) => {
                    let skipping = stop.send_if_modified(|s| {
                        let running = matches!(s, Stop::Running);
                        if running {
                            *s = Stop::SkipStep;
                        }
                        running
                    });
                    skipping.then(|| {
                        format!("key s: skipping the rest of step {step}: reverting its fault")
                    })
                }
                None => Some("key s: no step is under way".to_owned()),
            },
            b'p' | b'P' => match self.pause() {
                Some(pause) if pause.toggle() => {
                    Some("key p: pausing before the next step (p resumes)".to_owned())
                }
                Some(_) => Some("key p: resumed".to_owned()),
                None => None,
            },
            b'?' | b'h' => {
                if let Mode::Live(live) = &mut self.mode {
                    live.help = !live.help;
                }
                None
            }
            _ => None,
        };
        if let (Some(said), Mode::Live(live)) = (said, &mut self.mode) {
            live.pending.push(format!(
                "{} {said}",
                crate::report::words::clock(Timestamp::now())
            ));
        }
        self.draw();
    }
}

/// The live area's lines, each at most `cols - 1` wide, at most `rows - 1` of them.
fn frame(model: &Model, live: &Live, cols: usize, rows: usize, now: Timestamp) -> Vec<String> {
    let width = cols.saturating_sub(1).max(20);
    let paint = |code: &str, text: String| {
        if live.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut lines = Vec::new();
    let step = model.current.as_ref().map_or_else(
        || "between steps".to_owned(),
        |c| format!("{} {}", model.step_of(c), c.name),
    );
    let title = fit(
        &format!("── {} · {step} · {}", model.experiment, model.score()),
        width,
    );
    lines.push(paint("1", title));
    if let Some(doing) = model.doing(now) {
        let mut line = format!("fault: {doing}");
        if let Some((left, hold)) = model.left(now) {
            let room = width.saturating_sub(line.chars().count() + 3).min(30);
            line.push_str(&format!("  {}", bar(left, hold, room)));
        }
        lines.push(fit(&line, width));
        if let Some(c) = &model.current
            && !c.targets.is_empty()
        {
            lines.push(fit(&format!("targets: {}", c.targets.join(", ")), width));
        }
    }
    if live.pause.as_ref().is_some_and(PauseGate::is_paused) {
        lines.push(paint(
            "1;33",
            fit("PAUSED: the next step waits; p resumes", width),
        ));
    }
    let room = rows.saturating_sub(5 + usize::from(live.help) * 5).max(1);
    let shown = model.hypotheses.len().min(room);
    // Names padded to the longest (within reason), so values line up.
    let name_width = model
        .hypotheses
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(width.saturating_sub(48).max(16));
    for h in model.hypotheses.iter().take(shown) {
        let shade = h.state();
        let code = match shade {
            Shade::Held => "32",
            Shade::Deviated => "31",
            Shade::Inconclusive => "33",
            Shade::Waiting => "2",
        };
        let reading = h.reading();
        let spark_room = width.saturating_sub(13 + name_width + reading.chars().count() + 5);
        let rest = fit(
            &format!(
                " {}  {reading}  {}",
                pad(&fit(&h.name, name_width), name_width),
                h.sparkline(spark_room)
            ),
            width.saturating_sub(12),
        );
        lines.push(format!(
            "{}{rest}",
            paint(code, format!("{:<12}", shade.word()))
        ));
    }
    if model.hypotheses.len() > shown {
        lines.push(format!(
            "… {} more hypotheses",
            model.hypotheses.len() - shown
        ));
    }
    if live.help {
        for help in [
            "a  abort: revert every fault now; recovery is still measured (exit 1)",
            "s  skip the rest of the current step: revert it, mark it skipped",
            "p  pause before the next step; p again resumes",
            "?  show or hide these keys",
            "Ctrl-C  interrupt: revert everything and exit 130",
        ] {
            lines.push(fit(help, width));
        }
    } else if live.keys {
        lines.push(paint(
            "2",
            fit("keys: a abort · s skip step · p pause · ? help", width),
        ));
    }
    lines
}

/// `[██████░░░░] 18 s` style bar of what is left, `room` wide in all.
fn bar(left: Duration, hold: Duration, room: usize) -> String {
    let cells = room.saturating_sub(2);
    if cells == 0 || hold.is_zero() {
        return String::new();
    }
    let done = ((1.0 - left.as_secs_f64() / hold.as_secs_f64()) * cells as f64).round() as usize;
    let done = done.min(cells);
    format!("[{}{}]", "█".repeat(done), "░".repeat(cells - done))
}

fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

/// `text` cut to `width` characters.
fn fit(text: &str, width: usize) -> String {
    // Names, targets and values come from users and the cluster: no raw controls.
    let text = &crate::report::text::clean_line(text);
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_no_color_does_not_disable_colour_but_a_set_one_does() {
        let with = |vars: &'static [(&str, &str)]| {
            auto_color_in(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            })
        };
        assert!(with(&[]));
        assert!(with(&[("NO_COLOR", "")]), "set but empty does not disable");
        assert!(!with(&[("NO_COLOR", "1")]));
        assert!(!with(&[("TERM", "dumb")]));
    }

    #[test]
    fn the_live_area_fits_80_by_24_and_colours_only_when_asked() {
        let model = Model::default();
        let live = |color| Live {
            color,
            pause: None,
            keys: true,
            help: true,
            drawn: 0,
            pending: Vec::new(),
            ended: false,
        };
        let plain = frame(&model, &live(false), 80, 24, Timestamp::UNIX_EPOCH);
        assert!(plain.len() < 24);
        assert!(plain.iter().all(|l| l.chars().count() < 80), "{plain:?}");
        assert!(plain.iter().all(|l| !l.contains('\x1b')));
        let coloured = frame(&model, &live(true), 80, 24, Timestamp::UNIX_EPOCH);
        assert!(coloured.iter().any(|l| l.contains("\x1b[1m")));
    }

    #[test]
    fn the_bar_fills_as_time_runs_out() {
        let hold = Duration::from_secs(30);
        assert_eq!(bar(hold, hold, 12), "[░░░░░░░░░░]");
        assert_eq!(bar(Duration::from_secs(15), hold, 12), "[█████░░░░░]");
        assert_eq!(bar(Duration::ZERO, hold, 12), "[██████████]");
    }
}
