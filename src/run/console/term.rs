//! The terminal under the live view: its size, the key mode (no echo, no line
//! buffering, but Ctrl-C still a signal), and the one restore that every exit path
//! calls: a normal end, a dropped console, a panic, and a signal (the run winds down
//! through the stop channel and ends the console like any run).
//!
//! The saved terminal state is process-wide, because a panic hook has nothing else to
//! reach it through.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The terminal's settings before the key mode, while it is on.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);
/// The cursor was hidden by the live view.
static CURSOR_HIDDEN: AtomicBool = AtomicBool::new(false);
static HOOKED: std::sync::Once = std::sync::Once::new();

/// Columns and rows of the terminal on stderr; 80×24 when it does not say.
pub fn size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        (usize::from(ws.ws_col), usize::from(ws.ws_row))
    } else {
        (80, 24)
    }
}

/// Hides the cursor and, when stdin is a terminal, turns off echo and line buffering
/// so single keys arrive; returns whether keys can be read. Installs the panic hook
/// that restores the terminal, once per process.
pub fn enter() -> bool {
    HOOKED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
    CURSOR_HIDDEN.store(true, Ordering::SeqCst);
    let _ = std::io::stderr().write_all(b"\x1b[?25l");
    // SAFETY: isatty/tcgetattr/tcsetattr read and write a `termios` we own.
    unsafe {
        if libc::isatty(libc::STDIN_FILENO) != 1 {
            return false;
        }
        let mut term: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut term) != 0 {
            return false;
        }
        let mut keys = term;
        // ISIG stays on: Ctrl-C is still SIGINT, which reverts through the signal path.
        keys.c_lflag &= !(libc::ICANON | libc::ECHO);
        keys.c_cc[libc::VMIN] = 1;
        keys.c_cc[libc::VTIME] = 0;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &keys) != 0 {
            return false;
        }
        if let Ok(mut saved) = SAVED.lock() {
            saved.get_or_insert(term);
        }
    }
    true
}

/// Puts the terminal back as it was: its settings, and the cursor shown. Idempotent,
/// and safe from a panic hook (it never panics, a poisoned lock included).
pub fn restore() {
    let saved = match SAVED.lock() {
        Ok(mut s) => s.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(term) = saved {
        // SAFETY: writes back the settings tcgetattr gave us.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term);
        }
    }
    if CURSOR_HIDDEN.swap(false, Ordering::SeqCst) {
        let _ = std::io::stderr().write_all(b"\x1b[?25h");
    }
}

/// Waits up to `wait` for one byte on stdin: `Ok(None)` when none came, `Err(())` when
/// stdin is closed or broken (nobody can press a key any more).
pub fn read_key(wait: Duration) -> Result<Option<u8>, ()> {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: poll on one pollfd we own; read into a one-byte buffer we own.
    unsafe {
        match libc::poll(&mut fds, 1, millis) {
            0 => return Ok(None),
            1 if fds.revents & libc::POLLIN != 0 => {}
            // EINTR: a signal arrived (the run handles it); look again next time.
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {
                return Ok(None);
            }
            _ => return Err(()),
        }
        let mut byte = 0u8;
        let n = libc::read(
            libc::STDIN_FILENO,
            (&mut byte as *mut u8).cast::<libc::c_void>(),
            1,
        );
        if n == 1 { Ok(Some(byte)) } else { Err(()) }
    }
}
