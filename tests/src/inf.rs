//! A small, strict INF reader and checker for `driver/rhca.inx`: it stamps the template as
//! `stampinf` would and checks the rules `infverif` enforces for the sections RHCA uses.
//!
//! No INF-parsing crate on crates.io covers stamping and the cross-references checked here, so
//! this is our own; it is strict on purpose — it accepts the subset of the INF syntax our INF is
//! written in (sections, `key = value` and bare lines, `;` comments outside quotes, `%token%`
//! string keys) and reports anything else as an error rather than guessing.
//!
//! Sources: `../shared/reference/windows-drivers-rs.md` §1.4 (stampinf options) and §1.6 (the
//! KMDF `.inx` sections), `windows-dma.md` §6 (DMA remapping directives); the INF rules are those
//! of Microsoft's INF reference (decorated models sections, DIRID 13, `PnpLockdown`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One line of a section: its key (if `key = value`) and its comma-separated values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file.
    pub number: usize,
    /// The key, for `key = value` lines.
    pub key: Option<String>,
    /// The values, split at commas outside quotes, trimmed, quotes kept.
    pub values: Vec<String>,
}

/// A parsed INF: sections by name (case-insensitive keys, as Windows treats them).
#[derive(Debug, Clone, Default)]
pub struct Inf {
    /// Sections in file order, by lower-case name.
    pub sections: BTreeMap<String, Vec<Line>>,
}

fn strip_comment(s: &str) -> &str {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &s[..i],
            _ => {}
        }
    }
    s
}

fn split_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                out.push(cur.trim().to_owned());
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

/// Parses INF text.
///
/// # Errors
/// A line outside any section, a malformed section header, unbalanced quotes, or a duplicate
/// section — each with its line number.
pub fn parse(text: &str) -> Result<Inf, String> {
    let mut inf = Inf::default();
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        if raw.matches('"').count() % 2 != 0 {
            return Err(format!("line {number}: unbalanced quotes"));
        }
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(format!("line {number}: malformed section header {line:?}"));
            };
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || inf.sections.contains_key(&name) {
                return Err(format!(
                    "line {number}: empty or duplicate section [{name}]"
                ));
            }
            inf.sections.insert(name.clone(), Vec::new());
            current = Some(name);
            continue;
        }
        let Some(section) = &current else {
            return Err(format!("line {number}: a directive outside any section"));
        };
        let (key, values) = match line.find('=') {
            // A `=` inside a quoted value (an SDDL string) is not a key separator.
            Some(eq) if !line[..eq].contains('"') => (
                Some(line[..eq].trim().to_owned()),
                split_values(line[eq + 1..].trim()),
            ),
            _ => (None, split_values(line)),
        };
        if let Some(v) = inf.sections.get_mut(section) {
            v.push(Line {
                number,
                key,
                values,
            });
        }
    }
    Ok(inf)
}

/// What `stampinf` is told.
#[derive(Debug, Clone)]
pub struct Stamp<'a> {
    /// `-a`: the architecture (`amd64`, `arm64`).
    pub arch: &'a str,
    /// `-k`: the KMDF version, `major.minor`.
    pub kmdf: &'a str,
    /// `-d`/`-v`: `mm/dd/yyyy,w.x.y.z`.
    pub driver_ver: &'a str,
    /// `-c`: the catalog file.
    pub catalog: &'a str,
}

/// Stamps the template as `stampinf -a <arch> -k <kmdf> -d * -v * -c <catalog>` does:
/// `$ARCH$` and `$KMDFVERSION$` replaced, `DriverVer` and `CatalogFile` written.
#[must_use]
pub fn stamp(text: &str, s: &Stamp<'_>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = strip_comment(line).trim();
        let key = t
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if t.contains('=') && key == "driverver" {
            let _ = writeln!(out, "DriverVer   = {}", s.driver_ver);
        } else if t.contains('=') && key == "catalogfile" {
            let _ = writeln!(out, "CatalogFile = {}", s.catalog);
        } else {
            let _ = writeln!(
                out,
                "{}",
                line.replace("$ARCH$", s.arch)
                    .replace("$KMDFVERSION$", s.kmdf)
            );
        }
    }
    out
}

/// The KMDF version `major.minor` of a driver crate's `[package.metadata.wdk.driver-model]`.
///
/// # Errors
/// When the table or its KMDF keys are missing.
pub fn kmdf_version(cargo_toml: &str) -> Result<String, String> {
    let mut in_table = false;
    let (mut major, mut minor) = (None, None);
    for line in cargo_toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_table = t == "[package.metadata.wdk.driver-model]";
            continue;
        }
        if !in_table {
            continue;
        }
        let mut kv = t.splitn(2, '=');
        let (k, v) = (
            kv.next().unwrap_or("").trim(),
            kv.next().unwrap_or("").trim(),
        );
        match k {
            "kmdf-version-major" => major = Some(v.to_owned()),
            "target-kmdf-version-minor" => minor = Some(v.to_owned()),
            _ => {}
        }
    }
    match (major, minor) {
        (Some(a), Some(b)) => Ok(format!("{a}.{b}")),
        _ => {
            Err("driver/Cargo.toml has no [package.metadata.wdk.driver-model] KMDF version".into())
        }
    }
}

/// The oldest Windows build a KMDF version runs on, and its name (Microsoft's KMDF version
/// history: "Drivers using this KMDF version run on"); `None` for a version not listed here.
#[must_use]
pub fn kmdf_os_floor(kmdf: &str) -> Option<(u32, &'static str)> {
    Some(match kmdf {
        // Windows 11 21H2 is build 22000; Windows Server 2022 (20348) is the older of the two.
        "1.33" => (20348, "Windows Server 2022 / Windows 11 21H2"),
        "1.31" => (19041, "Windows 10 2004"),
        "1.29" => (18362, "Windows 10 1903"),
        "1.27" => (17763, "Windows 10 1809"),
        "1.25" => (17134, "Windows 10 1803"),
        "1.23" => (16299, "Windows 10 1709"),
        "1.21" => (15063, "Windows 10 1703"),
        "1.19" => (14393, "Windows 10 1607"),
        "1.17" => (10586, "Windows 10 1511"),
        "1.15" => (10240, "Windows 10 1507"),
        _ => return None,
    })
}

impl Inf {
    fn section(&self, name: &str) -> Option<&[Line]> {
        self.sections
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    fn value(&self, section: &str, key: &str) -> Option<&Line> {
        self.section(section)?.iter().find(|l| {
            l.key
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(key))
        })
    }

    /// Every value of every `key` line of `section` (`AddReg = a, b` gives `a`, `b`).
    fn list(&self, section: &str, key: &str) -> Vec<String> {
        self.section(section)
            .unwrap_or_default()
            .iter()
            .filter(|l| {
                l.key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
            })
            .flat_map(|l| l.values.iter().cloned())
            .collect()
    }
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// Checks a stamped INF against the rules RHCA's INF must meet; returns every violation.
///
/// `kmdf` is the crate's KMDF version, `arch` the stamped architecture.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one rule after the other, in INF order"
)]
pub fn check(inf: &Inf, text: &str, kmdf: &str, arch: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let mut need = |ok: bool, msg: String| {
        if !ok {
            errs.push(msg);
        }
    };
    // [Version]
    need(inf.section("Version").is_some(), "missing [Version]".into());
    let ver = |k: &str| inf.value("Version", k).map(|l| l.values.join(","));
    need(
        ver("Signature").is_some_and(|v| unquote(&v) == "$WINDOWS NT$"),
        "[Version] Signature must be \"$WINDOWS NT$\"".into(),
    );
    need(
        ver("Class").is_some_and(|v| !v.is_empty()),
        "[Version] has no Class".into(),
    );
    need(
        ver("ClassGuid").is_some_and(|v| {
            let g = v.trim();
            g.len() == 38 && g.starts_with('{') && g.ends_with('}')
        }),
        "[Version] ClassGuid must be a {GUID}".into(),
    );
    need(
        ver("Provider").is_some(),
        "[Version] has no Provider".into(),
    );
    need(
        ver("CatalogFile").is_some_and(|v| v.trim().to_ascii_lowercase().ends_with(".cat")),
        "[Version] CatalogFile must name a .cat file".into(),
    );
    need(
        ver("DriverVer").is_some_and(|v| {
            let mut p = v.split(',');
            let date = p.next().unwrap_or("").trim();
            let version = p.next().unwrap_or("").trim();
            date.split('/').count() == 3 && version.split('.').count() == 4
        }),
        "[Version] DriverVer must be stamped (mm/dd/yyyy,w.x.y.z)".into(),
    );
    need(
        ver("PnpLockdown").is_some_and(|v| v.trim() == "1"),
        "[Version] PnpLockdown must be 1".into(),
    );
    // Stamping left nothing behind.
    need(
        !text.contains("$ARCH$") && !text.contains("$KMDFVERSION$"),
        "unstamped $ARCH$ or $KMDFVERSION$ left in the INF".into(),
    );
    // ASCII only: stampinf and infverif read an INF without a byte-order mark in the system's
    // ANSI code page, where a UTF-8 sequence becomes other characters.
    for (n, line) in text.lines().enumerate() {
        need(
            line.is_ascii(),
            format!(
                "line {}: non-ASCII character in the INF (save it as ASCII, or as UTF-16 \
                 with a byte-order mark)",
                n + 1
            ),
        );
    }
    // String tokens: every %token% used is defined in [Strings] (numeric DIRIDs excepted).
    let strings: Vec<String> = inf
        .section("Strings")
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l.key.clone().map(|k| k.to_ascii_lowercase()))
        .collect();
    for (name, lines) in &inf.sections {
        if name == "strings" {
            continue;
        }
        for l in lines {
            let joined = format!(
                "{} {}",
                l.key.clone().unwrap_or_default(),
                l.values.join(",")
            );
            let parts: Vec<&str> = joined.split('%').collect();
            for tok in parts.iter().skip(1).step_by(2) {
                if tok.is_empty() || tok.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                need(
                    strings.contains(&tok.to_ascii_lowercase()),
                    format!("line {}: undefined string token %{tok}%", l.number),
                );
            }
        }
    }
    // DestinationDirs: the driver store.
    need(
        inf.value("DestinationDirs", "DefaultDestDir")
            .is_some_and(|l| l.values.first().is_some_and(|v| v == "13")),
        "[DestinationDirs] DefaultDestDir must be 13 (the driver store)".into(),
    );
    // Manufacturer → models sections decorated with the OS floor of the KMDF version: an INF
    // that installs below it stages a driver that never starts (Code 10, no trace).
    let floor = kmdf_os_floor(kmdf);
    need(
        floor.is_some(),
        format!("no known OS floor for KMDF {kmdf} (tests/src/inf.rs, kmdf_os_floor)"),
    );
    let floor = floor.map_or(0, |(build, _)| build);
    let decoration = format!("nt{arch}.10.0...{floor}");
    let mut models = Vec::new();
    for l in inf.section("Manufacturer").unwrap_or_default() {
        let name = l.values.first().cloned().unwrap_or_default();
        let decorations: Vec<String> = l.values[1..]
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        for d in &decorations {
            let build = d
                .rsplit("...")
                .next()
                .and_then(|b| b.parse::<u32>().ok())
                .filter(|_| d.contains("..."));
            need(
                build.is_none_or(|b| b >= floor),
                format!(
                    "line {}: the models of {name} are decorated for build {} ({d}), below the \
                     OS floor of KMDF {kmdf} ({floor}, {}): the INF would install where the \
                     driver cannot start",
                    l.number,
                    build.unwrap_or(0),
                    kmdf_os_floor(kmdf).map_or("?", |(_, os)| os)
                ),
            );
        }
        need(
            decorations.contains(&decoration),
            format!(
                "line {}: the models of {name} must be decorated NT{arch}.10.0...{floor}",
                l.number
            ),
        );
        for d in decorations {
            let section = format!("{name}.{d}");
            need(
                inf.section(&section).is_some(),
                format!("line {}: models section [{section}] is missing", l.number),
            );
            models.push(section);
        }
    }
    need(!models.is_empty(), "[Manufacturer] names no models".into());
    // Each device install section: .NT, .NT.HW, .NT.Services, .NT.Wdf.
    let service_binary = |svc: &str| -> Option<String> {
        inf.value(svc, "ServiceBinary").map(|l| l.values.join(","))
    };
    for m in &models {
        for l in inf.section(m).unwrap_or_default() {
            let Some(install) = l.values.first().cloned() else {
                continue;
            };
            let hwid = l.values.get(1).cloned().unwrap_or_default();
            need(
                hwid.to_ascii_uppercase().starts_with("PCI\\VEN_"),
                format!("line {}: hardware id {hwid:?} is not a PCI id", l.number),
            );
            let nt = format!("{install}.NT");
            need(inf.section(&nt).is_some(), format!("[{nt}] is missing"));
            for copy in inf.list(&nt, "CopyFiles") {
                need(
                    inf.section(&copy).is_some(),
                    format!("CopyFiles section [{copy}] is missing"),
                );
                for f in inf.section(&copy).unwrap_or_default() {
                    let file = f.values.first().cloned().unwrap_or_default();
                    need(
                        inf.section("SourceDisksFiles")
                            .unwrap_or_default()
                            .iter()
                            .any(|s| {
                                s.key
                                    .as_deref()
                                    .is_some_and(|k| k.eq_ignore_ascii_case(&file))
                            }),
                        format!("line {}: {file} is not in [SourceDisksFiles]", f.number),
                    );
                }
            }
            // Registry: every AddReg section referenced exists.
            let hw = format!("{install}.NT.HW");
            let hw_regs = inf.list(&hw, "AddReg");
            for r in &hw_regs {
                need(
                    inf.section(r).is_some(),
                    format!("AddReg section [{r}] is missing"),
                );
            }
            let hw_lines: Vec<&Line> = hw_regs
                .iter()
                .filter_map(|r| inf.section(r))
                .flatten()
                .collect();
            let has = |subkey: &str, name: &str, value: &str| {
                hw_lines.iter().any(|l| {
                    l.values.len() >= 5
                        && l.values[0].eq_ignore_ascii_case("HKR")
                        && unquote(&l.values[1]).eq_ignore_ascii_case(subkey)
                        && l.values[2].eq_ignore_ascii_case(name)
                        && l.values[3].eq_ignore_ascii_case("0x00010001")
                        && l.values[4] == value
                })
            };
            need(
                has("DMA Management", "RemappingSupported", "1"),
                format!(
                    "[{hw}] must opt in to DMA remapping: HKR,\"DMA Management\",RemappingSupported,0x00010001,1"
                ),
            );
            need(
                has(
                    "Interrupt Management\\MessageSignaledInterruptProperties",
                    "MSISupported",
                    "1",
                ),
                format!(
                    "[{hw}] must request MSI-X: MessageSignaledInterruptProperties MSISupported = 1"
                ),
            );
            let sddl = hw_lines
                .iter()
                .find(|l| l.values.len() >= 5 && l.values[2].eq_ignore_ascii_case("Security"));
            need(
                sddl.is_some_and(|l| {
                    let s = unquote(&l.values[4]);
                    s.starts_with("D:P")
                        && s.contains("(A;;GA;;;SY)")
                        && s.contains("(A;;GA;;;BA)")
                        && s.matches("(A;").count() == 2
                }),
                format!("[{hw}] must set a protected DACL for SYSTEM and Administrators only"),
            );
            // Services.
            let services = format!("{install}.NT.Services");
            let adds: Vec<&Line> = inf
                .section(&services)
                .unwrap_or_default()
                .iter()
                .filter(|l| {
                    l.key
                        .as_deref()
                        .is_some_and(|k| k.eq_ignore_ascii_case("AddService"))
                })
                .collect();
            need(!adds.is_empty(), format!("[{services}] has no AddService"));
            let mut service_name = String::new();
            for a in &adds {
                service_name = a.values.first().cloned().unwrap_or_default();
                let flags = a.values.get(1).cloned().unwrap_or_default();
                need(
                    u32::from_str_radix(
                        flags.trim_start_matches("0x").trim_start_matches("0X"),
                        16,
                    )
                    .is_ok_and(|f| f & 2 != 0),
                    format!(
                        "line {}: AddService must carry SPSVCINST_ASSOCSERVICE (0x2)",
                        a.number
                    ),
                );
                let inst = a.values.get(2).cloned().unwrap_or_default();
                need(
                    inf.section(&inst).is_some(),
                    format!("service install section [{inst}] is missing"),
                );
                let v = |k: &str| inf.value(&inst, k).map(|l| l.values.join(","));
                need(
                    v("ServiceType").as_deref() == Some("1"),
                    format!("[{inst}] ServiceType must be 1 (kernel driver)"),
                );
                need(
                    v("StartType").as_deref() == Some("3"),
                    format!("[{inst}] StartType must be 3 (demand start)"),
                );
                need(
                    v("ErrorControl").is_some(),
                    format!("[{inst}] has no ErrorControl"),
                );
                need(
                    service_binary(&inst).is_some_and(|b| b.starts_with("%13%\\")),
                    format!("[{inst}] ServiceBinary must be in DIRID 13 (%13%\\...)"),
                );
                let svc_regs = inf.list(&inst, "AddReg");
                need(
                    svc_regs
                        .iter()
                        .filter_map(|r| inf.section(r))
                        .flatten()
                        .any(|l| {
                            l.values.len() >= 5
                                && l.values[1].eq_ignore_ascii_case("Parameters")
                                && l.values[2].eq_ignore_ascii_case("DmaRemappingCompatible")
                                && l.values[3].eq_ignore_ascii_case("0x00010001")
                                && l.values[4] == "1"
                        }),
                    format!(
                        "[{inst}] AddReg must set HKR,Parameters,DmaRemappingCompatible,0x00010001,1"
                    ),
                );
            }
            // KMDF.
            let wdf = format!("{install}.NT.Wdf");
            let kmdf_service = inf.value(&wdf, "KmdfService");
            need(
                kmdf_service.is_some(),
                format!("[{wdf}] KmdfService is missing"),
            );
            if let Some(k) = kmdf_service {
                need(
                    k.values
                        .first()
                        .is_some_and(|s| s.eq_ignore_ascii_case(&service_name)),
                    format!("[{wdf}] KmdfService must name the service {service_name}"),
                );
                let sect = k.values.get(1).cloned().unwrap_or_default();
                need(
                    inf.value(&sect, "KmdfLibraryVersion")
                        .is_some_and(|l| l.values.first().is_some_and(|v| v == kmdf)),
                    format!(
                        "[{sect}] KmdfLibraryVersion must be {kmdf} (the crate's wdk metadata)"
                    ),
                );
            }
        }
    }
    errs
}
