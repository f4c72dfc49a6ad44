//! The file manager (`/transfer`) over HTTP as a browser without JavaScript uses it, against the demo provider's
//! folders: pick, browse, sort, filter, page through 2,000 entries, errors in words, bad paths refused before any
//! call, review and start, the task page with its events, cancel behind a confirmation; and `ls` in the service
//! API. On SQLite and PostgreSQL.

use crate::{
    actions::{endpoint_ids, location, page},
    service_api::action,
    support::{
        Backend, TestApp,
        oauth::{Linked, identity, linked},
    },
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// The user's collections whose names contain `text`.
async fn collections(app: &TestApp, who: &Linked, text: &str) -> Vec<String> {
    let res = app
        .call(
            "actions_page",
            &[
                ("query[account]", &who.account_id),
                ("query[scope]", "my-endpoints"),
                ("query[q]", text),
            ],
            Some(&who.cookie),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let found: Vec<String> = body["endpoints"]["Ok"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!found.is_empty(), "no collection named {text}: {body}");
    found
}

fn rows(html: &str) -> usize {
    html.matches("name=\"sel\"").count()
}

async fn folders_are_browsed_sorted_filtered_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let ids = endpoint_ids(&app, &ada).await;
    let base = format!("/transfer?account={}&src={}", ada.account_id, ids[0]);
    // The home folder: folders first, a symbolic link with its target, sizes in words.
    let home = page(&app, &ada.cookie, &base).await;
    assert!(
        home.contains("Ada&#x27;s Lab Cluster 000") || home.contains("Ada's Lab Cluster 000"),
        "{home}"
    );
    assert!(
        home.contains("Mapped collection · ada@demo.globus.org"),
        "type and owner: {home}"
    );
    let datasets = home.find("datasets/").expect("a folder");
    let notes = home.find("notes.txt").expect("a file");
    assert!(datasets < notes, "folders come first");
    assert!(home.contains("→ /~/datasets/2025/"), "the link's target");
    assert!(home.contains(" GB<"), "sizes in human units: {home}");
    assert!(home.contains("Entries 1–8 of 8"), "{home}");
    // Two levels down by the folder links, with breadcrumbs back up.
    let down = page(&app, &ada.cookie, &format!("{base}&src_path=/~/datasets/2024/")).await;
    assert!(down.contains("run-001.h5") && down.contains("calibration/"), "{down}");
    assert!(down.contains("aria-current=\"location\">2024<"), "{down}");
    assert!(
        down.contains("src_path=%2F~%2Fdatasets%2F\">datasets<"),
        "a crumb goes up: {down}"
    );
    assert!(down.contains("Up one folder (From)"));
    // 2,000 entries: pages of 100, the last one too.
    let many = page(&app, &ada.cookie, &format!("{base}&src_path=/~/many-files/")).await;
    assert!(many.contains("Entries 1–100 of 2000"), "{many}");
    assert!(many.contains("Page 1 of 20") && many.contains("rel=\"next\""));
    assert_eq!(rows(&many), 100);
    let last = page(
        &app,
        &ada.cookie,
        &format!("{base}&src_path=/~/many-files/&src_offset=1900"),
    )
    .await;
    assert!(
        last.contains("Entries 1901–2000 of 2000") && last.contains("sample-2000.dat"),
        "{last}"
    );
    assert!(!last.contains("rel=\"next\"") && last.contains("rel=\"prev\""));
    // A page past the end (the folder shrank, an edited URL): said so, and Previous leads to the last page.
    let past = page(
        &app,
        &ada.cookie,
        &format!("{base}&src_path=/~/many-files/&src_offset=5000"),
    )
    .await;
    assert!(past.contains("No entries on this page: the folder has 2000."), "{past}");
    assert!(past.contains("src_offset=1900\" rel=\"prev\""), "{past}");
    let none = page(
        &app,
        &ada.cookie,
        &format!("{base}&src_path=/~/many-files/&src_filter=nothing-like-it"),
    )
    .await;
    assert!(none.contains("Nothing here matches “nothing-like-it”."), "{none}");
    // Filter (kept in the URL and the box) and sort.
    let filtered = page(
        &app,
        &ada.cookie,
        &format!("{base}&src_path=/~/many-files/&src_filter=sample-001"),
    )
    .await;
    assert!(
        filtered.contains("Entries 1–10 of 10 matching “sample-001”"),
        "{filtered}"
    );
    assert!(filtered.contains("value=\"sample-001\""));
    let by_size = page(
        &app,
        &ada.cookie,
        &format!("{base}&src_path=/~/datasets/2024/&src_sort=size&src_order=desc"),
    )
    .await;
    assert!(by_size.contains("aria-sort=\"descending\""), "{by_size}");
    let sizes: Vec<&str> = by_size
        .split("<td class=\"number\">")
        .skip(2) // the first is the folder's dash
        .map(|cell| cell.split('<').next().unwrap())
        .collect();
    assert!(sizes[0].ends_with(" MB") || sizes[0].ends_with(" GB"), "{sizes:?}");
    // The To side lists without checkboxes.
    let both = page(
        &app,
        &ada.cookie,
        &format!("{base}&dst={}&dst_path=/~/datasets/", ids[1]),
    )
    .await;
    assert_eq!(rows(&both), 8, "only the From side's entries are selectable");
}

async fn folder_errors_read_as_their_fix_and_bad_paths_never_leave(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let ids = endpoint_ids(&app, &ada).await;
    let base = format!("/transfer?account={}&src={}", ada.account_id, ids[0]);
    let says = |path: &'static str, words: &'static str| {
        let (app, cookie, base) = (&app, ada.cookie.clone(), base.clone());
        async move {
            let html = page(app, &cookie, &format!("{base}&src_path={path}")).await;
            assert!(html.contains(words), "{path}: {html}");
            html
        }
    };
    says("/~/private/", "You may not open this folder on this collection").await;
    says("/~/nowhere/", "There is no such folder on this collection").await;
    says("/~/notes.txt", "That path is a file, not a folder").await;
    // Ada's laptops: some are off.
    let (mut offline, mut online) = (0, 0);
    for laptop in collections(&app, &ada, "Laptop").await {
        let html = page(
            &app,
            &ada.cookie,
            &format!("/transfer?account={}&src={laptop}", ada.account_id),
        )
        .await;
        assert!(html.contains("Personal collection · ada@"), "{html}");
        if html.contains("This personal collection is offline") {
            offline += 1;
        } else {
            assert!(html.contains("datasets/"), "{html}");
            online += 1;
        }
    }
    assert!(offline > 0 && online > 0, "{offline} off, {online} on");
    // Bad paths: the field's rule, and no listing is asked of the provider.
    let listings = || async {
        app.state.delegation.calls.flush().await;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'delegated_call' AND details LIKE '%/ls%'",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        n
    };
    let before = listings().await;
    let long = format!("/~/{}", "a".repeat(4100));
    for bad in ["/~/datasets/../private/", "/~/a%0Ab/", "datasets", long.as_str()] {
        let html = page(&app, &ada.cookie, &format!("{base}&src_path={bad}")).await;
        assert!(
            html.contains("A path starts with / or ~/, has no “..”"),
            "{bad}: {html}"
        );
    }
    assert_eq!(listings().await, before, "never an ls");
    // A collection that needs consent: Grant access, coming back to this folder.
    app.demo().require_consent(&ids[2]);
    let html = page(
        &app,
        &ada.cookie,
        &format!("/transfer?account={}&src={}", ada.account_id, ids[2]),
    )
    .await;
    assert!(html.contains("This collection needs your consent"), "{html}");
    assert!(html.contains(">Grant access<"), "{html}");
    assert!(html.contains("name=\"return_to\" value=\"/transfer?"), "{html}");
}

async fn a_reviewed_selection_starts_one_transfer_followed_on_its_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    app.demo()
        .set_task_duration(Some(identity(0)), Duration::from_secs(3600));
    let ids = endpoint_ids(&app, &ada).await;
    let state = format!(
        "account={}&src={}&src_path=%2F~%2Fdatasets%2F2024%2F&dst={}&dst_path=%2F~%2Fdatasets%2F",
        ada.account_id, ids[0], ids[1]
    );
    // Nothing selected: the review says what to do.
    let empty = page(&app, &ada.cookie, &format!("/transfer?{state}&review=1")).await;
    assert!(empty.contains("Select files or folders to transfer first"), "{empty}");
    let review = page(
        &app,
        &ada.cookie,
        &format!("/transfer?{state}&review=1&sel=run-001.h5&sel=run-002.h5&sel=calibration%2F"),
    )
    .await;
    assert!(review.contains("1 folder, 2 files, "), "{review}");
    assert!(
        review.contains(" MB → "),
        "the files' size, then the destination: {review}"
    );
    assert!(
        review.contains("/~/datasets/</strong>"),
        "the destination folder: {review}"
    );
    assert!(review.contains("Delete files in the destination folder that the source does not have"));
    assert!(
        review.contains("&amp;review=1&amp;sel=run-001.h5&amp;sel=run-002.h5&amp;sel=calibration%2F\""),
        "bad input comes back to this selection: {review}"
    );
    assert!(!review.contains("name=\"delete_destination_extra\" type=\"checkbox\" checked"));
    // Bad input comes back to the review naming the field.
    let referer = app.url(&format!("/transfer?{state}&review=1"));
    let start = |label: &'static str, items: &'static str| {
        let (app, cookie, referer, account) = (&app, ada.cookie.clone(), referer.clone(), ada.account_id.clone());
        let (from, to) = (ids[0].clone(), ids[1].clone());
        let back = format!("/transfer?{state}&review=1");
        async move {
            let form = [
                ("account", account.as_str()),
                ("back", back.as_str()),
                ("source_endpoint", from.as_str()),
                ("source_path", "/~/datasets/2024/"),
                ("destination_endpoint", to.as_str()),
                ("destination_path", "/~/datasets/"),
                ("items", items),
                ("label", label),
                ("sync_level", "checksum"),
                ("verify_checksum", "on"),
            ];
            let res = app
                .post_plain_form_as("file_manager_start", &referer, &form, Some(&cookie))
                .await;
            assert!(res.status().is_redirection(), "{}", res.status());
            location(&res)
        }
    };
    // One review's form posted twice at once (a double click): one submission, one task, both sent to its page.
    let twice = || {
        let (app, cookie, referer, account) = (&app, ada.cookie.clone(), referer.clone(), ada.account_id.clone());
        let (from, to) = (ids[0].clone(), ids[1].clone());
        async move {
            let form = [
                ("account", account.as_str()),
                ("back", "/transfer?"),
                ("source_endpoint", from.as_str()),
                ("source_path", "/~/datasets/2024/"),
                ("destination_endpoint", to.as_str()),
                ("destination_path", "/~/datasets/"),
                ("items", "summary.pdf"),
                ("label", "double click"),
                ("form_key", "0b9d6c1e-5f7a-4e2b-9c3d-8a1f2e4b6c70"),
            ];
            location(
                &app.post_plain_form_as("file_manager_start", &referer, &form, Some(&cookie))
                    .await,
            )
        }
    };
    let (first, second) = tokio::join!(twice(), twice());
    let third = twice().await;
    assert!(first.starts_with("/transfer/tasks/"), "{first}");
    assert_eq!((&first, &first), (&second, &third), "one task");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transfer_submissions WHERE form_key IS NOT NULL")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // The same key with other details (a review left with Back and changed): refused, not the old task.
    let reused = {
        let form = [
            ("account", ada.account_id.as_str()),
            ("back", "/transfer?review=1"),
            ("source_endpoint", ids[0].as_str()),
            ("source_path", "/~/datasets/2024/"),
            ("destination_endpoint", ids[1].as_str()),
            ("destination_path", "/~/datasets/"),
            ("items", "summary.pdf"),
            ("label", "changed my mind"),
            ("form_key", "0b9d6c1e-5f7a-4e2b-9c3d-8a1f2e4b6c70"),
        ];
        location(
            &app.post_plain_form_as("file_manager_start", &referer, &form, Some(&ada.cookie))
                .await,
        )
    };
    assert!(reused.ends_with("&invalid=idempotency_key#review"), "{reused}");
    assert!(
        page(&app, &ada.cookie, &reused)
            .await
            .contains("already started a transfer with other details")
    );
    // Deleting extra files without a sync level: the review says why.
    let form = [
        ("account", ada.account_id.as_str()),
        ("back", "/transfer?review=1"),
        ("source_endpoint", ids[0].as_str()),
        ("source_path", "/~/datasets/2024/"),
        ("destination_endpoint", ids[1].as_str()),
        ("destination_path", "/~/datasets/"),
        ("items", "summary.pdf"),
        ("delete_destination_extra", "on"),
    ];
    let res = app
        .post_plain_form_as("file_manager_start", &referer, &form, Some(&ada.cookie))
        .await;
    let back = location(&res);
    assert!(back.ends_with("&invalid=delete_destination_extra#review"), "{back}");
    assert!(
        page(&app, &ada.cookie, &back)
            .await
            .contains("Deleting what the source does not have needs a sync level")
    );
    let bad = start("copy", "../escape").await;
    assert!(bad.contains("&invalid=items#review"), "{bad}");
    let html = page(&app, &ada.cookie, &bad).await;
    assert!(html.contains("Pick at most 1,000 files or folders"), "{html}");
    let before = app.demo().counters().transfer_requests;
    let started = start("newcomer copy", "run-001.h5\nrun-002.h5\ncalibration/").await;
    assert!(
        started.starts_with("/transfer/tasks/") && started.ends_with("&started=1"),
        "{started}"
    );
    assert!(app.demo().counters().transfer_requests > before);
    let task = page(&app, &ada.cookie, &started).await;
    assert!(
        task.contains("Transfer “newcomer copy”") && task.contains("Transfer started."),
        "{task}"
    );
    assert!(task.contains(">ACTIVE<"), "{task}");
    assert!(
        task.contains("http-equiv=\"refresh\""),
        "reloads itself without JavaScript while running"
    );
    assert!(task.contains("What happened"));
    // Both collections are remembered for the picker.
    let picker = page(&app, &ada.cookie, &format!("/transfer?account={}", ada.account_id)).await;
    assert!(picker.contains("Recently used"), "{picker}");
    // The list links to it.
    let list = page(
        &app,
        &ada.cookie,
        &format!("/transfer/tasks?account={}", ada.account_id),
    )
    .await;
    assert!(list.contains(">newcomer copy</a>"), "{list}");
    assert_eq!(list.matches(">double click</a>").count(), 1, "{list}");
    // Cancel asks first, then comes back to the task.
    let ask = page(&app, &ada.cookie, &format!("{started}&confirm=cancel")).await;
    assert!(
        ask.contains("Cancel “newcomer copy”?") && ask.contains("No, keep it running"),
        "{ask}"
    );
    let task_id = started
        .trim_start_matches("/transfer/tasks/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let here = format!("/transfer/tasks/{task_id}?account={}", ada.account_id);
    let form = [
        ("account", ada.account_id.as_str()),
        ("task_id", task_id.as_str()),
        ("back", here.as_str()),
    ];
    let res = app
        .post_plain_form_as("globus_cancel_task", &app.url(&here), &form, Some(&ada.cookie))
        .await;
    let back = location(&res);
    assert_eq!(back, format!("{here}&cancel=cancelled"));
    let html = page(&app, &ada.cookie, &back).await;
    assert!(
        html.contains("Transfer cancelled.") && html.contains(">FAILED<"),
        "{html}"
    );
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "an ended task does not reload"
    );
    // The demo saw the three items, the folder recursive.
    let via_api = app
        .call(
            "transfer_task_page",
            &[("account", ada.account_id.as_str()), ("task_id", task_id.as_str())],
            Some(&ada.cookie),
        )
        .await;
    let body: Value = via_api.json().await.unwrap();
    assert_eq!(body["task"]["Ok"]["files"], 2, "{body}");
    // The activity says it in words; the raw call stays in the event's details for admins.
    app.state.delegation.calls.flush().await;
    let activity = page(&app, &ada.cookie, "/activity?kind=actions").await;
    let short = &task_id[..8];
    for line in [
        format!("Started transfer “newcomer copy” (task {short}) at Demo Globus."),
        "Checked transfer “newcomer copy” at Demo Globus.".to_owned(),
        "Listed a folder at Demo Globus.".to_owned(),
        "Cancelled transfer".to_owned(),
    ] {
        assert!(activity.contains(&line), "{line} in {activity}");
    }
    assert!(!activity.contains("Called "), "{activity}");
    let raw: String = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'delegated_call' AND details LIKE '%\"POST\"%' \
         AND details LIKE '%/transfer\"%'",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        (raw["method"].as_str(), raw["path"].as_str()),
        (Some("POST"), Some("/transfer"))
    );
    assert!(raw["host"].as_str().is_some_and(|h| !h.is_empty()), "{raw}");
}

async fn ls_and_keyed_transfers_run_in_the_service_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = linked(&app, 0).await;
    let ids = endpoint_ids(&app, &ada).await;
    let key = crate::service_api::key(&app, "portal", &[]).await;
    let run = |name: &'static str, params: Value| {
        let (app, key, account) = (&app, key.clone(), ada.account_id.clone());
        async move {
            let res = action(app, Some(&key), &account, name, Some(json!({ "params": params }))).await;
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = run(
        "ls",
        json!({"endpoint_id": ids[0], "path": "/~/many-files/", "offset": "1990",
                                    "sort": "name", "order": "desc"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listing = &body["result"];
    assert_eq!(listing["total"], 2000);
    assert_eq!(listing["path"], "/~/many-files/");
    assert_eq!(listing["entries"].as_array().unwrap().len(), 10);
    assert_eq!(
        listing["entries"][9]["name"], "sample-0001.dat",
        "descending: the last page ends at the first"
    );
    assert_eq!(listing["entries"][0]["kind"], "file");
    let (status, body) = run("ls", json!({"endpoint_id": ids[0], "path": "/~/../etc/"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "path", "{body}");
    let (status, body) = run("ls", json!({"endpoint_id": ids[0], "sort": "owner"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("sort")),
        "{body}"
    );
    // A transfer with an idempotency key, sent twice: one submission, one task.
    let transfer = |idempotency_key: &'static str| {
        let params = json!({"source_endpoint": ids[0], "source_path": "/~/datasets/", "destination_endpoint": ids[1],
                            "destination_path": "/~/in/", "items": "index.json\n2024/",
                            "idempotency_key": idempotency_key});
        run("transfer", params)
    };
    let (status, first) = transfer("nightly-2026-12-04").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, again) = transfer("nightly-2026-12-04").await;
    assert_eq!(first["result"]["task_id"], again["result"]["task_id"]);
    assert_eq!(first["result"]["id"], again["result"]["id"]);
    assert_eq!(first["result"]["form"]["items"], json!(["index.json", "2024/"]));
    let (status, body) = transfer("not a key!").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key")),
        "{body}"
    );
}

on_both_backends!(
    folders_are_browsed_sorted_filtered_and_paged,
    folder_errors_read_as_their_fix_and_bad_paths_never_leave,
    a_reviewed_selection_starts_one_transfer_followed_on_its_page,
    ls_and_keyed_transfers_run_in_the_service_api,
);
