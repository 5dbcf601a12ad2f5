//! Reading item names and definitions out of Rust source with `syn`.

use std::collections::BTreeSet;

/// The names a file defines at its top level (types, structs, unions, modules, consts,
/// statics and functions, including those inside `extern` blocks, and `pub use … as` aliases).
pub fn top_level_names(file: &syn::File) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for item in &file.items {
        match item {
            syn::Item::Type(t) => {
                names.insert(t.ident.to_string());
            }
            syn::Item::Struct(t) => {
                names.insert(t.ident.to_string());
            }
            syn::Item::Union(t) => {
                names.insert(t.ident.to_string());
            }
            syn::Item::Mod(t) => {
                names.insert(t.ident.to_string());
            }
            syn::Item::Const(t) => {
                names.insert(t.ident.to_string());
            }
            syn::Item::Static(t) => {
                names.insert(t.ident.to_string());
            }
            syn::Item::Fn(t) => {
                names.insert(t.sig.ident.to_string());
            }
            syn::Item::ForeignMod(m) => {
                for fi in &m.items {
                    match fi {
                        syn::ForeignItem::Fn(f) => {
                            names.insert(f.sig.ident.to_string());
                        }
                        syn::ForeignItem::Static(s) => {
                            names.insert(s.ident.to_string());
                        }
                        _ => {}
                    }
                }
            }
            syn::Item::Use(u) => use_renames(&u.tree, &mut names),
            _ => {}
        }
    }
    names
}

pub fn use_renames(tree: &syn::UseTree, names: &mut BTreeSet<String>) {
    match tree {
        syn::UseTree::Path(p) => use_renames(&p.tree, names),
        syn::UseTree::Rename(r) => {
            names.insert(r.rename.to_string());
        }
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_renames(t, names);
            }
        }
        _ => {}
    }
}

/// The single-segment type names a file uses (`Foo` in `field: Foo`, `*mut Foo`,
/// `Option<unsafe extern "C" fn(Foo)>`); multi-segment paths (`::core::…`, `_X::Type`) are
/// not counted.
pub fn referenced_names(file: &syn::File) -> BTreeSet<String> {
    struct Refs(BTreeSet<String>);
    impl<'ast> syn::visit::Visit<'ast> for Refs {
        fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
            if t.qself.is_none() && t.path.leading_colon.is_none() && t.path.segments.len() == 1 {
                self.0.insert(t.path.segments[0].ident.to_string());
            }
            syn::visit::visit_type_path(self, t);
        }
    }
    let mut refs = Refs(BTreeSet::new());
    syn::visit::visit_file(&mut refs, file);
    refs.0
}
