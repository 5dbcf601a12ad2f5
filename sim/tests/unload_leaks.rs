//! Driver Verifier at driver unload: a driver that unloads still holding pool allocations
//! (MDLs from `IoAllocateMdl` included) stops the machine with 0xC4, parameter 1 = 0x62 and
//! parameter 4 the number of allocations not freed (Driver Verifier's pool tracking). Without
//! Driver Verifier Windows checks nothing at unload: the leak is only in the machine's report.

mod common;

use std::sync::Mutex;

use common::machine;
use wdk_sim::bugcheck::{DRIVER_VERIFIER_DETECTED_VIOLATION, POOL_LEAKED_AT_UNLOAD};
use wdk_sim::wdf::host::{Host, HostError, Mode};
use wdk_sim::*;

/// What the driver allocates in `DriverEntry`: pool blocks, MDLs, and whether its unload
/// callback frees them.
#[derive(Clone, Copy)]
struct Plan {
    pool: usize,
    mdls: usize,
    free_at_unload: bool,
}

static PLAN: Mutex<Plan> = Mutex::new(Plan {
    pool: 0,
    mdls: 0,
    free_at_unload: false,
});
static HELD: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
static SERIAL: Mutex<()> = Mutex::new(());

unsafe extern "system" fn entry(driver: PDRIVER_OBJECT, registry: PCUNICODE_STRING) -> NTSTATUS {
    let plan = *PLAN.lock().unwrap();
    let mut held = HELD.lock().unwrap();
    held.clear();
    for i in 0..plan.pool.max(plan.mdls) {
        // SAFETY: a pool allocation at PASSIVE_LEVEL.
        let p = unsafe {
            ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, u32::from_le_bytes(*b"Leak"))
        };
        let mdl = if i < plan.mdls {
            // SAFETY: `p` is a live 64-byte block; the MDL only records it.
            unsafe { ntddk::IoAllocateMdl(p, 64, 0, 0, core::ptr::null_mut()) as usize }
        } else {
            0
        };
        held.push((p as usize, mdl));
    }
    if plan.pool < plan.mdls {
        // Keep only the MDLs: free the blocks beyond the pool count.
        for (p, _) in held.iter_mut().skip(plan.pool) {
            // SAFETY: a block allocated above, freed once.
            unsafe { ntddk::ExFreePool(*p as PVOID) };
            *p = 0;
        }
    }
    common::create_test_driver(driver, registry, None, Some(unload))
}

extern "C" fn unload(_driver: WDFDRIVER) {
    if !PLAN.lock().unwrap().free_at_unload {
        return;
    }
    for (p, mdl) in HELD.lock().unwrap().drain(..) {
        if mdl != 0 {
            // SAFETY: the MDL allocated in DriverEntry, freed once.
            unsafe { ntddk::IoFreeMdl(mdl as PMDL) };
        }
        if p != 0 {
            // SAFETY: the block allocated in DriverEntry, freed once.
            unsafe { ntddk::ExFreePool(p as PVOID) };
        }
    }
}

fn unload_with(profile: Profile, plan: Plan) -> (Result<(), HostError>, Vec<String>) {
    let (m, _att, _bus) = machine(profile, 64);
    *PLAN.lock().unwrap() = plan;
    let host = Host::load_with(&m, entry, Mode::Threaded).expect("DriverEntry");
    let r = host.unload();
    let leaks = if r.is_ok() {
        m.leaks().expect("report")
    } else {
        Vec::new()
    };
    (r, leaks)
}

fn stop(r: Result<(), HostError>) -> BugCheck {
    match r {
        Err(HostError::BugCheck(b)) => b,
        other => panic!("expected a bug check at unload, got {other:?}"),
    }
}

#[test]
fn pool_still_allocated_at_unload_is_bug_check_c4_62() {
    let _one = SERIAL.lock().unwrap();
    let b = stop(
        unload_with(
            Profile::VERIFIER,
            Plan {
                pool: 3,
                mdls: 0,
                free_at_unload: false,
            },
        )
        .0,
    );
    assert_eq!(
        (b.code, b.params[0], b.params[3]),
        (DRIVER_VERIFIER_DETECTED_VIOLATION, POOL_LEAKED_AT_UNLOAD, 3),
        "{b}"
    );
}

#[test]
fn mdls_count_as_pool_allocations() {
    let _one = SERIAL.lock().unwrap();
    let b = stop(
        unload_with(
            Profile::VERIFIER,
            Plan {
                pool: 0,
                mdls: 2,
                free_at_unload: false,
            },
        )
        .0,
    );
    assert_eq!(
        (b.params[0], b.params[3]),
        (POOL_LEAKED_AT_UNLOAD, 2),
        "{b}"
    );
}

#[test]
fn a_driver_that_frees_everything_unloads_cleanly() {
    let _one = SERIAL.lock().unwrap();
    let (r, leaks) = unload_with(
        Profile::VERIFIER,
        Plan {
            pool: 3,
            mdls: 2,
            free_at_unload: true,
        },
    );
    r.expect("no leak, no stop");
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn without_driver_verifier_a_leak_is_only_reported() {
    let _one = SERIAL.lock().unwrap();
    let (r, leaks) = unload_with(
        Profile::COHERENT,
        Plan {
            pool: 3,
            mdls: 0,
            free_at_unload: false,
        },
    );
    r.expect("Windows without Driver Verifier checks nothing at unload");
    assert!(
        leaks
            .iter()
            .any(|l| l.contains("'Leak'") && l.contains("3 allocations")),
        "{leaks:?}"
    );
}
