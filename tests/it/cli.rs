//! The `onbehalf` command line, run as a real process against a fresh SQLite database.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

fn onbehalf(db: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(args)
        .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = onbehalf(&dir.path().join("x.db"), &["--help"], None);
    assert!(out.status.success());
    let help = text(&out);
    for command in [
        "serve",
        "migrate",
        "user",
        "keys",
        "providers",
        "apikey",
        "webhook",
        "seed",
    ] {
        assert!(help.contains(command), "{help}");
    }
    let out = onbehalf(&dir.path().join("x.db"), &["user", "--help"], None);
    for command in ["add", "disable", "enable", "list"] {
        assert!(text(&out).contains(command));
    }
}

#[test]
fn user_add_list_disable_enable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/onbehalf.db");
    let out = onbehalf(&db, &["migrate"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(db.exists(), "the SQLite file is created on first run");

    let out = onbehalf(
        &db,
        &["user", "add", "--email", "Admin@Example.org", "--admin"],
        Some("a long admin password\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("created admin@example.org (admin"));
    assert!(
        !text(&out).contains("password (shown once"),
        "a given password is not echoed"
    );

    let out = onbehalf(&db, &["user", "add", "--email", "user@example.org"], None);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    let generated = shown
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once, store it now): "))
        .expect("generated password printed");
    assert_eq!(generated.len(), 20);

    let out = onbehalf(
        &db,
        &["user", "add", "--email", "user@example.org"],
        Some("another password\n"),
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"), "{}", text(&out));

    let out = onbehalf(&db, &["user", "add", "--email", "nope"], Some("another password\n"));
    assert!(!out.status.success());
    assert!(text(&out).contains("email"), "{}", text(&out));

    let out = onbehalf(&db, &["user", "disable", "--email", "user@example.org"], None);
    assert!(out.status.success(), "{}", text(&out));
    let list = text(&onbehalf(&db, &["user", "list"], None));
    assert!(
        list.lines()
            .any(|l| l.contains("user@example.org") && l.contains("disabled")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("admin@example.org") && l.contains("admin") && l.contains("active")),
        "{list}"
    );

    assert!(
        onbehalf(&db, &["user", "enable", "--email", "user@example.org"], None)
            .status
            .success()
    );
    let list = text(&onbehalf(&db, &["user", "list"], None));
    assert!(
        list.lines()
            .any(|l| l.contains("user@example.org") && l.contains("active")),
        "{list}"
    );

    let out = onbehalf(&db, &["user", "disable", "--email", "ghost@example.org"], None);
    assert!(!out.status.success());
}

#[test]
fn apikey_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("onbehalf.db");
    let out = onbehalf(
        &db,
        &["apikey", "create", "--name", "invenio", "--provider", "demo"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("created API key invenio (providers: demo)"), "{shown}");
    let secret = shown
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once, store it now): "))
        .expect("the key is printed once");
    assert!(secret.starts_with("obk_"));

    let out = onbehalf(&db, &["apikey", "create", "--name", "invenio"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists"), "{}", text(&out));
    let out = onbehalf(&db, &["apikey", "create", "--name", "x", "--provider", "gitlab"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown provider \"gitlab\""), "{}", text(&out));

    let list = text(&onbehalf(&db, &["apikey", "list"], None));
    assert!(
        list.lines().any(|l| l.starts_with("invenio\tactive\tproviders: demo")),
        "{list}"
    );
    assert!(!list.contains(secret), "a listing never shows a key");
    assert!(
        onbehalf(&db, &["apikey", "revoke", "--name", "invenio"], None)
            .status
            .success()
    );
    let list = text(&onbehalf(&db, &["apikey", "list"], None));
    assert!(list.contains("invenio\trevoked"), "{list}");
    let out = onbehalf(&db, &["apikey", "revoke", "--name", "invenio"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("already revoked"), "{}", text(&out));

    // Return URL prefixes for connect sessions, and the platform's name on its pages.
    let out = onbehalf(
        &db,
        &[
            "apikey",
            "create",
            "--name",
            "portal",
            "--return-url",
            "https://portal.example/app/",
            "--return-url",
            "http://127.0.0.1:5000",
            "--platform-name",
            "Data Portal",
        ],
        None,
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(
            "connect sessions return to: https://portal.example/app/, http://127.0.0.1:5000/ (as \"Data Portal\")"
        ),
        "{shown}"
    );
    let list = text(&onbehalf(&db, &["apikey", "list"], None));
    assert!(
        list.contains("return URLs: https://portal.example/app/ http://127.0.0.1:5000/"),
        "{list}"
    );
    for bad in ["/relative", "https://portal.example/?next=x", "ftp://portal.example/"] {
        let out = onbehalf(&db, &["apikey", "create", "--name", "bad", "--return-url", bad], None);
        assert!(!out.status.success(), "{bad}");
        assert!(text(&out).contains("is not a return URL prefix"), "{}", text(&out));
    }
}

/// Platform users (made by the service API) show in `user list` with their external id.
#[tokio::test]
async fn user_list_shows_platform_users_external_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("onbehalf.db");
    assert!(onbehalf(&db, &["migrate"], None).status.success());
    let settings = onbehalf::config::DatabaseSettings {
        url: format!("sqlite://{}", db.display()).into(),
        ..Default::default()
    };
    let pool = onbehalf::db::Db::connect(&settings).await.unwrap();
    let user = onbehalf::auth::service::PlatformUser {
        external_id: "invenio-user-9",
        email: None,
        display_name: Some("Grace"),
    };
    onbehalf::auth::service::platform_user(&pool, user).await.unwrap();
    pool.pool.close().await;
    let list = text(&onbehalf(&db, &["user", "list"], None));
    let line = list
        .lines()
        .find(|l| l.contains("invenio-user-9"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains("Grace") && line.contains(" - "), "no email: {line}");
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let out = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(["migrate"])
        .env("ONBEHALF_DATABASE__MAX_CONNECTIONS", "lots")
        .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("database.max_connections") && message.contains("ONBEHALF_DATABASE__MAX_CONNECTIONS"),
        "{message}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(["migrate"])
        .env("ONBEHALF_METRICS__TOKEN", "short")
        .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("metrics.token"), "{}", text(&out));

    // A platform's settings for talking to onbehalf share the prefix and are not the server's: ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(["migrate"])
        .env("ONBEHALF_URL", "http://127.0.0.1:3000")
        .env("ONBEHALF_API_KEY", "obk_x")
        .env("ONBEHALF_WEBHOOK_SECRET", "whsec_x")
        .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\npublic_url = \"ftp://x\"\n").unwrap();
    let out = onbehalf(&db, &["--config", file.to_str().unwrap(), "migrate"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("server.public_url"), "{}", text(&out));

    let out = onbehalf(&db, &["--config", "/no/such/file.toml", "migrate"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("no such file"), "{}", text(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(["migrate"])
        .env("ONBEHALF_DATABASE__URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(text(&out).contains("database.url"), "{}", text(&out));
}

/// `providers check` against a live OIDC provider (the demo provider in plain OIDC mode, on loopback) and a dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_check_reports_discovery_and_keys() {
    use onbehalf::demo::{DemoConfig, DemoProvider, Flavor};
    let live = DemoProvider::start(DemoConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        flavor: Flavor::PlainOidc,
        ..Default::default()
    })
    .await
    .unwrap();
    // A port that was just free: nothing answers there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("onbehalf.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.live]\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"onbehalf-demo\"\n\n\
             [providers.dead]\nkind = \"oidc\"\nissuer = \"http://{dead}\"\nclient_id = \"x\"\n",
            live.issuer_str()
        ),
    )
    .unwrap();
    let db = dir.path().join("x.db");
    let config_arg = config.display().to_string();
    let out =
        tokio::task::spawn_blocking(move || onbehalf(&db, &["--config", &config_arg, "providers", "check"], None))
            .await
            .unwrap();
    let report = text(&out);
    assert!(!out.status.success(), "a broken provider fails the check: {report}");
    assert!(
        report.contains("live (oidc):") && report.contains("ok   jwks") && report.contains("(1 keys)"),
        "{report}"
    );
    assert!(
        report.contains("dead (oidc):") && report.contains("FAIL endpoints"),
        "{report}"
    );
    assert!(report.contains("connection failed"), "{report}");
    assert!(report.contains("1 provider check(s) failed"), "{report}");
}

#[test]
fn keys_generate_prints_a_usable_key_and_a_bad_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let out = onbehalf(&db, &["keys", "generate"], None);
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(key.len(), 43, "base64url of 32 bytes: {key}");
    assert!(onbehalf::tokens::vault::decode_key(&key.clone().into()).is_ok());
    let out = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(["keys", "rotate"])
        .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
        .env("ONBEHALF_VAULT__KEYS__K1", "too-short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("vault.keys.k1"), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_onbehalf"))
        .args(["keys", "rotate"])
        .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
        .env("ONBEHALF_VAULT__KEYS__K1", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("key rotation to `k1`: 0 token sets"),
        "{}",
        text(&out)
    );
}

#[test]
fn seed_fills_an_empty_database_and_refuses_a_used_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seed.db");
    let out = onbehalf(
        &db,
        &["seed", "--users", "50", "--accounts", "500", "--events", "3000"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("seeded 50 users, 500 linked accounts, 3000 audit events"));
    let conn = format!("sqlite://{}", db.display());
    let counts = tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&conn).await.unwrap();
        let count = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
        };
        (
            count("SELECT COUNT(*) FROM users").await,
            count("SELECT COUNT(*) FROM linked_accounts").await,
            count("SELECT COUNT(*) FROM audit_events").await,
            // Every account belongs to a seeded user, every event to a seeded account of its subject.
            count("SELECT COUNT(*) FROM linked_accounts a JOIN users u ON u.id = a.user_id").await,
            count(
                "SELECT COUNT(*) FROM audit_events e JOIN linked_accounts a ON a.id = e.account_id \
                   AND a.user_id = e.subject_user_id AND a.provider = e.provider",
            )
            .await,
            count("SELECT COUNT(DISTINCT status) FROM linked_accounts").await,
        )
    });
    assert_eq!(counts, (50, 500, 3000, 500, 3000, 5));
    let out = onbehalf(&db, &["seed", "--users", "5"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("already has users"), "{}", text(&out));
}

#[test]
fn webhook_add_list_disable_enable_rotate_test_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("onbehalf.db");
    let run = |args: &[&str], loopback: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_onbehalf"));
        command
            .args(args)
            .env("ONBEHALF_DATABASE__URL", format!("sqlite://{}", db.display()))
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir());
        if loopback {
            command.env("ONBEHALF_WEBHOOKS__ALLOW_HTTP_LOOPBACK", "true");
        }
        command.output().unwrap()
    };
    // Refused with the reason, nothing stored.
    for (url, why) in [
        ("http://hooks.example.org/x", "must use https://"),
        ("https://10.1.2.3/x", "10.1.2.3 is not a public address"),
        ("http://127.0.0.1:9/x", "must use https://"),
    ] {
        let out = run(&["webhook", "add", "--url", url], false);
        assert!(!out.status.success(), "{url}");
        assert!(text(&out).contains(why), "{url}: {}", text(&out));
    }
    let out = run(
        &[
            "webhook",
            "add",
            "--url",
            "https://hooks.example.org/x",
            "--event",
            "account.linkd",
        ],
        false,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown event type `account.linkd`"),
        "{}",
        text(&out)
    );
    assert!(text(&run(&["webhook", "list"], false)).contains("no webhook endpoints"));

    let out = run(
        &[
            "webhook",
            "add",
            "--url",
            "http://127.0.0.1:9/hook",
            "--event",
            "account.needs_reconnect",
            "--event",
            "account.linked",
            "--description",
            "Invenio",
        ],
        true,
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    let secret = shown
        .lines()
        .find_map(|l| l.strip_prefix("signing secret (shown once, store it now): "))
        .expect("the secret is printed once");
    assert!(secret.starts_with("whsec_"));
    let id = shown
        .split_whitespace()
        .find(|w| w.starts_with("ep_"))
        .expect("the endpoint's id")
        .to_owned();
    assert!(shown.contains("account.needs_reconnect, account.linked"), "{shown}");
    let list = text(&run(&["webhook", "list"], false));
    assert!(
        list.contains(&id) && list.contains("enabled") && list.contains("Invenio"),
        "{list}"
    );
    assert!(!list.contains(secret), "a listing never shows a secret");

    let out = run(&["webhook", "disable", &id, "--reason", "receiver moving"], false);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&run(&["webhook", "list"], false)).contains("disabled: receiver moving"));
    let out = run(&["webhook", "test", &id], false);
    assert!(
        text(&out).contains("the endpoint is disabled: it goes out once enabled"),
        "{}",
        text(&out)
    );
    assert!(run(&["webhook", "enable", &id], false).status.success());
    assert!(text(&run(&["webhook", "list"], false)).contains("\tenabled\t"));

    let out = run(&["webhook", "rotate-secret", &id], false);
    let rotated = text(&out);
    assert!(out.status.success(), "{rotated}");
    assert!(rotated.contains("the previous one also signs for 1day"), "{rotated}");
    assert!(!rotated.contains(secret));

    let out = run(&["webhook", "replay", &id, "--since", "2026-01-01T00:00:00Z"], false);
    assert!(text(&out).contains("queued 0 deliveries"), "{}", text(&out));
    let out = run(&["webhook", "replay", &id, "--since", "last week"], false);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("neither Unix milliseconds nor an RFC 3339 time"),
        "{}",
        text(&out)
    );
    let out = run(&["webhook", "replay", &id, "--event", "evt_nope"], false);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("never had an event with the id `evt_nope`"),
        "{}",
        text(&out)
    );
    let out = run(&["webhook", "enable", "ep_nope"], false);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no webhook endpoint has the id `ep_nope`"),
        "{}",
        text(&out)
    );
}
