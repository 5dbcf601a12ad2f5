//! PnP and power on a simulated CPU: start (prepare hardware, D0 entry, interrupts
//! connected), stop and removal (D0 exit, hardware released, with the DMA leak checks), the
//! driver unloaded, and the resource lists a device is given.

use crate::bugcheck::BugCheck;
use crate::bus::Attached;
use crate::machine::with_state;
use crate::typed::TRUE;
use crate::types::ULONG;
use crate::wdf::functions::{SIM_DIRQL, acquire_interrupt_lock, callback, release_interrupt_lock};
#[allow(
    clippy::wildcard_imports,
    reason = "the harness uses the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::{Kind, wdf_rule};
use crate::{NT_SUCCESS, NTSTATUS, STATUS_SUCCESS};

use super::{DevNode, InterruptResources, dispatch, flush_dpcs, presented_on, purge};

pub(super) fn start_device(d: &DevNode) -> NTSTATUS {
    let (raw, trans, prepare) = with_state(|st, _| {
        let w = &mut st.wdf;
        let dev = d.device;
        let (mut rawl, mut transl) = resources(&d.att, d.interrupts);
        // The framework applies each interrupt object's ShareVector to its interrupt
        // resource when it filters the requirements (`FxInterrupt::FilterResourceRequirements`,
        // `interruptobjectkm.cpp` l.241–266): WdfTrue claims it shared, WdfFalse
        // device-exclusive, WdfUseDefault keeps the bus's disposition. Interrupt objects take
        // the interrupt resources in creation order.
        let shares: Vec<WDF_TRI_STATE> = w
            .device(dev)?
            .interrupts
            .clone()
            .into_iter()
            .map(|i| w.interrupt(i).map(|d| d.config.ShareVector))
            .collect::<Result<_, _>>()?;
        for list in [&mut rawl, &mut transl] {
            let ints = list
                .iter_mut()
                .filter(|r| u32::from(r.Type) == CmResourceTypeInterrupt);
            for (r, share) in ints.zip(&shares) {
                match *share {
                    _WDF_TRI_STATE::WdfTrue => r.ShareDisposition = CM_SHARE_SHARED,
                    _WDF_TRI_STATE::WdfFalse => r.ShareDisposition = CM_SHARE_DEVICE_EXCLUSIVE,
                    _ => {}
                }
            }
        }
        let raw = w.insert(
            Kind::ResList(crate::typed::NoDebug(rawl.into_boxed_slice())),
            Some(dev),
            None,
        );
        let trans = w.insert(
            Kind::ResList(crate::typed::NoDebug(transl.into_boxed_slice())),
            Some(dev),
            None,
        );
        Ok((raw, trans, w.device(dev)?.pnp.EvtDevicePrepareHardware))
    });
    if let Some(f) = prepare {
        // SAFETY: the driver's callback with its device and the resource lists.
        let s = callback(|| unsafe {
            f(
                d.device as WDFDEVICE,
                raw as WDFCMRESLIST,
                trans as WDFCMRESLIST,
            )
        });
        if !NT_SUCCESS(s) {
            release_hardware(d, trans);
            return s;
        }
    }
    with_state(|st, _| {
        st.wdf.device(d.device)?.res_lists = Some((raw, trans));
        Ok(())
    });
    let s = enter_d0(d, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final);
    if !NT_SUCCESS(s) {
        release_hardware(d, trans);
    }
    s
}

/// D0 entry, interrupts connected and enabled, post-interrupt entry, queues started.
pub(super) fn enter_d0(d: &DevNode, from: WDF_POWER_DEVICE_STATE) -> NTSTATUS {
    let (pnp, interrupts) = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        Ok((dev.pnp, dev.interrupts.clone()))
    });
    if let Some(f) = pnp.EvtDeviceD0Entry {
        // SAFETY: the driver's callback.
        let s = callback(|| unsafe { f(d.device as WDFDEVICE, from) });
        if !NT_SUCCESS(s) {
            return s;
        }
    }
    for &i in &interrupts {
        let enable = with_state(|st, _| {
            let int = st.wdf.interrupt(i)?;
            int.connected = true;
            Ok(int.config.EvtInterruptEnable)
        });
        if let Some(f) = enable {
            let old = acquire_interrupt_lock(i);
            // SAFETY: the driver's enable callback at DIRQL under the interrupt lock.
            let s = callback(|| unsafe { f(i as WDFINTERRUPT, d.device as WDFDEVICE) });
            release_interrupt_lock(i, old);
            if !NT_SUCCESS(s) {
                return s;
            }
        }
    }
    if let Some(f) = pnp.EvtDeviceD0EntryPostInterruptsEnabled {
        // SAFETY: the driver's callback.
        let s = callback(|| unsafe { f(d.device as WDFDEVICE, from) });
        if !NT_SUCCESS(s) {
            return s;
        }
    }
    let queues = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        dev.in_d0 = true;
        let qs = dev.queues.clone();
        for &q in &qs {
            let q = st.wdf.queue(q)?;
            if q.power_managed {
                q.started = true;
            }
        }
        Ok(qs)
    });
    for q in queues {
        dispatch(q);
    }
    // Self-managed I/O starts once the queues run: `EvtDeviceSelfManagedIoInit` the first time
    // the device enters D0, `EvtDeviceSelfManagedIoRestart` every later time ("PnP and Power
    // Management Scenarios"). A failure fails the start.
    let (first, init, restart) = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        let first = !dev.self_managed_io;
        dev.self_managed_io = true;
        Ok((
            first,
            dev.pnp.EvtDeviceSelfManagedIoInit,
            dev.pnp.EvtDeviceSelfManagedIoRestart,
        ))
    });
    if let Some(f) = if first { init } else { restart } {
        // SAFETY: the driver's callback.
        let s = callback(|| unsafe { f(d.device as WDFDEVICE) });
        if !NT_SUCCESS(s) {
            return s;
        }
    }
    STATUS_SUCCESS
}

/// Power-managed queues held (`EvtIoStop` for requests the driver owns), interrupts disabled,
/// D0 exit; with `release`, hardware released and the DMA check made.
pub(super) fn stop_device(d: &DevNode, target: WDF_POWER_DEVICE_STATE, release: bool) {
    let (pnp, interrupts, queues, in_d0) = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        Ok((
            dev.pnp,
            dev.interrupts.clone(),
            dev.queues.clone(),
            dev.in_d0,
        ))
    });
    if in_d0 {
        // `EvtDeviceSelfManagedIoSuspend` comes first, before the queues are held and before
        // D0 exit, for a power-down, a stop and a removal alike.
        let suspend = with_state(|st, _| {
            let dev = st.wdf.device(d.device)?;
            Ok(dev
                .self_managed_io
                .then_some(dev.pnp.EvtDeviceSelfManagedIoSuspend)
                .flatten())
        });
        if let Some(f) = suspend {
            // SAFETY: the driver's callback.
            let _ = callback(|| unsafe { f(d.device as WDFDEVICE) });
        }
        for &q in &queues {
            let (stop, owned) = with_state(|st, _| {
                let qd = st.wdf.queue(q)?;
                if !qd.power_managed {
                    return Ok((None, Vec::new()));
                }
                qd.started = false;
                let stop = qd.config.EvtIoStop;
                let owned = presented_on(&st.wdf, q);
                Ok((stop, owned))
            });
            if let Some(f) = stop {
                for r in owned {
                    // SAFETY: the driver's EvtIoStop for a request it owns.
                    callback(|| unsafe {
                        f(
                            q as WDFQUEUE,
                            r as WDFREQUEST,
                            _WDF_REQUEST_STOP_ACTION_FLAGS::WdfRequestStopActionSuspend as ULONG,
                        );
                    });
                }
            }
        }
        if let Some(f) = pnp.EvtDeviceD0ExitPreInterruptsDisabled {
            // SAFETY: the driver's callback.
            let _ = callback(|| unsafe { f(d.device as WDFDEVICE, target) });
        }
        for &i in &interrupts {
            let disable = with_state(|st, _| Ok(st.wdf.interrupt(i)?.config.EvtInterruptDisable));
            // Disconnecting takes the interrupt lock, so it waits for an ISR that is running
            // (IoDisconnectInterruptEx synchronises with the ISR the same way).
            let old = acquire_interrupt_lock(i);
            if let Some(f) = disable {
                // SAFETY: the driver's disable callback at DIRQL under the interrupt lock.
                let _ = callback(|| unsafe { f(i as WDFINTERRUPT, d.device as WDFDEVICE) });
            }
            with_state(|st, _| {
                st.wdf.interrupt(i)?.connected = false;
                Ok(())
            });
            release_interrupt_lock(i, old);
        }
        flush_dpcs(&interrupts);
        if let Some(f) = pnp.EvtDeviceD0Exit {
            // SAFETY: the driver's callback.
            let _ = callback(|| unsafe { f(d.device as WDFDEVICE, target) });
        }
        with_state(|st, _| {
            st.wdf.device(d.device)?.in_d0 = false;
            Ok(())
        });
    }
    if release {
        let lists = with_state(|st, _| Ok(st.wdf.device(d.device)?.res_lists.take()));
        if let Some((_, trans)) = lists {
            release_hardware(d, trans);
        }
    }
}

pub(super) fn release_hardware(d: &DevNode, trans: usize) {
    let f = with_state(|st, _| Ok(st.wdf.device(d.device)?.pnp.EvtDeviceReleaseHardware));
    if let Some(f) = f {
        // SAFETY: the driver's callback with the translated list of this start.
        let _ = callback(|| unsafe { f(d.device as WDFDEVICE, trans as WDFCMRESLIST) });
    }
    let objs = with_state(|st, _| {
        let mut objs = Vec::new();
        for (h, _) in st.wdf.live() {
            if let Some(o) = st.wdf.objects.get(&h)
                && matches!(o.kind, Kind::ResList(_))
                && o.parent == Some(d.device)
            {
                objs.extend(st.wdf.detach_tree(h));
            }
        }
        // Everything DMA must be gone once the hardware is released (Device Fundamentals'
        // rebalance and removal tests look for exactly this).
        for r in crate::hal::reports(&st.hal) {
            if r.leaks() {
                return Err(BugCheck::sim(
                    wdf_rule::DMA_AFTER_RELEASE,
                    r.adapter as u64,
                    (r.common_buffers + r.sg_lists + r.register_files) as u64,
                    "a DMA adapter, common buffer, scatter/gather list or map register file is still held after EvtDeviceReleaseHardware",
                ));
            }
        }
        Ok(objs)
    });
    crate::wdf::run_cleanup(objs);
}

pub(super) fn remove_device(d: &DevNode) {
    stop_device(d, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final, true);
    let queues = with_state(|st, _| Ok(st.wdf.device(d.device)?.queues.clone()));
    for q in queues {
        purge(q);
    }
    let (flush, cleanup) = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        Ok((
            dev.self_managed_io
                .then_some(dev.pnp.EvtDeviceSelfManagedIoFlush)
                .flatten(),
            dev.pnp.EvtDeviceSelfManagedIoCleanup,
        ))
    });
    if let Some(f) = flush {
        // SAFETY: the driver's callback: its self-managed I/O ends with the device.
        callback(|| unsafe { f(d.device as WDFDEVICE) });
    }
    if let Some(f) = cleanup {
        // SAFETY: the driver's callback.
        callback(|| unsafe { f(d.device as WDFDEVICE) });
    }
    // Deleting a work item waits for its callback (KMDF flushes it): the device's are flushed
    // before the device and its context go away.
    let items = with_state(|st, _| {
        Ok(st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(o.kind, Kind::WorkItem(_)) && o.parent == Some(d.device))
            .map(|(&h, _)| h)
            .collect::<Vec<usize>>())
    });
    for w in items {
        // SAFETY: a live work item of the device, flushed at PASSIVE_LEVEL.
        unsafe { crate::wdf::functions::WdfWorkItemFlush(w as crate::WDFWORKITEM) };
    }
    // Deleting a timer stops it and waits for a running callback (KMDF does this for a timer
    // deleted at PASSIVE_LEVEL): the device's timers are stopped before the device goes away.
    let timers = with_state(|st, _| {
        Ok(st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(o.kind, Kind::Timer(_)) && o.parent == Some(d.device))
            .map(|(&h, _)| h)
            .collect::<Vec<usize>>())
    });
    for t in timers {
        // SAFETY: a live timer of the device, stopped at PASSIVE_LEVEL.
        let _ = unsafe { crate::wdf::functions::WdfTimerStop(t as crate::WDFTIMER, TRUE) };
    }
    let objs = with_state(|st, _| {
        let live: Vec<usize> = st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(&o.kind, Kind::Request(r) if r.device == d.device))
            .map(|(&h, _)| h)
            .collect();
        if let Some(&r) = live.first() {
            return Err(BugCheck::sim(
                wdf_rule::REQUEST_LEAKED,
                r as u64,
                live.len() as u64,
                "requests still outstanding when the device was removed (never completed)",
            ));
        }
        Ok(st.wdf.detach_tree(d.device))
    });
    crate::wdf::run_cleanup(objs);
}

pub(super) fn unload_driver() {
    let (driver, unload) = with_state(|st, _| {
        let Some(h) = st.wdf.driver else {
            return Ok((0, None));
        };
        let f = match &st.wdf.get(h, "WDFDRIVER")?.kind {
            Kind::Driver(c) => c.EvtDriverUnload,
            _ => None,
        };
        Ok((h, f))
    });
    if let Some(f) = unload {
        // SAFETY: the driver's unload callback with its driver handle.
        callback(|| unsafe { f(driver as WDFDRIVER) });
    }
    let objs = with_state(|st, _| {
        let referenced: Vec<(usize, &'static str)> = st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| o.refs > 0)
            .map(|(&h, o)| (h, o.kind.name()))
            .collect();
        if let Some(&(h, _)) = referenced.first() {
            let names: Vec<String> = referenced
                .iter()
                .map(|(h, n)| format!("{n} {h:#x}"))
                .collect();
            return Err(BugCheck::sim(
                wdf_rule::OBJECTS_LEAKED,
                h as u64,
                referenced.len() as u64,
                Box::leak(
                    format!(
                        "framework objects still referenced at driver unload: {}",
                        names.join(", ")
                    )
                    .into_boxed_str(),
                ),
            ));
        }
        let objs = if driver == 0 {
            Vec::new()
        } else {
            st.wdf.detach_tree(driver)
        };
        st.wdf.driver = None;
        if !st.wdf.objects.is_empty() {
            let names: Vec<String> = st
                .wdf
                .live()
                .iter()
                .map(|(h, n)| format!("{n} {h:#x}"))
                .collect();
            return Err(BugCheck::sim(
                wdf_rule::OBJECTS_LEAKED,
                st.wdf.live()[0].0 as u64,
                names.len() as u64,
                Box::leak(
                    format!(
                        "framework objects outside the driver's tree at unload: {}",
                        names.join(", ")
                    )
                    .into_boxed_str(),
                ),
            ));
        }
        Ok(objs)
    });
    crate::wdf::run_cleanup(objs);
    // Driver Verifier's unload checks, once the driver's cleanup callbacks have run.
    with_state(crate::machine::Machine::unload_checks);
}

/// `CmResourceShareDeviceExclusive` (`_CM_SHARE_DISPOSITION`, wdm.h).
pub(super) const CM_SHARE_DEVICE_EXCLUSIVE: u8 = 1;
/// `CmResourceShareShared`.
pub(super) const CM_SHARE_SHARED: u8 = 3;

/// The raw and translated resource lists of a device: its memory BARs, then its interrupts.
pub(super) fn resources(
    att: &Attached,
    ints: InterruptResources,
) -> (
    Vec<CM_PARTIAL_RESOURCE_DESCRIPTOR>,
    Vec<CM_PARTIAL_RESOURCE_DESCRIPTOR>,
) {
    let mut raw = Vec::new();
    let mut trans = Vec::new();
    for bar in 0..6 {
        if att.bar_len[bar] == 0 {
            continue;
        }
        let mem = CM_PARTIAL_RESOURCE_DESCRIPTOR {
            Type: CmResourceTypeMemory as u8,
            ShareDisposition: CM_SHARE_DEVICE_EXCLUSIVE,
            Flags: CM_RESOURCE_MEMORY_READ_WRITE as u16,
            u: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
                Memory: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_5 {
                    Start: crate::types::PHYSICAL_ADDRESS {
                        QuadPart: att.bar_phys[bar].cast_signed(),
                    },
                    Length: att.bar_len[bar] as u32,
                },
            },
        };
        raw.push(mem);
        trans.push(mem);
    }
    let (n, flags) = match ints {
        InterruptResources::Msi(n) => (
            n,
            (CM_RESOURCE_INTERRUPT_LATCHED | CM_RESOURCE_INTERRUPT_MESSAGE) as u16,
        ),
        InterruptResources::Line => (1, CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE as u16),
        InterruptResources::None => (0, 0),
    };
    for k in 0..n {
        // The mingw-w64 layout (no `NT_PROCESSOR_GROUPS`: `ULONG Level`, no `Group`); see
        // docs/sim-fidelity.md.
        let translated = _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_3 {
            Level: u32::from(SIM_DIRQL),
            Vector: 0x80 + k,
            Affinity: 1,
        };
        let u_raw = if flags & CM_RESOURCE_INTERRUPT_MESSAGE as u16 != 0 {
            _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
                MessageInterrupt: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4 {
                    __bindgen_anon_1: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1 {
                        Raw: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1__bindgen_ty_1 {
                            Reserved: 0,
                            MessageCount: 1,
                            Vector: 0xFEE0_0000,
                            Affinity: 1,
                        },
                    },
                },
            }
        } else {
            _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
                Interrupt: translated,
            }
        };
        let d = |u| CM_PARTIAL_RESOURCE_DESCRIPTOR {
            Type: CmResourceTypeInterrupt as u8,
            ShareDisposition: if ints == InterruptResources::Line {
                CM_SHARE_SHARED
            } else {
                CM_SHARE_DEVICE_EXCLUSIVE
            },
            Flags: flags,
            u,
        };
        raw.push(d(u_raw));
        trans.push(d(_CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
            Interrupt: translated,
        }));
    }
    (raw, trans)
}
