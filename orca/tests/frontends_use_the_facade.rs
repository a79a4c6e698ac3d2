//! The frontends (HTTP, CLI, Python) reach the store only through the facade: their sources
//! name no store trait, call no `store()` / `raw_store()`, and wrap no store. This test fails
//! the moment one does, so policy, audit and the announcement of auth changes cannot be
//! bypassed again by a handler or an admin verb (issue 20).

use std::path::{Path, PathBuf};

/// The frontends' source trees (tests and benches may use the raw store; sources may not).
const FRONTENDS: [&str; 3] = ["orca-http/src", "orca-cli/src", "orca-py/src"];

/// Names a frontend may use although they end in `Store`: the connector's host-key seam is not
/// the store.
const ALLOWED: [&str; 1] = ["HostKeyStore"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the orca crate lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line, without a trailing `//` comment (doc comments are whole-line comments).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        // A `//` inside a string (a URL) is code; good enough: only cut after a space.
        Some(i) if line[..i].ends_with(' ') && !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// Why `line` reaches the store directly, if it does.
fn violation(line: &str) -> Option<String> {
    let c = code(line);
    if c.contains("raw_store(") || c.contains(".store()") {
        return Some("calls the store underneath the facade".into());
    }
    if c.contains("orca_core::store") {
        return Some("imports from orca_core::store".into());
    }
    let words = c.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'));
    for w in words {
        let store_name = w.ends_with("Store") || w.ends_with("StoreExt") || w == "DynStore";
        if store_name && !ALLOWED.contains(&w) {
            return Some(format!("names the store trait or a store type `{w}`"));
        }
    }
    None
}

#[test]
fn frontend_sources_never_touch_the_store() {
    let root = workspace();
    let mut found = vec![];
    let mut files = 0;
    for dir in FRONTENDS {
        let mut v = vec![];
        rust_files(&root.join(dir), &mut v);
        files += v.len();
        for path in v {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if let Some(why) = violation(line) {
                    found.push(format!(
                        "{}:{}: {why}: {}",
                        path.strip_prefix(&root).unwrap_or(&path).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        files > 30,
        "the frontends' sources were not found ({files} files)"
    );
    assert!(
        found.is_empty(),
        "frontends must go through the orca_core::Orca facade:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_should() {
    assert!(violation("    let u = orca.raw_store().find_user(name).await?;").is_some());
    assert!(
        violation("        .store()").is_some(),
        "a chained call on its own line"
    );
    assert!(violation("let s = self.orca.store().get_user(id);").is_some());
    assert!(violation("use orca_core::{Orca, Store};").is_some());
    assert!(violation("use orca_core::store::prelude::*;").is_some());
    assert!(violation("impl SystemStore for Layer {").is_some());
    assert!(violation("fn f(s: &dyn StoreExt) {}").is_some());
    assert!(violation("use orca_core::HostKeyStore;").is_none());
    assert!(violation("// the store() is not called here").is_none());
    assert!(violation("let o = orca.list_users(&me, page).await?;").is_none());
}
