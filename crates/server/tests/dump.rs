//! Dumps a test database with the real tools (`sqlite3 .dump`, `pg_dump`), to prove what
//! is and is not stored.

use std::process::Command;

use crate::harness::TestApp;

pub async fn dump_database(app: &TestApp) -> String {
    // Make sure every write is in the main database file before another process reads it.
    app.state.store.db().ping().await.unwrap();
    let output = if let Some(path) = &app.sqlite_path {
        Command::new("sqlite3").arg(path).arg(".dump").output()
    } else if let Some((url, schema)) = &app.postgres {
        Command::new("pg_dump")
            .arg("--schema")
            .arg(schema)
            .arg("--data-only")
            .arg(url)
            .output()
    } else {
        panic!("test app has no database to dump")
    };
    let output = output.expect("run the database dump tool (sqlite3 / pg_dump must be installed)");
    assert!(
        output.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
