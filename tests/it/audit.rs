//! The audit log is append-only in the database itself, on SQLite and PostgreSQL: whoever reaches the database
//! through SQL cannot change or remove an event (the application only ever inserts). On PostgreSQL a server can run
//! as a role that owns nothing (`database.migrate_on_start = false`), which cannot drop the triggers either.

use crate::support::{Backend, TestApp, fresh_postgres_database, oauth::linked};
use onbehalf::{config::Settings, db::Db, startup::Application};
use secrecy::SecretString;

async fn events(app: &TestApp) -> Vec<(i64, String, String)> {
    sqlx::query_as("SELECT id, action, details FROM audit_events ORDER BY id")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
}

async fn the_database_refuses_to_change_or_remove_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    linked(&app, 0).await;
    let before = events(&app).await;
    assert!(!before.is_empty(), "linking wrote an event");
    let postgres = matches!(backend, Backend::Postgres);
    let mut attempts = vec![
        "UPDATE audit_events SET details = '{}'",
        "UPDATE audit_events SET action = 'nothing_happened' WHERE id = (SELECT MIN(id) FROM audit_events)",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE id = (SELECT MIN(id) FROM audit_events)",
    ];
    if postgres {
        attempts.push("TRUNCATE audit_events");
    }
    for sql in attempts {
        let err = sqlx::query(sql)
            .execute(&app.state.db.pool)
            .await
            .expect_err(sql)
            .to_string();
        assert!(err.contains("audit_events is append-only"), "{sql}: {err}");
    }
    assert_eq!(events(&app).await, before, "every event is still there, unchanged");
    // Appending still works.
    linked(&app, 1).await;
    assert!(events(&app).await.len() > before.len());
}

/// A server that may not migrate refuses to start on a database whose schema is behind, and says what to run.
async fn a_server_that_does_not_migrate_refuses_a_schema_behind_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.demo.enabled = false;
    settings.database.migrate_on_start = false;
    settings.database.url = SecretString::from(match backend {
        Backend::Sqlite => format!("sqlite://{}/empty.db", dir.path().display()),
        Backend::Postgres => fresh_postgres_database().await,
    });
    let err = Application::build(settings)
        .await
        .err()
        .expect("no server on an unmigrated database")
        .to_string();
    assert!(
        err.contains("not applied") && err.contains("run `onbehalf migrate`"),
        "{err}"
    );
}

/// The deployment the README describes: the owner migrates, the server runs as a role granted rows but no
/// ownership. The app works (linking writes events), and that role can neither change events nor switch the
/// trigger off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_server_role_without_ownership_cannot_touch_the_audit_log() {
    let owner_url = fresh_postgres_database().await;
    let owner = Db::connect(&onbehalf::config::DatabaseSettings {
        url: SecretString::from(owner_url.clone()),
        max_connections: 2,
        migrate_on_start: true,
    })
    .await
    .unwrap();
    owner.migrate().await.unwrap();
    let role = format!("onbehalf_server_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}"),
    ] {
        sqlx::query(&sql).execute(&owner.pool).await.unwrap();
    }
    // postgres://postgres@host/db → postgres://<role>@host/db (trust authentication on test machines).
    let (scheme, rest) = owner_url.split_once("://").unwrap();
    let (_, host_and_db) = rest.split_once('@').unwrap();
    let server_url = format!("{scheme}://{role}@{host_and_db}");
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.database.url = SecretString::from(server_url);
        s.database.migrate_on_start = false;
    })
    .await;
    linked(&app, 0).await;
    let before = events(&app).await;
    assert!(!before.is_empty(), "the server wrote events as its role");
    for (sql, refusal) in [
        ("UPDATE audit_events SET details = '{}'", "permission denied"),
        ("DELETE FROM audit_events", "permission denied"),
        ("TRUNCATE audit_events", "permission denied"),
        (
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change",
            "must be owner",
        ),
        ("DROP TRIGGER audit_events_no_change ON audit_events", "must be owner"),
        ("DROP TABLE audit_events", "must be owner"),
    ] {
        let err = sqlx::query(sql)
            .execute(&app.state.db.pool)
            .await
            .expect_err(sql)
            .to_string();
        assert!(err.contains(refusal), "{sql}: {err}");
    }
    assert_eq!(events(&app).await, before);
}

on_both_backends!(
    the_database_refuses_to_change_or_remove_events,
    a_server_that_does_not_migrate_refuses_a_schema_behind_it,
);
