//! The ground floor stays a floor (issue 20): no file of `audit`, `metrics`, `state`, `delegation` or `accounts`
//! takes part in a cycle of imports, through whatever other files. A cycle there is how a counter called from the
//! audit log came to need the whole app state. This reads the source of the server: each file's `crate::`, `super::`
//! and `self::` paths, grouped `use` lists included, resolved to the file that defines them (the longest prefix of
//! the path that is a file). Declaring a submodule (`mod x;`) is not an import; test modules are left out.

use std::collections::{BTreeMap, BTreeSet};

/// The modules that must not take part in a cycle.
const GROUND: &[&str] = &["audit", "metrics", "state", "delegation", "accounts"];

/// `src/a/b.rs` and `src/a/b/mod.rs` are both module `a::b`.
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_start_matches("src/")
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The source without its unit tests and without comments (doc links are not imports).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` list names: `a::{b, c::{d, e}}` is `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &[String], list: &str, out: &mut Vec<Vec<String>>) {
    let (mut depth, mut start) = (0, 0);
    let mut items = Vec::new();
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
        let item = item.split(" as ").next().unwrap_or(item);
        match item.split_once('{') {
            Some((head, rest)) => {
                let mut base = prefix.to_vec();
                base.extend(head.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
                expand(&base, rest.strip_suffix('}').unwrap_or(rest), out);
            }
            None => {
                let mut path = prefix.to_vec();
                path.extend(item.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
                out.push(path);
            }
        }
    }
}

/// Every path in `code` that starts at `root` (`crate`, `super` or `self`), as segments after the root.
fn paths_from(code: &str, root: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let needle = format!("{root}::");
    let mut from = 0;
    while let Some(at) = code[from..].find(&needle) {
        let at = from + at;
        from = at + needle.len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[from..];
        if let Some(list) = rest.strip_prefix('{') {
            // The matching brace closes the list.
            let mut depth = 1;
            let end = list
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(list.len(), |(i, _)| i);
            expand(&[], &list[..end], &mut out);
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = rest[..end].split("::").filter(|s| !s.is_empty());
            out.push(path.map(str::to_owned).collect());
        }
    }
    out
}

/// The file that defines `path`: the longest prefix of it that is a file.
fn resolve(files: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (1..=path.len()).rev().find_map(|len| {
        let joined = path[..len].join("/");
        [format!("src/{joined}.rs"), format!("src/{joined}/mod.rs")]
            .into_iter()
            .find(|f| files.contains(f))
    })
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let sources = crate::support::server_sources();
    let files: BTreeSet<String> = sources.iter().map(|(file, _)| file.clone()).collect();
    let mut graph = BTreeMap::new();
    for (file, text) in &sources {
        let code = code(text);
        let here = module_path(file);
        let parent = here[..here.len().saturating_sub(1)].to_vec();
        let mut imports = BTreeSet::new();
        for (root, base) in [("crate", Vec::new()), ("super", parent), ("self", here.clone())] {
            for path in paths_from(&code, root) {
                let full: Vec<String> = base.iter().cloned().chain(path).collect();
                if let Some(target) = resolve(&files, &full).filter(|t| t != file) {
                    imports.insert(target);
                }
            }
        }
        graph.insert(file.clone(), imports);
    }
    graph
}

/// The files reachable from `from` (not counting `from` itself unless a cycle leads back).
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&String> = graph[from].iter().collect();
    while let Some(file) = todo.pop() {
        if seen.insert(file.clone()) {
            todo.extend(graph.get(file).into_iter().flatten());
        }
    }
    seen
}

/// One shortest import path from `from` to `to`, for the failure message.
fn path_between(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Vec<String> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(file) = queue.pop_front() {
        for next in graph.get(file).into_iter().flatten() {
            if !came_from.contains_key(next.as_str()) {
                came_from.insert(next, file);
                if next == to {
                    let mut path = vec![to.to_owned()];
                    let mut at = to;
                    while at != from || path.len() == 1 {
                        at = came_from[at];
                        path.push(at.to_owned());
                        if at == from {
                            break;
                        }
                    }
                    path.reverse();
                    return path;
                }
                queue.push_back(next);
            }
        }
    }
    Vec::new()
}

#[test]
fn no_file_of_the_ground_floor_is_in_an_import_cycle() {
    let graph = import_graph();
    let ground: Vec<&String> = graph
        .keys()
        .filter(|f| GROUND.contains(&module_path(f)[0].as_str()))
        .collect();
    assert!(ground.len() >= 15, "the ground floor's files are found: {ground:?}");
    let cycles: Vec<String> = ground
        .iter()
        .filter(|file| reachable(&graph, file).contains(**file))
        .map(|file| path_between(&graph, file, file).join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles through the ground floor:\n{}",
        cycles.join("\n")
    );
}

/// The reader itself: a cycle it cannot see would make the test above pass for nothing.
#[test]
fn the_reader_finds_grouped_relative_and_nested_imports() {
    let code = code(
        "use crate::{a::{b, c::d as e}, f};\nuse super::g::h;\n// crate::commented::out\nfn x() { self::i::j(); \
         other_crate::k(); }\n#[cfg(test)]\nmod tests { use crate::only_in_tests; }",
    );
    let crate_paths = paths_from(&code, "crate");
    assert_eq!(
        crate_paths,
        vec![vec!["a", "b"], vec!["a", "c", "d"], vec!["f"]]
            .into_iter()
            .map(|p| p.into_iter().map(str::to_owned).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert_eq!(paths_from(&code, "super"), vec![vec!["g".to_owned(), "h".to_owned()]]);
    assert_eq!(paths_from(&code, "self"), vec![vec!["i".to_owned(), "j".to_owned()]]);

    // A known cycle in a made-up graph is found, and its path named.
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", &["b"][..]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]
        .into_iter()
        .map(|(f, to)| (f.to_owned(), to.iter().map(|t| (*t).to_owned()).collect()))
        .collect();
    assert!(reachable(&graph, "a").contains("a"));
    assert!(!reachable(&graph, "d").contains("d"));
    assert_eq!(path_between(&graph, "a", "a"), ["a", "b", "c", "a"]);
}
