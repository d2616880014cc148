//! The websocket liveness prober (Coder's websocket heartbeat): every interval a ping
//! goes out; a pong for it counts as `success` in `coderd_api_websocket_probes_total`,
//! and a ping still unanswered when the next one is due counts as `timeout` and ends the
//! connection, so a peer that vanished without a close frame (a laptop closed, a NAT
//! dropped) does not hold a socket, its follower's polling, and its gauge forever.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use gatehouse_httpmw::{metrics::ProbeResult, request_log::WebsocketSpan};
use tokio::time::{Interval, MissedTickBehavior};

/// Why a connection must end.
#[derive(Debug, PartialEq, Eq)]
pub struct Dead;

/// Ends a websocket with a close frame saying why (a send that fails means it is gone).
pub async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

pub struct LivenessProbe {
    ticker: Interval,
    /// The payload of the ping awaiting its pong.
    outstanding: Option<u64>,
    sent: u64,
    /// The connection's hold on its route, where probes are counted.
    span: Option<WebsocketSpan>,
}

impl LivenessProbe {
    /// The first probe goes out one `interval` after the upgrade.
    pub fn new(interval: Duration, span: Option<WebsocketSpan>) -> LivenessProbe {
        let interval = interval.max(Duration::from_millis(1));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        LivenessProbe {
            ticker,
            outstanding: None,
            sent: 0,
            span,
        }
    }

    /// Waits until the next probe is due (cancel-safe, for `select!`).
    pub async fn due(&mut self) {
        self.ticker.tick().await;
    }

    /// Sends the next probe, or closes the connection when the last one went unanswered.
    pub async fn probe(&mut self, socket: &mut WebSocket) -> Result<(), Dead> {
        if self.outstanding.is_some() {
            self.record(ProbeResult::Timeout);
            close(socket, close_code::AWAY, "Ping failed").await;
            return Err(Dead);
        }
        self.sent += 1;
        let payload = self.sent.to_be_bytes();
        if socket
            .send(Message::Ping(payload.to_vec().into()))
            .await
            .is_err()
        {
            self.record(ProbeResult::Error);
            return Err(Dead);
        }
        self.outstanding = Some(self.sent);
        Ok(())
    }

    /// A pong arrived: it answers the outstanding probe when it carries its payload
    /// (RFC 6455 §5.5.3: a pong echoes its ping's data; an unsolicited pong is ignored).
    pub fn pong(&mut self, payload: &[u8]) {
        if let Some(expected) = self.outstanding
            && payload == expected.to_be_bytes()
        {
            self.outstanding = None;
            self.record(ProbeResult::Success);
        }
    }

    fn record(&self, result: ProbeResult) {
        if let Some(span) = &self.span {
            span.record_probe(result);
        }
    }
}
