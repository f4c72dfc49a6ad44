//! `linked_accounts.status` has one writer, `accounts::status` (DESIGN §3 "Account status has one owner"): every
//! change there writes its audit event and its webhook in the same transaction, and applies the precedence of
//! states. This reads the source of the server and fails when another file writes the column.

/// Files that may write the column, and why.
const ALLOWED: &[(&str, &str)] = &[
    ("src/accounts/status.rs", "the owner"),
    (
        "src/seed.rs",
        "synthetic rows for benchmarks, written before any server runs (no change happens)",
    ),
    ("src/db.rs", "a migration test's fixture row"),
];

/// The SQL statements in `text` that write `linked_accounts.status`: an UPDATE whose SET clause names `status`,
/// or an INSERT whose column list does. A statement is read up to the end of its string literal.
fn status_writes(text: &str) -> Vec<String> {
    let flat = text.replace("\\\n", " ");
    let lower = flat.to_lowercase();
    let mut found = Vec::new();
    for start in ["update linked_accounts", "insert into linked_accounts"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(start) {
            let at = from + at;
            let end = lower[at..].find('"').map_or(lower.len(), |e| at + e);
            let statement = &lower[at..end];
            let written = if start.starts_with("update") {
                let set = statement.split(" where ").next().unwrap_or(statement);
                set.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == "status")
            } else {
                let columns = statement.split(')').next().unwrap_or(statement);
                columns
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == "status")
            };
            if written {
                found.push(flat[at..end].split_whitespace().collect::<Vec<_>>().join(" "));
            }
            from = end.max(at + 1);
        }
    }
    found
}

#[test]
fn only_the_status_module_writes_the_status_column() {
    let mut offenders = Vec::new();
    let mut owner_writes = 0;
    for (relative, text) in crate::support::server_sources() {
        let writes = status_writes(&text);
        if relative == "src/accounts/status.rs" {
            owner_writes = writes.len();
        }
        if !writes.is_empty() && !ALLOWED.iter().any(|(allowed, _)| *allowed == relative) {
            offenders.push(format!("{relative}: {}", writes.join(" | ")));
        }
    }
    assert!(
        offenders.is_empty(),
        "linked_accounts.status written outside accounts::status (move the change there, with its audit event and \
         webhook):\n{}",
        offenders.join("\n")
    );
    // The check finds what it looks for: the owner's own writes (create, reactivate, report).
    assert_eq!(owner_writes, 3, "accounts/status.rs should hold the three writes");
}

#[test]
fn the_scanner_sees_writes_in_either_form() {
    assert_eq!(
        status_writes(r#"query("UPDATE linked_accounts SET status = $1 WHERE id = $2")"#).len(),
        1
    );
    assert_eq!(
        status_writes("query(\"UPDATE linked_accounts SET username = $2, \\\n  status = 'active' WHERE id = $1\")")
            .len(),
        1
    );
    assert_eq!(
        status_writes(r#"query("INSERT INTO linked_accounts (id, status) VALUES ($1, 'active')")"#).len(),
        1
    );
    // Reading the status, or writing other columns, is no write of it.
    assert!(
        status_writes(r#"query("UPDATE linked_accounts SET last_used_at = $1 WHERE status = 'active'")"#).is_empty()
    );
    assert!(status_writes(r#"query("SELECT status FROM linked_accounts")"#).is_empty());
}
