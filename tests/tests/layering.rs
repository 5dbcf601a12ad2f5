//! The driver's layering, checked on its source: dependencies point down only
//! (`kmdf` → `hca` → `dma` → `sys`), and the layers above the platform are free of `unsafe`.
//!
//! A module "depends on" another when its source names it by path (`crate::x`, or `super::x`
//! from a sibling); this is the check `cargo modules` would make, without the tool.

use std::fs;
use std::path::{Path, PathBuf};

fn driver_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../driver/src")
}

/// Every `.rs` file of a layer: `name.rs` and everything under `name/`.
fn layer_files(name: &str) -> Vec<PathBuf> {
    let root = driver_src();
    let mut out = vec![root.join(format!("{name}.rs"))];
    let mut dirs = vec![root.join(name)];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.retain(|p| p.exists());
    assert!(!out.is_empty(), "no source for layer {name}");
    out
}

/// Lines of code (comments stripped) naming `crate::{target}`.
fn mentions(layer: &str, target: &str) -> Vec<String> {
    let needle = format!("crate::{target}");
    let mut hits = Vec::new();
    for f in layer_files(layer) {
        let text = fs::read_to_string(&f).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(&needle) {
                hits.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn dependencies_point_down_only() {
    // (layer, the layers above it, which it must not name)
    let rules = [
        ("sys", &["dma", "hca", "kmdf"][..]),
        ("dma", &["hca", "kmdf"][..]),
        ("hca", &["kmdf"][..]),
    ];
    let mut bad = Vec::new();
    for (layer, above) in rules {
        for a in above {
            bad.extend(mentions(layer, a));
        }
    }
    assert!(bad.is_empty(), "upward dependencies:\n{}", bad.join("\n"));
}

#[test]
fn hca_and_kmdf_forbid_unsafe() {
    for layer in ["hca", "kmdf"] {
        let top = fs::read_to_string(driver_src().join(format!("{layer}.rs"))).expect("read");
        assert!(
            top.contains("#![forbid(unsafe_code)]"),
            "{layer}.rs does not forbid unsafe code"
        );
    }
}

#[test]
fn the_scan_finds_the_dependencies_that_exist() {
    // The scan must find what it looks for: `kmdf` names `crate::hca`, a downward dependency.
    assert!(!mentions("kmdf", "hca").is_empty());
    assert!(!mentions("hca", "dma").is_empty());
}
