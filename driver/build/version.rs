//! `rhca.sys`'s version resource: the script `driver/rhca.rc.in` with its `@RHCA_VER_*@` fields
//! filled in from Cargo.toml's version.
//!
//! Shared by the build script (which writes the script and compiles it for a Windows target)
//! and the tests: one function, so the two cannot drift.

/// `template` with its fields filled in for Cargo version `version` (`MAJOR.MINOR.PATCH`,
/// optionally with a `-pre` or `+build` suffix), in a `debug` build or not.
///
/// # Errors
/// A version that is not three decimal numbers below 65,536 each (a `VERSIONINFO` field is 16
/// bits) or not plain ASCII, or a field of the template left unfilled.
pub fn render(template: &str, version: &str, debug: bool) -> Result<String, String> {
    if !version.is_ascii() || version.contains(['"', '\\', '@']) {
        return Err(format!("version {version:?}: not plain ASCII"));
    }
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u16> = core
        .split('.')
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("version {version:?}: {p:?} is not a 16-bit number"))
        })
        .collect::<Result<_, _>>()?;
    let [major, minor, patch] = parts[..] else {
        return Err(format!("version {version:?}: not MAJOR.MINOR.PATCH"));
    };
    // VS_FF_DEBUG for a debug build; VS_FF_PRERELEASE for a 0.x or pre-release version.
    let flags = u32::from(debug)
        | if major == 0 || version.contains('-') {
            0x2
        } else {
            0
        };
    let text = template
        .replace("@RHCA_VER_MAJOR@", &major.to_string())
        .replace("@RHCA_VER_MINOR@", &minor.to_string())
        .replace("@RHCA_VER_PATCH@", &patch.to_string())
        .replace("@RHCA_VER_BUILD@", "0")
        .replace("@RHCA_VER_FLAGS@", &format!("{flags:#x}L"))
        .replace("@RHCA_VER_STRING@", version);
    match text.find("@RHCA_") {
        Some(at) => Err(format!(
            "rhca.rc.in: unknown field {:?}",
            text[at..].split_whitespace().next().unwrap_or_default()
        )),
        None => Ok(text),
    }
}
