//! The folders of every demo collection: one deterministic tree, the same in every run, with what a file manager
//! must cope with — nested folders, files of varied sizes, a symbolic link, a folder the user may not open, an
//! empty folder and one of [`MANY`] entries. Sizes and times vary per collection (a hash of its id and the path),
//! so two collections do not look alike.
//!
//! Paths are Transfer's: `/~/` is the user's home, where the tree starts; `/` lists the same (the demo has no
//! other filesystem). A trailing slash is optional.

use sha2::{Digest, Sha256};

/// How many files `/~/many-files/` holds.
pub(crate) const MANY: usize = 2000;
/// The folder whose listing is refused (`PermissionDenied`).
pub(crate) const DENIED: &str = "/~/private/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Link,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dir => "dir",
            Kind::File => "file",
            Kind::Link => "link",
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: i64,
    pub link_target: Option<String>,
}

/// Why a path cannot be listed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    NotFound,
    NotDirectory,
    PermissionDenied,
}

/// `path` as a folder of the tree: `/~/a/b/`. `/` is the home folder.
pub(crate) fn normalize(path: &str) -> String {
    let rest = path
        .strip_prefix("/~")
        .or_else(|| path.strip_prefix('~'))
        .unwrap_or(path);
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if segments.is_empty() {
        "/~/".to_owned()
    } else {
        format!("/~/{}/", segments.join("/"))
    }
}

/// The entries of the folder `path` of `collection` (its id), in no particular order.
pub(crate) fn list(collection: &str, path: &str) -> Result<Vec<Entry>, Refused> {
    let folder = normalize(path);
    let seed = |name: &str| {
        let digest = Sha256::digest(format!("{collection}\n{folder}{name}").as_bytes());
        u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
    };
    let file = |name: &str, scale: u64| {
        let h = seed(name);
        Entry {
            name: name.to_owned(),
            kind: Kind::File,
            size: scale / 2 + h % scale.max(1),
            // Within 2023–2025.
            modified: 1_672_531_200 + (h >> 20) as i64 % 94_608_000,
            link_target: None,
        }
    };
    let dir = |name: &str| Entry {
        size: 4096,
        kind: Kind::Dir,
        ..file(name, 1)
    };
    const KB: u64 = 1 << 10;
    const MB: u64 = 1 << 20;
    const GB: u64 = 1 << 30;
    let entries = match folder.as_str() {
        "/~/" => vec![
            dir("datasets"),
            dir("many-files"),
            dir("private"),
            dir("empty"),
            Entry {
                name: "latest".into(),
                kind: Kind::Link,
                size: 16,
                link_target: Some("/~/datasets/2025/".into()),
                ..file("latest", 1)
            },
            file("notes.txt", 4 * KB),
            file("results.csv", 4 * GB),
            file("README.md", 2 * KB),
        ],
        "/~/datasets/" => vec![dir("2024"), dir("2025"), file("index.json", 40 * KB)],
        "/~/datasets/2024/" | "/~/datasets/2025/" => {
            let mut runs: Vec<Entry> = (1..=12).map(|n| file(&format!("run-{n:03}.h5"), 800 * MB)).collect();
            runs.push(dir("calibration"));
            runs.push(file("summary.pdf", 3 * MB));
            runs
        }
        "/~/datasets/2024/calibration/" | "/~/datasets/2025/calibration/" => vec![
            file("dark-frames.fits", 120 * MB),
            file("flat-fields.fits", 90 * MB),
            file("calibration.json", 6 * KB),
        ],
        "/~/many-files/" => (1..=MANY)
            .map(|n| file(&format!("sample-{n:04}.dat"), 64 * MB))
            .collect(),
        "/~/empty/" => Vec::new(),
        DENIED => return Err(Refused::PermissionDenied),
        other => {
            // A file of a folder above: not a directory. Anything else: not found.
            let trimmed = other.trim_end_matches('/');
            let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
            let parent = format!("{parent}/");
            return match list(collection, &parent) {
                Ok(siblings) if siblings.iter().any(|e| e.name == name && e.kind == Kind::File) => {
                    Err(Refused::NotDirectory)
                }
                // A denied folder's insides are denied too.
                Err(Refused::PermissionDenied) => Err(Refused::PermissionDenied),
                _ => Err(Refused::NotFound),
            };
        }
    };
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_to_the_home_tree() {
        for path in ["/", "/~", "/~/", "~", "~/", "/./"] {
            assert_eq!(normalize(path), "/~/", "{path}");
        }
        assert_eq!(normalize("/~/datasets"), "/~/datasets/");
        assert_eq!(normalize("~/datasets//2024/"), "/~/datasets/2024/");
    }

    #[test]
    fn the_tree_is_deterministic_and_varied() {
        let a = list("c1", "/~/datasets/2024").unwrap();
        let again = list("c1", "/~/datasets/2024/").unwrap();
        assert_eq!(
            a.iter().map(|e| (e.name.clone(), e.size)).collect::<Vec<_>>(),
            again.iter().map(|e| (e.name.clone(), e.size)).collect::<Vec<_>>()
        );
        let other = list("c2", "/~/datasets/2024").unwrap();
        assert_ne!(a[0].size, other[0].size, "another collection has other sizes");
        assert_eq!(list("c1", "/~/many-files/").unwrap().len(), MANY);
        assert!(list("c1", "/~/empty").unwrap().is_empty());
    }

    #[test]
    fn refusals() {
        assert_eq!(list("c", DENIED).unwrap_err(), Refused::PermissionDenied);
        assert_eq!(list("c", "/~/private/x/").unwrap_err(), Refused::PermissionDenied);
        assert_eq!(list("c", "/~/notes.txt").unwrap_err(), Refused::NotDirectory);
        assert_eq!(list("c", "/~/nowhere/").unwrap_err(), Refused::NotFound);
        assert_eq!(list("c", "/etc/").unwrap_err(), Refused::NotFound);
    }
}
