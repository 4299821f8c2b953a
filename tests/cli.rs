//! The binary's command line, run as a real process against both databases.
mod common;

use common::{Backend, TestDb};
use std::io::Write;
use std::process::{Command, Output, Stdio};

both_databases!(
    token_create_list_revoke_round_trip,
    user_add_and_passwd_with_stdin,
    startup_refuses_a_database_whose_migrations_were_tampered_with,
);

fn flownexus(t: &TestDb, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flownexus"))
        .args(args)
        .env("FLOWNEXUS_CONFIG", t.dir.path().join("none.toml"))
        .env("FLOWNEXUS_DATA_DIR", t.dir.path())
        .env("FLOWNEXUS_DATABASE_URL", &t.url)
        .env("FLOWNEXUS_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

async fn token_create_list_revoke_round_trip(backend: Backend) {
    let t = TestDb::new(backend).await;
    let token = stdout(&flownexus(
        &t,
        &["token", "create", "--name", "leshan", "--scope", "device"],
        None,
    ));
    let token = token.trim();
    assert!(token.starts_with("fxd_") && token.len() > 40, "{token}");
    let hash = flownexus::server::auth::hash_token(token);
    let stored = flownexus::server::db::api_token::find_active(&t.db.pool, &hash)
        .await
        .unwrap();
    assert!(stored.is_some(), "the printed token authenticates");

    let list = stdout(&flownexus(&t, &["token", "list"], None));
    assert!(list.contains("leshan") && list.contains("active"), "{list}");
    assert!(!list.contains(token), "list must never show the secret");

    let id = stored.unwrap().0.to_string();
    stdout(&flownexus(&t, &["token", "revoke", &id], None));
    assert!(
        flownexus::server::db::api_token::find_active(&t.db.pool, &hash)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !flownexus(&t, &["token", "revoke", &id], None)
            .status
            .success(),
        "second revoke fails"
    );
    assert!(!flownexus(&t, &["token", "create", "--name", " "], None)
        .status
        .success());
}

async fn user_add_and_passwd_with_stdin(backend: Backend) {
    let t = TestDb::new(backend).await;
    let out = stdout(&flownexus(
        &t,
        &[
            "user",
            "add",
            "olga",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("olga-secret-pass\n"),
    ));
    assert!(out.contains("created user olga (viewer)"), "{out}");
    let hash = |name: &'static str| {
        let pool = t.db.pool.clone();
        async move {
            flownexus::server::db::users::find_by_username(&pool, name)
                .await
                .unwrap()
                .unwrap()
                .password_hash
        }
    };
    assert!(
        flownexus::server::auth::verify_password(
            "olga-secret-pass".into(),
            Some(hash("olga").await)
        )
        .await
    );
    // Too short a password is refused; a duplicate user too.
    assert!(!flownexus(
        &t,
        &["user", "add", "pia", "--password-stdin"],
        Some("short\n")
    )
    .status
    .success());
    assert!(!flownexus(
        &t,
        &["user", "add", "olga", "--password-stdin"],
        Some("another-long-one\n")
    )
    .status
    .success());

    // Without --password-stdin a generated password is printed, and it works.
    let out = stdout(&flownexus(&t, &["user", "passwd", "olga"], None));
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_string();
    assert!(flownexus::server::auth::verify_password(generated, Some(hash("olga").await)).await);
    assert!(!flownexus(&t, &["user", "passwd", "nobody"], None)
        .status
        .success());
}

async fn startup_refuses_a_database_whose_migrations_were_tampered_with(backend: Backend) {
    let t = TestDb::new(backend).await;
    stdout(&flownexus(&t, &["migrate"], None));
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1")
        .bind(vec![0u8; 48])
        .execute(&t.db.pool)
        .await
        .unwrap();
    for cmd in [&["migrate"][..], &["serve"][..]] {
        let out = flownexus(&t, cmd, None);
        assert_eq!(out.status.code(), Some(1), "{cmd:?} must refuse to start");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("migration"), "{err}");
    }
}
