//! `GET /api/v2/experiments` (spec/types.md §13.1): the enabled experiments.

use axum::{extract::State, http::StatusCode};
use gatehouse_httpmw::{Actor, ApiError, Json};

use crate::app::AppState;

/// The experiments enabled by `--experiments`, lowercased (`*` expanded).
#[utoipa::path(
    get,
    path = "/api/v2/experiments",
    tag = "General",
    responses((status = 200, body = Vec<String>))
)]
pub async fn enabled_experiments(
    State(app): State<AppState>,
    _actor: Actor,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(StatusCode::OK, app.experiments.enabled().to_vec()))
}
