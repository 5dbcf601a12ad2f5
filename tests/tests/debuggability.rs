//! What a debugger and the pool tools see of the driver on a test machine: a device context
//! `!wdfkd.wdfdevice` lists under the type's own name (so `dt`/`dx` can dump it), the framework's
//! allocations tagged `RHCA` (`DriverPoolTag`), and the Windows global allocator's blocks in
//! pool under the same tag, freed with it, aligned as pool aligns.

mod common;

use core::alloc::{GlobalAlloc, Layout};

use rhca::kmdf::DeviceCtx;
use rhca::sys::pool::{POOL_TAG, PoolAllocator};

#[test]
fn the_device_context_is_named_for_the_debugger_and_holds_the_value_in_place() {
    let l = common::lab("verifier");
    let contexts = l.host().device_contexts(&l.node).unwrap();
    assert_eq!(contexts.len(), 1, "{contexts:?}");
    let c = &contexts[0];
    // The PDB names a Rust type by its path: the name must be the one `dt rhca!<name>` finds.
    assert_eq!(c.name, core::any::type_name::<DeviceCtx>());
    assert_eq!(c.name, "rhca::kmdf::DeviceCtx");
    // The value is in place, first (so the dump at the context's address is the value), with
    // only the liveness flag and padding after it: not a pointer to a box elsewhere.
    let value = size_of::<DeviceCtx>();
    assert!(
        c.size >= value && c.size <= value + align_of::<DeviceCtx>().max(1) + 1,
        "context of {} bytes for a {value}-byte value",
        c.size
    );
    assert_eq!(c.address % 16, 0, "MEMORY_ALLOCATION_ALIGNMENT");
    l.finish();
}

#[test]
fn the_framework_tags_the_drivers_allocations_rhca() {
    let l = common::lab("verifier");
    assert_eq!(l.host().driver_pool_tag().unwrap(), Some(*b"RHCA"));
    assert_eq!(POOL_TAG.to_le_bytes(), *b"RHCA");
    l.finish();
}

#[test]
fn the_windows_allocator_allocates_tagged_pool_and_frees_it_with_the_tag() {
    let l = common::lab("verifier");
    let usage = |m: &wdk_sim::Machine| {
        m.pool_usage()
            .into_iter()
            .find(|(t, _)| t == "RHCA")
            .map(|(_, u)| (u.allocations, u.bytes))
    };
    let before = usage(&l.m).unwrap_or_default();
    let pool = PoolAllocator;
    let (p, q, r) =
        l.m.run(move || {
            // SAFETY: non-zero layouts at PASSIVE_LEVEL on the machine's thread.
            let p = unsafe { pool.alloc(Layout::from_size_align(100, 8).unwrap()) };
            // SAFETY: as above.
            let q = unsafe { pool.alloc_zeroed(Layout::from_size_align(64, 16).unwrap()) };
            // SAFETY: as above.
            let r = unsafe { pool.alloc(Layout::from_size_align(64, 32).unwrap()) };
            (p as usize, q as usize, r as usize)
        })
        .unwrap();
    assert_ne!(p, 0);
    assert_eq!(q % 16, 0);
    assert_eq!(
        r, 0,
        "pool cannot align to 32 bytes: no memory rather than misaligned memory"
    );
    assert_eq!(usage(&l.m), Some((before.0 + 2, before.1 + 164)));
    l.m.run(move || {
        // SAFETY: `q` is the live 64-byte block allocated zeroed above.
        let zeroed = unsafe { core::slice::from_raw_parts(q as *const u8, 64) };
        assert!(zeroed.iter().all(|b| *b == 0));
        // SAFETY: the blocks allocated above with these layouts, each freed once.
        unsafe {
            pool.dealloc(p as *mut u8, Layout::from_size_align(100, 8).unwrap());
        }
        // SAFETY: as above.
        unsafe { pool.dealloc(q as *mut u8, Layout::from_size_align(64, 16).unwrap()) };
    })
    .unwrap();
    assert_eq!(usage(&l.m).unwrap_or_default(), before);
    l.finish();
}
