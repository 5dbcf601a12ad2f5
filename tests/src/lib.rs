//! `rhca-tests`: end-to-end tests of RHCA.
//!
//! The tests in `tests/` run the real driver on the simulated machine (as the driver and
//! wdk-sim issues land) and cross-check the documents that define RHCA against the code: the
//! register map in `docs/device.md` against `rhca_hw::regs`. This library holds the helpers
//! they share.

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
#[must_use]
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// Parses a hexadecimal (`0x…`) or decimal number as written in the datasheet tables,
/// ignoring `_` separators.
#[must_use]
pub fn parse_number(s: &str) -> Option<u64> {
    let t = s.trim().trim_matches('`').replace('_', "");
    t.strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .map_or_else(|| t.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_written() {
        assert_eq!(parse_number("0x1C"), Some(0x1C));
        assert_eq!(parse_number("`0xFFFF_FFFF`"), Some(0xFFFF_FFFF));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("x"), None);
    }
}
