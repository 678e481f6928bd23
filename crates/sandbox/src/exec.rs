//! `pods/exec` over the Kubernetes WebSocket channel protocols (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`): the command is recorded, not run, and the stream reports
//! success on the error channel, as a command exiting 0 would. SPDY (kubectl before
//! 1.30 without WebSocket fallback) is not spoken.
//!
//! Only the channel subprotocol is ours. The accept key, framing and close handshake
//! are tungstenite's, driven over hyper's upgraded connection by tokio-tungstenite.

use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, Role};

/// One exec call, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub protocol: String,
    pub time: SystemTime,
}

const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const ERROR_CHANNEL: u8 = 3;

/// The protocol to speak, from the client's `Sec-WebSocket-Protocol` offer.
pub fn negotiate(offer: &str) -> Option<&'static str> {
    let offered: Vec<&str> = offer.split(',').map(str::trim).collect();
    PROTOCOLS.into_iter().find(|p| offered.contains(p))
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    derive_accept_key(key.trim().as_bytes())
}

/// The error channel's message for a command that exited 0.
fn success_status() -> Message {
    let mut status = vec![ERROR_CHANNEL];
    status.extend_from_slice(br#"{"metadata":{},"status":"Success"}"#);
    Message::binary(status)
}

/// Speaks for the "process": success on the error channel, then a normal close.
pub async fn serve(upgraded: Upgraded) {
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    if ws.send(success_status()).await.is_err() {
        return;
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if ws.close(Some(close)).await.is_err() {
        return;
    }
    // Let the client send its own close (and any stdin) before hanging up.
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn v5_is_preferred_and_unknown_protocols_are_refused() {
        assert_eq!(
            negotiate("v4.channel.k8s.io, v5.channel.k8s.io"),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(negotiate("v4.channel.k8s.io"), Some("v4.channel.k8s.io"));
        assert_eq!(negotiate("base64.channel.k8s.io"), None);
    }

    #[test]
    fn success_goes_on_the_error_channel() {
        let Message::Binary(data) = success_status() else {
            panic!("the status is a binary message");
        };
        assert_eq!(data[0], ERROR_CHANNEL);
        assert_eq!(&data[1..], br#"{"metadata":{},"status":"Success"}"#);
    }
}
