//! `PnP` and power: the hardware prepared (registers mapped, the device reset and identified,
//! the DMA adapter taken, the HCA's rings allocated) and released (in the reverse order, after
//! every stream is released), and D0 entry and exit (the queues enabled; quiesced, with every
//! request in flight failed and every mapping released).

use core::sync::atomic::Ordering;

use rhca_hw::regs;

use super::{ADAPTER_MAX_LENGTH, INTERRUPT_VECTORS, add_stats, ctx, status_of, streams, with_hca};
use crate::dma::Adapter;
use crate::hca::{self, Hca, HcaError};
use crate::sys::wdf::{Device, ResList, Resource};
use crate::sys::{
    NTSTATUS, STATUS_DEVICE_CONFIGURATION_ERROR, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS, WDF_POWER_DEVICE_STATE, WDFCMRESLIST, WDFDEVICE,
};
use crate::trace::{self, Value};
pub(super) extern "C" fn evt_prepare_hardware(
    device: WDFDEVICE,
    _raw: WDFCMRESLIST,
    translated: WDFCMRESLIST,
) -> NTSTATUS {
    match prepare_hardware(Device(device), ResList(translated)) {
        Ok(()) => STATUS_SUCCESS,
        Err(f) => {
            // The status becomes the device's Code 10; the event says which step and why.
            trace::emit(
                &trace::PREPARE_HARDWARE_FAILED,
                &[
                    Value::Str(f.stage),
                    Value::Str(f.reason),
                    Value::Status(f.status),
                ],
            );
            f.status
        }
    }
}

/// Why `EvtDevicePrepareHardware` failed: the step, a sentence for the trace, the status.
struct PrepareFailure {
    stage: &'static str,
    reason: &'static str,
    status: NTSTATUS,
}

const fn failed(stage: &'static str, reason: &'static str, status: NTSTATUS) -> PrepareFailure {
    PrepareFailure {
        stage,
        reason,
        status,
    }
}

fn prepare_hardware(device: Device, translated: ResList) -> Result<(), PrepareFailure> {
    let Some(c) = ctx(device) else {
        return Err(failed(
            "context",
            "the device has no RHCA context",
            STATUS_INVALID_DEVICE_STATE,
        ));
    };
    let resources = translated.resources();
    let Some(len) = resources.iter().find_map(|r| match *r {
        Resource::Memory { len, .. } if len >= 0x4000 => Some(len),
        _ => None,
    }) else {
        // A root-enumerated device (`devgen /add /bus ROOT`) or a PCI function whose BAR 0 was
        // not assigned gets here: there is no hardware to drive.
        return Err(failed(
            "resources",
            if resources.is_empty() {
                "no hardware resources: a software (root-enumerated) device, or a PCI function without an assigned BAR; RHCA needs its PCI function"
            } else {
                "no memory BAR of at least 16 KiB among the resources"
            },
            STATUS_DEVICE_CONFIGURATION_ERROR,
        ));
    };
    // INT_CFG.NVEC: the messages granted that have an interrupt object (0: INTx).
    let messages = resources
        .iter()
        .filter(|r| **r == Resource::Message)
        .count() as u32;
    let vectors = messages.min(INTERRUPT_VECTORS);
    let Some(regs) = translated.map_registers(len) else {
        return Err(failed(
            "map-registers",
            "MmMapIoSpaceEx could not map BAR 0",
            STATUS_INSUFFICIENT_RESOURCES,
        ));
    };
    let regs = alloc::sync::Arc::new(regs);
    let (caps, guid) = hca::identify(&regs)
        .and_then(|v| hca::reset(&regs).map(|()| v))
        .map_err(|e| {
            failed(
                "identify",
                match e {
                    HcaError::Removed => "the device does not answer (registers read all ones)",
                    HcaError::UnsupportedDevice => {
                        "not an RHCA of interface version 1, or capabilities out of range"
                    }
                    _ => "the device did not finish its reset",
                },
                status_of(e),
            )
        })?;
    let adapter = Adapter::for_device(device, caps.dma_width, ADAPTER_MAX_LENGTH).map_err(|e| {
        failed(
            "dma-adapter",
            "IoGetDmaAdapter refused the device description, or its DMA_OPERATIONS lacks a routine",
            status_of(HcaError::Dma(e)),
        )
    })?;
    trace::emit(
        &trace::ADAPTER_GRANTED,
        &[
            Value::U32(adapter.description_version()),
            Value::U32(caps.dma_width),
            Value::U32(adapter.map_registers()),
            Value::U32(ADAPTER_MAX_LENGTH),
            Value::Bool(adapter.has_flush_dma_buffer()),
        ],
    );
    let version = regs.read(regs::VERSION.offset);
    let hca = Hca::new(regs.clone(), adapter, caps, guid, vectors).map_err(|e| {
        failed(
            "rings",
            "allocating the rings or programming the queues failed",
            status_of(e),
        )
    })?;
    c.isr_regs.publish(&regs);
    c.vectors.store(vectors, Ordering::Relaxed);
    c.hca.lock().hca = Some(hca);
    trace::emit(
        &trace::HARDWARE_PREPARED,
        &[
            Value::U32(len),
            Value::U32(messages),
            Value::U32(vectors),
            Value::U64(guid),
            Value::U32(version),
        ],
    );
    Ok(())
}

pub(super) extern "C" fn evt_release_hardware(
    device: WDFDEVICE,
    _translated: WDFCMRESLIST,
) -> NTSTATUS {
    let Some(c) = ctx(Device(device)) else {
        return STATUS_SUCCESS;
    };
    // Interrupts are disconnected by now: the ISR can no longer reach the registers.
    c.isr_regs.withdraw();
    let hca = {
        let mut slot = c.hca.lock();
        let h = slot.hca.take();
        if let Some(h) = &h {
            add_stats(&mut slot.carried, &h.statistics());
        }
        h
    };
    if let Some(h) = hca {
        let regs = h.regs().clone();
        let gone = regs.read(regs::STATUS.offset) == regs::ALL_ONES;
        if !gone {
            // No DMA may happen once the memory below is released.
            let _ = hca::reset(&regs);
        }
        trace::emit(&trace::HARDWARE_RELEASED, &[Value::Bool(gone)]);
        // Dropped at PASSIVE_LEVEL, outside the lock: common buffers are freed, then the
        // adapter is put, then the registers unmapped.
        drop(h);
    }
    STATUS_SUCCESS
}

pub(super) extern "C" fn evt_d0_entry(
    device: WDFDEVICE,
    previous: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
    let previous = previous.cast_unsigned();
    let status = match ctx(Device(device)).map(|c| with_hca(c, super::hca::Hca::enable)) {
        Some(Some(Ok(()))) => STATUS_SUCCESS,
        Some(Some(Err(e))) => status_of(e),
        Some(None) | None => STATUS_INVALID_DEVICE_STATE,
    };
    if status == STATUS_SUCCESS {
        trace::emit(&trace::D0_ENTRY, &[Value::U32(previous)]);
    } else {
        trace::emit(
            &trace::D0_ENTRY_FAILED,
            &[Value::U32(previous), Value::Status(status)],
        );
    }
    status
}

pub(super) extern "C" fn evt_d0_exit(
    device: WDFDEVICE,
    target: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
    trace::emit(&trace::D0_EXIT, &[Value::U32(target.cast_unsigned())]);
    let Some(c) = ctx(Device(device)) else {
        return STATUS_SUCCESS;
    };
    // The watchdog first, and waited for: no tick may poll a device being quiesced (the wait is
    // at PASSIVE_LEVEL; the objects are read without a lock).
    if let Some(o) = c.objects.get() {
        o.watchdog.stop_and_wait();
    }
    with_hca(c, super::hca::Hca::quiesce);
    // Quiesced (or gone): no engine moves data any more. Streams end here, their buffers are
    // released and their START requests completed before the device leaves D0.
    streams::finish(c, Some(crate::hca::stream::EndReason::PowerDown));
    // A release already under way in the work item finishes before D0 exit returns (the
    // flush waits at PASSIVE_LEVEL; the objects are read without a lock).
    if let Some(o) = c.objects.get() {
        o.work.flush();
    }
    STATUS_SUCCESS
}
