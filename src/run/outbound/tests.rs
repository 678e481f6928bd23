use std::sync::Mutex;

use jiff::Timestamp;

use super::push::Pushgateway;
use super::*;
use crate::events::{FaultIntent, PlannedStep, RunStarted};

fn record(seq: u64, event: RunEvent) -> Record {
    Record {
        seq,
        at: Timestamp::from_second(1_800_000_000 + seq as i64).unwrap_or_default(),
        event,
    }
}

fn note(seq: u64) -> Record {
    record(
        seq,
        RunEvent::Note {
            level: crate::events::NoteLevel::Info,
            message: format!("n{seq}"),
        },
    )
}

/// Answers every request after `delay` (never, for a long one), counting them.
struct Slow {
    delay: Duration,
    sent: Mutex<Vec<String>>,
}

impl Transport for Slow {
    fn send<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        Box::pin(async move {
            if let Ok(mut sent) = self.sent.lock() {
                sent.push(request.about.clone());
            }
            tokio::time::sleep(self.delay).await;
            Ok(())
        })
    }
}

/// One request per record, about its sequence number.
struct Echo;

impl Subscriber for Echo {
    fn name(&self) -> String {
        "echo".into()
    }
    fn requests(&mut self, record: &Record) -> Vec<Request> {
        vec![Request {
            method: Method::Post,
            path: String::new(),
            content_type: "text/plain",
            headers: Vec::new(),
            body: Vec::new(),
            about: record.seq.to_string(),
        }]
    }
}

fn quiet_bus() -> EventBus {
    EventBus::new(
        None,
        super::super::bus::Progress::Quiet,
        super::super::bus::system_clock(),
    )
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let (sender, _receiver) = mpsc::channel(2);
    let counts = Arc::new(Counts::default());
    let feed = Feed {
        sender,
        counts: counts.clone(),
    };
    for seq in 1..=5 {
        feed.offer(&note(seq));
    }
    // Samples and missed-delivery notes never take a slot.
    feed.offer(&record(
        6,
        RunEvent::DeliveryFailed {
            to: "x".into(),
            about: "y".into(),
            error: "z".into(),
            attempts: 1,
        },
    ));
    assert_eq!(counts.queued.load(Ordering::Relaxed), 2);
    assert_eq!(counts.dropped.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn the_exit_waits_at_most_the_drain_bound_for_a_receiver_that_never_answers() {
    let bus = quiet_bus();
    let transport = Arc::new(Slow {
        delay: Duration::from_secs(3600),
        sent: Mutex::new(Vec::new()),
    });
    let outbound = Outbound::start(
        &bus,
        vec![Delivery {
            subscriber: Box::new(Echo),
            transport: transport.clone(),
        }],
    );
    let before = tokio::time::Instant::now();
    for _ in 0..3 {
        bus.emit(RunEvent::Note {
            level: crate::events::NoteLevel::Info,
            message: "x".into(),
        });
    }
    assert!(
        before.elapsed() < Duration::from_millis(1),
        "emitting never waits for a receiver"
    );
    outbound.finish(&bus).await;
    assert!(before.elapsed() <= DRAIN, "took {:?}", before.elapsed());
    let missed: Vec<String> = bus
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            RunEvent::DeliveryFailed { about, .. } => Some(about.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(missed, ["3 event(s) still queued at exit"]);
}

#[tokio::test(start_paused = true)]
async fn a_drain_delivers_everything_queued_when_the_receiver_answers() {
    let bus = quiet_bus();
    let transport = Arc::new(Slow {
        delay: Duration::from_millis(10),
        sent: Mutex::new(Vec::new()),
    });
    let outbound = Outbound::start(
        &bus,
        vec![Delivery {
            subscriber: Box::new(Echo),
            transport: transport.clone(),
        }],
    );
    for _ in 0..5 {
        bus.emit(RunEvent::Note {
            level: crate::events::NoteLevel::Info,
            message: "x".into(),
        });
    }
    outbound.finish(&bus).await;
    let sent = transport.sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(sent, ["1", "2", "3", "4", "5"], "in order");
    assert_eq!(bus.records().len(), 5, "nothing missed");
}

/// Fails transiently `failures` times, then answers.
struct Flaky {
    failures: Mutex<u32>,
}

impl Transport for Flaky {
    fn send<'a>(&'a self, _: &'a Request) -> SendFuture<'a> {
        Box::pin(async move {
            let mut left = self.failures.lock().map_err(|_| SendError {
                transient: false,
                message: "poisoned".into(),
            })?;
            if *left == 0 {
                return Ok(());
            }
            *left -= 1;
            Err(SendError {
                transient: true,
                message: "answered 503".into(),
            })
        })
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_up_to_the_attempts() {
    let request = Echo.requests(&note(1)).remove(0);
    let twice = Flaky {
        failures: Mutex::new(2),
    };
    assert_eq!(send_with_retries(&twice, &request).await, Ok(()));
    let always = Flaky {
        failures: Mutex::new(100),
    };
    let (error, attempts) = send_with_retries(&always, &request)
        .await
        .expect_err("gives up");
    assert_eq!(attempts, ATTEMPTS as u32);
    assert_eq!(error.message, "answered 503");
}

fn body(request: &Request) -> String {
    String::from_utf8_lossy(&request.body).into_owned()
}

#[test]
fn the_pushgateway_gets_the_fault_window_as_0_then_1_then_0_in_one_group() {
    let mut push = Pushgateway::new("Pushgateway at x".into(), "shop-day".into());
    let started = RunStarted {
        run_id: "r1".into(),
        experiment: "shop-day".into(),
        source: "e.yaml".into(),
        seed: 1,
        context: None,
        api_server: None,
        prometheus_url: None,
        dry_run: "none".into(),
        version: "0".into(),
        steps: vec![PlannedStep {
            id: "1".into(),
            name: "checkout \"a\"".into(),
            scenario: None,
            fault: Some("pod-delete".into()),
            hypotheses: Vec::new(),
            file: None,
            fault_line: None,
        }],
        hypotheses: Vec::new(),
        labels: Default::default(),
    };
    let first = push.requests(&record(1, RunEvent::RunStarted(started)));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].method, Method::Put);
    assert_eq!(first[0].path, "metrics/job/shakedown/experiment/shop-day");
    let line = |active: u8| {
        format!(
            "shakedown_fault_active{{step=\"1\",fault=\"pod-delete\",target_kind=\"pods\"}} {active}\n"
        )
    };
    assert!(body(&first[0]).contains(&line(0)), "{}", body(&first[0]));
    assert!(
        push.requests(&record(
            2,
            RunEvent::FaultIntent(FaultIntent {
                step: "1".into(),
                fault: "pod-delete".into(),
                targets: vec!["shop/a".into(), "shop/b".into()],
                params: serde_json::Value::Null,
                revert: String::new(),
            })
        ))
        .is_empty()
    );
    let inject = |seq, target: &str| {
        record(
            seq,
            RunEvent::FaultInjected {
                step: "1".into(),
                target: target.into(),
                detail: String::new(),
                dry_run: false,
            },
        )
    };
    let revert = |seq, target: &str| {
        record(
            seq,
            RunEvent::FaultReverted {
                step: "1".into(),
                target: target.into(),
                detail: String::new(),
                dry_run: false,
            },
        )
    };
    let on = push.requests(&inject(3, "shop/a"));
    assert!(body(&on[0]).contains(&line(1)));
    assert!(
        push.requests(&inject(4, "shop/b")).is_empty(),
        "already active"
    );
    assert!(
        push.requests(&revert(5, "shop/a")).is_empty(),
        "shop/b is still faulted"
    );
    let off = push.requests(&revert(6, "shop/b"));
    assert!(body(&off[0]).contains(&line(0)));
}

#[test]
fn notifications_classify_the_events_people_care_about() {
    use super::notify::classify;
    use crate::spec::NotifyEvent;
    assert_eq!(classify(&note(1).event), None);
    assert_eq!(
        classify(&RunEvent::StepFinished {
            step: "1".into(),
            status: crate::events::StepStatus::Aborted
        }),
        Some(NotifyEvent::Aborted)
    );
    assert_eq!(
        classify(&RunEvent::StepFinished {
            step: "1".into(),
            status: crate::events::StepStatus::Completed
        }),
        None
    );
    assert_eq!(
        NotifyEvent::FaultInjected.cloud_event_type(),
        "dev.shakedown.fault.injected"
    );
    for (event, name) in NotifyEvent::ALL.iter().zip(NotifyEvent::NAMES) {
        assert_eq!(event.name(), name);
    }
}

#[test]
fn the_signature_is_hmac_sha256_hex_of_the_body() {
    // RFC 4231, test case 2.
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"Jefe");
    assert_eq!(
        super::notify::signature(&key, b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn json_of(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).unwrap_or_default()
}

#[test]
fn an_abort_and_a_failed_revert_are_notified_with_what_is_left_faulted() {
    use super::notify::Notifier;
    use crate::spec::NotifyKind;
    let mut webhook = Notifier::new(
        NotifyKind::Webhook,
        "webhook x".into(),
        Vec::new(),
        None,
        "/out/r1".into(),
    );
    let mut slack = Notifier::new(
        NotifyKind::Slack,
        "slack".into(),
        Vec::new(),
        None,
        "/out/r1".into(),
    );
    let failed = |seq, target: &str| {
        record(
            seq,
            RunEvent::RevertFailed {
                step: "2".into(),
                target: target.into(),
                error: "timed out".into(),
            },
        )
    };
    let aborted = record(
        1,
        RunEvent::StepFinished {
            step: "2".into(),
            status: crate::events::StepStatus::Aborted,
        },
    );
    let sent = webhook.requests(&aborted);
    assert_eq!(json_of(&sent[0])["type"], "dev.shakedown.run.aborted");
    assert_eq!(json_of(&sent[0])["data"]["status"], "aborted");
    assert!(
        webhook.requests(&note(2)).is_empty(),
        "a note is no notification"
    );
    webhook.requests(&failed(3, "node/a"));
    let second = webhook.requests(&failed(4, "node/b"));
    let event = json_of(&second[0]);
    assert_eq!(event["type"], "dev.shakedown.fault.revert_failed");
    assert_eq!(event["subject"], "node/b");
    assert_eq!(
        event["data"]["leftFaulted"],
        serde_json::json!(["node/a", "node/b"])
    );
    assert!(second[0].headers.is_empty(), "no key, no signature");
    slack.requests(&failed(3, "node/a"));
    let text = json_of(&slack.requests(&failed(4, "node/b"))[0])["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.ends_with(
            "step 2: revert of node/b FAILED: timed out; left faulted: node/a, node/b; run `shakedown recover`"
        ),
        "{text}"
    );
}

#[test]
fn a_receiver_gets_only_the_events_it_asked_for() {
    use super::notify::Notifier;
    use crate::spec::{NotifyEvent, NotifyKind};
    let mut only_finish = Notifier::new(
        NotifyKind::Slack,
        "slack".into(),
        vec![NotifyEvent::RunFinished],
        None,
        "/out".into(),
    );
    let reverted = record(
        1,
        RunEvent::FaultReverted {
            step: "1".into(),
            target: "shop/a".into(),
            detail: String::new(),
            dry_run: false,
        },
    );
    assert!(only_finish.requests(&reverted).is_empty());
}
