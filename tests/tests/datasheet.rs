//! `docs/device.md` and `rhca-hw` must never disagree: these tests parse the datasheet's tables
//! and compare every register, block offset, doorbell, control code and structure size with the
//! constants the driver and the device model are built from.

use std::collections::BTreeMap;

use rhca_hw::ioctl::{self, Ioctl};
use rhca_hw::regs::{self, REGISTERS, WqId, cq, db, se, wq};
use rhca_hw::{mad, pci};
use rhca_tests::{parse_number, workspace_root};

fn datasheet() -> String {
    let path = workspace_root().join("docs/device.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The rows (cells, trimmed) of every Markdown table in `section` (from its heading to the
/// next heading of the same or a higher level).
fn table_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("datasheet has no section {heading:?}"));
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut rows = Vec::new();
    for line in doc[start + heading.len()..].lines() {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes > 0 && hashes <= level {
            break;
        }
        let l = line.trim();
        if l.starts_with('|') && !l.starts_with("|---") {
            rows.push(
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect(),
            );
        }
    }
    rows
}

#[test]
fn register_map_matches_rhca_hw() {
    let doc = datasheet();
    let rows: Vec<_> = table_rows(&doc, "## 2. Register map")
        .into_iter()
        .filter(|r| r[0].starts_with("0x"))
        .collect();
    assert_eq!(
        rows.len(),
        REGISTERS.len(),
        "one datasheet row per register"
    );
    for (row, reg) in rows.iter().zip(REGISTERS) {
        assert_eq!(row[1], reg.name, "register order/name at {}", row[0]);
        assert_eq!(
            parse_number(&row[0]),
            Some(u64::from(reg.offset)),
            "{} offset",
            reg.name
        );
        assert_eq!(row[2], "32", "{} width", reg.name);
        assert_eq!(row[3], reg.access.as_str(), "{} access", reg.name);
        assert_eq!(
            parse_number(&row[4]),
            Some(u64::from(reg.reset)),
            "{} reset",
            reg.name
        );
    }
}

#[test]
fn block_registers_match_rhca_hw() {
    let doc = datasheet();
    let mut expected: BTreeMap<&str, u32> = BTreeMap::new();
    for (name, off) in [
        ("WQn.BASE_LO", wq::BASE_LO),
        ("WQn.BASE_HI", wq::BASE_HI),
        ("WQn.CFG", wq::CFG),
        ("WQn.STATUS", wq::STATUS),
        ("CQn.BASE_LO", cq::BASE_LO),
        ("CQn.BASE_HI", cq::BASE_HI),
        ("CQn.CFG", cq::CFG),
        ("CQn.STATUS", cq::STATUS),
        ("CQn.MOD", cq::MOD),
        ("SEn.DESC_LO", se::DESC_LO),
        ("SEn.DESC_HI", se::DESC_HI),
        ("SEn.DESC_COUNT", se::DESC_COUNT),
        ("SEn.SEG_SIZE", se::SEG_SIZE),
        ("SEn.SEG_COUNT", se::SEG_COUNT),
        ("SEn.REC_LO", se::REC_LO),
        ("SEn.REC_HI", se::REC_HI),
        ("SEn.CTRL", se::CTRL),
        ("SEn.STATUS", se::STATUS),
        ("SEn.SEQ", se::SEQ),
        ("SEn.MOD", se::MOD),
    ] {
        expected.insert(name, off);
    }
    let mut seen = 0;
    for heading in ["### 5.2 Creating a queue", "### 8.1 Registers"] {
        for row in table_rows(&doc, heading)
            .iter()
            .filter(|r| r[0].starts_with("+0x"))
        {
            let off = parse_number(row[0].trim_start_matches('+')).expect("offset");
            let want = expected
                .get(row[1].as_str())
                .unwrap_or_else(|| panic!("unknown block register {}", row[1]));
            assert_eq!(off, u64::from(*want), "{}", row[1]);
            seen += 1;
        }
    }
    assert_eq!(seen, expected.len(), "every block register is documented");
    // The block bases of the prose.
    assert!(
        doc.contains("`0x100 + n × 0x20`") && wq::BLOCK_BASE == 0x100 && wq::BLOCK_SIZE == 0x20
    );
    assert!(
        doc.contains("`0x200 + n × 0x20`") && cq::BLOCK_BASE == 0x200 && cq::BLOCK_SIZE == 0x20
    );
    assert!(
        doc.contains("`0x400 + n × 0x40`") && se::BLOCK_BASE == 0x400 && se::BLOCK_SIZE == 0x40
    );
}

#[test]
fn doorbells_match_rhca_hw() {
    let doc = datasheet();
    let rows = table_rows(&doc, "### 5.4 Doorbells");
    let formula = |name: &str| -> (u32, u32) {
        let row = rows
            .iter()
            .find(|r| r[1] == name)
            .unwrap_or_else(|| panic!("doorbell {name} missing"));
        let (base, stride) = row[0].split_once(" + ").expect("`base + kn`");
        let base = u32::try_from(parse_number(base).unwrap()).unwrap();
        let stride = stride.trim_end_matches('n').parse().expect("stride");
        (base, stride)
    };
    for n in 0..4 {
        let (b, s) = formula("WQn_DB");
        assert_eq!(db::wq(WqId::from_index(n).unwrap()), b + s * n);
        let (b, s) = formula("CQn_CI");
        assert_eq!(db::cq_ci(n).unwrap(), b + s * n);
        let (b, s) = formula("CQn_ARM");
        assert_eq!(db::cq_arm(n).unwrap(), b + s * n);
    }
    for n in 0..8 {
        let (b, s) = formula("SEn_CREDIT");
        assert_eq!(db::se_credit(n).unwrap(), b + s * n);
    }
}

#[test]
fn control_codes_and_sizes_match_rhca_hw() {
    let doc = datasheet();
    let rows: Vec<_> = table_rows(&doc, "## 11. The user-mode ABI")
        .into_iter()
        .filter(|r| r[1].starts_with("0x"))
        .collect();
    assert_eq!(rows.len(), Ioctl::ALL.len());
    let size_in = |cell: &str| -> usize {
        cell.split_once('(').map_or(0, |(_, rest)| {
            rest.split(')').next().unwrap().parse().unwrap()
        })
    };
    for (row, ctl) in rows.iter().zip(Ioctl::ALL) {
        assert_eq!(
            parse_number(&row[1]),
            Some(u64::from(ctl.code())),
            "{} code",
            row[0]
        );
        let method = match ioctl::method_of(ctl.code()) {
            ioctl::METHOD_BUFFERED => "BUFFERED",
            ioctl::METHOD_IN_DIRECT => "IN_DIRECT",
            ioctl::METHOD_OUT_DIRECT => "OUT_DIRECT",
            _ => "NEITHER",
        };
        assert_eq!(row[2], method, "{} method", row[0]);
        assert_eq!(size_in(&row[4]), ctl.input_len(), "{} input size", row[0]);
        if !matches!(ctl, Ioctl::StreamStartCapture | Ioctl::StreamStartPlayback) {
            assert_eq!(
                size_in(&row[5]),
                ctl.min_output_len(),
                "{} output size",
                row[0]
            );
        }
    }
}

#[test]
fn identity_and_sizes_match_rhca_hw() {
    let doc = datasheet();
    let ident = table_rows(&doc, "## 1. PCI identity");
    let cell = |item: &str| {
        ident
            .iter()
            .find(|r| r[0] == item)
            .map(|r| r[1].clone())
            .unwrap_or_default()
    };
    assert!(cell("Vendor ID").starts_with(&format!("`0x{:04X}`", pci::VENDOR_ID)));
    assert!(cell("Device ID").contains(&format!("0x{:04X}", pci::DEVICE_ID)));
    assert!(cell("Class code").contains(&format!("0x{:06X}", pci::CLASS_CODE)));
    assert!(cell("Windows hardware ID").contains(pci::HARDWARE_ID));
    assert!(cell("BAR0").contains(&format!("0x{:X}", pci::BAR0_SIZE)));
    assert!(cell("MSI-X").contains(&format!("`0x{:04X}`", pci::MSIX_TABLE_OFFSET)));
    assert!(cell("MSI-X").contains(&format!("`0x{:04X}`", pci::MSIX_PBA_OFFSET)));
    assert!(doc.contains("**256-byte MAD**") && mad::MAD_SIZE == 256);
    assert!(doc.contains("**296 bytes**") && mad::RECV_BUF_SIZE == 296);
    assert!(doc.contains("### 7.1 CQE (32 bytes)") && rhca_hw::cqe::CQE_SIZE == 32);
    assert!(doc.contains("### 6.1 Control segment (16 bytes)") && rhca_hw::wqe::CTRL_SIZE == 16);
    assert!(doc.contains("### 6.2 Data segment (16 bytes)") && rhca_hw::wqe::SEG_SIZE == 16);
    assert_eq!(rhca_hw::stream::DESC_SIZE, 16);
    assert_eq!(rhca_hw::stream::RECORD_SIZE, 16);
    assert!(doc.contains("within **10 ms**"));
    assert_eq!(regs::ID_VALUE.to_le_bytes(), *b"RHCA");
}
