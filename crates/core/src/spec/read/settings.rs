//! The `safety`, `prometheus`, `alertmanager` and `regression` blocks (`prometheus` and
//! `alertmanager` take the same connection options).

use super::*;

pub(super) fn safety(d: &mut Decoder, node: &Node) -> Option<Safety> {
    let mut m = d.map(node, "safety")?;
    let namespaces = m
        .opt("allowedNamespaces")
        .map(|n| d.string_list(n, "allowedNamespaces"));
    let max = m
        .opt("maxTargetPercent")
        .map(|n| d.percent(n, "maxTargetPercent"));
    let max_node = m.opt("maxTargetPercent");
    let contexts = m
        .opt("allowedContexts")
        .map(|n| d.string_list(n, "allowedContexts"));
    let max_nodes = m
        .opt("maxNodes")
        .map(|n| d.int(n, "maxNodes", 1, i64::from(u32::MAX)));
    let allow_empty_zone = m.opt("allowEmptyZone").map(|n| d.bool(n, "allowEmptyZone"));
    m.finish(d);
    let namespaces = namespaces.unwrap_or(Some(Vec::new()))?;
    let ok = namespace_names_without_kube_system(
        d,
        &namespaces,
        "`kube-system` cannot be allowed",
        "shakedown never disrupts kube-system",
    );
    let max = max.unwrap_or(Some(defaults::max_target_percent().0))?;
    if max == 0.0 {
        d.error(
            max_node.map_or(node.pos, |n| n.pos),
            "maxTargetPercent 0 allows no target at all",
            Some("a percentage above 0".into()),
        );
        return None;
    }
    ok.then_some(())?;
    Some(Safety {
        allowed_namespaces: namespaces.into_iter().map(|(_, n)| n).collect(),
        max_target_percent: Percent(max),
        allowed_contexts: contexts
            .unwrap_or(Some(Vec::new()))?
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
        max_nodes: optional(max_nodes)?.map(|n| n as u32),
        allow_empty_zone: allow_empty_zone.unwrap_or(Some(false))?,
    })
}

/// A `prometheus` or `alertmanager` block (`block` names it in messages).
pub(super) fn prometheus(d: &mut Decoder, node: &Node, block: &str) -> Option<PrometheusSpec> {
    let mut m = d.map(node, block)?;
    let url = m
        .opt("url")
        .map(|n| http_url(d, n, &format!("{block}.url")));
    let timeout = m
        .opt("timeout")
        .map(|n| d.duration(n, &format!("{block}.timeout"), false));
    let max_response = m
        .opt("maxResponseMiB")
        .map(|n| d.int(n, &format!("{block}.maxResponseMiB"), 1, 1024));
    let token_env = m.opt("bearerTokenEnv").map(|n| env_var_name(d, n));
    let token_file_node = m.opt("bearerTokenFile");
    let token_file = token_file_node.map(|n| d.string(n, "bearerTokenFile"));
    let basic_auth = m.opt("basicAuth").map(|n| basic_auth(d, n));
    let ca_file = m.opt("caFile").map(|n| d.string(n, "caFile"));
    let insecure = m
        .opt("insecureSkipVerify")
        .map(|n| d.bool(n, "insecureSkipVerify"));
    let headers_node = m.opt("headers");
    let headers = headers_node.map(|n| string_map(d, n, &format!("{block}.headers")));
    m.finish(d);
    if let (Some(_), Some(n)) = (&token_env, token_file_node) {
        d.error(
            n.pos,
            "both `bearerTokenEnv` and `bearerTokenFile` are set",
            Some("use one source for the token".into()),
        );
        return None;
    }
    if let (Some(Some(h)), Some(n)) = (&headers, headers_node)
        && h.keys().any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        // The line holds the credential: named, not quoted.
        d.secret_error(
            n.pos,
            "credentials must not be written into headers",
            Some(
                "use bearerTokenEnv, bearerTokenFile or basicAuth, which are kept out of reports"
                    .into(),
            ),
        );
        return None;
    }
    Some(PrometheusSpec {
        url: optional(url)?,
        timeout: optional(timeout)?.map(Span),
        max_response_mib: optional(max_response)?.map(|n| n as u32),
        bearer_token_env: optional(token_env)?,
        bearer_token_file: optional(token_file)?,
        basic_auth: optional(basic_auth)?,
        ca_file: optional(ca_file)?,
        insecure_skip_verify: insecure.unwrap_or(Some(false))?,
        headers: headers.unwrap_or(Some(BTreeMap::new()))?,
    })
}

pub(super) fn env_var_name(d: &mut Decoder, node: &Node) -> Option<String> {
    let valid = |name: &str| {
        name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    };
    let hint =
        "name the variable that holds the secret, e.g. `PROMETHEUS_TOKEN`, never the secret itself";
    d.shaped(
        node,
        "environment variable",
        "environment variable name",
        valid,
        hint,
    )
}

pub(super) fn basic_auth(d: &mut Decoder, node: &Node) -> Option<BasicAuth> {
    let mut m = d.map(node, "basicAuth")?;
    let username = m
        .required(d, "username")
        .and_then(|n| d.string(n, "username"));
    let password_env = m.opt("passwordEnv").map(|n| env_var_name(d, n));
    let password_file = m.opt("passwordFile").map(|n| d.string(n, "passwordFile"));
    m.finish(d);
    if password_env.is_some() == password_file.is_some() {
        d.error(
            node.pos,
            "basicAuth needs exactly one of `passwordEnv` or `passwordFile`",
            Some("passwords are never written inline".into()),
        );
        return None;
    }
    Some(BasicAuth {
        username: username?,
        password_env: optional(password_env)?,
        password_file: optional(password_file)?,
    })
}

pub(super) fn regression(d: &mut Decoder, node: &Node) -> Option<RegressionSpec> {
    let mut m = d.map(node, "regression")?;
    let baseline = m
        .opt("baseline")
        .map(|n| d.string(n, "regression.baseline"));
    let recovery = m
        .opt("recovery")
        .map(|n| d.percent(n, "regression.recovery"));
    let score = m.opt("score").map(|n| d.percent(n, "regression.score"));
    let floor = m
        .opt("recoveryFloor")
        .map(|n| d.duration(n, "regression.recoveryFloor", true));
    m.finish(d);
    let baseline = optional(baseline)?.unwrap_or_else(defaults::regression_baseline);
    if baseline.trim().is_empty() {
        d.error(
            node.pos,
            "regression.baseline is empty",
            Some("`latest`, `previous`, a run folder or a run id".into()),
        );
        return None;
    }
    Some(RegressionSpec {
        baseline,
        recovery: optional(recovery)?.map(Percent),
        score: optional(score)?.map(Percent),
        recovery_floor: optional(floor)?.map(Span),
    })
}

/// The `notify:` list: each receiver's kind, its URL (inline, or the variable that holds
/// a secret one), the HMAC key's source and the events it wants.
pub(super) fn notify(d: &mut Decoder, node: &Node) -> Option<Vec<NotifySpec>> {
    let items = d.seq(node, "notify")?;
    let decoded: Vec<_> = items.iter().map(|n| notify_one(d, n)).collect();
    decoded.into_iter().collect()
}

fn notify_one(d: &mut Decoder, node: &Node) -> Option<NotifySpec> {
    let mut m = d.map(node, "a notify entry")?;
    let kind = m.required(d, "kind").and_then(|n| {
        d.one_of(n, "notify kind", &NotifyKind::NAMES)
            .map(|k| match k {
                "slack" => NotifyKind::Slack,
                _ => NotifyKind::Webhook,
            })
    });
    let url = m.opt("url").map(|n| http_url(d, n, "notify.url"));
    let url_env = m.opt("urlEnv").map(|n| env_var_name(d, n));
    let secret_env = m.opt("secretEnv").map(|n| env_var_name(d, n));
    let secret_file = m.opt("secretFile").map(|n| d.string(n, "secretFile"));
    let secret_key = m.key_pos("secretEnv").or(m.key_pos("secretFile"));
    let events = m.opt("events").map(|n| {
        let names = d.string_list(n, "notify.events")?;
        let mut events = Vec::new();
        for (pos, name) in names {
            let found = NotifyEvent::NAMES.iter().position(|v| *v == name);
            match found {
                Some(i) => events.push(NotifyEvent::ALL[i]),
                None => {
                    let item = Node {
                        pos,
                        value: Value::Str(name),
                    };
                    d.one_of(&item, "notify event", &NotifyEvent::NAMES);
                }
            }
        }
        (events.len() == listed(n)).then_some(events)
    });
    m.finish(d);
    if url.is_some() == url_env.is_some() {
        d.error(
            node.pos,
            "a notify entry needs exactly one of `url` or `urlEnv`",
            Some("`urlEnv` names the variable holding a secret URL (a Slack webhook)".into()),
        );
        return None;
    }
    if secret_env.is_some() && secret_file.is_some() {
        d.error(
            secret_key.unwrap_or(node.pos),
            "both `secretEnv` and `secretFile` are set",
            Some("use one source for the signing key".into()),
        );
        return None;
    }
    let kind = kind?;
    if kind == NotifyKind::Slack && (secret_env.is_some() || secret_file.is_some()) {
        d.error(
            secret_key.unwrap_or(node.pos),
            "a `slack` notification is not signed",
            Some("Slack's incoming webhooks take no signature; use `kind: webhook` to sign".into()),
        );
        return None;
    }
    Some(NotifySpec {
        kind,
        url: optional(url)?,
        url_env: optional(url_env)?,
        secret_env: optional(secret_env)?,
        secret_file: optional(secret_file)?,
        events: events.unwrap_or(Some(Vec::new()))?,
    })
}

/// How many names a `notify.events` node holds (one for a single string).
fn listed(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => items.len(),
        _ => 1,
    }
}
