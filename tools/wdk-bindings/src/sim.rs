//! wdk-sim's type layer, cut out of the generated bindings, and the checks that pin wdk-sim's
//! hand-written routines to wdk-sys's signatures.
//!
//! `sim/bindings/src/generated.rs` (crate `wdk-sim-bindings`) is the closure of the items
//! named in `sim/bindings/roots.txt` and of every type wdk-sim's routines mention, copied item
//! by item from the bindings `generate` wrote: the same names, field order, padding fields,
//! derives, layout assertions and (absent) `Sync` impls as wdk-sys, by construction. Two
//! spellings change and nothing else: `::core::ffi::c_ulong` becomes `u32` and
//! `::core::ffi::c_long` becomes `i32`, which is what those types are on
//! `x86_64-pc-windows-msvc` (LLP64) and what they are not on a Linux host (LP64).
//!
//! `sim/src/conformance.rs` holds one `const _: unsafe fn(…) -> R = path;` per routine wdk-sim
//! implements: each `ntddk::X` against the declaration bindgen wrote for `X`, each
//! `wdf::functions::WdfX` against the `PFN_WDFX` parameters of the KMDF fact table (less the
//! `DriverGlobals` that wdk-sys's macro prepends). A routine wdk-sys does not have, or whose
//! parameter or return types differ, fails to compile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use quote::ToTokens;
use serde_json::Value;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;

/// Where the inputs are and where the two files go.
pub struct Inputs {
    /// The output directory of `generate`.
    pub bindings: PathBuf,
    /// The KMDF 1.33 fact table (JSON).
    pub kmdf_json: PathBuf,
    /// wdk-sim's crate directory (`sim/`).
    pub sim: PathBuf,
    /// The published wdk-sys 0.5.2 source (as cargo downloaded it), for the constants it writes
    /// by hand in `src/constants.rs`.
    pub wdk_sys_src: PathBuf,
}

/// One top-level item of the bindings, with the names it mentions.
struct Entry {
    key: String,
    item: syn::Item,
    deps: BTreeSet<String>,
}

/// The name an item belongs to: its own name, or the record an `impl` or a layout-assertion
/// block is about.
fn key_of(item: &syn::Item) -> Option<String> {
    Some(match item {
        syn::Item::Struct(s) => s.ident.to_string(),
        syn::Item::Union(s) => s.ident.to_string(),
        syn::Item::Type(t) => t.ident.to_string(),
        syn::Item::Mod(m) => m.ident.to_string(),
        syn::Item::Const(c) if c.ident != "_" => c.ident.to_string(),
        syn::Item::Const(c) => {
            // bindgen's `const _: () = { ["Size of X"][…]; … };`
            let text = c.expr.to_token_stream().to_string();
            let start = text.find("\"Size of ")? + "\"Size of ".len();
            text[start..].split('"').next()?.to_string()
        }
        syn::Item::Static(s) => s.ident.to_string(),
        syn::Item::Impl(i) => match &*i.self_ty {
            syn::Type::Path(p) => p.path.segments.last()?.ident.to_string(),
            _ => return None,
        },
        syn::Item::Use(u) => {
            let mut names = BTreeSet::new();
            crate::items::use_renames(&u.tree, &mut names);
            names.into_iter().next()?
        }
        _ => return None,
    })
}

/// Every path a piece of syntax mentions, by its first relative segment (`Foo` of `Foo`,
/// `_X` of `self::_X::Type`); `::core::…` paths are not items of the bindings.
struct Mentions(BTreeSet<String>);

impl<'ast> Visit<'ast> for Mentions {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() {
            let mut segs = p.segments.iter().map(|s| s.ident.to_string());
            if let Some(first) = segs.next() {
                let name = if first == "self" || first == "super" {
                    segs.next()
                } else {
                    Some(first)
                };
                if let Some(name) = name {
                    self.0.insert(name);
                }
            }
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_use_path(&mut self, u: &'ast syn::UsePath) {
        // `use self::_X::Type as Y;` depends on the module `_X`.
        if u.ident == "self" || u.ident == "super" {
            if let syn::UseTree::Path(inner) = &*u.tree {
                self.0.insert(inner.ident.to_string());
            }
        } else {
            self.0.insert(u.ident.to_string());
        }
        syn::visit::visit_use_path(self, u);
    }
}

fn mentions<T: ToTokens>(node: &T, visit: impl FnOnce(&mut Mentions, &T)) -> BTreeSet<String> {
    let mut m = Mentions(BTreeSet::new());
    visit(&mut m, node);
    m.0
}

/// `::core::ffi::c_ulong` → `u32`, `::core::ffi::c_long` → `i32` (their Windows x64 widths).
struct Llp64;

impl VisitMut for Llp64 {
    fn visit_type_mut(&mut self, t: &mut syn::Type) {
        if let syn::Type::Path(p) = t {
            let text = p.to_token_stream().to_string().replace(' ', "");
            let fixed = match text.as_str() {
                "::core::ffi::c_ulong" => Some("u32"),
                "::core::ffi::c_long" => Some("i32"),
                _ => None,
            };
            if let Some(fixed) = fixed {
                *t = syn::parse_str(fixed).expect("a primitive type parses");
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, t);
    }
}

fn parse(path: &Path) -> Result<syn::File, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    syn::parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn entries(file: &syn::File) -> Vec<Entry> {
    file.items
        .iter()
        .filter_map(|item| {
            let key = key_of(item)?;
            let deps = mentions(item, |m, i| m.visit_item(i));
            Some(Entry {
                key,
                item: item.clone(),
                deps,
            })
        })
        .collect()
}

/// The declarations of `ntddk.rs`, by name.
fn foreign_fns(file: &syn::File) -> BTreeMap<String, syn::ForeignItemFn> {
    let mut fns = BTreeMap::new();
    for item in &file.items {
        if let syn::Item::ForeignMod(m) = item {
            for fi in &m.items {
                if let syn::ForeignItem::Fn(f) = fi {
                    fns.insert(f.sig.ident.to_string(), f.clone());
                }
            }
        }
    }
    fns
}

/// The public functions a wdk-sim module defines at its top level, in `x.rs` and its own files
/// `x/*.rs` (whose public routines `x` re-exports).
/// A module's own files (`x.rs` and `x/*.rs`), whose public routines `x` re-exports.
fn module_files(path: &Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![path.to_path_buf()];
    if let Ok(entries) = fs::read_dir(path.with_extension("")) {
        let mut children: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        children.sort();
        files.extend(children);
    }
    files
}

fn pub_fns(path: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for f in module_files(path) {
        names.extend(parse(&f)?.items.iter().filter_map(|item| match item {
            syn::Item::Fn(f) if matches!(f.vis, syn::Visibility::Public(_)) => {
                Some(f.sig.ident.to_string())
            }
            _ => None,
        }));
    }
    Ok(names)
}

/// The public functions declared in `extern "C"` blocks of a module's files (`x.rs` and
/// `x/*.rs`): the C-variadic routines wdk-sim defines in C (`DbgPrint`, `DbgPrintEx`).
fn pub_foreign_fns(path: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for f in module_files(path) {
        for item in parse(&f)?.items {
            if let syn::Item::ForeignMod(m) = item {
                names.extend(m.items.iter().filter_map(|i| match i {
                    syn::ForeignItem::Fn(f) if matches!(f.vis, syn::Visibility::Public(_)) => {
                        Some(f.sig.ident.to_string())
                    }
                    _ => None,
                }));
            }
        }
    }
    Ok(names)
}

/// The roots: one name per line, `#` comments.
fn roots(path: &Path) -> Result<Vec<String>, String> {
    Ok(fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

const HEADER: &str = "// @generated by tools/wdk-bindings (`rhca-wdk-bindings sim`, run by .ci/windows-check) from the\n// bindings wdk-build 0.6.0's settings give for x86_64-pc-windows-msvc; do not edit.\n// See docs/sim-fidelity.md, \"The Windows build on Linux\".\n\n";

/// One `const _: unsafe fn(…) -> R = path;` per routine wdk-sim implements; adds the names the
/// signatures mention to `wanted`.
fn routine_checks(
    sim: &Path,
    ntddk: &BTreeMap<String, syn::ForeignItemFn>,
    kmdf: &Value,
    wanted: &mut Vec<String>,
) -> Result<String, String> {
    let mut checks = String::new();
    let mut errors = Vec::new();
    for name in pub_fns(&sim.join("src/ntddk.rs"))? {
        let Some(decl) = ntddk.get(&name) else {
            errors.push(format!(
                "wdk_sim::ntddk::{name}: wdk-sys has no such function (ntddk.rs)"
            ));
            continue;
        };
        if decl.sig.variadic.is_some() {
            errors.push(format!(
                "wdk_sim::ntddk::{name}: variadic in wdk-sys, cannot be mirrored by a Rust fn"
            ));
            continue;
        }
        let mut sig = decl.sig.clone();
        Llp64.visit_signature_mut(&mut sig);
        wanted.extend(mentions(&sig, |m, s| m.visit_signature(s)));
        let inputs = sig.inputs.to_token_stream();
        let output = sig.output.to_token_stream();
        let _ = writeln!(
            checks,
            "const _: unsafe fn({inputs}) {output} = crate::ntddk::{name};"
        );
    }
    // C-variadic routines: declared in an `extern "C"` block, as wdk-sys declares them, and
    // pinned with a variadic function-pointer type.
    for name in pub_foreign_fns(&sim.join("src/ntddk.rs"))? {
        let Some(decl) = ntddk.get(&name) else {
            errors.push(format!(
                "wdk_sim::ntddk::{name}: wdk-sys has no such function (ntddk.rs)"
            ));
            continue;
        };
        let mut sig = decl.sig.clone();
        Llp64.visit_signature_mut(&mut sig);
        wanted.extend(mentions(&sig, |m, s| m.visit_signature(s)));
        // syn keeps the comma before `...` as trailing punctuation of the inputs.
        let inputs = sig.inputs.to_token_stream().to_string();
        let inputs = inputs.trim_end().trim_end_matches(',').trim_end();
        let output = sig.output.to_token_stream();
        let dots = if sig.variadic.is_some() {
            if inputs.is_empty() { "..." } else { ", ..." }
        } else {
            ""
        };
        let _ = writeln!(
            checks,
            "const _: unsafe extern \"C\" fn({inputs}{dots}) {output} = crate::ntddk::{name};"
        );
    }
    let table: BTreeMap<&str, &Value> = kmdf["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["api"].as_str().unwrap_or_default(), f))
        .collect();
    for name in pub_fns(&sim.join("src/wdf/functions.rs"))? {
        let Some(f) = table
            .get(name.as_str())
            .filter(|f| f["rust_pfn_type"].is_string())
        else {
            errors.push(format!("wdk_sim::wdf::functions::{name}: not a KMDF 1.33 method with a PFN type in the fact table"));
            continue;
        };
        let params: Vec<String> = f["rust_params"]
            .as_array()
            .into_iter()
            .flatten()
            .skip(1) // DriverGlobals, which wdk-sys's macro prepends.
            .map(|p| format!("{}: {}", p["name"].as_str().unwrap_or_default(), p["type"].as_str().unwrap_or_default()))
            .collect();
        let ret = match f["rust_return"].as_str() {
            None | Some("" | "()" | "VOID") => String::new(),
            Some(r) => format!(" -> {r}"),
        };
        let line = format!(
            "const _: unsafe fn({}){ret} = crate::wdf::functions::{name};",
            params.join(", ")
        );
        let parsed: syn::Item = syn::parse_str(&line).map_err(|e| format!("{name}: {e}"))?;
        wanted.extend(mentions(&parsed, |m, i| m.visit_item(i)));
        let _ = writeln!(checks, "{line}");
    }
    if !errors.is_empty() {
        return Err(format!(
            "wdk-sim's routines do not all mirror wdk-sys:\n  {}",
            errors.join("\n  ")
        ));
    }

    Ok(checks)
}

/// Every `pub const` anywhere in a file, with its type and value expression.
fn consts_of(file: &syn::File) -> BTreeMap<String, (syn::Type, syn::Expr)> {
    struct Consts(BTreeMap<String, (syn::Type, syn::Expr)>);
    impl<'ast> Visit<'ast> for Consts {
        fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
            if matches!(c.vis, syn::Visibility::Public(_)) {
                self.0
                    .insert(c.ident.to_string(), ((*c.ty).clone(), (*c.expr).clone()));
            }
        }
    }
    let mut v = Consts(BTreeMap::new());
    v.visit_file(file);
    v.0
}

/// For each constant of `sim/src/constants.rs` (wdk-sys's hand-written ones), a check of its
/// type and of its value against wdk-sys's `src/constants.rs`: `const _: T = crate::X;` and an
/// assertion that the value equals wdk-sys's literal (or is null, for the `WDF_NO_*` pointers).
fn constant_checks(sim: &Path, wdk_sys_src: &Path) -> Result<String, String> {
    let theirs = consts_of(&parse(&wdk_sys_src.join("src/constants.rs"))?);
    let ours = consts_of(&parse(&sim.join("src/constants.rs"))?);
    let mut out = String::new();
    let mut errors = Vec::new();
    for name in ours.keys() {
        let Some((ty, value)) = theirs.get(name) else {
            errors.push(format!("wdk_sim::{name} (sim/src/constants.rs): not one of wdk-sys's hand-written constants"));
            continue;
        };
        let ty = ty.to_token_stream();
        let value = value.to_token_stream().to_string();
        let _ = writeln!(out, "const _: {ty} = crate::{name};");
        if value.contains("null_mut") || value.contains("null ()") {
            let _ = writeln!(out, "const _: () = assert!(crate::{name}.is_null());");
        } else {
            let _ = writeln!(out, "const _: () = assert!(crate::{name} == {value});");
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

/// Writes `sim/bindings/src/generated.rs` and `sim/src/conformance.rs`.
pub fn generate(inputs: &Inputs) -> Result<(), String> {
    let types = parse(&inputs.bindings.join("types.rs"))?;
    let constants = parse(&inputs.bindings.join("constants.rs"))?;
    let ntddk = foreign_fns(&parse(&inputs.bindings.join("ntddk.rs"))?);
    let kmdf: Value = serde_json::from_str(
        &fs::read_to_string(&inputs.kmdf_json)
            .map_err(|e| format!("{}: {e}", inputs.kmdf_json.display()))?,
    )
    .map_err(|e| format!("{}: {e}", inputs.kmdf_json.display()))?;

    let all: Vec<Entry> = entries(&types)
        .into_iter()
        .chain(entries(&constants))
        .collect();
    let known: BTreeSet<&str> = all.iter().map(|e| e.key.as_str()).collect();
    let mut wanted = roots(&inputs.sim.join("bindings/roots.txt"))?;
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|r| !known.contains(r.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "sim/bindings/roots.txt names items wdk-sys does not have: {missing:?}"
        ));
    }

    // The signature checks, and the types they mention (which the bindings must then hold).
    let mut checks = routine_checks(&inputs.sim, &ntddk, &kmdf, &mut wanted)?;
    checks.push_str(&constant_checks(&inputs.sim, &inputs.wdk_sys_src)?);

    // The closure of the wanted names over the bindings' items.
    let by_key: BTreeMap<&str, Vec<&Entry>> = all.iter().fold(BTreeMap::new(), |mut m, e| {
        m.entry(e.key.as_str()).or_insert_with(Vec::new).push(e);
        m
    });
    let mut closure: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = wanted
        .into_iter()
        .filter(|w| known.contains(w.as_str()))
        .collect();
    while let Some(name) = stack.pop() {
        if !closure.insert(name.clone()) {
            continue;
        }
        for e in by_key.get(name.as_str()).into_iter().flatten() {
            stack.extend(
                e.deps
                    .iter()
                    .filter(|d| known.contains(d.as_str()) && !closure.contains(*d))
                    .cloned(),
            );
        }
    }
    let mut file = syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: Vec::new(),
    };
    for e in all.iter().filter(|e| closure.contains(&e.key)) {
        let mut item = e.item.clone();
        Llp64.visit_item_mut(&mut item);
        file.items.push(item);
    }
    let bindings_out = inputs.sim.join("bindings/src/generated.rs");
    fs::write(
        &bindings_out,
        format!("{HEADER}{}", prettyplease::unparse(&file)),
    )
    .map_err(|e| format!("{}: {e}", bindings_out.display()))?;

    let checks_file = syn::parse_file(&checks).map_err(|e| format!("conformance checks: {e}"))?;
    let conformance_out = inputs.sim.join("src/conformance.rs");
    fs::write(
        &conformance_out,
        format!(
            "{HEADER}//! Compile-time proof that every routine wdk-sim implements has wdk-sys's signature: each\n//! `ntddk` routine that of bindgen's declaration, each WDF method that of its `PFN_WDF…` type\n//! less `DriverGlobals`. A routine wdk-sys lacks is refused when this file is generated.\n\n#![allow(non_snake_case, clippy::wildcard_imports, reason = \"the C parameter names, as bindgen writes them, and every type they use\")]\n\nuse crate::*;\n\n{}",
            prettyplease::unparse(&checks_file)
        ),
    )
    .map_err(|e| format!("{}: {e}", conformance_out.display()))?;
    // The files are formatted as `cargo fmt` formats the workspace (its rustfmt.toml), so that a
    // fresh generation and `cargo fmt --check` agree byte for byte.
    let status = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(&bindings_out)
        .arg(&conformance_out)
        .status()
        .map_err(|e| format!("rustfmt: {e}"))?;
    if !status.success() {
        return Err(format!("rustfmt failed on the generated files: {status}"));
    }
    eprintln!(
        "rhca-wdk-bindings sim: {} items into {}, {} routine checks into {}",
        file.items.len(),
        bindings_out.display(),
        checks_file.items.len(),
        conformance_out.display()
    );
    Ok(())
}
