//! `POST /api/v2/files` and `GET /api/v2/files/{fileID}`.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{Actor, ApiError, Json};
use gatehouse_sdk::{Response as Envelope, workspaces::UploadResponse};

use crate::{app::AppState, echo};

/// Uploads are capped at 10 MiB (decisions.md 10).
pub const FILE_BODY_LIMIT: usize = 10 << 20;

const ACCEPTED: &[&str] = &[
    "application/json",
    "application/x-tar",
    "application/zip",
    "application/x-zip-compressed",
];

/// Upload a file: an echo plan (`application/json`) or an archive.
#[utoipa::path(post, path = "/api/v2/files", tag = "Files",
    request_body(content = String, content_type = "application/json", description = "An echo plan, or a tar/zip archive"),
    responses((status = 201, body = UploadResponse), (status = 200, description = "Already uploaded by you", body = UploadResponse),
        (status = 400, body = Envelope), (status = 413, body = Envelope)))]
pub async fn upload_file(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    log: Option<axum::Extension<gatehouse_httpmw::request_log::RequestLog>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<UploadResponse>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            gatehouse_httpmw::body::body_too_large(log.as_deref())
        } else {
            ApiError::bad_request("Could not read the request body.").with_detail(e.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mimetype = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !ACCEPTED.contains(&mimetype.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Unsupported content type header {content_type:?}."
        )));
    }
    if mimetype == "application/json" {
        echo::parse(&body).map_err(|e| {
            ApiError::bad_request("The echo plan is invalid.")
                .with_detail(format!("{}: {}", e.field, e.detail))
                .with_validation(e.field, e.detail)
        })?;
    }
    let (file, created) = app
        .store
        .insert_file(actor.subject(), actor.user_id(), &mimetype, body.to_vec())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Json(status, UploadResponse { hash: file.id }))
}

/// Download a file you may read.
#[utoipa::path(get, path = "/api/v2/files/{fileID}", tag = "Files",
    params(("fileID" = Uuid, Path)),
    responses((status = 200, description = "The file's bytes"), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_file(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = crate::api::parse_uuid_param("fileID", &raw)?;
    let file = app.files.acquire(&app.store, actor.subject(), id).await?;
    let mut res = file.data.clone().into_response();
    if let Ok(value) = HeaderValue::from_str(&file.mimetype) {
        res.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(res)
}
