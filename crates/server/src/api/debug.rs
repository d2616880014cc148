//! `GET /api/v2/debug/pprof/profile` (owners): a CPU profile of the whole process as
//! folded stacks (`thread;outer;…;inner count`, the input of flame-graph tools). Every
//! stack starts with its thread's name, so request handling (`http-api`) and background
//! jobs (`db-purge`, `provisioner`) are told apart: Coder's pprof labels, by thread.

use std::{fmt::Write as _, time::Duration};

use axum::{
    extract::Query,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{Actor, ApiError};
use gatehouse_rbac::{Action, Object, ResourceType, authorize};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ProfileQuery {
    /// How long to sample, 1–60 seconds (default 30).
    pub seconds: Option<String>,
}

const SAMPLING_HZ: i32 = 99;

#[utoipa::path(
    get,
    path = "/api/v2/debug/pprof/profile",
    tag = "Debug",
    params(ProfileQuery),
    responses(
        (status = 200, description = "Folded stacks, one line per distinct stack", content_type = "text/plain"),
        (status = 400, body = gatehouse_sdk::Response),
        (status = 403, body = gatehouse_sdk::Response),
        (status = 409, body = gatehouse_sdk::Response),
    )
)]
pub async fn cpu_profile(
    actor: Actor,
    Query(q): Query<ProfileQuery>,
) -> Result<Response, ApiError> {
    if authorize(
        actor.subject(),
        Action::Read,
        &Object::of(ResourceType::DebugInfo),
    )
    .is_err()
    {
        return Err(ApiError::forbidden());
    }
    let seconds = match q.seconds.as_deref() {
        None | Some("") => 30,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=60).contains(s))
            .ok_or_else(|| {
                ApiError::bad_request("Invalid profile duration.")
                    .with_validation("seconds", "must be a whole number from 1 to 60")
            })?,
    };
    // The profiler's guard is not `Send`: sample on a blocking thread.
    let folded = tokio::task::spawn_blocking(move || profile(Duration::from_secs(seconds)))
        .await
        .map_err(|e| ApiError::internal("The profiler stopped.").with_cause(e))??;
    let mut res = folded.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(res)
}

fn profile(duration: Duration) -> Result<String, ApiError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(SAMPLING_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| {
            ApiError::new(StatusCode::CONFLICT, "A profile is already being taken.").with_cause(e)
        })?;
    std::thread::sleep(duration);
    let report = guard
        .report()
        .build()
        .map_err(|e| ApiError::internal("The profile could not be built.").with_cause(e))?;
    let mut lines: Vec<String> = report
        .data
        .iter()
        .map(|(frames, count)| {
            let mut line = frames.thread_name.replace([';', ' '], "_");
            // Innermost frame first in the report; folded stacks go outermost first.
            for frame in frames.frames.iter().rev() {
                for symbol in frame.iter().rev() {
                    line.push(';');
                    line.push_str(&symbol.name().replace([';', ' '], "_"));
                }
            }
            let _ = write!(line, " {count}");
            line
        })
        .collect();
    lines.sort();
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}
