//! Request rate limits (spec/ops.md §2.1, decisions.md 6): a sliding window per
//! (principal, raw path), where the principal is the prechecked user, else the client IP
//! (IPv6 by /64). Keys are hashed with a per-process random key, so a flood of distinct
//! tokens or addresses costs a fixed few bytes each, and idle keys are swept.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, Hasher, RandomState},
    net::IpAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use gatehouse_sdk::gofmt::go_duration_string;

use crate::{
    authn::{actor::Authenticated, sources::bridge_token, state::parses_true},
    error::ApiError,
    request_log::RequestLog,
};

const SHARDS: usize = 16;
/// Sweep a shard for idle keys every this many checks on it.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Index of the window `current` counts (time / window).
    window: u64,
    current: u64,
    previous: u64,
}

#[derive(Debug)]
struct Shard {
    buckets: Mutex<HashMap<u64, Bucket>>,
    checks: AtomicU64,
}

/// One limiter: `limit` requests per `window` per key. Clone-cheap handles share counts.
#[derive(Debug, Clone)]
pub struct RateLimiter(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    limit: u64,
    window: Duration,
    hasher: RandomState,
    shards: Vec<Shard>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds at which the current window ends.
    pub reset: u64,
}

impl RateLimiter {
    /// `None` when `limit` is not positive: no limiting at all.
    pub fn new(limit: i64, window: Duration) -> Option<RateLimiter> {
        let limit = u64::try_from(limit).ok().filter(|l| *l > 0)?;
        let shards = (0..SHARDS)
            .map(|_| Shard {
                buckets: Mutex::default(),
                checks: AtomicU64::new(0),
            })
            .collect();
        Some(RateLimiter(Arc::new(Inner {
            limit,
            window: window.max(Duration::from_millis(1)),
            hasher: RandomState::new(),
            shards,
        })))
    }

    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    pub fn window(&self) -> Duration {
        self.0.window
    }

    fn key(&self, principal: &Principal<'_>, path: &str) -> u64 {
        let mut h = self.0.hasher.build_hasher();
        principal.hash(&mut h);
        path.hash(&mut h);
        h.finish()
    }

    /// Counts one request for `(principal, path)` at time `now` (since the Unix epoch).
    pub fn check(&self, principal: &Principal<'_>, path: &str, now: Duration) -> Decision {
        let key = self.key(principal, path);
        let window_nanos = self.0.window.as_nanos().max(1);
        let now_nanos = now.as_nanos();
        let index = u64::try_from(now_nanos / window_nanos).unwrap_or(u64::MAX);
        let elapsed = now_nanos % window_nanos;
        let reset = u64::try_from((u128::from(index) + 1) * window_nanos / 1_000_000_000)
            .unwrap_or(u64::MAX);
        let shard = &self.0.shards[usize::try_from(key % SHARDS as u64).unwrap_or(0)];
        let mut buckets = shard.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if shard.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Keys idle for two windows hold no count: drop them.
            buckets.retain(|_, b| b.window + 1 >= index);
        }
        let bucket = buckets.entry(key).or_default();
        match index.saturating_sub(bucket.window) {
            0 => {}
            1 => {
                *bucket = Bucket {
                    window: index,
                    current: 0,
                    previous: bucket.current,
                }
            }
            _ => {
                *bucket = Bucket {
                    window: index,
                    current: 0,
                    previous: 0,
                }
            }
        }
        // httprate's sliding estimate: the previous window weighted by what is left of it.
        let weight = (window_nanos - elapsed) as f64 / window_nanos as f64;
        let rate = (bucket.previous as f64 * weight).round() as u64 + bucket.current;
        let limit = self.0.limit;
        if rate + 1 > limit {
            return Decision {
                allowed: false,
                limit,
                remaining: 0,
                reset,
            };
        }
        bucket.current += 1;
        Decision {
            allowed: true,
            limit,
            remaining: limit - (rate + 1),
            reset,
        }
    }

    /// How many keys are held (for the memory tests).
    pub fn tracked_keys(&self) -> usize {
        self.0
            .shards
            .iter()
            .map(|s| {
                s.buckets
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .sum()
    }
}

/// Who a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal<'a> {
    User(uuid::Uuid),
    Ip(IpAddr),
    Token(&'a str),
}

/// The client address, with IPv6 reduced to its /64 (one customer's block is one key).
pub fn client_ip(req: &Request) -> IpAddr {
    match crate::client_ip::peer_ip(req.extensions()) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        ip => ip,
    }
}

pub const BYPASS_HEADER: &str = "x-coder-bypass-ratelimit";

/// Sets the `X-Ratelimit-*` headers unless an inner (more specific) limiter already did,
/// as with Go middleware where the innermost limiter writes last.
fn set_headers(res: &mut Response, d: &Decision) {
    let headers = res.headers_mut();
    if headers.contains_key("x-ratelimit-limit") {
        return;
    }
    headers.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
}

/// The limiting middleware. Install with `from_fn_with_state(limiter, rate_limit)`.
/// What a request asked of the owner bypass (`X-Coder-Bypass-Ratelimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    NotAsked,
    /// Asked by an owner: skip the limiter.
    Owner,
    /// Asked by someone else (or anonymously).
    NotOwner,
}

fn authenticated(req: &Request) -> Option<&Authenticated> {
    RequestLog::prechecked_in(req.extensions()).and_then(|p| p.authenticated())
}

pub fn bypass_of(req: &Request) -> Bypass {
    let asked = req
        .headers()
        .get(BYPASS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(parses_true);
    match authenticated(req) {
        _ if !asked => Bypass::NotAsked,
        // A plain role-name scan, as Coder: no full RBAC evaluation on this path.
        Some(auth) if auth.subject.has_site_role("owner") => Bypass::Owner,
        _ => Bypass::NotOwner,
    }
}

/// Who a request counts against: its precheck-resolved user, else its IP.
pub fn principal_of(req: &Request) -> Principal<'static> {
    match authenticated(req) {
        Some(auth) => Principal::User(auth.key.user_id),
        None => Principal::Ip(client_ip(req)),
    }
}

/// Now, as the limiter counts time.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The 429 for a spent budget, with `Retry-After` and the `X-Ratelimit-*` headers.
fn limited(limiter: &RateLimiter, decision: &Decision) -> Response {
    let message = format!(
        "You've been rate limited for sending more than {} requests in {}.",
        limiter.limit(),
        go_duration_string(i64::try_from(limiter.window().as_nanos()).unwrap_or(i64::MAX))
    );
    let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
    err.retry_after = Some(u32::try_from(limiter.window().as_secs().max(1)).unwrap_or(u32::MAX));
    let mut res = err.into_response();
    set_headers(&mut res, decision);
    res
}

pub async fn rate_limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    match decide(&limiter, req.uri().path(), &req) {
        Ok(decision) => run_counted(decision, req, next).await,
        Err(refusal) => refusal.into_response(&limiter),
    }
}

/// A limiter whose routes share one bucket per principal, whatever their paths.
#[derive(Debug, Clone)]
pub struct SharedBucket {
    pub limiter: RateLimiter,
    pub bucket: &'static str,
}

/// As [`rate_limit`], one bucket for every route it wraps: the JSON login, the login form
/// and the OIDC callback are one budget of guesses, not three (issue #29).
pub async fn rate_limit_shared(
    State(shared): State<SharedBucket>,
    req: Request,
    next: Next,
) -> Response {
    match decide(&shared.limiter, shared.bucket, &req) {
        Ok(decision) => run_counted(decision, req, next).await,
        Err(refusal) => refusal.into_response(&shared.limiter),
    }
}

/// Why a request is not let through.
enum Refusal {
    /// The bypass header from someone who is not an owner.
    BypassNotOwner,
    Limited(Decision),
}

impl Refusal {
    fn into_response(self, limiter: &RateLimiter) -> Response {
        match self {
            Refusal::BypassNotOwner => ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "\"X-Coder-Bypass-Ratelimit\" provided but user is not owner",
            )
            .into_response(),
            Refusal::Limited(decision) => limited(limiter, &decision),
        }
    }
}

/// The owner bypass, then one count in `bucket`: `Ok(None)` when the request is not
/// limited at all.
fn decide(limiter: &RateLimiter, bucket: &str, req: &Request) -> Result<Option<Decision>, Refusal> {
    match bypass_of(req) {
        Bypass::NotAsked => {}
        Bypass::Owner => return Ok(None),
        Bypass::NotOwner if authenticated(req).is_some() => return Err(Refusal::BypassNotOwner),
        // Anonymous callers asking for the bypass are simply limited.
        Bypass::NotOwner => {}
    }
    let decision = limiter.check(&principal_of(req), bucket, now());
    if !decision.allowed {
        return Err(Refusal::Limited(decision));
    }
    Ok(Some(decision))
}

async fn run_counted(decision: Option<Decision>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if let Some(decision) = &decision {
        set_headers(&mut res, decision);
    }
    res
}

/// `RateLimitByAuthToken` (spec/ops.md §6): one budget per raw token (different tokens
/// never share one), else per IP; 429 with `Retry-After` when spent.
pub async fn rate_limit_by_auth_token(
    State(limiter): State<RateLimiter>,
    req: Request,
    next: Next,
) -> Response {
    let decision = match bridge_token(req.headers()).map(|(token, _)| token) {
        Some(token) => limiter.check(&Principal::Token(token), "", now()),
        None => limiter.check(&Principal::Ip(client_ip(&req)), "", now()),
    };
    if !decision.allowed {
        return limited(&limiter, &decision);
    }
    let mut res = next.run(req).await;
    set_headers(&mut res, &decision);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn limits_per_principal_and_path() {
        let rl = RateLimiter::new(2, MINUTE).unwrap();
        let t = Duration::from_secs(6000);
        let a = Principal::Ip("10.0.0.1".parse().unwrap());
        let b = Principal::Ip("10.0.0.2".parse().unwrap());
        assert!(rl.check(&a, "/x", t).allowed);
        let second = rl.check(&a, "/x", t);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        assert!(!rl.check(&a, "/x", t).allowed);
        assert!(rl.check(&a, "/y", t).allowed, "paths are separate buckets");
        assert!(
            rl.check(&b, "/x", t).allowed,
            "principals are separate buckets"
        );
        assert_eq!(second.reset, 6060);
    }

    #[test]
    fn the_window_slides() {
        let rl = RateLimiter::new(10, MINUTE).unwrap();
        let p = Principal::Token("t");
        for _ in 0..10 {
            assert!(rl.check(&p, "/x", Duration::from_secs(6000)).allowed);
        }
        // Half-way into the next window, half the previous count still weighs in.
        let mid = Duration::from_secs(6090);
        let d = rl.check(&p, "/x", mid);
        assert!(d.allowed);
        assert_eq!(d.remaining, 10 - (5 + 1));
        // Two windows later nothing weighs.
        assert_eq!(rl.check(&p, "/x", Duration::from_secs(6300)).remaining, 9);
    }

    #[test]
    fn non_positive_limits_disable() {
        assert!(RateLimiter::new(0, MINUTE).is_none());
        assert!(RateLimiter::new(-1, MINUTE).is_none());
    }

    #[test]
    fn idle_keys_are_swept() {
        let rl = RateLimiter::new(5, Duration::from_secs(1)).unwrap();
        for i in 0..50_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            rl.check(&Principal::Ip(ip), "/x", Duration::from_secs(100));
        }
        assert_eq!(rl.tracked_keys(), 50_000);
        // Much later, new traffic sweeps every idle key out; only the new keys remain.
        let fresh = SWEEP_EVERY as u32 * SHARDS as u32 * 2;
        for i in 0..fresh {
            rl.check(
                &Principal::Token(&i.to_string()),
                "/x",
                Duration::from_secs(200),
            );
        }
        assert_eq!(rl.tracked_keys(), fresh as usize);
    }
}
