//! Generation of wdk-sys's `OUT_DIR` files on Linux.
//!
//! What wdk-sys 0.5.2's build script produces on Windows, for a KMDF 1.33 driver on x64:
//! `types.rs` (bindgen `TYPES` over ntifs.h, ntddk.h, ntstrsafe.h and wdf.h), `constants.rs`
//! (`VARS` over the same), `ntddk.rs` (everything else over the base headers, plus the
//! `#[link]` lines) and `wdf.rs` (everything else from files named `*wdf*`). Here:
//! - the DDK part is bindgen 0.73.2 itself, with the settings of wdk-build 0.6.0's
//!   `BuilderExt::wdk_default` (restated in [`wdk_default`]), over a staged copy of Debian's
//!   mingw-w64 DDK headers into which our three small headers (`include/`) are spliced at
//!   anchors that must each match once;
//! - the WDF part comes from the KMDF 1.33 fact table (`shared/reference/kmdf-1.33/`), whose
//!   Rust texts are what bindgen emitted over the real KMDF headers with the same settings,
//!   written out here in bindgen's item shapes (structs with their derives and layout
//!   assertions, `ModuleConsts` enums, `PFN_*` aliases, the function-table statics).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The base headers of wdk-build 0.6.0 (`Config::base_headers` for WDM and KMDF).
const BASE_HEADERS: &[&str] = &["ntifs.h", "ntddk.h", "ntstrsafe.h"];

/// The `DECLARE_HANDLE` names of KMDF 1.33's `wdftypes.h`, in header order.
const WDF_HANDLES: &[&str] = &[
    "WDFDRIVER",
    "WDFDEVICE",
    "WDFWMIPROVIDER",
    "WDFWMIINSTANCE",
    "WDFQUEUE",
    "WDFREQUEST",
    "WDFFILEOBJECT",
    "WDFDPC",
    "WDFTIMER",
    "WDFWORKITEM",
    "WDFINTERRUPT",
    "WDFWAITLOCK",
    "WDFSPINLOCK",
    "WDFMEMORY",
    "WDFLOOKASIDE",
    "WDFIOTARGET",
    "WDFUSBDEVICE",
    "WDFUSBINTERFACE",
    "WDFUSBPIPE",
    "WDFDMAENABLER",
    "WDFDMATRANSACTION",
    "WDFCOMMONBUFFER",
    "WDFKEY",
    "WDFSTRING",
    "WDFCOLLECTION",
    "WDFCHILDLIST",
    "WDFIORESREQLIST",
    "WDFIORESLIST",
    "WDFCMRESLIST",
    "WDFCOMPANIONTARGET",
];

/// The `#[link]` lines wdk-build 0.6.0 puts in `ntddk.rs` for KMDF (`base_libraries`,
/// rendered by `LinkDirective::render`).
const KMDF_LIBRARIES: &[&str] = &[
    "BufferOverflowFastFailK",
    "ntoskrnl",
    "hal",
    "wmilib",
    "WdfLdr",
    "WdfDriverEntry",
];

/// Where the inputs are.
pub struct Inputs {
    /// Debian's mingw-w64 include root (`/usr/share/mingw-w64/include`).
    pub mingw: PathBuf,
    /// The KMDF 1.33 fact table (JSON).
    pub kmdf_json: PathBuf,
    /// This crate's `include/` (our spliced headers).
    pub ours: PathBuf,
    /// Scratch directory for the staged headers.
    pub stage: PathBuf,
}

/// A splice into a staged header: `anchor` must occur exactly once.
struct Splice {
    anchor: &'static str,
    replacement: &'static str,
}

const WDM_SPLICES: &[Splice] = &[
    Splice {
        anchor: "  ULONG DmaPort;\n} DEVICE_DESCRIPTION, *PDEVICE_DESCRIPTION;",
        replacement: "  ULONG DmaPort;\n#include \"rhca-wdm-v3-description.h\"\n} DEVICE_DESCRIPTION, *PDEVICE_DESCRIPTION;",
    },
    // The real wdm.h declares a flexible array member (`Elements[]`, under
    // `#pragma warning(disable:4200)`); mingw-w64 declares `Elements[1]`.
    Splice {
        anchor: "  SCATTER_GATHER_ELEMENT Elements[1];\n} SCATTER_GATHER_LIST, *PSCATTER_GATHER_LIST;",
        replacement: "  SCATTER_GATHER_ELEMENT Elements[];\n} SCATTER_GATHER_LIST, *PSCATTER_GATHER_LIST;",
    },
    Splice {
        anchor: "typedef struct _DMA_OPERATIONS {\n",
        replacement: "#include \"rhca-wdm-v3-types.h\"\ntypedef struct _DMA_OPERATIONS {\n",
    },
    Splice {
        anchor: "  PBUILD_MDL_FROM_SCATTER_GATHER_LIST BuildMdlFromScatterGatherList;\n} DMA_OPERATIONS, *PDMA_OPERATIONS;",
        replacement: "  PBUILD_MDL_FROM_SCATTER_GATHER_LIST BuildMdlFromScatterGatherList;\n#include \"rhca-wdm-v3-members.h\"\n} DMA_OPERATIONS, *PDMA_OPERATIONS;",
    },
    // Since Windows 8 the `Priority` of MmMapLockedPagesSpecifyCache is a `ULONG` (an
    // `MM_PAGE_PRIORITY` OR'd with `MdlMapping*` flags): Microsoft's documented prototype;
    // mingw-w64 still declares `MM_PAGE_PRIORITY`.
    Splice {
        anchor: "  IN ULONG BugCheckOnFailure,\n  IN MM_PAGE_PRIORITY Priority);",
        replacement: "  IN ULONG BugCheckOnFailure,\n  IN ULONG Priority);",
    },
    // The real x64 wdm.h declares `NTKERNELAPI KIRQL KeGetCurrentIrql(VOID);` unless
    // `NT_INLINE_GET_CURRENT_IRQL` is defined (windows-drivers-rs.md §2.2), and wdk-sys's
    // `PAGED_CODE!` calls `ntddk::KeGetCurrentIrql`; mingw-w64 has an inline `__readcr8()` body.
    Splice {
        anchor: "FORCEINLINE\nKIRQL\nKeGetCurrentIrql(VOID)\n{\n  return (KIRQL)__readcr8();\n}",
        replacement: "NTKERNELAPI\nKIRQL\nNTAPI\nKeGetCurrentIrql(VOID);",
    },
    Splice {
        anchor: "#ifdef __cplusplus\n}\n#endif\n\n#endif /* !_WDMDDK_ */",
        replacement: "#include \"rhca-wdm-routines.h\"\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* !_WDMDDK_ */",
    },
];

/// Copies mingw's `ddk/` into the stage and applies the splices to `wdm.h`.
fn stage_headers(inputs: &Inputs) -> Result<PathBuf, String> {
    let ddk = inputs.stage.join("ddk");
    if ddk.exists() {
        fs::remove_dir_all(&ddk).map_err(|e| format!("{}: {e}", ddk.display()))?;
    }
    fs::create_dir_all(&ddk).map_err(|e| format!("{}: {e}", ddk.display()))?;
    let src = inputs.mingw.join("ddk");
    for entry in fs::read_dir(&src).map_err(|e| {
        format!(
            "{}: {e} (is mingw-w64-x86-64-dev installed?)",
            src.display()
        )
    })? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_type().map_err(|e| e.to_string())?.is_file() {
            fs::copy(entry.path(), ddk.join(entry.file_name())).map_err(|e| e.to_string())?;
        }
    }
    let wdm_path = ddk.join("wdm.h");
    let mut wdm =
        fs::read_to_string(&wdm_path).map_err(|e| format!("{}: {e}", wdm_path.display()))?;
    for splice in WDM_SPLICES {
        let hits = wdm.matches(splice.anchor).count();
        if hits != 1 {
            return Err(format!(
                "mingw-w64 wdm.h: the anchor {:?} occurs {hits} times (expected once); the header changed and the splice must be reviewed",
                splice.anchor
            ));
        }
        wdm = wdm.replacen(splice.anchor, splice.replacement, 1);
    }
    fs::write(&wdm_path, wdm).map_err(|e| e.to_string())?;
    Ok(ddk)
}

/// The clang resource directory of the libclang bindgen loads (stddef.h and friends): wdk-build
/// turns include-path detection off, which an eWDK does not need and Linux does.
fn clang_resource_include() -> Result<PathBuf, String> {
    let mut found = Vec::new();
    for llvm in fs::read_dir("/usr/lib")
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = llvm.file_name();
        if !name.to_string_lossy().starts_with("llvm-") {
            continue;
        }
        let clang = llvm.path().join("lib/clang");
        if let Ok(versions) = fs::read_dir(&clang) {
            for v in versions.flatten() {
                let inc = v.path().join("include");
                if inc.join("stddef.h").exists() {
                    found.push(inc);
                }
            }
        }
    }
    found.sort();
    found.pop().ok_or_else(|| "no clang resource include directory under /usr/lib/llvm-*/lib/clang (install libclang-dev)".to_string())
}

/// wdk-build 0.6.0's `BuilderExt::wdk_default` for a KMDF 1.33 x64 configuration, with the
/// include paths of our staged DDK instead of an eWDK's.
fn wdk_default(include_dirs: &[PathBuf]) -> bindgen::Builder {
    let mut builder = bindgen::Builder::default()
        .use_core()
        .derive_default(true)
        .generate_cstr(true)
        .detect_include_paths(false)
        .clang_arg("--target=x86_64-pc-windows-msvc")
        .clang_arg("-fno-builtin");
    for dir in include_dirs {
        builder = builder.clang_arg(format!("--include-directory={}", dir.display()));
    }
    // `Config::preprocessor_definitions` for Amd64 + KMDF 1.33 (no minimum version).
    for define in [
        "_WIN64",
        "_AMD64_",
        "AMD64",
        "_KERNEL_MODE",
        "KMDF_VERSION_MAJOR=1",
        "KMDF_VERSION_MINOR=33",
    ] {
        builder = builder.clang_arg(format!("--define-macro={define}"));
    }
    // `Config::wdk_bindgen_compiler_flags`.
    for flag in [
        "-fms-compatibility",
        "-fms-extensions",
        "-fdelayed-template-parsing",
        "--warn-=no-nonportable-include-path",
        "--warn-=no-pragma-pack",
        "--warn-=no-ignored-attributes",
        "--warn-=no-ignored-pragma-intrinsic",
        "--warn-=no-visibility",
        "--warn-=no-switch",
        "--warn-=no-comment",
        "--warn-=no-deprecated-declarations",
        "--warn-=no-invalid-token-paste",
        "--warn-=no-microsoft",
    ] {
        builder = builder.clang_arg(flag);
    }
    // mingw-w64's _mingw.h defines `__attribute__` away unless it sees a GCC; the fact table was
    // produced with the same two defines (its README).
    builder = builder
        .clang_arg("-D__GNUC__=4")
        .clang_arg("-D__GNUC_MINOR__=9");
    for item in [
        "ExAllocatePoolWithTag",
        "ExAllocatePoolWithQuotaTag",
        "ExAllocatePoolWithTagPriority",
        "ExAllocatePool",
        "USBD_CalculateUsbBandwidth",
        "USBD_CreateConfigurationRequest",
        "USBD_Debug_LogEntry",
        "USBD_GetUSBDIVersion",
        "USBD_ParseConfigurationDescriptor",
        "USBD_QueryBusTime",
        "USBD_RegisterHcFilter",
        "IOCTL_USB_DIAG_IGNORE_HUBS_OFF",
        "IOCTL_USB_DIAG_IGNORE_HUBS_ON",
        "IOCTL_USB_DIAGNOSTIC_MODE_OFF",
        "IOCTL_USB_DIAGNOSTIC_MODE_ON",
        "IOCTL_USB_GET_HUB_CAPABILITIES",
        "IOCTL_USB_HCD_DISABLE_PORT",
        "IOCTL_USB_HCD_ENABLE_PORT",
        "IOCTL_USB_HCD_GET_STATS_1",
        "IOCTL_USB_HCD_GET_STATS_2",
        "IOCTL_USB_RESET_HUB",
        ".*MCG_CAP(?:__bindgen.*)?",
        ".*WHEA_XPF_MCA_SECTION",
        ".*WHEA_ARM_BUS_ERROR(?:__bindgen.*)?",
        ".*WHEA_ARM_PROCESSOR_ERROR",
        ".*WHEA_ARM_CACHE_ERROR",
        ".*ADDRESS0_OWNERSHIP_ACQUIRE",
        ".*USBDEVICE_ABORTIO",
        ".*USBDEVICE_STARTIO",
        ".*USBDEVICE_TREE_PURGEIO",
    ] {
        builder = builder.blocklist_item(item);
    }
    builder
        .opaque_type("_KGDTENTRY64")
        .opaque_type("_KIDTENTRY64")
        .no_default(".*tagMONITORINFOEXA")
        .must_use_type("NTSTATUS")
        .must_use_type("HRESULT")
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        .formatter(bindgen::Formatter::Prettyplease)
        // wdk-build's own `rust-version` (1.91.0) and edition (2024).
        .rust_target(bindgen::RustTarget::stable(91, 0).expect("bindgen 0.73 knows Rust 1.91"))
        .rust_edition(bindgen::RustEdition::Edition2024)
}

fn header_contents(headers: &[&str]) -> String {
    headers.iter().fold(String::new(), |mut out, h| {
        let _ = writeln!(out, "#include \"{h}\"");
        out
    })
}

fn run(builder: bindgen::Builder, what: &str) -> Result<String, String> {
    builder
        .generate()
        .map(|b| b.to_string())
        .map_err(|e| format!("bindgen ({what}): {e}"))
}

/// Formats Rust source text the way bindgen's `Formatter::Prettyplease` does.
fn pretty(text: &str, what: &str) -> Result<String, String> {
    let file =
        syn::parse_file(text).map_err(|e| format!("{what}: generated text does not parse: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The WDF items of `types.rs`, from the fact table.
fn wdf_types(kmdf: &Value, ddk_items: &BTreeSet<String>) -> String {
    let mut out = String::new();
    // wdftypes.h: `typedef size_t* WDF_STRUCT_INFO; typedef PVOID WDFCONTEXT;`, the forward
    // declarations, `typedef HANDLE WDFOBJECT, *PWDFOBJECT;` ("should always be typeless") and
    // the `DECLARE_HANDLE` handles. The WDK compiles `DECLARE_HANDLE` in its STRICT form
    // (`struct name##__ { int unused; }; typedef struct name##__ *name;`): public symbols of
    // inbox KMDF drivers carry `WDFDEVICE__`, `WDFREQUEST__`, … (docs/sim-fidelity.md). The
    // fact table's canonical `void *` comes from mingw-w64's non-STRICT ntdef.h and is not
    // followed here.
    out.push_str("pub type WDF_STRUCT_INFO = *mut usize;\npub type WDFCONTEXT = PVOID;\n");
    for opaque in ["WDFDEVICE_INIT", "WDFCXDEVICE_INIT"] {
        let _ = writeln!(
            out,
            "#[repr(C)]\n#[derive(Debug, Copy, Clone)]\npub struct {opaque} {{ _unused: [u8; 0] }}\npub type P{opaque} = *mut {opaque};"
        );
    }
    out.push_str("pub type WDFOBJECT = HANDLE;\npub type PWDFOBJECT = *mut HANDLE;\n");
    for h in WDF_HANDLES {
        let _ = writeln!(
            out,
            "#[repr(C)]\n#[derive(Debug, Default, Copy, Clone)]\npub struct {h}__ {{ pub unused: ::core::ffi::c_int }}\n#[allow(clippy::unnecessary_operation, clippy::identity_op)]\nconst _: () = {{\n    [\"Size of {h}__\"][::core::mem::size_of::<{h}__>() - 4usize];\n    [\"Alignment of {h}__\"][::core::mem::align_of::<{h}__>() - 4usize];\n    [\"Offset of field: {h}__::unused\"][::core::mem::offset_of!({h}__, unused) - 0usize];\n}};\npub type {h} = *mut {h}__;"
        );
    }
    // wdf.h: `typedef VOID (*WDFFUNC) (VOID);`
    out.push_str("pub type WDFFUNC = ::core::option::Option<unsafe extern \"C\" fn()>;\n");

    for e in kmdf["enums"].as_array().into_iter().flatten() {
        let module = s(e, "rust_module");
        let _ = writeln!(
            out,
            "pub mod {module} {{\n    pub type Type = {};",
            s(e, "rust_integer_type")
        );
        for c in e["constants"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "    pub const {}: Type = {};",
                s(c, "name"),
                c["value"]
            );
        }
        out.push_str("}\n");
        for alias in e["rust_type_alias"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "pub use self::{module}::Type as {};",
                alias.as_str().unwrap_or_default()
            );
        }
    }
    for st in kmdf["structs"].as_array().into_iter().flatten() {
        let name = s(st, "name");
        if s(st, "origin").starts_with("ddk") {
            // Embedded DDK records come from the mingw-w64 bindgen run; the table's copy is used
            // by `check` to show the two agree.
            if !ddk_items.contains(name) {
                let _ = writeln!(out, "// DDK record {name} missing from the mingw-w64 run");
            }
            continue;
        }
        struct_item(&mut out, st);
    }
    for cb in kmdf["callbacks"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "pub type {} = {};", s(cb, "name"), s(cb, "rust_type"));
    }
    for f in kmdf["functions"].as_array().into_iter().flatten() {
        let pfn = s(f, "rust_pfn_type");
        if !pfn.is_empty() {
            let _ = writeln!(out, "pub type {} = {pfn};", s(f, "pfn_typedef"));
        }
    }
    out
}

/// One record in bindgen's shape: attributes, fields, typedef and pointer aliases, the layout
/// assertions, and the zeroing `Default` bindgen writes when it cannot derive one.
fn struct_item(out: &mut String, st: &Value) {
    let name = s(st, "name");
    let kind = if s(st, "kind") == "union" {
        "union"
    } else {
        "struct"
    };
    for r in st["rust_repr"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "#[{}]", r.as_str().unwrap_or_default());
    }
    let derive = s(st, "rust_derive");
    let _ = writeln!(out, "#[derive({derive})]\npub {kind} {name} {{");
    for f in st["fields"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "    pub {}: {},", s(f, "name"), s(f, "rust_type"));
    }
    out.push_str("}\n");
    for a in st["typedef_aliases"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "pub type {} = {name};", a.as_str().unwrap_or_default());
    }
    for a in st["pointer_aliases"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "pub type {} = *mut {name};",
            a.as_str().unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "#[allow(clippy::unnecessary_operation, clippy::identity_op)]\nconst _: () = {{\n    [\"Size of {name}\"][::core::mem::size_of::<{name}>() - {}usize];\n    [\"Alignment of {name}\"][::core::mem::align_of::<{name}>() - {}usize];",
        st["size"], st["align"]
    );
    for f in st["fields"].as_array().into_iter().flatten() {
        if let Some(off) = f["offset"].as_u64() {
            let field = s(f, "name");
            let _ = writeln!(
                out,
                "    [\"Offset of field: {name}::{field}\"][::core::mem::offset_of!({name}, {field}) - {off}usize];"
            );
        }
    }
    out.push_str("};\n");
    if !derive.split(", ").any(|d| d == "Default") {
        let _ = writeln!(
            out,
            "impl Default for {name} {{\n    fn default() -> Self {{\n        let mut s = ::core::mem::MaybeUninit::<Self>::uninit();\n        unsafe {{\n            ::core::ptr::write_bytes(s.as_mut_ptr(), 0, 1);\n            s.assume_init()\n        }}\n    }}\n}}"
        );
    }
}

/// The WDF items of `constants.rs`: the table's constants and the function-table statics
/// (`WdfFunctions_01033` renamed `WdfFunctions`, as wdk-build's `WdkCallbacks` does).
fn wdf_constants(kmdf: &Value, ddk_items: &BTreeSet<String>) -> String {
    let mut out = String::new();
    for c in kmdf["constants"].as_array().into_iter().flatten() {
        // A macro both the DDK and the KMDF headers define with the same value (wdfstatus.h's
        // `STATUS_SEVERITY_*` repeat ntdef.h's) is one item in bindgen's output.
        if ddk_items.contains(s(c, "name")) {
            continue;
        }
        let _ = writeln!(
            out,
            "pub const {}: {} = {};",
            s(c, "name"),
            s(c, "rust_type"),
            s(c, "value")
        );
    }
    out.push_str("unsafe extern \"C\" {\n");
    if let Some(statics) = kmdf["function_table"]["statics"].as_object() {
        for (name, ty) in statics {
            let name = if name.starts_with("WdfFunctions_") {
                "WdfFunctions"
            } else {
                name
            };
            let _ = writeln!(
                out,
                "    pub static mut {name}: {};",
                ty.as_str().unwrap_or_default()
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The pointer typedefs and forward-declared records the KMDF headers name but the fact table
/// does not list as items of their own (`PCWDF_OBJECT_CONTEXT_TYPE_INFO`,
/// `PWDF_USB_REQUEST_COMPLETION_PARAMS` of the un-included wdfusb.h, …), in bindgen's shapes:
/// `pub type N = *const T;` / `*mut T`, and `pub struct _X { _unused: [u8; 0] }` for a record
/// only declared. Each is derived from a canonical C type the table records (a field's, or a
/// function parameter's), else from the headers' `P<typedef>` / `PC<typedef>` naming; a name
/// that neither explains is an error, so nothing is guessed silently.
fn resolve_references(
    kmdf: &Value,
    ddk_items: &BTreeSet<String>,
    wdf: &str,
) -> Result<String, String> {
    let file = syn::parse_file(wdf).map_err(|e| format!("WDF items do not parse: {e}"))?;
    let mut defined = crate::items::top_level_names(&file);
    defined.extend(ddk_items.iter().cloned());
    let referenced = crate::items::referenced_names(&file);
    // Canonical C types by the Rust name that carries them.
    let mut canonical: std::collections::BTreeMap<String, String> =
        std::collections::BTreeMap::new();
    for st in kmdf["structs"].as_array().into_iter().flatten() {
        for f in st["fields"].as_array().into_iter().flatten() {
            canonical
                .entry(s(f, "rust_type").to_string())
                .or_insert_with(|| s(f, "c_canonical_type").to_string());
        }
    }
    for f in kmdf["functions"].as_array().into_iter().flatten() {
        let c = s(f, "c_type");
        let (Some(open), Some(close)) = (c.find(")(").map(|i| i + 2), c.rfind(')')) else {
            continue;
        };
        let c_params = split_top_level(&c[open..close]);
        let params = f["rust_params"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if c_params.len() == params.len() {
            for (p, cp) in params.iter().zip(c_params) {
                canonical.entry(s(p, "type").to_string()).or_insert(cp);
            }
        }
    }
    let mut out = String::new();
    let mut unresolved = Vec::new();
    for name in referenced.difference(&defined.clone()) {
        if is_builtin(name) {
            continue;
        }
        let c = canonical.get(name).map_or("", String::as_str);
        let (constness, pointee) = if let Some(record) = c
            .strip_prefix("const struct ")
            .and_then(|r| r.strip_suffix(" *"))
        {
            ("const", record.to_string())
        } else if let Some(record) = c.strip_prefix("struct ").and_then(|r| r.strip_suffix(" *")) {
            ("mut", record.to_string())
        } else if let Some(t) = name.strip_prefix("PC").filter(|t| defined.contains(*t)) {
            ("const", t.to_string())
        } else if let Some(t) = name.strip_prefix('P').filter(|t| defined.contains(*t)) {
            ("mut", t.to_string())
        } else {
            unresolved.push(name.clone());
            continue;
        };
        if !defined.contains(&pointee) {
            let _ = writeln!(
                out,
                "#[repr(C)]\n#[derive(Debug, Copy, Clone)]\npub struct {pointee} {{ _unused: [u8; 0] }}"
            );
            defined.insert(pointee.clone());
        }
        let _ = writeln!(out, "pub type {name} = *{constness} {pointee};");
        defined.insert(name.clone());
    }
    if unresolved.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "the KMDF items name types the fact table does not explain: {unresolved:?}"
        ))
    }
}

/// Splits a C parameter list at its top-level commas.
fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, ch) in list.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(list[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let tail = list[start..].trim();
    if !tail.is_empty() && tail != "void" {
        parts.push(tail.to_string());
    }
    parts
}

/// Names that resolve without an item: primitive types and the prelude.
fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "u8" | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "f32"
            | "f64"
            | "bool"
            | "char"
            | "str"
            | "Self"
            | "Type"
    )
}

/// Names of the items a bindgen output defines at its top level.
fn defined_items(text: &str) -> Result<BTreeSet<String>, String> {
    let file = syn::parse_file(text).map_err(|e| e.to_string())?;
    Ok(crate::items::top_level_names(&file))
}

/// Generates the four bindgen files into `out`.
pub fn generate(inputs: &Inputs, out: &Path) -> Result<(), String> {
    let ddk = stage_headers(inputs)?;
    let include_dirs = vec![
        ddk,
        inputs.ours.clone(),
        inputs.mingw.clone(),
        clang_resource_include()?,
    ];
    let kmdf: Value = serde_json::from_str(
        &fs::read_to_string(&inputs.kmdf_json)
            .map_err(|e| format!("{}: {e}", inputs.kmdf_json.display()))?,
    )
    .map_err(|e| format!("{}: {e}", inputs.kmdf_json.display()))?;
    let base = header_contents(BASE_HEADERS);

    let types = run(
        wdk_default(&include_dirs)
            .with_codegen_config(bindgen::CodegenConfig::TYPES)
            .header_contents("types-input.h", &base),
        "types.rs",
    )?;
    let ddk_items = defined_items(&types)?;
    let wdf = wdf_types(&kmdf, &ddk_items);
    let wdf = format!("{wdf}\n{}", resolve_references(&kmdf, &ddk_items, &wdf)?);
    let types = pretty(&format!("{types}\n{wdf}"), "types.rs")?;

    let constants = run(
        wdk_default(&include_dirs)
            .with_codegen_config(bindgen::CodegenConfig::VARS)
            .header_contents("constants-input.h", &base),
        "constants.rs",
    )?;
    let constants = pretty(
        &format!(
            "{constants}\n{}",
            wdf_constants(&kmdf, &defined_items(&constants)?)
        ),
        "constants.rs",
    )?;

    let links = KMDF_LIBRARIES.iter().fold(String::new(), |mut out, name| {
        let _ = writeln!(
            out,
            "#[cfg(not(any(test, feature = \"suppress-wdk-linking\")))]\n#[link(name = \"{name}\", kind = \"static\", modifiers = \"-bundle\")]\nunsafe extern \"C\" {{}}"
        );
        out
    });
    let ntddk = run(
        wdk_default(&include_dirs)
            .with_codegen_config(
                (bindgen::CodegenConfig::TYPES | bindgen::CodegenConfig::VARS).complement(),
            )
            .header_contents("ntddk-input.h", &base)
            .raw_line(links),
        "ntddk.rs",
    )?;
    // Every KMDF API is a FORCEINLINE wrapper over `WdfFunctions`, and bindgen does not emit
    // inline functions: wdf.rs holds no item. (The fact table lists no non-inline function.)
    let wdf =
        "// bindgen emits no item for the KMDF 1.33 headers outside types.rs and constants.rs.\n";

    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (file, text) in [
        ("types.rs", types.as_str()),
        ("constants.rs", constants.as_str()),
        ("ntddk.rs", ntddk.as_str()),
        ("wdf.rs", wdf),
    ] {
        fs::write(out.join(file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}
