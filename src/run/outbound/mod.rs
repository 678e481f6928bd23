//! Delivery of the run's records to the outside world, off the critical path: chat and
//! webhook notifications (`notify`) and Pushgateway pushes (`push`) are both a
//! [`Subscriber`] of the event bus with its own bounded queue and delivery task.
//!
//! The shape, and the bounds it guarantees:
//! - The bus *offers* each record to every subscriber's queue with a non-blocking
//!   `try_send` ([`Feed::offer`]); a full queue ([`QUEUE`] records) drops the record and
//!   counts it. An injection or a revert is therefore never delayed by a receiver: the
//!   bus pays one `try_send` per subscriber, whatever the receiver does.
//! - A delivery task per subscriber turns records into HTTP requests (the subscriber's
//!   [`Subscriber::requests`]) and sends them in order through a [`Transport`] (the
//!   Prometheus client's connection: auth, CA bundle, headers, timeout), each attempt cut
//!   at [`REQUEST_TIMEOUT`], transient failures (transport errors, 5xx, 429) retried with
//!   backoff up to [`ATTEMPTS`] attempts.
//! - At exit, [`Outbound::finish`] stops feeding, then waits at most [`DRAIN`] (2 s) *in
//!   total* for every queue to empty; whatever is still queued or in flight then is
//!   abandoned and counted. The exit is therefore delayed by at most 2 s.
//! - Every delivery that failed for good, every dropped or abandoned record, is noted in
//!   the journal as a `DeliveryFailed` event (the report's words and the console say it),
//!   never a change of the run's verdict or exit code.
//!
//! Every body passes through the redactor (`run::redact`) before it is signed and sent.
//! This module must not import the layers above it: the transport is handed in.

pub mod notify;
pub mod push;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::bus::EventBus;
use super::retry::{Backoff, retry};
use crate::events::{Record, RunEvent};

/// Records a subscriber's queue holds before it drops (and counts) new ones.
pub const QUEUE: usize = 1024;
/// How long one attempt of one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per request, the first included; only transient failures are retried.
pub const ATTEMPTS: usize = 3;
/// The first wait between attempts (doubling, with jitter).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest the exit waits for every queue to empty, all subscribers together.
pub const DRAIN: Duration = Duration::from_secs(2);

/// The HTTP method of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
}

/// One HTTP request a subscriber wants delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Below the transport's base URL; empty for the URL itself.
    pub path: String,
    pub content_type: &'static str,
    /// Extra headers (a signature).
    pub headers: Vec<(String, String)>,
    /// Already scrubbed of every registered secret.
    pub body: Vec<u8>,
    /// What it carries, in the report's words, for a failure's note.
    pub about: String,
}

/// Why one attempt failed; `transient` failures are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct SendError {
    pub transient: bool,
    pub message: String,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Where requests go: one configured HTTP connection (the Prometheus client's, handed
/// in by the layer that owns it). Only a 2xx answer is a delivery.
pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, request: &'a Request) -> SendFuture<'a>;
}

/// What turns the run's records into requests. It sees every record but probe samples,
/// in order, on its own task: rendering is off the critical path too.
pub trait Subscriber: Send {
    /// The receiver as people read it, without credentials.
    fn name(&self) -> String;
    /// The requests the record calls for (often none).
    fn requests(&mut self, record: &Record) -> Vec<Request>;
}

/// A subscriber's end of the bus: the bus offers each record, never waits.
pub struct Feed {
    sender: mpsc::Sender<Record>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    queued: AtomicU64,
    done: AtomicU64,
    dropped: AtomicU64,
}

impl Feed {
    /// Queues the record if there is room; otherwise drops and counts it. Never
    /// blocks. Probe samples (one per hypothesis per interval, which no subscriber
    /// sends) and a missed delivery's own note are never offered, so they cost no slot.
    pub fn offer(&self, record: &Record) {
        if matches!(
            record.event,
            RunEvent::DeliveryFailed { .. } | RunEvent::ProbeSample(_)
        ) {
            return;
        }
        match self.sender.try_send(record.clone()) {
            Ok(()) => {
                self.counts.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The run's subscribers and their delivery tasks.
pub struct Outbound {
    tasks: Vec<(String, Arc<Counts>, JoinHandle<()>)>,
}

/// A subscriber with the connection its requests go through.
pub struct Delivery {
    pub subscriber: Box<dyn Subscriber>,
    pub transport: Arc<dyn Transport>,
}

impl Outbound {
    /// Starts one delivery task per subscriber and attaches its feed to `bus`. Needs a
    /// tokio runtime.
    pub fn start(bus: &EventBus, deliveries: Vec<Delivery>) -> Self {
        let mut tasks = Vec::new();
        for Delivery {
            subscriber,
            transport,
        } in deliveries
        {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let counts = Arc::new(Counts::default());
            let name = subscriber.name();
            bus.attach(Feed {
                sender,
                counts: counts.clone(),
            });
            let task = tokio::spawn(deliver(
                subscriber,
                transport,
                receiver,
                bus.clone(),
                counts.clone(),
            ));
            tasks.push((name, counts, task));
        }
        Self { tasks }
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stops feeding, waits at most [`DRAIN`] in total for the queues to empty, then
    /// abandons what is left; notes every record that was dropped or abandoned.
    pub async fn finish(self, bus: &EventBus) {
        if self.tasks.is_empty() {
            return;
        }
        bus.detach_outbound();
        let deadline = tokio::time::Instant::now() + DRAIN;
        for (name, counts, mut task) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
            let queued = counts.queued.load(Ordering::Relaxed);
            let done = counts.done.load(Ordering::Relaxed);
            let left = queued.saturating_sub(done);
            if left > 0 {
                bus.emit(RunEvent::DeliveryFailed {
                    to: name.clone(),
                    about: format!("{left} event(s) still queued at exit"),
                    error: format!("the exit waits at most {DRAIN:?} for deliveries"),
                    attempts: 0,
                });
            }
            let dropped = counts.dropped.load(Ordering::Relaxed);
            if dropped > 0 {
                bus.emit(RunEvent::DeliveryFailed {
                    to: name,
                    about: format!("{dropped} event(s) dropped"),
                    error: format!("its queue ({QUEUE} events) was full"),
                    attempts: 0,
                });
            }
        }
    }
}

/// A subscriber's task: every queued record, in order, into requests, each delivered
/// with retries; a request that fails for good is noted on the bus.
async fn deliver(
    mut subscriber: Box<dyn Subscriber>,
    transport: Arc<dyn Transport>,
    mut receiver: mpsc::Receiver<Record>,
    bus: EventBus,
    counts: Arc<Counts>,
) {
    while let Some(record) = receiver.recv().await {
        for request in subscriber.requests(&record) {
            if let Err((error, attempts)) = send_with_retries(&*transport, &request).await {
                bus.emit(RunEvent::DeliveryFailed {
                    to: subscriber.name(),
                    about: request.about.clone(),
                    error: error.message,
                    attempts,
                });
            }
        }
        counts.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// One request, each attempt cut at [`REQUEST_TIMEOUT`], transient failures retried
/// with backoff; the last error and the attempts made when it never got through.
pub async fn send_with_retries(
    transport: &dyn Transport,
    request: &Request,
) -> Result<(), (SendError, u32)> {
    let attempts = AtomicU64::new(0);
    // Retries stop when the next wait would end after every attempt's worth of time.
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT * ATTEMPTS as u32;
    let backoff = Backoff::new(FIRST_BACKOFF, REQUEST_TIMEOUT).with_attempts(ATTEMPTS);
    let result = retry(
        backoff,
        deadline,
        |e: &SendError| e.transient,
        || {
            attempts.fetch_add(1, Ordering::Relaxed);
            async {
                tokio::time::timeout(REQUEST_TIMEOUT, transport.send(request))
                    .await
                    .unwrap_or_else(|_| {
                        Err(SendError {
                            transient: true,
                            message: format!("no answer within {REQUEST_TIMEOUT:?}"),
                        })
                    })
            }
        },
    )
    .await;
    result.map_err(|e| (e, attempts.load(Ordering::Relaxed) as u32))
}

/// The body as it may leave the process: every registered secret scrubbed.
pub fn scrubbed(body: String) -> Vec<u8> {
    match super::redact::scrub(&body) {
        std::borrow::Cow::Borrowed(_) => body.into_bytes(),
        std::borrow::Cow::Owned(clean) => clean.into_bytes(),
    }
}

#[cfg(test)]
mod tests;
