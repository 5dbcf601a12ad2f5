//! The routines Windows 10 and later add to the version 3 table: DMA domains, bounded and
//! vector common buffers, `FlushDmaBuffer`, `CreateCommonBufferFromMdl`.

use super::{Level, check_adapter, common_buffer, prologue};
use crate::bugcheck::BugCheck;
use crate::machine::with_state;
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::{
    BOOLEAN, HANDLE, MEMORY_CACHING_TYPE, NODE_REQUIREMENT, PDMA_ADAPTER,
    PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION, PDMA_COMMON_BUFFER_VECTOR, PHYSICAL_ADDRESS, PMDL,
    PPHYSICAL_ADDRESS, PVOID, ULONG, ULONGLONG,
};
use crate::{NTSTATUS, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS};

// ---- Windows 10 and later ----

pub(super) unsafe extern "C" fn allocate_domain_common_buffer(
    a: PDMA_ADAPTER,
    _h: HANDLE,
    _m: PPHYSICAL_ADDRESS,
    _l: ULONG,
    _f: ULONG,
    _c: *mut MEMORY_CACHING_TYPE,
    _n: NODE_REQUIREMENT,
    _la: PPHYSICAL_ADDRESS,
    _va: *mut PVOID,
) -> NTSTATUS {
    // DMA domains are not modelled: the call fails as on a system without domain support.
    with_state(|st, _| {
        prologue(
            st,
            a,
            Level::Max(PASSIVE_LEVEL),
            "AllocateDomainCommonBuffer",
        )
        .map(|_| ())
    });
    STATUS_NOT_SUPPORTED
}

pub(super) unsafe extern "C" fn flush_dma_buffer(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    read_operation: BOOLEAN,
) -> NTSTATUS {
    let found = with_state(|st, _| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "FlushDmaBuffer")?;
        crate::hal::flush_dma_buffer(
            &mut st.hal,
            &mut st.mem,
            key,
            mdl as usize,
            read_operation != 0,
        )
    });
    if found {
        STATUS_SUCCESS
    } else {
        STATUS_INVALID_PARAMETER
    }
}

pub(super) unsafe extern "C" fn join_dma_domain(a: PDMA_ADAPTER, _h: HANDLE) -> NTSTATUS {
    with_state(|st, _| prologue(st, a, Level::Max(PASSIVE_LEVEL), "JoinDmaDomain").map(|_| ()));
    STATUS_NOT_SUPPORTED
}

pub(super) unsafe extern "C" fn leave_dma_domain(a: PDMA_ADAPTER) -> NTSTATUS {
    with_state(|st, _| prologue(st, a, Level::Max(PASSIVE_LEVEL), "LeaveDmaDomain").map(|_| ()));
    STATUS_NOT_SUPPORTED
}

pub(super) unsafe extern "C" fn get_dma_domain(a: PDMA_ADAPTER) -> HANDLE {
    with_state(|st, _| prologue(st, a, Level::Max(PASSIVE_LEVEL), "GetDmaDomain").map(|_| ()));
    core::ptr::null_mut()
}

pub(super) unsafe extern "C" fn allocate_common_buffer_with_bounds(
    a: PDMA_ADAPTER,
    _min: PPHYSICAL_ADDRESS,
    max: PPHYSICAL_ADDRESS,
    length: ULONG,
    _flags: ULONG,
    _c: *mut MEMORY_CACHING_TYPE,
    _n: NODE_REQUIREMENT,
    logical: PPHYSICAL_ADDRESS,
) -> PVOID {
    let max = if max.is_null() {
        None
    } else {
        // SAFETY: a non-null MaximumAddress points to the caller's PHYSICAL_ADDRESS.
        let m = unsafe { max.read() };
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        Some(unsafe { m.QuadPart }.cast_unsigned())
    };
    common_buffer(a, max, length, logical, 1, "AllocateCommonBufferWithBounds")
}

pub(super) unsafe extern "C" fn allocate_common_buffer_vector(
    a: PDMA_ADAPTER,
    _l: PHYSICAL_ADDRESS,
    _h: PHYSICAL_ADDRESS,
    _c: MEMORY_CACHING_TYPE,
    _i: ULONG,
    _f: ULONG,
    _n: ULONG,
    _s: ULONGLONG,
    _v: *mut PDMA_COMMON_BUFFER_VECTOR,
) -> NTSTATUS {
    with_state(|st, _| {
        prologue(
            st,
            a,
            Level::Max(PASSIVE_LEVEL),
            "AllocateCommonBufferVector",
        )
        .map(|_| ())
    });
    STATUS_NOT_SUPPORTED
}

pub(super) fn no_vector(a: PDMA_ADAPTER, index: ULONG) -> ! {
    with_state(|st, _| {
        check_adapter(st, a)?;
        Err::<(), _>(BugCheck::new(
            0x1DC,
            [0x03, 0, u64::from(index), 0],
            "common buffer vector index out of bounds: this machine never allocates vectors",
            "windows-dma.md §5.2",
        ))
    });
    unreachable!("with_state halts on Err")
}

pub(super) unsafe extern "C" fn get_common_buffer_from_vector_by_index(
    a: PDMA_ADAPTER,
    _v: PDMA_COMMON_BUFFER_VECTOR,
    index: ULONG,
    _va: *mut PVOID,
    _la: PPHYSICAL_ADDRESS,
) {
    no_vector(a, index)
}

pub(super) unsafe extern "C" fn free_common_buffer_from_vector(
    a: PDMA_ADAPTER,
    _v: PDMA_COMMON_BUFFER_VECTOR,
    index: ULONG,
) {
    no_vector(a, index)
}

pub(super) unsafe extern "C" fn free_common_buffer_vector(
    a: PDMA_ADAPTER,
    _v: PDMA_COMMON_BUFFER_VECTOR,
) {
    no_vector(a, 0)
}

pub(super) unsafe extern "C" fn create_common_buffer_from_mdl(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    _configs: PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
    config_count: ULONG,
    logical: PPHYSICAL_ADDRESS,
) -> NTSTATUS {
    let made = with_state(|st, cfg| {
        let key = prologue(
            st,
            a,
            Level::Max(PASSIVE_LEVEL),
            "CreateCommonBufferFromMdl",
        )?;
        if mdl.is_null() || logical.is_null() {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        }
        if config_count != 0 {
            // Extended configurations (bounds, subsections, access rights) are not modelled.
            return Ok(Err(STATUS_NOT_SUPPORTED));
        }
        crate::hal::common_from_mdl(&mut st.hal, &st.mem, cfg, key, mdl as usize)
    });
    match made {
        Ok((_, la)) => {
            // SAFETY: `logical` is non-null (checked) and points to the caller's PHYSICAL_ADDRESS.
            unsafe {
                logical.write(PHYSICAL_ADDRESS {
                    QuadPart: la.cast_signed(),
                });
            }
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}
