//! An agent's log for the people who may read its workspace: a page of lines, or with
//! `follow` a websocket that sends every new batch as a JSON array (Coder's
//! `GET /api/v2/workspaceagents/{workspaceagent}/logs?follow`). The websocket stays
//! counted on its route in `coderd_api_concurrent_websockets` until it closes; at every
//! liveness probe the follower's credential is re-checked, so a revoked key, an expired
//! one or a suspended user stops the stream (close 1008 with the reason).

use std::time::Duration;

use axum::{
    extract::{
        FromRequestParts, Path, Request, State,
        ws::{Message, WebSocket, WebSocketUpgrade, close_code},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    Actor, ApiError, Json, params::workspace_agent::resolve_workspace_agent,
    request_log::RequestLog,
};
use gatehouse_rbac::{Object, Subject};
use gatehouse_sdk::{Response as Envelope, workspaces::WorkspaceAgentLog};
use gatehouse_store::{Store, objects::workspace_object, queries::agents::AgentLogLine};
use uuid::Uuid;

use crate::{
    api::liveness::{LivenessProbe, close},
    app::AppState,
    shutdown::Held,
};

/// Lines per answer, and per websocket message.
pub const PAGE: i64 = 1000;
/// How often a follower looks for new lines (any replica may have stored them).
const POLL_EVERY: Duration = Duration::from_millis(250);

/// What the query string asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogQuery {
    after: i64,
    follow: bool,
}

fn parse_query(query: Option<&str>) -> Result<LogQuery, ApiError> {
    let mut parsed = LogQuery {
        after: 0,
        follow: false,
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "after" => {
                parsed.after = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        ApiError::bad_request("Query parameter has invalid value.").with_validation(
                            "after",
                            "must be a non-negative integer (the id of the last line seen)",
                        )
                    })?;
            }
            // Coder follows when the parameter is present; `false` says otherwise.
            "follow" => parsed.follow = value != "false",
            _ => {}
        }
    }
    Ok(parsed)
}

fn to_json(line: AgentLogLine) -> WorkspaceAgentLog {
    WorkspaceAgentLog {
        id: line.id,
        created_at: line.created_at,
        output: line.output,
        level: line.level,
    }
}

/// An agent's log lines after `after`, oldest first, at most 1000 per answer; with
/// `follow`, a websocket carrying each new batch.
#[utoipa::path(get, path = "/api/v2/workspaceagents/{workspaceagent}/logs", tag = "Agents",
    security(("CoderSessionToken" = [])),
    params(("workspaceagent" = Uuid, Path),
        ("after" = Option<i64>, Query, description = "Only lines with a larger id"),
        ("follow" = Option<bool>, Query, description = "Upgrade to a websocket that sends new lines as JSON arrays")),
    responses((status = 200, body = Vec<WorkspaceAgentLog>), (status = 101, description = "Following over a websocket"),
        (status = 400, body = Envelope), (status = 401, body = Envelope), (status = 404, body = Envelope)))]
pub async fn agent_logs(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let query = parse_query(req.uri().query())?;
    let found = resolve_workspace_agent(&app.store, &actor, &raw).await?;
    let workspace: Object<'static> = workspace_object(&found.workspace);
    let subject = actor.subject().clone();
    let agent_id = found.agent.id;
    if !query.follow {
        let lines = app
            .store
            .agent_logs_after(&subject, &workspace, agent_id, query.after, PAGE)
            .await?;
        let body: Vec<WorkspaceAgentLog> = lines.into_iter().map(to_json).collect();
        return Ok(Json(StatusCode::OK, body).into_response());
    }
    let (mut parts, _body) = req.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|_| {
            ApiError::bad_request("Following logs needs a websocket.").with_detail(
                "Send the request as a websocket upgrade (Upgrade: websocket), or leave out follow.",
            )
        })?;
    let span = parts
        .extensions
        .get::<RequestLog>()
        .and_then(RequestLog::hold_websocket);
    let store = app.store.clone();
    let probe_every = app.config.websocket_probe_interval;
    let held = app.shutdown.hold();
    Ok(upgrade.on_upgrade(move |socket| async move {
        let probe = LivenessProbe::new(probe_every, span);
        let follower = Follower {
            actor,
            subject,
            workspace,
            agent_id,
        };
        follow(socket, probe, held, store, follower, query.after).await;
    }))
}

/// Who follows which agent's log.
struct Follower {
    /// Re-checked at every liveness probe: a revoked key stops its stream.
    actor: Actor,
    subject: Subject,
    workspace: Object<'static>,
    agent_id: Uuid,
}

/// Sends batches until the client goes away, a read fails, the client stops answering
/// liveness probes, the credential it connected with stops authenticating, or the server
/// stops (close 1001, going away).
async fn follow(
    mut socket: WebSocket,
    mut probe: LivenessProbe,
    mut held: Held,
    store: Store,
    follower: Follower,
    mut after: i64,
) {
    let Follower {
        actor,
        subject,
        workspace,
        agent_id,
    } = follower;
    loop {
        match store
            .agent_logs_after(&subject, &workspace, agent_id, after, PAGE)
            .await
        {
            Ok(lines) if !lines.is_empty() => {
                after = lines.last().map_or(after, |l| l.id);
                let batch: Vec<WorkspaceAgentLog> = lines.into_iter().map(to_json).collect();
                let Ok(text) = serde_json::to_string(&batch) else {
                    break;
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
                // A full page: there may be more waiting.
                if batch.len() as i64 == PAGE {
                    continue;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, %agent_id, "following agent logs failed");
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
        tokio::select! {
            () = held.stopping() => {
                close(&mut socket, close_code::AWAY, "The server is shutting down.").await;
                return;
            }
            () = tokio::time::sleep(POLL_EVERY) => {}
            () = probe.due() => {
                if probe.probe(&mut socket).await.is_err() {
                    return;
                }
                if let Err(reason) = actor.revalidate(&store).await {
                    close(&mut socket, close_code::POLICY, reason).await;
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Pong(payload))) => probe.pong(&payload),
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_rules() {
        assert_eq!(
            parse_query(None).unwrap(),
            LogQuery {
                after: 0,
                follow: false
            }
        );
        assert_eq!(
            parse_query(Some("after=7&follow")).unwrap(),
            LogQuery {
                after: 7,
                follow: true
            }
        );
        assert!(!parse_query(Some("follow=false")).unwrap().follow);
        assert!(parse_query(Some("follow=true")).unwrap().follow);
        for bad in [
            "after=-1",
            "after=x",
            "after=",
            "after=99999999999999999999",
        ] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
