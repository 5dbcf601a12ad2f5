//! The HAL's structure, checked on its source: the files under `sim/src/hal/` depend on each
//! other without a cycle, and only the `DMA_OPERATIONS` entry points (`hal/ops*`) see the whole
//! machine `State` — the rest take the parts they use (`&mut Hal`, `&Memory`).
//!
//! A file depends on a sibling when it names, through `super::`, an item the sibling defines
//! (`hal/mod.rs` re-exports them). The parent, `hal/mod.rs`, holds the shared state type (`Hal`)
//! and constants, which every file may use.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn hal_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/hal")
}

/// The code of a file with `//` comments removed.
fn code(path: &Path) -> String {
    fs::read_to_string(path)
        .expect("read source")
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names of the items a file defines at its top level (no indentation).
fn defined(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.starts_with(' ')) {
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            if matches!(*w, "fn" | "struct" | "enum" | "const" | "static" | "type")
                && let Some(name) = words.get(i + 1)
                && *name != "fn"
            {
                out.insert((*name).to_owned());
                break;
            }
        }
    }
    out
}

/// Identifiers a file takes from `super` (`use super::{…}` lists and `super::Name` paths).
fn from_super(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        rest = &rest[i + "super::".len()..];
        let group = rest.strip_prefix('{').map_or_else(
            || {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            },
            |inner| inner.split('}').next().unwrap_or(""),
        );
        for name in group.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            out.insert(name.to_owned());
        }
    }
    out
}

/// Depth-first search for a back edge from `n`: the cycle, if one is reachable.
fn visit<'a>(
    n: &'a str,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    path: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<&'a str>> {
    if let Some(i) = path.iter().position(|p| *p == n) {
        let mut cycle = path[i..].to_vec();
        cycle.push(n);
        return Some(cycle);
    }
    if done.contains(n) {
        return None;
    }
    path.push(n);
    for m in edges.get(n).into_iter().flatten() {
        if let Some(c) = visit(m, edges, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(n);
    None
}

#[test]
fn hal_files_depend_on_each_other_without_a_cycle() {
    let files = [
        "adapter", "common", "iommu", "mapping", "verifier", "packet",
    ];
    let definitions: BTreeMap<&str, BTreeSet<String>> = files
        .iter()
        .map(|f| (*f, defined(&code(&hal_dir().join(format!("{f}.rs"))))))
        .collect();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in files {
        let used = from_super(&code(&hal_dir().join(format!("{f}.rs"))));
        let e = edges.entry(f).or_default();
        for (g, names) in &definitions {
            if *g != f && used.iter().any(|u| names.contains(u) || u == g) {
                e.insert(g);
            }
        }
    }
    let mut done = BTreeSet::new();
    for f in files {
        let cycle = visit(f, &edges, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle in sim/src/hal: {cycle:?} (all: {edges:?})"
        );
    }
    // The expected shape, so that a change to it is a conscious one.
    assert!(
        edges["mapping"].iter().all(|d| *d == "verifier"),
        "{edges:?}"
    );
    assert!(
        edges["verifier"].is_empty() && edges["iommu"].is_empty(),
        "{edges:?}"
    );
}

#[test]
fn only_the_dma_operations_see_the_machine_state() {
    let names_state = |c: &str| {
        c.contains("machine::State")
            || c.split("crate::machine::{").skip(1).any(|g| {
                g.split('}')
                    .next()
                    .is_some_and(|g| g.split(',').any(|n| n.trim() == "State"))
            })
            || c.contains(": &mut State")
            || c.contains(": &State")
    };
    for f in [
        "mod", "adapter", "common", "iommu", "mapping", "verifier", "packet",
    ] {
        let c = code(&hal_dir().join(format!("{f}.rs")));
        assert!(
            !names_state(&c),
            "hal/{f}.rs names the machine State: take &mut Hal / &Memory instead"
        );
    }
    assert!(
        names_state(&code(&hal_dir().join("ops.rs"))),
        "the entry points run under with_state (the check would be vacuous otherwise)"
    );
}
