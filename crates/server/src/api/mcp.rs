//! The MCP endpoint (`POST /api/experimental/mcp/http`; spec/oauth2.md §15; decisions.md 33):
//! stateless Streamable HTTP with JSON responses. Tools run in process as the
//! authenticated subject (roles ∩ scopes ∩ allow list); they never resend the token.

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{Actor, ApiError, params::user::resolve_user};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    api::{templates::template_json, users::user_json, workspaces::workspace_json},
    app::AppState,
};

/// Protocol versions we speak, oldest first; the last is offered to unknown clients.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-03-26", "2025-06-18", "2025-11-25"];

/// The protocol version a request without `MCP-Protocol-Version` is taken to speak
/// (2025-06-18 Streamable HTTP §2.7: a server SHOULD assume 2025-03-26).
const ASSUMED_VERSION: &str = "2025-03-26";

/// JSON-RPC batches exist only in 2025-03-26 (2025-06-18 removed them), and there only
/// this many messages to a batch: one POST must not buy thousands of tool calls for one
/// count of the rate limiter (issue #29).
pub const MAX_BATCH: usize = 16;

const INSTRUCTIONS: &str = "Coder MCP Server providing workspace and template management tools";

#[derive(Debug, Deserialize)]
pub struct McpQuery {
    pub toolset: Option<String>,
}

/// JSON-RPC 2.0 error codes.
mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// GET (an SSE stream) and DELETE (a session) do not exist on a stateless server.
pub async fn method_not_allowed() -> Response {
    let mut res = StatusCode::METHOD_NOT_ALLOWED.into_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

pub async fn handle(
    State(app): State<AppState>,
    actor: Actor,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match q.toolset.as_deref() {
        None | Some("" | "standard") => {}
        Some(other) => {
            return ApiError::bad_request(format!("Invalid toolset: {other}")).into_response();
        }
    }
    // Streamable HTTP (2025-06-18 §2.7): an unsupported protocol version header is a 400.
    let version = match headers.get("mcp-protocol-version") {
        None => ASSUMED_VERSION,
        Some(v) => match v.to_str().ok().filter(|v| PROTOCOL_VERSIONS.contains(v)) {
            Some(v) => v,
            None => {
                return ApiError::bad_request(format!(
                    "Unsupported MCP protocol version: {}",
                    String::from_utf8_lossy(v.as_bytes())
                ))
                .into_response();
            }
        },
    };
    // A JSON-RPC message is JSON (Streamable HTTP §2.1); any other type is also what a
    // cross-site page could post without a preflight.
    if !gatehouse_httpmw::body::is_json(&headers) {
        return gatehouse_httpmw::body::not_json(&headers).into_response();
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &rpc_error(Value::Null, code::PARSE_ERROR, "Parse error"),
        );
    };
    match message {
        Value::Array(_) if version != ASSUMED_VERSION => json_response(
            StatusCode::BAD_REQUEST,
            &rpc_error(
                Value::Null,
                code::INVALID_REQUEST,
                &format!(
                    "Invalid Request: JSON-RPC batches are not part of MCP {version}; \
                     send one message per request"
                ),
            ),
        ),
        Value::Array(batch) if batch.len() > MAX_BATCH => json_response(
            StatusCode::BAD_REQUEST,
            &rpc_error(
                Value::Null,
                code::INVALID_REQUEST,
                &format!("Invalid Request: at most {MAX_BATCH} messages in a batch"),
            ),
        ),
        Value::Array(batch) => {
            let mut out = Vec::new();
            for m in batch {
                if let Some(r) = dispatch(&app, &actor, m).await {
                    out.push(r);
                }
            }
            if out.is_empty() {
                StatusCode::ACCEPTED.into_response()
            } else {
                json_response(StatusCode::OK, &Value::Array(out))
            }
        }
        m => match dispatch(&app, &actor, m).await {
            Some(r) => json_response(StatusCode::OK, &r),
            // Notifications and responses are acknowledged without a body.
            None => StatusCode::ACCEPTED.into_response(),
        },
    }
}

/// Handles one message; `None` for notifications.
async fn dispatch(app: &AppState, actor: &Actor, message: Value) -> Option<Value> {
    let Some(obj) = message.as_object() else {
        return Some(rpc_error(
            Value::Null,
            code::INVALID_REQUEST,
            "Invalid Request",
        ));
    };
    let id = obj.get("id").cloned();
    let method = obj.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        // A notification (no id) or a response from the client: nothing to answer.
        return None;
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(rpc_error(id, code::INVALID_REQUEST, "Invalid Request"));
    }
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": tools()})),
        "tools/call" => call_tool(app, actor, &params).await,
        "resources/list" => Ok(json!({"resources": []})),
        "prompts/list" => Ok(json!({"prompts": []})),
        _ => Err((
            code::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )),
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => rpc_error(id, code, &message),
    })
}

fn initialize(params: &Value) -> Value {
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = if PROTOCOL_VERSIONS.contains(&requested) {
        requested
    } else {
        PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.len() - 1]
    };
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "Coder", "version": env!("CARGO_PKG_VERSION")},
        "instructions": INSTRUCTIONS,
    })
}

fn read_only(title: &str) -> Value {
    json!({"title": title, "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false})
}

fn tools() -> Value {
    json!([
        {
            "name": "coder_get_authenticated_user",
            "description": "Get the currently authenticated user, similar to the `whoami` command.",
            "inputSchema": {"type": "object", "properties": {}},
            "annotations": read_only("Get authenticated user"),
        },
        {
            "name": "coder_list_workspaces",
            "description": "Lists workspaces for the authenticated user, or for another owner.",
            "inputSchema": {"type": "object", "properties": {"owner": {"type": "string", "description": "The owner of the workspaces to list. Use \"me\" to list your own. Defaults to \"me\"."}}},
            "annotations": read_only("List workspaces"),
        },
        {
            "name": "coder_list_templates",
            "description": "Lists templates the authenticated user can use.",
            "inputSchema": {"type": "object", "properties": {}},
            "annotations": read_only("List templates"),
        },
    ])
}

/// A tool result: one text item holding JSON, or the error as text with `isError`.
fn tool_result(result: Result<Value, ApiError>) -> Value {
    match result {
        Ok(v) => json!({"content": [{"type": "text", "text": v.to_string()}], "isError": false}),
        Err(e) => {
            let mut text = e.body.message.clone();
            if !e.body.detail.is_empty() {
                text.push_str(": ");
                text.push_str(&e.body.detail);
            }
            json!({"content": [{"type": "text", "text": text}], "isError": true})
        }
    }
}

async fn call_tool(app: &AppState, actor: &Actor, params: &Value) -> Result<Value, (i64, String)> {
    let name = params.get("name").and_then(Value::as_str).ok_or((
        code::INVALID_PARAMS,
        "tools/call needs a tool name".to_owned(),
    ))?;
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let result = match name {
        "coder_get_authenticated_user" => {
            let run = async {
                let user = resolve_user(&app.store, actor, "me").await?;
                Ok(serde_json::to_value(user_json(app, actor, &user).await?).unwrap_or_default())
            };
            run.await
        }
        "coder_list_workspaces" => {
            let owner = args.get("owner").and_then(Value::as_str).unwrap_or("me");
            let owner = if owner.is_empty() { "me" } else { owner };
            let run = async {
                let user = resolve_user(&app.store, actor, owner).await?;
                let rows = app
                    .store
                    .list_workspaces(actor.subject(), Some(user.id))
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for w in &rows {
                    out.push(workspace_json(app, actor, w).await?);
                }
                Ok(serde_json::to_value(out).unwrap_or_default())
            };
            run.await
        }
        "coder_list_templates" => {
            let run = async {
                let templates = app.store.list_templates(actor.subject(), None).await?;
                let mut out = Vec::with_capacity(templates.len());
                for t in &templates {
                    out.push(template_json(app, t).await?);
                }
                Ok(serde_json::to_value(out).unwrap_or_default())
            };
            run.await
        }
        other => return Err((code::INVALID_PARAMS, format!("Unknown tool: {other}"))),
    };
    Ok(tool_result(result))
}
