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
pub(super) extern "C" fn evt_prepare_hardware(
    device: WDFDEVICE,
    _raw: WDFCMRESLIST,
    translated: WDFCMRESLIST,
) -> NTSTATUS {
    let device = Device(device);
    let Some(c) = ctx(device) else {
        return STATUS_INVALID_DEVICE_STATE;
    };
    let resources = ResList(translated).resources();
    let Some(len) = resources.iter().find_map(|r| match *r {
        Resource::Memory { len, .. } if len >= 0x4000 => Some(len),
        _ => None,
    }) else {
        return STATUS_DEVICE_CONFIGURATION_ERROR;
    };
    // INT_CFG.NVEC: the messages granted that have an interrupt object (0: INTx).
    let messages = resources
        .iter()
        .filter(|r| **r == Resource::Message)
        .count() as u32;
    let vectors = messages.min(INTERRUPT_VECTORS);
    let Some(regs) = ResList(translated).map_registers(len) else {
        return STATUS_INSUFFICIENT_RESOURCES;
    };
    let regs = alloc::sync::Arc::new(regs);
    let (caps, guid) = match hca::identify(&regs).and_then(|v| hca::reset(&regs).map(|()| v)) {
        Ok(v) => v,
        Err(e) => return status_of(e),
    };
    let adapter = match Adapter::for_device(device, caps.dma_width, ADAPTER_MAX_LENGTH) {
        Ok(a) => a,
        Err(e) => return status_of(HcaError::Dma(e)),
    };
    let hca = match Hca::new(regs.clone(), adapter, caps, guid, vectors) {
        Ok(h) => h,
        Err(e) => return status_of(e),
    };
    c.isr_regs.publish(&regs);
    c.vectors.store(vectors, Ordering::Relaxed);
    c.hca.lock().hca = Some(hca);
    STATUS_SUCCESS
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
        if regs.read(regs::STATUS.offset) != regs::ALL_ONES {
            // No DMA may happen once the memory below is released.
            let _ = hca::reset(&regs);
        }
        // Dropped at PASSIVE_LEVEL, outside the lock: common buffers are freed, then the
        // adapter is put, then the registers unmapped.
        drop(h);
    }
    STATUS_SUCCESS
}

pub(super) extern "C" fn evt_d0_entry(
    device: WDFDEVICE,
    _previous: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
    let Some(c) = ctx(Device(device)) else {
        return STATUS_INVALID_DEVICE_STATE;
    };
    match with_hca(c, super::hca::Hca::enable) {
        Some(Ok(())) => STATUS_SUCCESS,
        Some(Err(e)) => status_of(e),
        None => STATUS_INVALID_DEVICE_STATE,
    }
}

pub(super) extern "C" fn evt_d0_exit(
    device: WDFDEVICE,
    _target: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
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
