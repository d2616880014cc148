//! The owner-only CPU profile: stacks are attributed to their thread's name.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::http::StatusCode;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_profile_names_the_threads() {
    let app = TestApp::sqlite().await;
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "member", &[]).await;
    let path = "/api/v2/debug/pprof/profile";
    let res = app
        .get(&format!("{path}?seconds=1"))
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    for bad in ["0", "61", "x"] {
        let res = app
            .get(&format!("{path}?seconds={bad}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // A background thread burning CPU while the profile runs.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("busy-job".to_owned())
            .spawn(move || {
                let mut x: u64 = 1;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                x
            })
            .unwrap()
    };
    let res = app
        .get(&format!("{path}?seconds=1"))
        .token(&owner)
        .send()
        .await;
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let text = res.text();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no samples");
    for line in &lines {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        assert!(count.parse::<u64>().unwrap() > 0, "{line}");
        assert!(!stack.is_empty());
    }
    assert!(
        lines.iter().any(|l| l.starts_with("busy-job;")),
        "the busy thread is not in the profile: {text}"
    );
}
