//! "Transfer": the file manager. Two sides, From and To: each picks a collection by name (search, the user's own,
//! shared, recently used), then browses its folders (breadcrumbs, up, sort, filter, pages of 100). Ticking files
//! and folders on the From side and pressing Review shows what will be copied where, with the transfer's options;
//! Start submits it and opens the task's page.
//!
//! The whole state is the URL (see [`PageUrl`]): every control is a link or a GET form that keeps the rest of it,
//! so the page works with JavaScript off, and reloading or sharing a URL shows the same folders. No island: the
//! WASM budget has no room for one, and none is needed.

mod format;
mod tasks;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

pub use tasks::{TransferTaskPage, TransferTasksPage};

use crate::{
    accounts::Reader,
    actions::{
        ActionProblem, Endpoint, EndpointScope, FileEntry, FileKind, LS_PAGE, Listing, SortKey, SyncLevel,
        api::ActionAccount,
        file_manager::{
            FileManagerQuery, FileManagerView, PaneQuery, PaneView, Picker, Review, Side, file_manager_page,
            selection_words,
        },
        folder_path,
    },
    components::link_form::LinkForm,
    error::AppError,
    notice::Notice,
    query::encode,
};

/// Query parameters that belong to one moment (the review, a notice) and are dropped by every other link.
const TRANSIENT: [&str; 4] = ["review", "sel", "invalid", "not_submitted"];

/// The page's URL: its query pairs, read as the server received them (repeated `sel` included).
#[derive(Clone, Debug, Default)]
pub(crate) struct PageUrl {
    path: &'static str,
    pairs: Vec<(String, String)>,
}

impl PageUrl {
    /// The current request's query (the pages render on the server only).
    pub fn current(path: &'static str) -> Self {
        #[cfg(feature = "ssr")]
        let pairs = use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.uri.query().map(str::to_owned))
            .map(|query| url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        #[cfg(not(feature = "ssr"))]
        let pairs = Vec::new();
        Self { path, pairs }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The pairs that stay when `changed` are set anew (and the transient ones are dropped).
    fn kept<'a>(&'a self, changed: &'a [&str]) -> impl Iterator<Item = &'a (String, String)> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, v)| !v.is_empty() && !changed.contains(&k.as_str()) && !TRANSIENT.contains(&k.as_str()))
    }

    /// This page with `changes` (a `None` value removes the key).
    pub fn with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let keys: Vec<&str> = changes.iter().map(|(k, _)| *k).collect();
        let mut query: Vec<String> = self
            .kept(&keys)
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.extend(
            changes
                .iter()
                .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}={}", encode(v)))),
        );
        format!("{}?{}", self.path, query.join("&"))
    }

    /// Hidden inputs that carry the rest of the state through a GET form that sets `changed`.
    fn hidden(&self, changed: &[&str]) -> impl IntoView + use<> {
        self.kept(changed)
            .map(|(k, v)| view! { <input type="hidden" name=k.clone() value=v.clone() /> })
            .collect_view()
    }

    fn pane(&self, side: Side) -> PaneQuery {
        let key = |name: &str| {
            let p = side.key();
            if name.is_empty() {
                p.to_owned()
            } else {
                format!("{p}_{name}")
            }
        };
        PaneQuery {
            collection: self.get(&key("")),
            path: self.get(&key("path")),
            pick: self.get(&key("pick")).is_some(),
            q: self.get(&key("q")).unwrap_or_default(),
            scope: self.get(&key("scope")),
            sort: self.get(&key("sort")),
            order: self.get(&key("order")),
            filter: self.get(&key("filter")).unwrap_or_default(),
            offset: self.get(&key("offset")).and_then(|o| o.parse().ok()).unwrap_or(0),
        }
    }

    fn query(&self) -> FileManagerQuery {
        FileManagerQuery {
            account: self.get("account"),
            source: self.pane(Side::Source),
            destination: self.pane(Side::Destination),
            review: self.get("review").is_some(),
            selected: self.all("sel"),
        }
    }
}

/// A side's query key: `src`, `src_path`, …
fn key(side: Side, name: &str) -> String {
    if name.is_empty() {
        side.key().to_owned()
    } else {
        format!("{}_{name}", side.key())
    }
}

#[component]
pub fn FileManagerPage() -> impl IntoView {
    let url = PageUrl::current("/transfer");
    let query = url.query();
    let data = Resource::new_blocking(move || query.clone(), file_manager_page);
    view! {
        <Title text="Transfer · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let url = url.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! { <FileManager page=page url=url /> }.into_any(),
                        Err(AppError::NotSignedIn) => view! { <Redirect path="/sign-in?next=/transfer" /> }.into_any(),
                        Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn FileManager(page: FileManagerView, url: PageUrl) -> impl IntoView {
    let FileManagerView {
        accounts,
        account,
        source,
        destination,
        review,
    } = page;
    let Some(account) = account else {
        return view! {
            <div class="page-wide">
                <h1>"Transfer"</h1>
                <p class="lead">"Link a Globus account first: transfers run with your linked Globus account."</p>
                <p><a class="button button-primary" href="/linked-accounts">"Go to linked accounts"</a></p>
            </div>
        }
        .into_any();
    };
    let picker = (accounts.len() > 1).then(|| {
        view! {
            <form method="get" action="/transfer" class="inline-form">
                <label for="account-picker">"Account"</label>
                <select id="account-picker" name="account">
                    {accounts
                        .iter()
                        .map(|a| view! { <option value=a.id.clone() selected=a.id == account.id>{format!("{} · {}", a.provider_name, a.label)}</option> })
                        .collect_view()}
                </select>
                <button type="submit" class="button button-ghost">"Switch"</button>
            </form>
        }
    });
    let review = review.map(|review| {
        view! { <ReviewPanel review=review url=url.clone() account=account.clone() source=source.clone() destination=destination.clone() /> }
    });
    let tasks_href = format!("/transfer/tasks?account={}", encode(&account.id));
    view! {
        <div class="page-wide">
            <h1>"Transfer"</h1>
            <p class="lead">
                "Pick a collection on each side, open the folders, tick what to copy, and review. "
                <a href=tasks_href>"Your transfers"</a>
            </p>
            {picker}
            {review}
            <div class="file-manager">
                <Pane side=Side::Source pane=source url=url.clone() account=account.clone() />
                <Pane side=Side::Destination pane=destination url=url.clone() account=account.clone() />
            </div>
            // Shift-click ranges and in-place navigation (public/file-manager.js); everything works without it.
            <script type="module" src="/file-manager.js"></script>
        </div>
    }
    .into_any()
}

/// "Mapped collection (Globus Connect Server)", for a collection's `entity_type`.
fn collection_kind(entity_type: Option<&str>) -> &'static str {
    match entity_type.unwrap_or_default() {
        "GCSv5_mapped_collection" => "Mapped collection",
        "GCSv5_guest_collection" => "Guest collection",
        "GCP_mapped_collection" | "GCP_guest_collection" => "Personal collection",
        "GCSv5_endpoint" | "GCSv4_host" => "Endpoint",
        _ => "Collection",
    }
}

fn collection_line(endpoint: &Endpoint) -> String {
    let kind = collection_kind(endpoint.entity_type.as_deref());
    match &endpoint.owner {
        Some(owner) => format!("{kind} · {owner}"),
        None => kind.to_owned(),
    }
}

#[component]
fn Pane(side: Side, pane: PaneView, url: PageUrl, account: ActionAccount) -> impl IntoView {
    let heading = format!("{}-heading", side.key());
    let PaneView {
        collection,
        picker,
        listing,
    } = pane;
    let chosen = match &collection {
        Some(Ok(endpoint)) => {
            let change = url.with(&[(&key(side, "pick"), Some("1"))]);
            let keep = picker.is_some().then(|| {
                let back = url.with(&[(&key(side, "pick"), None)]);
                view! { <a href=back>{format!("Keep {}", endpoint.display_name)}</a> }
            });
            Some(
                view! {
                    <div class="collection-card">
                        <p class="collection-name"><strong>{endpoint.display_name.clone()}</strong></p>
                        <p class="muted">{collection_line(endpoint)}</p>
                        {if keep.is_some() { keep.into_any() } else {
                            view! { <a href=change aria-label=format!("Change the {} collection", side.title())>"Change collection"</a> }.into_any()
                        }}
                    </div>
                }
                .into_any(),
            )
        }
        Some(Err(problem)) => Some(
            view! { <ProblemBox problem=problem.clone() account=account.clone() url=url.clone() side=side /> }
                .into_any(),
        ),
        None => None,
    };
    let picker = picker.map(|picker| view! { <CollectionPicker side=side picker=picker url=url.clone() /> }.into_any());
    let listing = listing.map(|listing| match listing {
        Ok(listing) => view! { <Folder side=side listing=listing url=url.clone() /> }.into_any(),
        Err(problem) => view! {
            <FolderNav side=side path=url.pane(side).path.unwrap_or_else(|| "/~/".into()) url=url.clone() />
            <ProblemBox problem=problem account=account.clone() url=url.clone() side=side />
        }
        .into_any(),
    });
    view! {
        <section class="panel pane" aria-labelledby=heading.clone() id=side.key()>
            <h2 id=heading.clone()>{side.title()}</h2>
            {chosen}
            {picker}
            {listing}
        </section>
    }
}

#[component]
fn CollectionPicker(side: Side, picker: Picker, url: PageUrl) -> impl IntoView {
    let (q_key, scope_key) = (key(side, "q"), key(side, "scope"));
    let query = url.pane(side);
    let scope = query.scope.as_deref().and_then(EndpointScope::parse);
    let choose = {
        let url = url.clone();
        move |endpoint: &Endpoint| {
            let id = endpoint.id.clone();
            let href = url.with(&[
                (&key(side, ""), Some(id.as_str())),
                (&key(side, "pick"), None),
                (&key(side, "q"), None),
                (&key(side, "scope"), None),
                (&key(side, "path"), None),
                (&key(side, "filter"), None),
                (&key(side, "offset"), None),
                (&key(side, "sort"), None),
                (&key(side, "order"), None),
            ]);
            view! {
                <li>
                    <a href=href>{endpoint.display_name.clone()}</a>
                    <span class="muted">{collection_line(endpoint)}</span>
                </li>
            }
        }
    };
    let recent = (!picker.recent.is_empty()).then(|| {
        view! {
            <h3>"Recently used"</h3>
            <ul class="collection-list" aria-label=format!("Recently used collections ({})", side.title())>
                {picker.recent.iter().map(&choose).collect_view()}
            </ul>
        }
    });
    let results = match picker.results {
        Ok(page) if page.endpoints.is_empty() => view! {
            <p class="muted">
                "No collection matches. Search by name above: without search text this lists your own \
                 collections."
            </p>
        }
        .into_any(),
        Ok(page) => {
            let more = (page.has_next_page || page.at_cap)
                .then(|| view! { <p class="muted">"More collections match: add a word to the search."</p> });
            view! {
                <ul class="collection-list" aria-label=format!("Collections found ({})", side.title())>
                    {page.endpoints.iter().map(&choose).collect_view()}
                </ul>
                {more}
            }
            .into_any()
        }
        Err(problem) => view! { <p class="alert alert-error" role="alert">{problem.message()}</p> }.into_any(),
    };
    let (q_id, scope_id) = (format!("{}-q", side.key()), format!("{}-scope", side.key()));
    view! {
        <form method="get" action="/transfer" class="stack-form picker" role="search">
            {url.hidden(&[&q_key, &scope_key])}
            <div class="field">
                <label for=q_id.clone()>{format!("Find a collection ({})", side.title())}</label>
                <input id=q_id name=q_key type="search" value=query.q.clone() maxlength="200" placeholder="Name, owner or description" />
            </div>
            <div class="field">
                <label for=scope_id.clone()>"Among"</label>
                <select id=scope_id name=scope_key>
                    <option value="" selected=scope.is_none()>"All you can see when searching, else yours"</option>
                    {EndpointScope::ALL
                        .into_iter()
                        .filter(|s| *s != EndpointScope::All)
                        .map(|s| view! { <option value=s.as_str() selected=scope == Some(s)>{s.label()}</option> })
                        .collect_view()}
                </select>
            </div>
            <button type="submit" class="button button-primary">"Search collections"</button>
        </form>
        {recent}
        <h3>"Collections"</h3>
        {results}
    }
    .into_any()
}

/// The folder's place: breadcrumbs, up, and a path to go to.
#[component]
fn FolderNav(side: Side, path: String, url: PageUrl) -> impl IntoView {
    let path_key = key(side, "path");
    let go = |target: &str| {
        url.with(&[
            (&path_key, Some(target)),
            (&key(side, "offset"), None),
            (&key(side, "filter"), None),
        ])
    };
    // `/~/a/b/` → `~`, `a`, `b`; `/data/x/` → `/`, `data`, `x`.
    let (root, root_label, rest) = match path.strip_prefix("/~") {
        Some(rest) => ("/~/", "Home", rest),
        None => ("/", "/", path.as_str()),
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut crumbs = vec![(root_label.to_owned(), root.to_owned())];
    let mut at = root.to_owned();
    for segment in &segments {
        at = format!("{at}{segment}/");
        crumbs.push(((*segment).to_owned(), at.clone()));
    }
    let last = crumbs.len() - 1;
    let up = (last > 0).then(|| {
        let parent = crumbs[last - 1].1.clone();
        view! { <a class="button button-ghost" href=go(&parent) aria-label=format!("Up one folder ({})", side.title())>"↑ Up"</a> }
    });
    let crumbs = crumbs
        .into_iter()
        .enumerate()
        .map(|(i, (label, target))| {
            if i == last {
                view! { <li><span aria-current="location">{label}</span></li> }.into_any()
            } else {
                view! { <li><a href=go(&target)>{label}</a></li> }.into_any()
            }
        })
        .collect_view();
    let path_id = format!("{}-path", side.key());
    view! {
        <nav class="breadcrumbs" aria-label=format!("{} folder", side.title())>
            <ol>{crumbs}</ol>
        </nav>
        <div class="toolbar">
            {up}
            <form method="get" action="/transfer" class="inline-form">
                {url.hidden(&[&path_key, &key(side, "offset"), &key(side, "filter")])}
                <label for=path_id.clone()>"Path"</label>
                <input id=path_id name=path_key.clone() value=path.clone() maxlength="4096" spellcheck="false" />
                <button type="submit" class="button button-ghost">"Go"</button>
            </form>
        </div>
    }
}

#[component]
fn Folder(side: Side, listing: Listing, url: PageUrl) -> impl IntoView {
    let query = url.pane(side);
    let sort = query.sort.as_deref().and_then(SortKey::parse).unwrap_or_default();
    let descending = query.order.as_deref() == Some("desc");
    let filter_key = key(side, "filter");
    let offset_key = key(side, "offset");
    let open = |name: &str| {
        let target = format!("{}{name}/", folder_path(&listing.path));
        url.with(&[
            (&key(side, "path"), Some(target.as_str())),
            (&offset_key, None),
            (&filter_key, None),
        ])
    };
    let header = |label: &'static str, by: SortKey| {
        let active = by == sort;
        let next_desc = active && !descending;
        let href = url.with(&[
            (&key(side, "sort"), Some(by.as_str())),
            (&key(side, "order"), next_desc.then_some("desc")),
            (&offset_key, None),
        ]);
        let aria_sort = match (active, descending) {
            (false, _) => None,
            (true, false) => Some("ascending"),
            (true, true) => Some("descending"),
        };
        let arrow = match (active, descending) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        };
        view! {
            <th scope="col" aria-sort=aria_sort>
                <a href=href aria-label=format!("Sort by {}", label.to_lowercase())>{label}{arrow}</a>
            </th>
        }
    };
    let selectable = side == Side::Source;
    let rows = listing
        .entries
        .iter()
        .map(|entry| {
            let check = selectable.then(|| {
                let value = entry.item_name();
                view! {
                    <td class="select">
                        <input type="checkbox" name="sel" value=value aria-label=format!("Select {}", entry.name) />
                    </td>
                }
            });
            // A folder is a link ending in `/`; a symbolic link shows its target.
            let name = match entry.kind {
                FileKind::Dir => view! { <a href=open(&entry.name)>{entry.name.clone()}"/"</a> }.into_any(),
                FileKind::Link => {
                    let target = entry.link_target.clone().unwrap_or_default();
                    view! { {entry.name.clone()}<span class="muted">{format!(" → {target}")}</span> }.into_any()
                }
                FileKind::File => entry.name.clone().into_any(),
            };
            let size = match entry.kind {
                FileKind::Dir => "—".to_owned(),
                _ => format::bytes(entry.size),
            };
            view! {
                <tr>
                    {check}
                    <th scope="row">{name}</th>
                    <td class="number">{size}</td>
                    <td>{format::file_time(&entry.last_modified)}</td>
                </tr>
            }
        })
        .collect_view();
    let shown = listing.entries.len() as u32;
    let filtered = !query.filter.trim().is_empty();
    let (first, last) = (listing.offset.saturating_add(1), listing.offset.saturating_add(shown));
    let caption = match (listing.total, shown) {
        (0, _) if filtered => format!("Nothing here matches “{}”.", query.filter.trim()),
        (0, _) => "This folder is empty.".to_owned(),
        // A page past the end (the folder shrank, or the URL was edited): the pager leads back.
        (total, 0) => format!("No entries on this page: the folder has {total}."),
        (total, _) if filtered => format!("Entries {first}–{last} of {total} matching “{}”", query.filter.trim()),
        (total, _) => format!("Entries {first}–{last} of {total}"),
    };
    let pages = listing.total.div_ceil(LS_PAGE).max(1);
    let last_page = (pages - 1) * LS_PAGE;
    let page = (listing.offset / LS_PAGE + 1).min(pages);
    let pager = (pages > 1 || listing.offset > 0).then(|| {
        let to = |offset: u32| url.with(&[(&offset_key, (offset > 0).then(|| offset.to_string()).as_deref())]);
        let previous = (listing.offset > 0).then(|| {
            let href = to(listing.offset.saturating_sub(LS_PAGE).min(last_page));
            view! { <a href=href rel="prev">"Previous"</a> }
        });
        let next = (last < listing.total)
            .then(|| view! { <a href=to(listing.offset.saturating_add(LS_PAGE)) rel="next">"Next"</a> });
        view! {
            <nav class="pager" aria-label=format!("{} folder pages", side.title())>
                {previous}" "<span>{format!("Page {page} of {pages}")}</span>" "{next}
            </nav>
        }
    });
    let filter_id = format!("{}-filter", side.key());
    let select_column =
        selectable.then(|| view! { <th scope="col"><span class="visually-hidden">"Select"</span></th> });
    let table = view! {
        <table class="data-table files">
            <caption>{caption}</caption>
            <thead>
                <tr>
                    {select_column}
                    {header("Name", SortKey::Name)}
                    {header("Size", SortKey::Size)}
                    {header("Modified", SortKey::Modified)}
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    };
    // On the From side the table is a form: the ticked names go to the review, with the rest of the state.
    let body = if selectable {
        view! {
            <form method="get" action="/transfer#review" class="selection">
                {url.hidden(&["review", "sel"])}
                <input type="hidden" name="review" value="1" />
                {table}
                {pager}
                <button type="submit" class="button button-primary">"Review transfer of the ticked items"</button>
            </form>
        }
        .into_any()
    } else {
        view! { {table} {pager} <p class="muted">"Items are copied into this folder."</p> }.into_any()
    };
    view! {
        <FolderNav side=side path=listing.path.clone() url=url.clone() />
        <form method="get" action="/transfer" class="inline-form" role="search">
            {url.hidden(&[&filter_key, &offset_key])}
            <label for=filter_id.clone()>"Filter names"</label>
            <input id=filter_id name=filter_key.clone() type="search" value=query.filter.clone() maxlength="100" />
            <button type="submit" class="button button-ghost">"Filter"</button>
        </form>
        {body}
    }
}

/// A problem as the action that fixes it, in the file manager's words.
#[component]
fn ProblemBox(problem: ActionProblem, account: ActionAccount, url: PageUrl, side: Side) -> impl IntoView {
    let back = url.with(&[]);
    let link = |intent: &'static str, label: &'static str| {
        view! { <LinkForm provider=account.provider.clone() account=account.id.clone() intent=intent label=label return_to=back.clone() /> }
            .into_any()
    };
    let (message, fix) = match &problem {
        ActionProblem::NeedsConsent { .. } => (
            "This collection needs your consent before onbehalf may read it for you. Grant access at Globus, then \
             the folder opens here."
                .to_owned(),
            Some(link("grant", "Grant access")),
        ),
        ActionProblem::NeedsReconnect { reason, .. } => (reason.clone(), Some(link("reconnect", "Reconnect"))),
        ActionProblem::NotFound { what, .. } if what == "folder" => (
            "There is no such folder on this collection. Go up, or type another path.".to_owned(),
            None,
        ),
        ActionProblem::NotFound { what, .. } if what == "collection" => (
            "Globus knows no such collection (it may have been deleted). Choose another one.".to_owned(),
            Some(
                view! { <a href=url.with(&[(&key(side, "pick"), Some("1"))])>"Choose another collection"</a> }
                    .into_any(),
            ),
        ),
        ActionProblem::Upstream { code, .. } if code == "PermissionDenied" || code.ends_with(".PermissionDenied") => (
            "You may not open this folder on this collection. Ask its owner for access, or go up.".to_owned(),
            None,
        ),
        ActionProblem::Upstream { code, .. } if code.ends_with("GCDisconnected") => (
            "This personal collection is offline: its computer is off or Globus Connect Personal is not running. \
             Start it there, then reload this page."
                .to_owned(),
            None,
        ),
        ActionProblem::Upstream { code, .. } if code.ends_with("GCPaused") => (
            "This personal collection is paused. Resume Globus Connect Personal on its computer, then reload."
                .to_owned(),
            None,
        ),
        ActionProblem::Upstream { code, .. } if code.ends_with("NotDirectory") => {
            ("That path is a file, not a folder. Go up to see it.".to_owned(), None)
        }
        ActionProblem::ProviderUnavailable { retry_at, .. } => (
            format!(
                "Globus is not answering right now. Try again after {}.",
                crate::datetime::format_time(*retry_at)
            ),
            None,
        ),
        other => (other.message(), None),
    };
    view! {
        <div class="alert alert-error" role="alert">
            <p>{message}</p>
            {fix}
        </div>
    }
}

/// The start form, for the selection the URL names.
#[component]
fn ReviewPanel(
    review: Result<Review, String>,
    url: PageUrl,
    account: ActionAccount,
    source: PaneView,
    destination: PaneView,
) -> impl IntoView {
    let change = url.with(&[]);
    let notice = Notice::from_query(|name| url.get(name))
        .filter(|n| matches!(n, Notice::TransferInvalid { .. } | Notice::TransferNotSubmitted))
        .map(|notice| view! { <div class="alert alert-error" role="alert">{notice.message(Reader::Owner, str::to_owned).1}</div> });
    let body = match review {
        Err(why) => view! {
            <p class="alert alert-error" role="alert">{why}</p>
            <p><a href=change>"Back to the folders"</a></p>
        }
        .into_any(),
        Ok(review) => {
            let (Some(Ok(from)), Some(Ok(from_folder)), Some(Ok(to)), Some(Ok(to_folder))) = (
                source.collection,
                source.listing,
                destination.collection,
                destination.listing,
            ) else {
                return view! {
                    <section class="panel" id="review">
                        <p class="alert alert-error" role="alert">"Both sides must show a folder."</p>
                    </section>
                }
                .into_any();
            };
            let summary = format!(
                "{} → {} {}",
                selection_words(&review, format::bytes),
                to.display_name,
                to_folder.path
            );
            let items: String = review
                .items
                .iter()
                .map(FileEntry::item_name)
                .collect::<Vec<_>>()
                .join("\n");
            // Bad input comes back to this review, with its selection.
            let back = url
                .all("sel")
                .iter()
                .fold(url.with(&[("review", Some("1"))]), |back, name| {
                    format!("{back}&sel={}", encode(name))
                });
            let names = review
                .items
                .iter()
                .map(|e| view! { <li>{e.item_name()}</li> })
                .collect_view();
            let folders_note = (review.folders > 0).then(|| {
                view! { <p class="muted">"Folders are copied with everything in them; Globus counts their files as it goes."</p> }
            });
            view! {
                <p class="summary"><strong>{summary}</strong></p>
                <p class="muted">{format!("From {} {}", from.display_name, from_folder.path)}</p>
                <ul class="selected-items" aria-label="Selected items">{names}</ul>
                {folders_note}
                <form method="post" action="/api/file_manager_start" class="stack-form">
                    <input type="hidden" name="account" value=account.id.clone() />
                    <input type="hidden" name="back" value=back />
                    <input type="hidden" name="source_endpoint" value=from.id.clone() />
                    <input type="hidden" name="source_path" value=from_folder.path.clone() />
                    <input type="hidden" name="destination_endpoint" value=to.id.clone() />
                    <input type="hidden" name="destination_path" value=to_folder.path.clone() />
                    <input type="hidden" name="items" value=items />
                    <input type="hidden" name="form_key" value=review.form_key.clone() />
                    <div class="field">
                        <label for="label">"Label"</label>
                        <input id="label" name="label" maxlength="128" placeholder="Shown in your transfers and at Globus" />
                    </div>
                    <div class="field">
                        <label for="sync_level">"If a file is already there"</label>
                        <select id="sync_level" name="sync_level" aria-describedby="sync-help">
                            <option value="">"Copy it again"</option>
                            {SyncLevel::ALL
                                .into_iter()
                                .map(|l| view! { <option value=l.as_str()>{sync_words(l)}</option> })
                                .collect_view()}
                        </select>
                        <p id="sync-help" class="muted">"A sync level copies only what differs, so a repeated transfer is quick."</p>
                    </div>
                    <fieldset class="options">
                        <legend>"Options"</legend>
                        <div class="field check">
                            <input id="verify_checksum" name="verify_checksum" type="checkbox" checked />
                            <label for="verify_checksum">"Verify each file's checksum after copying"</label>
                        </div>
                        <div class="field check">
                            <input id="preserve_timestamp" name="preserve_timestamp" type="checkbox" />
                            <label for="preserve_timestamp">"Keep the files' modification times"</label>
                        </div>
                        <div class="field check">
                            <input id="encrypt_data" name="encrypt_data" type="checkbox" />
                            <label for="encrypt_data">"Encrypt the data while it moves"</label>
                        </div>
                        <div class="field check">
                            <input id="delete_destination_extra" name="delete_destination_extra" type="checkbox" aria-describedby="delete-help" />
                            <label for="delete_destination_extra">"Delete files in the destination folder that the source does not have"</label>
                        </div>
                        <p id="delete-help" class="muted">
                            "Off unless you tick it: with it, files only in the destination folder are deleted. It \
                             needs a sync level."
                        </p>
                    </fieldset>
                    <button type="submit" class="button button-primary">"Start transfer"</button>
                    " "
                    <a href=change>"Change the selection"</a>
                </form>
            }
            .into_any()
        }
    };
    view! {
        <section class="panel" id="review" aria-labelledby="review-heading">
            <h2 id="review-heading">"Start a transfer"</h2>
            {notice}
            {body}
        </section>
    }
    .into_any()
}

fn sync_words(level: SyncLevel) -> &'static str {
    match level {
        SyncLevel::Exists => "Skip it (whatever its content)",
        SyncLevel::Size => "Skip it if the size matches",
        SyncLevel::Mtime => "Skip it unless the source is newer",
        SyncLevel::Checksum => "Skip it if the checksum matches",
    }
}
