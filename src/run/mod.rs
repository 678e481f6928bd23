//! What the executor, faults and probes share, below all of them: the event bus every
//! layer reports through, the console that shows it on stderr (plain lines or the live
//! view with its keys), the redactor that scrubs secrets from every output, the stop
//! signal with its cancellable waits, the one retry helper (backoff, jitter, a
//! caller's deadline), and the outbound deliveries (notifications, Pushgateway) that
//! subscribe to the bus off the critical path.
//!
//! It imports nothing above it (`executor`, `faults`, `probes`); `scripts/check-layers.sh`
//! fails the build if it ever does.

pub mod bus;
pub mod ci;
pub mod console;
pub mod outbound;
pub mod redact;
pub mod retry;
pub mod stop;
