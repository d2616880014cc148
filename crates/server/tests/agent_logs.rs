//! An agent's log for its workspace's readers: pages by id, and `follow` over a real
//! websocket, counted in the websocket metrics for as long as it is open (spec/ops.md
//! §3.3, T12).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use uuid::Uuid;

use crate::{
    harness::{TestApp, config},
    on_both_backends,
    workspaces::{create_workspace, first_agent_id, run_jobs, world},
};

on_both_backends!(logs_are_read_by_id_and_guarded);

const ROUTE: &str = "/api/v2/workspaceagents/{workspaceagent}/logs";

async fn append(app: &TestApp, agent_token: Uuid, lines: &[&str]) {
    let logs: Vec<Value> = lines.iter().map(|l| json!({"output": l})).collect();
    let res = app
        .req(axum::http::Method::PATCH, "/api/v2/workspaceagents/me/logs")
        .header("Coder-Session-Token", &agent_token.to_string())
        .json(&json!({ "logs": logs }))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

/// A running workspace with one agent: (owner's token, agent id, agent token).
async fn running_agent(app: &TestApp) -> (String, String, Uuid) {
    let agent_token = Uuid::new_v4();
    let w = world(app, agent_token, 0, false).await;
    let ws = create_workspace(app, &w.owner, &w.template, "dev").await;
    run_jobs(app).await;
    let agent_id = first_agent_id(app, &w.owner, ws["id"].as_str().unwrap()).await;
    (w.owner, agent_id, agent_token)
}

fn outputs(lines: &Value) -> Vec<&str> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output"].as_str().unwrap())
        .collect()
}

async fn logs_are_read_by_id_and_guarded(app: TestApp) {
    let (owner, agent_id, agent_token) = running_agent(&app).await;
    let path = format!("/api/v2/workspaceagents/{agent_id}/logs");
    let res = app.get(&path).token(&owner).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!([]));

    append(&app, agent_token, &["one", "two", "three"]).await;
    let all = app.get(&path).token(&owner).send().await.json();
    assert_eq!(outputs(&all), ["one", "two", "three"]);
    assert_eq!(all[0]["level"], "info");
    assert!(all[0]["created_at"].is_string());
    let first = all[0]["id"].as_i64().unwrap();
    assert!(all[1]["id"].as_i64().unwrap() > first);
    let rest = app
        .get(&format!("{path}?after={first}"))
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(outputs(&rest), ["two", "three"]);

    for bad in ["after=-1", "after=abc"] {
        let res = app.get(&format!("{path}?{bad}")).token(&owner).send().await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            res.json()["validations"][0]["field"],
            "after",
            "{}",
            res.text()
        );
    }
    // Following needs a websocket; a plain GET is told so.
    let res = app
        .get(&format!("{path}?follow"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["message"], "Following logs needs a websocket.");
    // Someone who cannot read the workspace learns nothing about the agent.
    let (_, member) = app.user_with_roles(&owner, "member", &[]).await;
    let res = app.get(&path).token(&member).send().await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    let res = app.get(&path).send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

/// The app served over TCP as the binary serves it (upgrades included), until dropped.
struct Served {
    address: std::net::SocketAddr,
    /// Dropping it stops the server.
    stop: tokio::sync::oneshot::Sender<()>,
    /// Ends when the server has finished stopping.
    stopped: tokio::task::JoinHandle<()>,
}

async fn serve(app: &TestApp) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, told_to_stop) = tokio::sync::oneshot::channel::<()>();
    let stopped = tokio::spawn(gatehouse_server::serve::serve_connections(
        listener,
        app.router.clone(),
        app.state.shutdown.clone(),
        gatehouse_server::serve::ConnectionLimits::head_only(Duration::from_secs(5)),
        Duration::from_secs(1),
        async move {
            let _ = told_to_stop.await;
        },
    ));
    Served {
        address,
        stop,
        stopped,
    }
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

async fn next_batch<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a batch within 5 s")
            .expect("the socket is open")
            .expect("a message");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_logs_over_a_websocket_is_counted_while_open() {
    let app = TestApp::sqlite().await;
    let (owner, agent_id, agent_token) = running_agent(&app).await;
    append(&app, agent_token, &["booting"]).await;
    let served = serve(&app).await;

    let mut socket = follow_as(&served, &agent_id, &owner).await;
    assert_eq!(outputs(&next_batch(&mut socket).await), ["booting"]);
    let gauge = format!(r#"coderd_api_concurrent_websockets{{path="{ROUTE}"}}"#);
    assert_eq!(metric(&app.state.metrics.render(), &gauge), Some(1.0));
    // Websockets are not counted as in-flight requests.
    let requests = format!(r#"coderd_api_concurrent_requests{{method="GET",path="{ROUTE}"}}"#);
    assert_eq!(metric(&app.state.metrics.render(), &requests), Some(0.0));

    append(&app, agent_token, &["ready", "serving"]).await;
    assert_eq!(
        outputs(&next_batch(&mut socket).await),
        ["ready", "serving"]
    );

    socket.send(Message::Close(None)).await.unwrap();
    let durations = format!(r#"coderd_api_websocket_durations_seconds_count{{path="{ROUTE}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = app.state.metrics.render();
        if metric(&text, &gauge) == Some(0.0) {
            assert_eq!(metric(&text, &durations), Some(1.0), "{text}");
            let accepted = format!(
                r#"coderd_api_requests_processed_total{{code="101",method="GET",path="{ROUTE}"}}"#
            );
            assert_eq!(metric(&text, &accepted), Some(1.0), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the websocket was never let go: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An upgrade the handler refuses is still a websocket request: counted with its status
/// and its (short) duration, and never left in the gauge.
#[tokio::test]
async fn a_refused_upgrade_is_counted_and_let_go() {
    let app = TestApp::sqlite().await;
    let (owner, _agent_id, _) = running_agent(&app).await;
    let path = format!("/api/v2/workspaceagents/{}/logs?follow", Uuid::new_v4());
    let res = app
        .get(&path)
        .token(&owner)
        .header("Connection", "upgrade")
        .header("Upgrade", "websocket")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    let text = app.state.metrics.render();
    let gauge = format!(r#"coderd_api_concurrent_websockets{{path="{ROUTE}"}}"#);
    assert_eq!(metric(&text, &gauge), Some(0.0), "{text}");
    let durations = format!(r#"coderd_api_websocket_durations_seconds_count{{path="{ROUTE}"}}"#);
    assert_eq!(metric(&text, &durations), Some(1.0), "{text}");
    let latencies =
        format!(r#"coderd_api_request_latencies_seconds_count{{method="GET",path="{ROUTE}"}}"#);
    assert_eq!(metric(&text, &latencies), Some(0.0), "{text}");
}

/// A follower of `agent_id`'s log, upgraded over TCP with `token`.
async fn follow_as(
    served: &Served,
    agent_id: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let url = format!(
        "ws://{}/api/v2/workspaceagents/{agent_id}/logs?follow",
        served.address
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Coder-Session-Token", token.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(served.address)
        .await
        .unwrap();
    let (socket, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("the upgrade is accepted");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// An app probing websockets every 100 ms, served over TCP, with a running agent whose log
/// holds one line: (app, server, owner's token, agent id).
async fn probed_agent() -> (TestApp, Served, String, String) {
    let mut config = config();
    config.websocket_probe_interval = Duration::from_millis(100);
    let app = TestApp::sqlite_with(config).await;
    let (owner, agent_id, agent_token) = running_agent(&app).await;
    append(&app, agent_token, &["booting"]).await;
    let served = serve(&app).await;
    (app, served, owner, agent_id)
}

/// Reads (at most 5 s) until the server's close frame: its code and reason.
async fn close_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Option<(u16, String)> {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(msg)) = socket.next().await {
            if let Message::Close(frame) = msg {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
        }
        None
    })
    .await
    .expect("a close frame within 5 s")
}

/// The liveness prober pings open websockets: a client that reads (and so answers with
/// pongs) counts `success` and stays; a client that has gone silent counts `timeout` at
/// the next probe and its connection is closed and let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_fails_its_liveness_probe_and_is_let_go() {
    let (app, served, owner, agent_id) = probed_agent().await;
    let success =
        format!(r#"coderd_api_websocket_probes_total{{path="{ROUTE}",result="success"}}"#);
    let timeout =
        format!(r#"coderd_api_websocket_probes_total{{path="{ROUTE}",result="timeout"}}"#);
    let gauge = format!(r#"coderd_api_concurrent_websockets{{path="{ROUTE}"}}"#);

    // A live client: reading answers the pings.
    let mut live = follow_as(&served, &agent_id, &owner).await;
    assert_eq!(outputs(&next_batch(&mut live).await), ["booting"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pings = 0;
    while pings < 3 {
        let msg = tokio::time::timeout_at(deadline.into(), live.next())
            .await
            .expect("three pings within 5 s")
            .unwrap()
            .unwrap();
        if let Message::Ping(_) = msg {
            pings += 1;
        }
    }
    // The pong for the last ping goes out with the next read; by then the earlier ones
    // have been counted.
    let _ = tokio::time::timeout(Duration::from_millis(150), live.next()).await;
    let text = app.state.metrics.render();
    assert!(metric(&text, &success).unwrap_or(0.0) >= 2.0, "{text}");
    assert_eq!(metric(&text, &timeout), None, "{text}");
    assert_eq!(metric(&text, &gauge), Some(1.0), "{text}");
    live.send(Message::Close(None)).await.unwrap();
    drop(live);

    // A silent client: connected, then never reads again, so no pong ever goes back.
    let silent = follow_as(&served, &agent_id, &owner).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = app.state.metrics.render();
        if metric(&text, &timeout) == Some(1.0) && metric(&text, &gauge) == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent websocket was never let go: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server closed it: reading now finds the close frame (after the unanswered
    // pings and the first batch).
    let mut silent = silent;
    assert_eq!(
        close_frame(&mut silent).await,
        Some((1001, "Ping failed".to_owned()))
    );
}

/// When the server stops, an open log stream is closed with 1001 (going away) instead of
/// being cut, and the server finishes only once the stream has let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_closes_log_streams_first() {
    let (app, served, owner, agent_id) = probed_agent().await;
    let mut socket = follow_as(&served, &agent_id, &owner).await;
    assert_eq!(outputs(&next_batch(&mut socket).await), ["booting"]);
    assert_eq!(app.state.shutdown.held(), 1);
    let Served { stop, stopped, .. } = served;
    drop(stop);
    assert_eq!(
        close_frame(&mut socket).await,
        Some((1001, "The server is shutting down.".to_owned()))
    );
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the server finished stopping")
        .unwrap();
    assert_eq!(app.state.shutdown.held(), 0);
}

/// A follower's credential is re-checked at every liveness probe: while it holds, the
/// stream stays open; once the key is deleted, the stream ends with a close frame that
/// says why (1008, policy violation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_its_log_stream() {
    let (app, served, owner, agent_id) = probed_agent().await;
    let token = app.token(&owner, json!({"token_name": "follower"})).await;
    let mut socket = follow_as(&served, &agent_id, &token).await;
    assert_eq!(outputs(&next_batch(&mut socket).await), ["booting"]);

    // Several probes pass (and re-check the key) without ending the stream.
    let until = tokio::time::Instant::now() + Duration::from_millis(400);
    while let Ok(msg) = tokio::time::timeout_at(until, socket.next()).await {
        let msg = msg.expect("the socket stays open").unwrap();
        assert!(!matches!(msg, Message::Close(_)), "closed early: {msg:?}");
    }

    let key_id = token.split('-').next().unwrap();
    let res = app
        .delete(&format!("/api/v2/users/me/keys/{key_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_eq!(
        close_frame(&mut socket).await,
        Some((1008, "API key was deleted.".to_owned()))
    );
}
