//! AI Bridge routes: `/api/v2/aibridge/openai/v1/*` and `/api/v2/aibridge/anthropic/v1/*`
//! hand the request to the [`crate::aibridge`] service (404 when it is off).

use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::ApiError;

use crate::{aibridge::Provider, app::AppState};

pub async fn openai(State(app): State<AppState>, req: Request) -> Response {
    match app.aibridge.as_ref() {
        Some(bridge) => bridge.forward(Provider::OpenAi, req).await,
        None => ApiError::not_found().into_response(),
    }
}

pub async fn anthropic(State(app): State<AppState>, req: Request) -> Response {
    match app.aibridge.as_ref() {
        Some(bridge) => bridge.forward(Provider::Anthropic, req).await,
        None => ApiError::not_found().into_response(),
    }
}
