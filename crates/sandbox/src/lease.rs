//! `coordination.k8s.io/v1` Leases, validated like kube-apiserver's lease strategy: a
//! DNS-subdomain name, `leaseDurationSeconds > 0`, `leaseTransitions >= 0`, a
//! `preferredHolder` only with a `strategy`, `MicroTime` fields that parse as RFC 3339
//! with exactly six fractional digits (stored in UTC), and no unconditional update (a
//! PUT must carry the `resourceVersion` it read, so two writers cannot both win). A PUT
//! to a missing Lease creates it, as the real strategy allows.
//!
//! It only checks and normalises a Lease body; storing, watching and dry-run are the
//! generic machinery's.

use serde_json::{Value, json};

use super::status::ApiError;

/// The kind as kube-apiserver names it in an `Invalid` status.
const KIND: &str = "Lease.coordination.k8s.io";

/// The Go layout MicroTime is parsed with (`metav1.RFC3339Micro`), for error messages.
const MICRO_LAYOUT: &str = "2006-01-02T15:04:05.000000Z07:00";

/// Validates a Lease's spec and normalises its MicroTime fields to UTC, in place.
pub fn validate(lease: &mut Value) -> Result<(), ApiError> {
    let name = lease["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if !lease["spec"].is_null() && !lease["spec"].is_object() {
        return Err(cannot_decode("spec: expected an object".into()));
    }
    for field in ["acquireTime", "renewTime"] {
        let value = &mut lease["spec"][field];
        if value.is_null() {
            continue;
        }
        let Some(text) = value.as_str() else {
            return Err(cannot_decode(format!(
                "spec.{field}: expected a string, got {value}"
            )));
        };
        *value = json!(micro_time(text)?);
    }
    let spec = &lease["spec"];
    let int = |field: &str| -> Result<Option<i64>, ApiError> {
        match &spec[field] {
            Value::Null => Ok(None),
            v => v
                .as_i64()
                .filter(|n| i32::try_from(*n).is_ok())
                .map(Some)
                .ok_or_else(|| cannot_decode(format!("spec.{field}: expected an int32, got {v}"))),
        }
    };
    if let Some(seconds) = int("leaseDurationSeconds")?
        && seconds <= 0
    {
        return Err(ApiError::invalid(
            KIND,
            &name,
            "spec.leaseDurationSeconds",
            &format!("Invalid value: {seconds}: must be greater than 0"),
        ));
    }
    if let Some(transitions) = int("leaseTransitions")?
        && transitions < 0
    {
        return Err(ApiError::invalid(
            KIND,
            &name,
            "spec.leaseTransitions",
            &format!("Invalid value: {transitions}: must be greater than or equal to 0"),
        ));
    }
    let strategy = spec["strategy"].as_str().unwrap_or("");
    if !strategy.is_empty() && strategy != "OldestEmulationVersion" && !strategy.contains('/') {
        return Err(ApiError::invalid(
            KIND,
            &name,
            "spec.strategy",
            &format!(
                "Unsupported value: \"{strategy}\": supported values: \"OldestEmulationVersion\""
            ),
        ));
    }
    if spec["preferredHolder"]
        .as_str()
        .is_some_and(|h| !h.is_empty())
        && strategy.is_empty()
    {
        return Err(ApiError::invalid(
            KIND,
            &name,
            "spec.preferredHolder",
            "Forbidden: may only be specified if `strategy` is defined",
        ));
    }
    Ok(())
}

/// A PUT of a Lease must name the version it replaces (the lease strategy does not
/// allow unconditional updates); a patch always applies to the latest version. A uid in
/// the body is a precondition too, as for every PUT: it must be the stored object's.
/// `old` is `None` when the Lease does not exist (a create-on-update).
pub fn check_update_precondition(lease: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = lease["metadata"]["name"].as_str().unwrap_or("");
    if let Some(uid) = lease["metadata"]["uid"].as_str().filter(|u| !u.is_empty()) {
        let stored = old
            .and_then(|o| o["metadata"]["uid"].as_str())
            .unwrap_or("");
        if uid != stored {
            return Err(ApiError::conflict(
                "leases.coordination.k8s.io",
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {stored}"
                ),
            ));
        }
    }
    let given = lease["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| !rv.is_empty());
    if given || old.is_none() {
        return Ok(());
    }
    Err(ApiError::invalid(
        KIND,
        name,
        "metadata.resourceVersion",
        "Invalid value: 0x0: must be specified for an update",
    ))
}

/// Parses a MicroTime the way Go's `time.Parse(RFC3339Micro, s)` does (exactly six
/// fractional digits, any offset) and formats it as the API server returns it: UTC.
fn micro_time(text: &str) -> Result<String, ApiError> {
    let bad =
        |why: &str| cannot_decode(format!("parsing time {text:?} as {MICRO_LAYOUT:?}: {why}"));
    let fraction = text
        .split_once('.')
        .map(|(_, rest)| rest.bytes().take_while(u8::is_ascii_digit).count());
    if text.as_bytes().get(10) != Some(&b'T') {
        return Err(bad("it is not an RFC 3339 date and time"));
    }
    if fraction != Some(6) {
        return Err(bad("it needs six fractional digits"));
    }
    let timestamp: jiff::Timestamp = text.parse().map_err(|e: jiff::Error| bad(&e.to_string()))?;
    Ok(timestamp.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn cannot_decode(why: String) -> ApiError {
    ApiError::bad_request(format!(
        "Lease in version \"v1\" cannot be handled as a Lease: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_times_need_six_digits_and_are_stored_in_utc() {
        assert_eq!(
            micro_time("2026-12-02T10:00:00.123456+02:00").expect("valid"),
            "2026-12-02T08:00:00.123456Z"
        );
        for bad in [
            "2026-12-02T10:00:00Z",
            "2026-12-02T10:00:00.123Z",
            "2026-12-02T10:00:00.1234567Z",
            "yesterday",
        ] {
            let e = micro_time(bad).expect_err(bad);
            assert_eq!(e.code, 400, "{bad}");
        }
    }

    #[test]
    fn a_lease_needs_a_positive_duration() {
        let mut lease = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}});
        let e = validate(&mut lease).expect_err("0 is invalid");
        assert_eq!(e.code, 422);
        assert!(
            e.message.contains("spec.leaseDurationSeconds"),
            "{}",
            e.message
        );
        let mut lease = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 15}});
        validate(&mut lease).expect("15 is valid");
    }
}
