//! Every IRQL rule of the DMA routine table (windows-dma.md §2.1) has a test: the routine is
//! called at a level it does not allow and the machine stops with E6/0x13 — P2 = 1 for
//! routines that require exactly `DISPATCH_LEVEL`, P2 = 2 for a maximum exceeded — with the
//! expected and current levels in P3 and P4.

mod common;

use common::*;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`/`CSHORT`.
use wdk_sim::typed::{DISPATCH_LEVEL, HIGH_LEVEL, PASSIVE_LEVEL};

/// A routine called with placeholder arguments: the IRQL check comes before any use of them.
type Call = fn(PDMA_ADAPTER);

const fn null<T>() -> *mut T {
    std::ptr::null_mut()
}

#[expect(clippy::too_many_lines, reason = "one entry per routine of the table")]
fn table() -> Vec<(&'static str, Level, Call)> {
    use Level::{Exact, Max};
    vec![
        ("PutDmaAdapter", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            unsafe {
                ops(a).PutDmaAdapter.unwrap()(a);
            }
        }),
        ("AllocateCommonBuffer", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).AllocateCommonBuffer.unwrap()(a, 4096, null(), 0) };
        }),
        ("FreeCommonBuffer", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            unsafe {
                ops(a).FreeCommonBuffer.unwrap()(a, 4096, PHYSICAL_ADDRESS::default(), null(), 0);
            }
        }),
        ("AllocateAdapterChannel", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).AllocateAdapterChannel.unwrap()(a, null(), 1, None, null()) };
        }),
        ("FlushAdapterBuffers", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).FlushAdapterBuffers.unwrap()(a, null(), null(), null(), 0, 0) };
        }),
        ("FreeAdapterChannel", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            unsafe {
                ops(a).FreeAdapterChannel.unwrap()(a);
            }
        }),
        ("FreeMapRegisters", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            unsafe {
                ops(a).FreeMapRegisters.unwrap()(a, null(), 1);
            }
        }),
        ("MapTransfer", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).MapTransfer.unwrap()(a, null(), null(), null(), null(), 0) };
        }),
        ("GetDmaAlignment", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).GetDmaAlignment.unwrap()(a) };
        }),
        ("ReadDmaCounter", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).ReadDmaCounter.unwrap()(a) };
        }),
        ("GetScatterGatherList", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).GetScatterGatherList.unwrap()(a, null(), null(), null(), 0, None, null(), 0)
            };
        }),
        ("PutScatterGatherList", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            unsafe {
                ops(a).PutScatterGatherList.unwrap()(a, null(), 0);
            }
        }),
        ("BuildScatterGatherList", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).BuildScatterGatherList.unwrap()(
                    a,
                    null(),
                    null(),
                    null(),
                    0,
                    None,
                    null(),
                    0,
                    null(),
                    0,
                )
            };
        }),
        ("BuildMdlFromScatterGatherList", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ =
                unsafe { ops(a).BuildMdlFromScatterGatherList.unwrap()(a, null(), null(), null()) };
        }),
        ("GetDmaAdapterInfo", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).GetDmaAdapterInfo.unwrap()(a, null()) };
        }),
        ("GetDmaTransferInfo", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).GetDmaTransferInfo.unwrap()(a, null(), 0, 0, 0, null()) };
        }),
        ("InitializeDmaTransferContext", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).InitializeDmaTransferContext.unwrap()(a, null()) };
        }),
        ("AllocateCommonBufferEx", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ =
                unsafe { ops(a).AllocateCommonBufferEx.unwrap()(a, null(), 4096, null(), 0, 0) };
        }),
        ("AllocateAdapterChannelEx", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).AllocateAdapterChannelEx.unwrap()(
                    a,
                    null(),
                    null(),
                    1,
                    0,
                    None,
                    null(),
                    null(),
                )
            };
        }),
        ("ConfigureAdapterChannel", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).ConfigureAdapterChannel.unwrap()(a, 0, null()) };
        }),
        ("CancelAdapterChannel", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).CancelAdapterChannel.unwrap()(a, null(), null()) };
        }),
        ("MapTransferEx", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).MapTransferEx.unwrap()(
                    a,
                    null(),
                    null(),
                    0,
                    0,
                    null(),
                    0,
                    null(),
                    0,
                    None,
                    null(),
                )
            };
        }),
        ("GetScatterGatherListEx", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).GetScatterGatherListEx.unwrap()(
                    a,
                    null(),
                    null(),
                    null(),
                    0,
                    0,
                    0,
                    None,
                    null(),
                    0,
                    None,
                    null(),
                    null(),
                )
            };
        }),
        ("BuildScatterGatherListEx", Exact(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).BuildScatterGatherListEx.unwrap()(
                    a,
                    null(),
                    null(),
                    null(),
                    0,
                    0,
                    0,
                    None,
                    null(),
                    0,
                    null(),
                    0,
                    None,
                    null(),
                    null(),
                )
            };
        }),
        ("FlushAdapterBuffersEx", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).FlushAdapterBuffersEx.unwrap()(a, null(), null(), 0, 0, 0) };
        }),
        ("FreeAdapterObject", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            unsafe { ops(a).FreeAdapterObject.unwrap()(a, _IO_ALLOCATION_ACTION::KeepObject) };
        }),
        ("CancelMappedTransfer", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).CancelMappedTransfer.unwrap()(a, null()) };
        }),
        ("AllocateDomainCommonBuffer", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).AllocateDomainCommonBuffer.unwrap()(
                    a,
                    null(),
                    null(),
                    4096,
                    0,
                    null(),
                    0,
                    null(),
                    null(),
                )
            };
        }),
        ("FlushDmaBuffer", Max(DISPATCH_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).FlushDmaBuffer.unwrap()(a, null(), 0) };
        }),
        ("JoinDmaDomain", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).JoinDmaDomain.unwrap()(a, null()) };
        }),
        ("LeaveDmaDomain", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).LeaveDmaDomain.unwrap()(a) };
        }),
        ("GetDmaDomain", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe { ops(a).GetDmaDomain.unwrap()(a) };
        }),
        ("AllocateCommonBufferWithBounds", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).AllocateCommonBufferWithBounds.unwrap()(
                    a,
                    null(),
                    null(),
                    4096,
                    0,
                    null(),
                    0,
                    null(),
                )
            };
        }),
        ("AllocateCommonBufferVector", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ = unsafe {
                ops(a).AllocateCommonBufferVector.unwrap()(
                    a,
                    PHYSICAL_ADDRESS::default(),
                    PHYSICAL_ADDRESS::default(),
                    0,
                    0,
                    0,
                    1,
                    4096,
                    null(),
                )
            };
        }),
        ("CreateCommonBufferFromMdl", Max(PASSIVE_LEVEL), |a| {
            // SAFETY: placeholder arguments: the routine stops the machine at its IRQL check
            // before it looks at them.
            let _ =
                unsafe { ops(a).CreateCommonBufferFromMdl.unwrap()(a, null(), null(), 0, null()) };
        }),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Exact(KIRQL),
    Max(KIRQL),
}

#[test]
fn every_dma_routine_checks_its_irql() {
    for (name, level, call) in table() {
        // The wrong level: PASSIVE for routines that need DISPATCH, one above the maximum for
        // the others.
        let (wrong, p2, p3) = match level {
            Level::Exact(l) => (PASSIVE_LEVEL, 1u64, l),
            Level::Max(l) => (l + 1, 2u64, l),
        };
        let (m, att, _) = machine(Profile::VERIFIER, 64);
        let pdo = Addr(att.pdo as usize);
        let b = m
            .run(move || {
                let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
                if wrong > PASSIVE_LEVEL {
                    raise(wrong);
                }
                call(a);
            })
            .unwrap_err();
        assert!(b.is_dma(0x13), "{name}: {b}");
        assert_eq!(
            b.params[1..],
            [p2, u64::from(p3), u64::from(wrong)],
            "{name}: {b}"
        );
        assert!(
            b.rule.contains(name),
            "{name}: the message names the routine: {b}"
        );
    }
}

#[test]
fn calculate_scatter_gather_list_works_at_any_irql() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let old = raise(HIGH_LEVEL);
        let (mut size, mut regs) = (0u32, 0u32);
        let calc = ops(a).CalculateScatterGatherList.unwrap();
        // SAFETY: test code; NULL MDL asks for the worst case.
        let st = unsafe { calc(a, null(), null(), 8192, &raw mut size, &raw mut regs) };
        lower(old);
        assert_eq!((st, regs, size), (STATUS_SUCCESS, 3, 16 + 3 * 24));
        put_adapter(a);
    })
    .unwrap();
}

/// Pool above its maximum IRQL (`IrqlExAllocatePool`): under Verifier 0xC4 with P1 = 0x01
/// (paged above `APC_LEVEL`), 0x02 (non-paged above `DISPATCH_LEVEL`) or 0x12 (a free above
/// `DISPATCH_LEVEL`), the IRQL and the pool type; without Verifier 0xA with the IRQL and the
/// maximum.
#[test]
fn pool_above_its_irql_stops_as_verifier_or_the_pool_code_does() {
    const TAG: u32 = u32::from_le_bytes(*b"Test");
    let cases: [(&str, POOL_FLAGS, KIRQL, u64, u64); 2] = [
        ("paged", POOL_FLAG_PAGED, DISPATCH_LEVEL, 0x01, 1),
        (
            "non-paged",
            POOL_FLAG_NON_PAGED,
            DISPATCH_LEVEL + 1,
            0x02,
            0x200,
        ),
    ];
    for (what, flags, at, p1, pool_type) in cases {
        for (profile, verifier) in [(Profile::VERIFIER, true), (Profile::COHERENT, false)] {
            let (m, _, _) = machine(profile, 64);
            let b = m
                .run(move || {
                    raise(at);
                    let _ = alloc(flags, 100, TAG);
                })
                .unwrap_err();
            let max = if flags == POOL_FLAG_PAGED { 1 } else { 2 };
            if verifier {
                assert_eq!(
                    (b.code, b.params),
                    (0xC4, [p1, u64::from(at), pool_type, 100]),
                    "{what}: {b}"
                );
            } else {
                assert_eq!(
                    (b.code, b.params),
                    (0xA, [0, u64::from(at), max, 0]),
                    "{what}: {b}"
                );
            }
        }
    }
    let (m, _, _) = machine(Profile::VERIFIER, 64);
    let b = m
        .run(|| {
            let p = alloc(POOL_FLAG_NON_PAGED, 100, TAG);
            raise(DISPATCH_LEVEL + 1);
            free_tag(p, TAG);
        })
        .unwrap_err();
    assert_eq!(
        (b.code, b.params[0], b.params[1], b.params[2]),
        (0xC4, 0x12, 3, 0x200),
        "{b}"
    );
}
