//! The `fault` block: pod-delete, network-latency and node-drain, and their parameters.

use super::*;

pub(super) fn fault(d: &mut Decoder, node: &Node) -> Option<Fault> {
    let mut m = d.map(node, "fault")?;
    let Some(kind) = m.required(d, "type").and_then(|n| fault_type(d, n)) else {
        // Without a known type we cannot tell which keys belong; don't report them.
        return None;
    };
    let fault = match kind {
        "pod-delete" => pod_delete(d, &mut m).map(Fault::PodDelete),
        "network-latency" => network_latency(d, &mut m).map(Fault::NetworkLatency),
        _ => node_drain(d, &mut m).map(Fault::NodeDrain),
    };
    m.finish(d);
    fault
}

pub(super) fn fault_type(d: &mut Decoder, node: &Node) -> Option<&'static str> {
    let known = d.one_of(node, "fault type", &Fault::TYPES);
    if known.is_none()
        && let Some(last) = d.errors.last_mut()
        && last.message.starts_with("unknown fault type")
        && last
            .hint
            .as_deref()
            .is_some_and(|h| !h.starts_with("did you mean"))
    {
        last.hint = Some(format!("supported faults: {}", Fault::TYPES.join(", ")));
    }
    known
}

pub(super) fn pod_delete(d: &mut Decoder, m: &mut MapReader) -> Option<PodDelete> {
    let interval_node = m.opt("interval");
    let duration_node = m.opt("duration");
    let interval = interval_node.and_then(|n| d.duration(n, "interval", false));
    let duration = duration_node.and_then(|n| d.duration(n, "duration", false));
    let grace_node = m.opt("gracePeriod");
    let grace_period = grace_node.and_then(|n| d.duration(n, "gracePeriod", true));
    let force = m
        .opt("force")
        .and_then(|n| d.bool(n, "force"))
        .unwrap_or(false);
    match (interval_node, duration_node) {
        (Some(n), None) => {
            d.error(
                n.pos,
                "`interval` needs `duration`",
                Some("e.g. `interval: 30s` with `duration: 2m`; omit both to delete once".into()),
            );
            return None;
        }
        (None, Some(n)) => {
            d.error(
                n.pos,
                "`duration` needs `interval` for pod-delete",
                Some("e.g. `interval: 30s`; omit both to delete once".into()),
            );
            return None;
        }
        _ => {}
    }
    if let (Some(i), Some(dur), Some(n)) = (interval, duration, interval_node)
        && i > dur
    {
        d.error(
            n.pos,
            "`interval` is longer than `duration`, so only one deletion would happen",
            Some("make interval at most the duration".into()),
        );
        return None;
    }
    if force
        && let (Some(g), Some(n)) = (grace_period, grace_node)
        && !g.is_zero()
    {
        d.error(
            n.pos,
            "`force: true` deletes with grace period 0, but `gracePeriod` is set",
            Some("drop one of them".into()),
        );
        return None;
    }
    if interval_node.is_some() && interval.is_none()
        || duration_node.is_some() && duration.is_none()
        || grace_node.is_some() && grace_period.is_none()
    {
        return None;
    }
    Some(PodDelete {
        interval: interval.map(Span),
        duration: duration.map(Span),
        grace_period: grace_period.map(Span),
        force,
    })
}

pub(super) fn network_latency(d: &mut Decoder, m: &mut MapReader) -> Option<NetworkLatency> {
    let delay_node = m.required(d, "delay");
    let delay = delay_node.and_then(|n| d.duration(n, "delay", false));
    let jitter_node = m.opt("jitter");
    let jitter = jitter_node.map(|n| d.duration(n, "jitter", true));
    let correlation = m.opt("correlation").map(|n| d.percent(n, "correlation"));
    let loss = m.opt("loss").map(|n| d.percent(n, "loss"));
    let interface = m.opt("interface").map(|n| interface_name(d, n));
    let duration = m
        .required(d, "duration")
        .and_then(|n| d.duration(n, "duration", false));
    let image = m.opt("image").map(|n| image_reference(d, n));
    let delay = delay?;
    if let Some(n) = delay_node
        && delay > Duration::from_secs(60)
    {
        d.error(
            n.pos,
            "delay is over 60s, which would look like a full outage",
            Some("use a delay up to 60s, or a different fault".into()),
        );
        return None;
    }
    if let (Some(Some(j)), Some(n)) = (jitter, jitter_node)
        && j > delay
    {
        d.error(
            n.pos,
            "jitter is larger than delay",
            Some("jitter at most the delay, e.g. delay 200ms with jitter 50ms".into()),
        );
        return None;
    }
    Some(NetworkLatency {
        delay: Span(delay),
        jitter: Span(jitter.unwrap_or(Some(Duration::ZERO))?),
        correlation: Percent(correlation.unwrap_or(Some(0.0))?),
        loss: optional(loss.map(|l| l.map(Percent)))?,
        interface: interface.unwrap_or_else(|| Some(defaults::interface()))?,
        duration: Span(duration?),
        image: image.unwrap_or_else(|| Some(defaults::injector_image()))?,
    })
}

/// Interface names reach `tc` inside the pod, so only the kernel's own alphabet passes.
pub(super) fn interface_name(d: &mut Decoder, node: &Node) -> Option<String> {
    let valid = |name: &str| {
        name.len() <= 15
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
    };
    d.shaped(
        node,
        "interface",
        "interface name",
        valid,
        "at most 15 characters of [A-Za-z0-9-_.@], e.g. `eth0`",
    )
}

pub(super) fn image_reference(d: &mut Decoder, node: &Node) -> Option<String> {
    let valid = |image: &str| {
        image.len() <= 512
            && image.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b':' | b'@' | b'-' | b'_')
            })
    };
    d.shaped(
        node,
        "image",
        "image reference",
        valid,
        "e.g. `registry.example.com/tools/netshoot:v0.13`",
    )
}

pub(super) fn node_drain(d: &mut Decoder, m: &mut MapReader) -> Option<NodeDrain> {
    let duration = m
        .required(d, "duration")
        .and_then(|n| d.duration(n, "duration", false));
    let eviction_timeout = m
        .opt("evictionTimeout")
        .map(|n| d.duration(n, "evictionTimeout", false));
    let ignore_daemon_sets = m
        .opt("ignoreDaemonSets")
        .map(|n| d.bool(n, "ignoreDaemonSets"));
    let delete_empty_dir_data = m
        .opt("deleteEmptyDirData")
        .map(|n| d.bool(n, "deleteEmptyDirData"));
    Some(NodeDrain {
        duration: Span(duration?),
        eviction_timeout: eviction_timeout
            .map_or(Some(defaults::eviction_timeout()), |t| t.map(Span))?,
        ignore_daemon_sets: ignore_daemon_sets.unwrap_or(Some(true))?,
        delete_empty_dir_data: delete_empty_dir_data.unwrap_or(Some(false))?,
    })
}
