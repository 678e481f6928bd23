//! Credentials written into a URL: user info (`user:password@host`) or a query parameter
//! that carries one (`?api_key=…`, `?access_token=…`). A URL is shown in plans,
//! journals and reports, so such a URL is refused wherever one is given (a spec's
//! `prometheus.url` and HTTP probes, `--prometheus-url`) instead of scrubbed afterwards.
//!
//! Pure string inspection: it never names the credential's value.

use std::fmt;

/// Where a URL carries a credential. Its `Display` names the place, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlCredential {
    /// `scheme://user:password@host`.
    UserInfo,
    /// `?name=value` (or `#name=value`) where `name` says it is a credential.
    QueryParameter(String),
}

impl fmt::Display for UrlCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlCredential::UserInfo => f.write_str("credentials (`user:password@`)"),
            UrlCredential::QueryParameter(name) => {
                write!(f, "a credential in its query string (`{name}=…`)")
            }
        }
    }
}

/// Words that make a query parameter a credential, matched in its name lower-cased
/// with everything but letters and digits removed (`X-Amz-Security-Token`,
/// `access_token`, `apiKey`, `client_secret`, `passwd`, `sig`).
const CREDENTIAL_WORDS: [&str; 13] = [
    "token",
    "secret",
    "passw",
    "pwd",
    "apikey",
    "accesskey",
    "privatekey",
    "signature",
    "credential",
    "auth",
    "session",
    "jwt",
    "bearer",
];
/// Names that are credentials only as a whole word (`key` but not `monkey`).
const CREDENTIAL_NAMES: [&str; 3] = ["key", "sig", "pass"];

/// The first credential `url` carries, if any.
pub fn credential_in(url: &str) -> Option<UrlCredential> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some(UrlCredential::UserInfo);
    }
    // The fragment too: it is never sent, but it is shown wherever the URL is.
    let tail = rest.split_once(['?', '#'])?.1;
    tail.split(['&', ';', '?', '#'])
        .map(|pair| pair.split('=').next().unwrap_or(""))
        .find(|name| is_credential_name(name))
        .map(|name| UrlCredential::QueryParameter(name.to_owned()))
}

/// Whether a query parameter or key name says it holds a credential (`api_key`,
/// `X-Amz-Signature`, `password`), by [`CREDENTIAL_WORDS`] and [`CREDENTIAL_NAMES`].
pub fn is_credential_name(name: &str) -> bool {
    let normal: String = percent_decoded(name)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !normal.is_empty()
        && (CREDENTIAL_WORDS.iter().any(|w| normal.contains(w))
            || CREDENTIAL_NAMES.contains(&normal.as_str()))
}

/// `%5F` → `_`, so an encoded name cannot slip past; invalid escapes stay as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_credential_parameters_are_found_by_name_never_by_value() {
        for (url, name) in [
            ("http://prom:9090/api?api_key=abc", "api_key"),
            ("https://prom/?x=1&access_token=abc", "access_token"),
            ("https://prom/?Token=abc", "Token"),
            ("https://prom/?password=abc#frag", "password"),
            ("https://prom/?apiKey=abc", "apiKey"),
            ("https://prom/?key=abc", "key"),
            ("https://prom/?X-Amz-Signature=abc", "X-Amz-Signature"),
            ("https://prom/?client_secret=abc", "client_secret"),
            ("https://prom/?api%5Fkey=abc", "api%5Fkey"),
            ("https://prom/?sig=abc", "sig"),
            ("https://prom/?auth", "auth"),
            ("http://prom/#token=in-a-fragment", "token"),
        ] {
            assert_eq!(
                credential_in(url),
                Some(UrlCredential::QueryParameter(name.to_owned())),
                "{url}"
            );
        }
        assert_eq!(
            credential_in("http://u:p@prom:9090"),
            Some(UrlCredential::UserInfo)
        );
        for clean in [
            "http://prom:9090/prometheus",
            "https://thanos/?dedup=true&partial_response=false",
            "http://checkout.shop.svc:8080/healthz?monkey=1",
            "http://prom/path@with-at?x=1",
        ] {
            assert_eq!(credential_in(clean), None, "{clean}");
        }
        let shown = credential_in("http://p/?token=s3cr3t").unwrap().to_string();
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
