//! wdk-sim part 2 end to end, without RHCA: a small KMDF driver (`echo`) for a small
//! interrupt-driven fake device, driven by the `PnP`, power and user-mode harness.
//!
//! The driver maps BAR0 in `EvtDevicePrepareHardware`, takes a DMA adapter and a common buffer
//! (released in `EvtDeviceReleaseHardware`), and serves four IOCTLs from a parallel default
//! queue: ECHO (buffered, reversed back), KICK (the device computes and interrupts), WAIT (parked
//! in a manual queue until the DPC completes it with the device's result) and PEND (held by the
//! driver, cancelable). The device reports a bug mask in a register; each bit makes the driver
//! misbehave in one way, so that every check of the harness is shown to fire.

#![expect(
    clippy::cast_possible_truncation,
    reason = "test driver: small lengths and register values"
)]
#![expect(
    clippy::many_single_char_names,
    reason = "tests name the rig, process, handle, error and bug check r, p, h, e, b"
)]

mod common;

/// The test driver's heap, as a driver crate installs it on the simulated machine.
#[global_allocator]
static GLOBAL_ALLOCATOR: DriverHeap = DriverHeap;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wdk_sim::call_unsafe_wdf_function_binding;
use wdk_sim::ntddk;
use wdk_sim::wdf::host::{DevNode, Host, HostError, InterruptResources, Mode};
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`.
use wdk_sim::typed::{DISPATCH_LEVEL, FALSE, TRUE};

// ---- the fake device ----

const REG_BUGS: u64 = 0x00;
const REG_DATA: u64 = 0x04;
const REG_KICK: u64 = 0x08;
const REG_RESULT: u64 = 0x0C;
const REG_INT_STATUS: u64 = 0x10;
const REG_INT_ENABLE: u64 = 0x14;

struct EchoDevice {
    bugs: u32,
    line: bool,
    /// A KICK waiting for the device's next round (`DEV_STEPPED`).
    kicked: AtomicBool,
    regs: [AtomicU32; 8],
    bus: OnceLock<DeviceBus>,
    /// The thread that last acknowledged an interrupt cause: the CPU that ran the ISR.
    acked_by: std::sync::Mutex<Option<String>>,
}

impl PciFunction for EchoDevice {
    fn identity(&self) -> PciIdentity {
        PciIdentity {
            vendor_id: 0x1234,
            device_id: 0xEC40,
            class_code: 0xFF_00_00,
            revision: 1,
        }
    }
    fn bar_size(&self, bar: u8) -> u64 {
        if bar == 0 { 4096 } else { 0 }
    }
    fn mmio_read(&self, _bar: u8, offset: u64) -> u32 {
        match offset {
            REG_BUGS => self.bugs,
            o if o < 32 => self.regs[(o / 4) as usize].load(Ordering::SeqCst),
            _ => 0,
        }
    }
    fn mmio_write(&self, _bar: u8, offset: u64, value: u32) {
        match offset {
            REG_KICK if self.bugs & DEV_STEPPED != 0 => {
                self.kicked.store(true, Ordering::SeqCst);
            }
            REG_KICK => self.compute(),
            REG_INT_STATUS => {
                *self
                    .acked_by
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    std::thread::current().name().map(str::to_owned);
                let cleared = self.regs[4].fetch_and(!value, Ordering::SeqCst) & !value;
                let left = if self.bugs & DEV_CAUSE_DURING_ACK != 0 && value & 1 != 0 {
                    // A second cause arrives while the first is being acknowledged.
                    self.regs[4].fetch_or(2, Ordering::SeqCst) | 2
                } else {
                    cleared
                };
                if self.line
                    && left == 0
                    && let Some(b) = self.bus.get()
                {
                    let _ = b.set_intx(false);
                }
            }
            o if o < 32 && o != REG_BUGS => {
                self.regs[(o / 4) as usize].store(value, Ordering::SeqCst);
            }
            _ => {}
        }
    }
    fn dma_address_width(&self) -> u32 {
        64
    }
    fn step(&self) -> bool {
        let kicked = self.kicked.swap(false, Ordering::SeqCst);
        if kicked {
            self.compute();
        }
        kicked
    }
}

impl EchoDevice {
    fn new(bugs: u32, line: bool) -> Self {
        Self {
            bugs,
            line,
            kicked: AtomicBool::new(false),
            regs: Default::default(),
            bus: OnceLock::new(),
            acked_by: std::sync::Mutex::new(None),
        }
    }

    /// A KICK's work: the result, the cause, and the interrupt when enabled.
    fn compute(&self) {
        let d = self.regs[1].load(Ordering::SeqCst);
        self.regs[3].store(d.wrapping_mul(2).wrapping_add(1), Ordering::SeqCst);
        self.regs[4].fetch_or(1, Ordering::SeqCst);
        if self.regs[5].load(Ordering::SeqCst) != 0
            && let Some(b) = self.bus.get()
        {
            let _ = if self.line {
                b.set_intx(true)
            } else {
                b.signal_msi(0)
            };
        }
    }
}

/// Not a driver bug: the device raises a second cause while the first is acknowledged.
const DEV_CAUSE_DURING_ACK: u32 = 1 << 16;
/// Not a driver bug: the device does a KICK's work in its next round ([`PciFunction::step`]),
/// not in the register write, and has no thread of its own: only a CPU that steps it moves it.
const DEV_STEPPED: u32 = 1 << 17;

// Bug bits the device reports to the driver.
const BUG_DOUBLE_COMPLETE: u32 = 1 << 0;
const BUG_LEAK_PEND: u32 = 1 << 1;
const BUG_IRQL: u32 = 1 << 2;
const BUG_REFERENCE_LEAK: u32 = 1 << 3;
const BUG_KEEP_ADAPTER: u32 = 1 << 4;
const BUG_RAISED_RETURN: u32 = 1 << 5;
const BUG_FAIL_START: u32 = 1 << 6;
const BUG_ALLOC_IN_ISR: u32 = 1 << 7;
const BUG_ALLOC_IN_DPC: u32 = 1 << 8;

// ---- the driver ----

const fn ctl(function: u32, method: u32) -> u32 {
    (0x8000 << 16) | (function << 2) | method
}
const IOCTL_ECHO: u32 = ctl(0x800, 0);
const IOCTL_KICK: u32 = ctl(0x801, 0);
const IOCTL_WAIT: u32 = ctl(0x802, 0);
const IOCTL_PEND: u32 = ctl(0x803, 0);
const IOCTL_FILL: u32 = ctl(0x804, 2);
const IOCTL_PURGE_WAITERS: u32 = ctl(0x805, 0);
const IOCTL_INPUT_MDL: u32 = ctl(0x806, 1);
const IOCTL_DEFER: u32 = ctl(0x807, 0);
const IOCTL_LATER: u32 = ctl(0x808, 0);

/// Times a purge-complete callback ran (all machines of this test binary).
static PURGED: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn deferred_work(work: WDFWORKITEM) {
    // SAFETY: the work item's parent is the device.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemGetParentObject, work) };
    // SAFETY: the driver's live device.
    let c = unsafe { ctx(device.cast()) };
    // SAFETY: reading the IRQL has no preconditions.
    let irql = unsafe { ntddk::KeGetCurrentIrql() };
    // SAFETY: the device's spin lock.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, c.lock) };
    let r = core::mem::replace(&mut c.deferred, core::ptr::null_mut());
    // SAFETY: as above.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, c.lock) };
    if !r.is_null() {
        // SAFETY: the deferred request, owned by the driver, completed once; Information
        // reports the IRQL the work item ran at.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                r,
                STATUS_SUCCESS,
                ULONG_PTR::from(irql) + 100
            );
        };
    }
}

unsafe extern "C" fn timer_fired(timer: WDFTIMER) {
    // SAFETY: the timer's parent is the device.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfTimerGetParentObject, timer) };
    // SAFETY: the driver's live device.
    let c = unsafe { ctx(device.cast()) };
    // SAFETY: reading the IRQL has no preconditions.
    let irql = unsafe { ntddk::KeGetCurrentIrql() };
    // SAFETY: the device's spin lock.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, c.lock) };
    let r = core::mem::replace(&mut c.later, core::ptr::null_mut());
    c.ticks += 1;
    // SAFETY: as above.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, c.lock) };
    if !r.is_null() {
        // SAFETY: the parked request, owned by the driver, completed once; Information reports
        // the IRQL the timer ran at.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                r,
                STATUS_SUCCESS,
                ULONG_PTR::from(irql) + 200
            );
        };
    }
}

unsafe extern "C" fn purged(_queue: WDFQUEUE, _context: WDFCONTEXT) {
    PURGED.fetch_add(1, Ordering::SeqCst);
}

#[repr(C)]
struct Ctx {
    regs: *mut u32,
    regs_len: usize,
    bugs: u32,
    manual: WDFQUEUE,
    lock: WDFSPINLOCK,
    pended: WDFREQUEST,
    adapter: PDMA_ADAPTER,
    common_va: PVOID,
    common_la: i64,
    work: WDFWORKITEM,
    deferred: WDFREQUEST,
    timer: WDFTIMER,
    later: WDFREQUEST,
    ticks: u32,
}

/// The type info behind `WDF_DECLARE_CONTEXT_TYPE`, in a static. wdk-sys's
/// `WDF_OBJECT_CONTEXT_TYPE_INFO` holds raw pointers and so is not `Sync`, as a static needs.
#[repr(transparent)]
struct TypeInfo(WDF_OBJECT_CONTEXT_TYPE_INFO);
// SAFETY: never written after initialisation; its pointers name 'static data.
unsafe impl Sync for TypeInfo {}

static CTX_TYPE: TypeInfo = TypeInfo(WDF_OBJECT_CONTEXT_TYPE_INFO {
    Size: size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() as u32,
    ContextName: c"Ctx".as_ptr(),
    ContextSize: size_of::<Ctx>(),
    UniqueType: (&raw const CTX_TYPE).cast(),
    EvtDriverGetUniqueContextType: None,
});

/// The device context (the `WDF_DECLARE_CONTEXT_TYPE` accessor).
///
/// # Safety
/// `device` must be the driver's live device.
unsafe fn ctx(device: WDFDEVICE) -> &'static mut Ctx {
    // SAFETY: the device was created with CTX_TYPE.
    let p = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            device.cast(),
            &raw const CTX_TYPE.0
        )
    };
    // SAFETY: the framework zeroed the context, which lives as long as the device; callbacks of
    // one device touch disjoint fields or hold the device's spin lock.
    unsafe { &mut *p.cast::<Ctx>() }
}

fn reg_read(c: &Ctx, off: u64) -> u32 {
    // SAFETY: `regs` maps BAR0 while the hardware is prepared; `off` is inside it.
    unsafe { read_register_ulong(c.regs.wrapping_add(off as usize / 4)) }
}

fn reg_write(c: &Ctx, off: u64, v: u32) {
    // SAFETY: as for reg_read.
    unsafe { write_register_ulong(c.regs.wrapping_add(off as usize / 4), v) };
}

/// `WDF_OBJECT_ATTRIBUTES_INIT` (wdfobject.h): zeroed, sized, and both constraints inherited
/// from the parent. KMDF refuses the zeroed levels (`STATUS_WDF_OBJECT_ATTRIBUTES_INVALID`).
fn attributes_init() -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: size_of::<WDF_OBJECT_ATTRIBUTES>() as u32,
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

unsafe extern "system" fn driver_entry(
    driver: PDRIVER_OBJECT,
    registry: PCUNICODE_STRING,
) -> NTSTATUS {
    common::create_test_driver(driver, registry, Some(device_add), Some(driver_unload))
}

const unsafe extern "C" fn driver_unload(_driver: WDFDRIVER) {}

#[expect(
    clippy::too_many_lines,
    reason = "AddDevice sets up the whole device, as samples do"
)]
unsafe extern "C" fn device_add(_driver: WDFDRIVER, mut init: PWDFDEVICE_INIT) -> NTSTATUS {
    let mut pnp = WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: size_of::<WDF_PNPPOWER_EVENT_CALLBACKS>() as u32,
        EvtDevicePrepareHardware: Some(prepare_hardware),
        EvtDeviceReleaseHardware: Some(release_hardware),
        ..WDF_PNPPOWER_EVENT_CALLBACKS::default()
    };
    let mut files = WDF_FILEOBJECT_CONFIG {
        Size: size_of::<WDF_FILEOBJECT_CONFIG>() as u32,
        EvtDeviceFileCreate: Some(file_create),
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
        FileObjectClass: _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
        ..WDF_FILEOBJECT_CONFIG::default()
    };
    // SAFETY: `init` is the framework's, the structs are live.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetPnpPowerEventCallbacks,
            init,
            &raw mut pnp
        );
    };
    // SAFETY: as above.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetIoType,
            init,
            _WDF_DEVICE_IO_TYPE::WdfDeviceIoBuffered
        );
    };
    // SAFETY: as above.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetFileObjectConfig,
            init,
            &raw mut files,
            WDF_NO_OBJECT_ATTRIBUTES
        );
    };
    let mut attrs = WDF_OBJECT_ATTRIBUTES {
        ContextTypeInfo: &raw const CTX_TYPE.0,
        ..attributes_init()
    };
    let mut device: WDFDEVICE = core::ptr::null_mut();
    // SAFETY: as above; `init` is consumed.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &raw mut init,
            &raw mut attrs,
            &raw mut device
        )
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let guid = GUID {
        Data1: 0x1234_5678,
        Data2: 1,
        Data3: 2,
        Data4: [3; 8],
    };
    // SAFETY: a live device and GUID.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreateDeviceInterface,
            device,
            &raw const guid,
            core::ptr::null()
        )
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let mut qc = WDF_IO_QUEUE_CONFIG {
        Size: size_of::<WDF_IO_QUEUE_CONFIG>() as u32,
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DefaultQueue: 1,
        EvtIoDeviceControl: Some(io_control),
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    // As WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE sets it for a parallel queue: no limit.
    qc.Settings.Parallel.NumberOfPresentedRequests = u32::MAX;
    // SAFETY: a live device and config.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut qc,
            WDF_NO_OBJECT_ATTRIBUTES,
            core::ptr::null_mut()
        )
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let mut mc = WDF_IO_QUEUE_CONFIG {
        Size: size_of::<WDF_IO_QUEUE_CONFIG>() as u32,
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual,
        PowerManaged: _WDF_TRI_STATE::WdfFalse,
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    // SAFETY: the device context was allocated with the device.
    let c = unsafe { ctx(device) };
    // SAFETY: a live device and config.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut mc,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut c.manual
        )
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let mut la = WDF_OBJECT_ATTRIBUTES {
        ParentObject: device.cast(),
        ..attributes_init()
    };
    // SAFETY: live attributes and out slot.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(WdfSpinLockCreate, &raw mut la, &raw mut c.lock)
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let wc = WDF_WORKITEM_CONFIG {
        Size: size_of::<WDF_WORKITEM_CONFIG>() as u32,
        EvtWorkItemFunc: Some(deferred_work),
        AutomaticSerialization: 0,
    };
    let mut wa = WDF_OBJECT_ATTRIBUTES {
        ParentObject: device.cast(),
        ..attributes_init()
    };
    // SAFETY: live config, attributes and out slot.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfWorkItemCreate,
            (&raw const wc).cast_mut(),
            &raw mut wa,
            &raw mut c.work
        )
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let tc = WDF_TIMER_CONFIG {
        Size: size_of::<WDF_TIMER_CONFIG>() as u32,
        EvtTimerFunc: Some(timer_fired),
        ..WDF_TIMER_CONFIG::default()
    };
    let mut ta = WDF_OBJECT_ATTRIBUTES {
        ParentObject: device.cast(),
        ..attributes_init()
    };
    // SAFETY: live config, attributes and out slot.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfTimerCreate,
            (&raw const tc).cast_mut(),
            &raw mut ta,
            &raw mut c.timer
        )
    };
    if !NT_SUCCESS(st) {
        return st;
    }
    let mut ic = WDF_INTERRUPT_CONFIG {
        Size: size_of::<WDF_INTERRUPT_CONFIG>() as u32,
        EvtInterruptIsr: Some(isr),
        EvtInterruptDpc: Some(dpc),
        EvtInterruptEnable: Some(int_enable),
        EvtInterruptDisable: Some(int_disable),
        ShareVector: _WDF_TRI_STATE::WdfUseDefault,
        ReportInactiveOnPowerDown: _WDF_TRI_STATE::WdfUseDefault,
        ..WDF_INTERRUPT_CONFIG::default()
    };
    let mut interrupt: WDFINTERRUPT = core::ptr::null_mut();
    // SAFETY: a live device and config.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfInterruptCreate,
            device,
            &raw mut ic,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut interrupt
        )
    }
}

unsafe extern "C" fn prepare_hardware(
    device: WDFDEVICE,
    _raw: WDFCMRESLIST,
    trans: WDFCMRESLIST,
) -> NTSTATUS {
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    // SAFETY: a live resource list.
    let n = unsafe { call_unsafe_wdf_function_binding!(WdfCmResourceListGetCount, trans) };
    for i in 0..n {
        // SAFETY: `i` is below the count.
        let d =
            unsafe { call_unsafe_wdf_function_binding!(WdfCmResourceListGetDescriptor, trans, i) };
        // SAFETY: the framework's descriptor.
        let d = unsafe { &*d };
        if u32::from(d.Type) == CmResourceTypeMemory && c.regs.is_null() {
            // SAFETY: the memory member of a memory descriptor.
            let m = unsafe { d.u.Memory };
            // SAFETY: the BAR the PnP manager assigned.
            let va = unsafe {
                ntddk::MmMapIoSpaceEx(m.Start, u64::from(m.Length), PAGE_READWRITE | PAGE_NOCACHE)
            };
            if va.is_null() {
                return STATUS_INSUFFICIENT_RESOURCES;
            }
            c.regs = va.cast();
            c.regs_len = m.Length as usize;
        }
    }
    if c.regs.is_null() {
        return STATUS_DEVICE_HARDWARE_ERROR;
    }
    c.bugs = reg_read(c, REG_BUGS);
    let mut desc = DEVICE_DESCRIPTION {
        Version: 3,
        Master: TRUE,
        ScatterGather: TRUE,
        InterfaceType: _INTERFACE_TYPE::PCIBus,
        MaximumLength: 4096,
        DmaAddressWidth: 64,
        ..DEVICE_DESCRIPTION::default()
    };
    let mut regs = 0u32;
    // SAFETY: the PDO of this device and live out parameters.
    let pdo = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceWdmGetPhysicalDevice, device) };
    // SAFETY: as above.
    c.adapter = unsafe { ntddk::IoGetDmaAdapter(pdo, &raw mut desc, &raw mut regs) };
    if c.adapter.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    // SAFETY: a live adapter.
    let adapter = unsafe { &*c.adapter };
    // SAFETY: its operations table is static.
    let ops = unsafe { &*adapter.DmaOperations };
    let mut la = PHYSICAL_ADDRESS::default();
    // SAFETY: a live adapter at PASSIVE_LEVEL.
    c.common_va = unsafe { ops.AllocateCommonBuffer.unwrap()(c.adapter, 4096, &raw mut la, TRUE) };
    // SAFETY: the HAL wrote the union.
    c.common_la = unsafe { la.QuadPart };
    if c.bugs & BUG_FAIL_START != 0 {
        // A start that fails after taking resources: the framework calls ReleaseHardware.
        return STATUS_DEVICE_HARDWARE_ERROR;
    }
    STATUS_SUCCESS
}

unsafe extern "C" fn release_hardware(device: WDFDEVICE, _trans: WDFCMRESLIST) -> NTSTATUS {
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    if !c.adapter.is_null() && c.bugs & BUG_KEEP_ADAPTER == 0 {
        // SAFETY: a live adapter.
        let adapter = unsafe { &*c.adapter };
        // SAFETY: its operations table is static.
        let ops = unsafe { &*adapter.DmaOperations };
        if !c.common_va.is_null() {
            // SAFETY: the buffer allocated in prepare_hardware, freed once.
            unsafe {
                ops.FreeCommonBuffer.unwrap()(
                    c.adapter,
                    4096,
                    PHYSICAL_ADDRESS {
                        QuadPart: c.common_la,
                    },
                    c.common_va,
                    TRUE,
                );
            };
        }
        // SAFETY: put once.
        unsafe { ops.PutDmaAdapter.unwrap()(c.adapter) };
        c.adapter = core::ptr::null_mut();
        c.common_va = core::ptr::null_mut();
    }
    if !c.regs.is_null() {
        // SAFETY: the mapping made in prepare_hardware.
        unsafe { ntddk::MmUnmapIoSpace(c.regs.cast(), c.regs_len as u64) };
        c.regs = core::ptr::null_mut();
    }
    STATUS_SUCCESS
}

unsafe extern "C" fn file_create(_device: WDFDEVICE, request: WDFREQUEST, _file: WDFFILEOBJECT) {
    // SAFETY: the create request the framework handed over.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, STATUS_SUCCESS) };
}

unsafe extern "C" fn int_enable(interrupt: WDFINTERRUPT, device: WDFDEVICE) -> NTSTATUS {
    let _ = interrupt;
    // SAFETY: the device's context; registers are mapped in D0.
    let c = unsafe { ctx(device) };
    reg_write(c, REG_INT_ENABLE, 1);
    STATUS_SUCCESS
}

unsafe extern "C" fn int_disable(_interrupt: WDFINTERRUPT, device: WDFDEVICE) -> NTSTATUS {
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    reg_write(c, REG_INT_ENABLE, 0);
    STATUS_SUCCESS
}

unsafe extern "C" fn isr(interrupt: WDFINTERRUPT, _message: ULONG) -> BOOLEAN {
    // SAFETY: a live interrupt.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfInterruptGetDevice, interrupt) };
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    let status = reg_read(c, REG_INT_STATUS);
    if status == 0 || status == u32::MAX {
        return FALSE;
    }
    reg_write(c, REG_INT_STATUS, status);
    if c.bugs & BUG_ALLOC_IN_ISR != 0 {
        // Non-paged pool at DIRQL: Verifier stops the machine (0xC4, 0x02).
        std::hint::black_box(Box::new([0u8; 64]));
    }
    // SAFETY: a live interrupt.
    let _ = unsafe { call_unsafe_wdf_function_binding!(WdfInterruptQueueDpcForIsr, interrupt) };
    TRUE
}

unsafe extern "C" fn dpc(interrupt: WDFINTERRUPT, _object: WDFOBJECT) {
    // SAFETY: a live interrupt.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfInterruptGetDevice, interrupt) };
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    if c.bugs & BUG_ALLOC_IN_DPC != 0 {
        // Allowed at DISPATCH_LEVEL, and counted.
        std::hint::black_box(vec![0u8; 32]);
    }
    let result = reg_read(c, REG_RESULT);
    let mut r: WDFREQUEST = core::ptr::null_mut();
    // SAFETY: the manual queue of this device.
    if unsafe {
        call_unsafe_wdf_function_binding!(WdfIoQueueRetrieveNextRequest, c.manual, &raw mut r)
    } != STATUS_SUCCESS
    {
        return;
    }
    let mut out: PVOID = core::ptr::null_mut();
    // SAFETY: a request the driver now owns.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestRetrieveOutputBuffer,
            r,
            4,
            &raw mut out,
            core::ptr::null_mut()
        )
    };
    if NT_SUCCESS(st) {
        // SAFETY: at least 4 writable bytes.
        unsafe { out.cast::<u32>().write_unaligned(result) };
        // SAFETY: completed once.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                r,
                STATUS_SUCCESS,
                4
            );
        };
    } else {
        // SAFETY: completed once.
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, r, st) };
    }
}

unsafe extern "C" fn cancel_pended(request: WDFREQUEST) {
    // SAFETY: the request is live while its cancel routine runs.
    let file = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request) };
    // SAFETY: its file object is live with it.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfFileObjectGetDevice, file) };
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    // SAFETY: the device's spin lock.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, c.lock) };
    if c.pended == request {
        c.pended = core::ptr::null_mut();
    }
    // SAFETY: as above.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, c.lock) };
    // SAFETY: the cancel routine owns the request now.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, STATUS_CANCELLED) };
}

#[expect(clippy::too_many_lines, reason = "one switch over the sample's IOCTLs")]
unsafe extern "C" fn io_control(
    queue: WDFQUEUE,
    request: WDFREQUEST,
    out_len: usize,
    in_len: usize,
    code: ULONG,
) {
    // SAFETY: a live queue.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueGetDevice, queue) };
    // SAFETY: the device's context.
    let c = unsafe { ctx(device) };
    let mut params = WDF_REQUEST_PARAMETERS::default();
    // SAFETY: a live request and struct.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetParameters, request, &raw mut params) };
    // SAFETY: a device control request's parameters are the DeviceIoControl member.
    let asked = unsafe { params.Parameters.DeviceIoControl.IoControlCode };
    assert_eq!(asked, code);
    match code {
        IOCTL_ECHO => {
            let (mut inp, mut out): (PVOID, PVOID) = (core::ptr::null_mut(), core::ptr::null_mut());
            // SAFETY: a live request.
            let a = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveInputBuffer,
                    request,
                    1,
                    &raw mut inp,
                    core::ptr::null_mut()
                )
            };
            // SAFETY: as above.
            let b = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveOutputBuffer,
                    request,
                    in_len,
                    &raw mut out,
                    core::ptr::null_mut()
                )
            };
            if !NT_SUCCESS(a) || !NT_SUCCESS(b) {
                // SAFETY: completed once.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfRequestComplete,
                        request,
                        STATUS_BUFFER_TOO_SMALL
                    );
                };
                return;
            }
            let _ = out_len;
            // SAFETY: buffered I/O: both point at the same system buffer of max(in, out) bytes.
            let data = unsafe { core::slice::from_raw_parts_mut(out.cast::<u8>(), in_len) };
            data.reverse();
            if c.bugs & BUG_IRQL != 0 {
                let mut old = 0;
                // SAFETY: raising is always allowed.
                unsafe { wdk_sim::inline::KeRaiseIrql(DISPATCH_LEVEL, &raw mut old) };
                let guid = GUID::default();
                // SAFETY: the bug under test: a PASSIVE_LEVEL method at DISPATCH_LEVEL.
                let _ = unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfDeviceCreateDeviceInterface,
                        device,
                        &raw const guid,
                        core::ptr::null()
                    )
                };
            }
            // SAFETY: completed once (twice under the bug being tested).
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestCompleteWithInformation,
                    request,
                    STATUS_SUCCESS,
                    in_len as u64
                );
            };
            if c.bugs & BUG_DOUBLE_COMPLETE != 0 {
                // SAFETY: the bug under test.
                unsafe {
                    call_unsafe_wdf_function_binding!(WdfRequestComplete, request, STATUS_SUCCESS);
                };
            }
        }
        IOCTL_KICK => {
            let mut inp: PVOID = core::ptr::null_mut();
            // SAFETY: a live request.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveInputBuffer,
                    request,
                    4,
                    &raw mut inp,
                    core::ptr::null_mut()
                )
            };
            if NT_SUCCESS(st) {
                // SAFETY: 4 readable bytes.
                reg_write(c, REG_DATA, unsafe { inp.cast::<u32>().read_unaligned() });
                reg_write(c, REG_KICK, 1);
            }
            // SAFETY: completed once.
            unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, st) };
        }
        IOCTL_WAIT => {
            // SAFETY: a request the driver owns and the device's manual queue.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(WdfRequestForwardToIoQueue, request, c.manual)
            };
            if !NT_SUCCESS(st) {
                // SAFETY: still ours after a failed forward.
                unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, st) };
            }
        }
        IOCTL_PEND => {
            // SAFETY: the device's spin lock.
            unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, c.lock) };
            c.pended = request;
            let st = if c.bugs & BUG_LEAK_PEND != 0 {
                STATUS_SUCCESS
            } else {
                // SAFETY: a request the driver owns.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfRequestMarkCancelableEx,
                        request,
                        Some(cancel_pended)
                    )
                }
            };
            if st == STATUS_CANCELLED {
                c.pended = core::ptr::null_mut();
            }
            // SAFETY: as above.
            unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, c.lock) };
            if st == STATUS_CANCELLED {
                // SAFETY: cancelled before it was marked: the driver completes it.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfRequestComplete,
                        request,
                        STATUS_CANCELLED
                    );
                };
            }
            if c.bugs & BUG_REFERENCE_LEAK != 0 {
                // SAFETY: the bug under test: a reference never dropped.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfObjectReferenceActual,
                        c.lock.cast(),
                        core::ptr::null_mut(),
                        0,
                        core::ptr::null_mut()
                    );
                };
            }
        }
        IOCTL_LATER => {
            // Completed by a one-shot timer 20 ms from now.
            // SAFETY: the device's spin lock.
            unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, c.lock) };
            c.later = request;
            // SAFETY: as above.
            unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, c.lock) };
            // SAFETY: the device's timer; WDF_REL_TIMEOUT_IN_MS(20).
            let _ =
                unsafe { call_unsafe_wdf_function_binding!(WdfTimerStart, c.timer, -20 * 10_000) };
        }
        IOCTL_DEFER => {
            // Finished at PASSIVE_LEVEL by the work item (the pattern for work a DPC or a cancel
            // routine cannot do).
            // SAFETY: the device's spin lock.
            unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, c.lock) };
            c.deferred = request;
            // SAFETY: as above.
            unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, c.lock) };
            // SAFETY: the device's work item; enqueue is allowed at DISPATCH_LEVEL and below.
            unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemEnqueue, c.work) };
        }
        IOCTL_FILL => {
            // OUT_DIRECT: fill the caller's pages through the MDL's system address.
            let mut mdl: PMDL = core::ptr::null_mut();
            // SAFETY: a live request.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveOutputWdmMdl,
                    request,
                    &raw mut mdl
                )
            };
            let mut out: PVOID = core::ptr::null_mut();
            // SAFETY: as above.
            let st2 = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveOutputBuffer,
                    request,
                    1,
                    &raw mut out,
                    core::ptr::null_mut()
                )
            };
            if NT_SUCCESS(st) && NT_SUCCESS(st2) && !mdl.is_null() {
                // SAFETY: the locked caller buffer of out_len bytes.
                unsafe { core::ptr::write_bytes(out.cast::<u8>(), 0xA5, out_len) };
            }
            // SAFETY: completed once.
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestCompleteWithInformation,
                    request,
                    st,
                    out_len as u64
                );
            };
        }
        IOCTL_PURGE_WAITERS => {
            // SAFETY: the device's manual queue; the callback is a plain function.
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfIoQueuePurge,
                    c.manual,
                    Some(purged),
                    core::ptr::null_mut()
                );
            };
            // SAFETY: completed once.
            unsafe {
                call_unsafe_wdf_function_binding!(WdfRequestComplete, request, STATUS_SUCCESS);
            };
        }
        IOCTL_INPUT_MDL => {
            let mut mdl: PMDL = core::ptr::null_mut();
            // SAFETY: a live request.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveInputWdmMdl,
                    request,
                    &raw mut mdl
                )
            };
            let ok = NT_SUCCESS(st) && !mdl.is_null();
            // SAFETY: completed once.
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestCompleteWithInformation,
                    request,
                    st,
                    if ok { in_len as u64 } else { 0 }
                );
            };
        }
        _ => {
            // SAFETY: completed once.
            unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestComplete,
                    request,
                    STATUS_INVALID_DEVICE_REQUEST
                );
            };
        }
    }
    if c.bugs & BUG_RAISED_RETURN != 0 {
        let mut old = 0;
        // SAFETY: the bug under test: returning from a callback at DISPATCH_LEVEL.
        unsafe { wdk_sim::inline::KeRaiseIrql(DISPATCH_LEVEL, &raw mut old) };
    }
}

// ---- the harness ----

struct Rig {
    host: Option<Host>,
    node: DevNode,
    m: Machine,
}

/// Every test runs in both execution modes.
const MODES: [Mode; 2] = [Mode::Threaded, Mode::Deterministic { seed: 0x5EED }];

fn rig(mode: Mode, bugs: u32) -> Rig {
    rig_with(mode, bugs, InterruptResources::Msi(1))
}

fn rig_with(mode: Mode, bugs: u32, ints: InterruptResources) -> Rig {
    let m = Machine::with_profile(Profile::VERIFIER);
    let dev = Arc::new(EchoDevice {
        bugs,
        line: ints == InterruptResources::Line,
        kicked: AtomicBool::new(false),
        regs: Default::default(),
        bus: OnceLock::new(),
        acked_by: std::sync::Mutex::new(None),
    });
    let (att, device_bus) = m.attach(dev.clone());
    let _ = dev.bus.set(device_bus);
    let host = Host::load_with(&m, driver_entry, mode).expect("DriverEntry");
    let node = host.add_device(&att, ints).expect("AddDevice");
    host.start(&node).expect("start");
    Rig {
        host: Some(host),
        node,
        m,
    }
}

impl Rig {
    const fn host(&self) -> &Host {
        self.host.as_ref().unwrap()
    }
    /// Remove and unload; the machine must have no leaks left.
    fn finish(mut self) {
        let h = self.host.take().unwrap();
        h.remove(&self.node).expect("remove");
        h.unload().expect("unload");
        assert_eq!(self.m.leaks().unwrap(), Vec::<String>::new());
        assert!(self.m.bugcheck().is_none());
    }
}

const T: Duration = Duration::from_secs(5);

#[test]
fn ioctl_round_trips() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for n in 1..=20usize {
            let input: Vec<u8> = (0..n as u8).collect();
            let out = p.ioctl(&h, IOCTL_ECHO, &input, n).unwrap();
            assert_eq!(out.status, STATUS_SUCCESS);
            assert_eq!(out.information, n);
            let mut want = input.clone();
            want.reverse();
            assert_eq!(out.output, want);
        }
        let short = p.ioctl(&h, IOCTL_ECHO, &[1, 2, 3], 1).unwrap();
        assert_eq!(
            short.status, STATUS_BUFFER_TOO_SMALL,
            "a short output buffer is refused"
        );
        assert_eq!(
            p.ioctl(&h, ctl(0x8FF, 0), &[], 0).unwrap().status,
            STATUS_INVALID_DEVICE_REQUEST
        );
        // OUT_DIRECT into the caller's pages.
        let buf = p.alloc(8192);
        let pend = p.ioctl_with_buffer(&h, IOCTL_FILL, &[], buf, 8192).unwrap();
        assert_eq!(pend.wait(T).unwrap().status, STATUS_SUCCESS);
        let mut got = vec![0u8; 8192];
        r.m.cpu_read(buf, &mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0xA5));
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn interrupts_reach_the_isr_and_the_dpc_completes_the_waiter() {
    for mode in MODES {
        for ints in [InterruptResources::Msi(1), InterruptResources::Line] {
            let r = rig_with(mode, 0, ints);
            let p = r.host().process();
            let h = p.open(&r.node).unwrap();
            for v in [5u32, 7, 1000] {
                let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
                assert!(
                    wait.wait(Duration::from_millis(20)).is_none(),
                    "parked until the interrupt"
                );
                assert_eq!(
                    p.ioctl(&h, IOCTL_KICK, &v.to_le_bytes(), 0).unwrap().status,
                    STATUS_SUCCESS
                );
                let done = wait.wait(T).expect("completed by the DPC");
                assert_eq!((done.status, done.information), (STATUS_SUCCESS, 4));
                assert_eq!(done.output, (v * 2 + 1).to_le_bytes());
            }
            p.close(h).unwrap();
            r.finish();
        }
    }
}

#[test]
fn the_cpu_that_kicks_a_device_steps_it_and_takes_its_interrupt_before_returning() {
    for ints in [InterruptResources::Msi(1), InterruptResources::Line] {
        let r = rig_with(Mode::Threaded, DEV_STEPPED, ints);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for v in [3u32, 9] {
            let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            assert_eq!(
                p.ioctl(&h, IOCTL_KICK, &v.to_le_bytes(), 0).unwrap().status,
                STATUS_SUCCESS
            );
            // The device has no thread: only the KICK's CPU, stepping it once the dispatch
            // routine returned, can have done the work, taken the interrupt and run the DPC
            // that completes the waiter, all before the KICK returned.
            let done = wait
                .wait(Duration::ZERO)
                .expect("completed within the KICK's system call");
            assert_eq!(
                (done.status, done.output),
                (STATUS_SUCCESS, (v * 2 + 1).to_le_bytes().to_vec())
            );
        }
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn an_interrupt_raised_while_an_application_thread_waits_is_taken_on_that_thread() {
    for ints in [InterruptResources::Msi(1), InterruptResources::Line] {
        let m = Machine::with_profile(Profile::VERIFIER);
        let dev = Arc::new(EchoDevice::new(0, ints == InterruptResources::Line));
        let (att, device_bus) = m.attach(dev.clone());
        let _ = dev.bus.set(device_bus);
        let host = Host::load_with(&m, driver_entry, Mode::Threaded).expect("DriverEntry");
        let node = host.add_device(&att, ints).expect("AddDevice");
        host.start(&node).expect("start");
        let p = host.process();
        let h = p.open(&node).unwrap();
        let me = std::thread::current().name().map(str::to_owned);
        for v in [3u32, 11] {
            let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            // The device finishes on its own a little later (as a device's thread does, off
            // every CPU), while this thread is blocked in the wait.
            dev.regs[1].store(v, Ordering::SeqCst);
            let d = Arc::clone(&dev);
            let device = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                d.compute();
            });
            let done = wait.wait(T).expect("completed by the DPC");
            device.join().unwrap();
            assert_eq!(
                (done.status, done.output),
                (STATUS_SUCCESS, (v * 2 + 1).to_le_bytes().to_vec())
            );
            assert_eq!(
                *dev.acked_by.lock().unwrap(),
                me,
                "the waiting thread, an idle CPU, ran the ISR (not the interrupt CPU)"
            );
        }
        // With no thread waiting, the interrupt CPU takes the interrupt.
        dev.regs[1].store(5, Ordering::SeqCst);
        dev.compute();
        let deadline = std::time::Instant::now() + T;
        while dev.regs[4].load(Ordering::SeqCst) != 0 {
            assert!(std::time::Instant::now() < deadline, "never acknowledged");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            dev.acked_by.lock().unwrap().as_deref(),
            Some("sim-interrupt-cpu")
        );
        p.close(h).unwrap();
        host.remove(&node).expect("remove");
        host.unload().expect("unload");
        assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
        assert!(m.bugcheck().is_none());
    }
}

#[test]
fn a_buffered_call_reuses_the_buffers_of_completed_calls_and_shows_only_what_was_returned() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let user = |r: &Rig| r.m.user_allocations();
        let _ = p.ioctl(&h, IOCTL_ECHO, &[1; 8], 8).unwrap();
        let before = user(&r);
        for n in 1..=50u8 {
            // An output buffer longer than the reply: the reused buffer holds an earlier
            // call's bytes beyond it, and only the `Information` bytes come back.
            let input: Vec<u8> = (0..8).map(|i| n.wrapping_mul(8).wrapping_add(i)).collect();
            let out = p.ioctl(&h, IOCTL_ECHO, &input, 16).unwrap();
            assert_eq!((out.status, out.information), (STATUS_SUCCESS, 8));
            assert_eq!(out.output, input.iter().rev().copied().collect::<Vec<u8>>());
        }
        assert_eq!(
            user(&r),
            before,
            "no user memory allocated or freed per call"
        );
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn a_level_interrupt_still_asserted_after_the_isr_interrupts_again() {
    for mode in MODES {
        let m = Machine::with_profile(Profile::VERIFIER);
        let dev = Arc::new(EchoDevice::new(DEV_CAUSE_DURING_ACK, true));
        let (att, device_bus) = m.attach(dev.clone());
        let _ = dev.bus.set(device_bus);
        let host = Host::load_with(&m, driver_entry, mode).expect("DriverEntry");
        let node = host
            .add_device(&att, InterruptResources::Line)
            .expect("AddDevice");
        host.start(&node).expect("start");
        let r = Rig {
            host: Some(host),
            node,
            m,
        };
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for v in [3u32, 4, 5] {
            let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            assert_eq!(
                p.ioctl(&h, IOCTL_KICK, &v.to_le_bytes(), 0).unwrap().status,
                STATUS_SUCCESS
            );
            assert_eq!(wait.wait(T).expect("completed").status, STATUS_SUCCESS);
            // The cause raised during the first acknowledgement kept the line up: the
            // controller delivers it again and the ISR acknowledges it too. With edge-only
            // delivery it would stay pending and the line asserted for good.
            let deadline = std::time::Instant::now() + T;
            while dev.regs[4].load(Ordering::SeqCst) != 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the second cause was never acknowledged"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn a_completed_request_gives_its_buffers_back_to_the_process() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let before = p.allocations();
        // A pending request keeps its input and output buffers: the driver may still use them.
        let wait = p.ioctl_async(&h, IOCTL_WAIT, &[7], 4).unwrap();
        assert_eq!(p.allocations(), before + 2);
        for n in 1..=200usize {
            let out = p.ioctl(&h, IOCTL_ECHO, &[1; 8], 8).unwrap();
            assert_eq!((out.status, n), (STATUS_SUCCESS, n));
        }
        assert_eq!(
            p.allocations(),
            before + 2,
            "200 completed requests leave nothing behind"
        );
        wait.cancel().unwrap();
        let done = wait.wait(T).unwrap();
        assert_eq!(done.status, STATUS_CANCELLED);
        assert_eq!(p.allocations(), before);
        assert_eq!(
            wait.wait(T),
            Some(done),
            "a second wait sees the same result"
        );
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn cancellation_on_queue_and_in_the_driver() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
        let pend = p.ioctl_async(&h, IOCTL_PEND, &[], 0).unwrap();
        wait.cancel().unwrap();
        pend.cancel().unwrap();
        assert_eq!(
            wait.wait(T).unwrap().status,
            STATUS_CANCELLED,
            "cancelled in the manual queue"
        );
        assert_eq!(
            pend.wait(T).unwrap().status,
            STATUS_CANCELLED,
            "cancelled by EvtRequestCancel"
        );
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn closing_a_handle_or_killing_the_process_cancels_its_requests() {
    for mode in MODES {
        let r = rig(mode, 0);
        for kill in [false, true] {
            let p = r.host().process();
            let h = p.open(&r.node).unwrap();
            let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            let pend = p.ioctl_async(&h, IOCTL_PEND, &[], 0).unwrap();
            if kill {
                let buf = p.alloc(4096);
                p.kill().unwrap();
                let mut b = [0u8; 4];
                assert!(
                    r.m.cpu_read(buf, &mut b).is_err(),
                    "the process's memory is gone"
                );
            } else {
                p.close(h).unwrap();
            }
            assert_eq!(wait.wait(T).unwrap().status, STATUS_CANCELLED);
            assert_eq!(pend.wait(T).unwrap().status, STATUS_CANCELLED);
        }
        r.finish();
    }
}

#[test]
fn stop_and_start_twenty_times() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for _ in 0..20 {
            r.host().stop(&r.node).unwrap();
            r.host().start(&r.node).unwrap();
            assert_eq!(
                p.ioctl(&h, IOCTL_ECHO, &[1, 2], 2).unwrap().output,
                vec![2, 1]
            );
            let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            assert_eq!(
                p.ioctl(&h, IOCTL_KICK, &3u32.to_le_bytes(), 0)
                    .unwrap()
                    .status,
                STATUS_SUCCESS
            );
            assert_eq!(wait.wait(T).unwrap().output, 7u32.to_le_bytes());
        }
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn surprise_removal_with_requests_pending() {
    for mode in MODES {
        let mut r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
        let pend = p.ioctl_async(&h, IOCTL_PEND, &[], 0).unwrap();
        let host = r.host.take().unwrap();
        host.surprise_remove(&r.node).unwrap();
        assert_eq!(wait.wait(T).unwrap().status, STATUS_CANCELLED);
        assert_eq!(pend.wait(T).unwrap().status, STATUS_CANCELLED);
        // The handle outlives the device: new requests fail, closing still works.
        assert_eq!(
            p.ioctl(&h, IOCTL_ECHO, &[1], 1).unwrap().status,
            STATUS_DEVICE_REMOVED
        );
        p.close(h).unwrap();
        host.unload().unwrap();
        assert_eq!(r.m.leaks().unwrap(), Vec::<String>::new());
        assert!(r.m.bugcheck().is_none());
    }
}

#[test]
fn d3_holds_requests_in_power_managed_queues() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        r.host().power_down(&r.node).unwrap();
        let echo = p.ioctl_async(&h, IOCTL_ECHO, &[9, 8], 2).unwrap();
        assert!(
            echo.wait(Duration::from_millis(100)).is_none(),
            "held while in D3"
        );
        r.host().power_up(&r.node).unwrap();
        assert_eq!(echo.wait(T).unwrap().output, vec![8, 9]);
        p.close(h).unwrap();
        r.finish();
    }
}

// ---- each check fires on a buggy driver ----

#[test]
fn a_leaked_request_is_caught_at_removal() {
    for mode in MODES {
        let mut r = rig(mode, BUG_LEAK_PEND);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let _pend = p.ioctl_async(&h, IOCTL_PEND, &[], 0).unwrap();
        let host = r.host.take().unwrap();
        let e = host.remove(&r.node).unwrap_err();
        let HostError::BugCheck(b) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (b.code, b.params[0]),
            (0xC4, wdf::wdf_rule::REQUEST_LEAKED),
            "{b}"
        );
    }
}

#[test]
fn without_secure_open_a_name_below_the_device_escapes_its_dacl() {
    use wdk_sim::wdf::host::Identity;
    let r = rig(Mode::Threaded, 0);
    r.host()
        .set_security(&r.node, "D:P(A;;GA;;;SY)(A;;GA;;;BA)")
        .unwrap();
    let user = r.host().process_as(Identity::User);
    assert!(matches!(
        user.open(&r.node),
        Err(HostError::Status(STATUS_ACCESS_DENIED))
    ));
    // The sample driver does not set FILE_DEVICE_SECURE_OPEN: the I/O manager leaves names
    // below the device to the driver, and this one checks nothing.
    let h = user
        .open_name(&r.node, "x")
        .expect("the hole FILE_DEVICE_SECURE_OPEN closes");
    user.close(h).unwrap();
    assert!(
        r.host().set_security(&r.node, "O:BAG:SY").is_err(),
        "unsupported SDDL"
    );
    r.finish();
}

#[test]
fn a_work_item_runs_at_passive_level() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for _ in 0..3 {
            let pend = p.ioctl_async(&h, IOCTL_DEFER, &[], 0).unwrap();
            let done = pend.wait(T).expect("the work item ran");
            assert_eq!((done.status, done.information), (STATUS_SUCCESS, 100));
        }
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn a_timer_fires_once_at_dispatch_level_after_its_due_time() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            let pend = p.ioctl_async(&h, IOCTL_LATER, &[], 0).unwrap();
            let done = pend.wait(T).expect("the timer fired");
            assert!(
                t0.elapsed() >= Duration::from_millis(20),
                "not before it is due"
            );
            assert_eq!(
                (done.status, done.information),
                (STATUS_SUCCESS, 202),
                "completed by the timer callback at DISPATCH_LEVEL"
            );
        }
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn process_rundown_waits_for_requests_of_handles_closed_before() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        // Completed by the timer 20 ms from now, into the process's output buffer; closing
        // the handle does not cancel it (the driver holds it, not cancelable).
        let later = p.ioctl_async(&h, IOCTL_LATER, &[], 256).unwrap();
        p.close(h).unwrap();
        p.kill().unwrap();
        // The address space went away only after the request completed (Windows deletes it
        // after the threads' I/O has run down, whichever handle the I/O was sent on).
        let done = later
            .wait(Duration::ZERO)
            .expect("completed before the process's memory was released");
        assert_eq!(done.status, STATUS_SUCCESS);
        r.finish();
    }
}

#[test]
fn a_request_never_completed_hangs_process_rundown() {
    // The buggy driver does not make the pended request cancelable, so killing the process
    // cancels nothing and the request stays pending: Windows would keep the process (and the
    // request's locked pages) alive forever.
    let m = Machine::new(Config {
        profile: Profile::VERIFIER,
        rundown_limit: Duration::from_millis(200),
        ..Config::default()
    });
    let dev = Arc::new(EchoDevice::new(BUG_LEAK_PEND, false));
    let (att, device_bus) = m.attach(dev.clone());
    let _ = dev.bus.set(device_bus);
    let host = Host::load_with(&m, driver_entry, Mode::Threaded).expect("DriverEntry");
    let node = host.add_device(&att, InterruptResources::Msi(1)).unwrap();
    host.start(&node).unwrap();
    let p = host.process();
    let h = p.open(&node).unwrap();
    let _pend = p.ioctl_async(&h, IOCTL_PEND, &[], 0).unwrap();
    let e = p.kill().unwrap_err();
    let HostError::BugCheck(b) = e else {
        panic!("{e}")
    };
    assert_eq!(
        (b.code, b.params[0]),
        (0xC4, wdf::wdf_rule::RUNDOWN_HUNG),
        "{b}"
    );
}

#[test]
fn a_double_completion_is_caught() {
    for mode in MODES {
        let r = rig(mode, BUG_DOUBLE_COMPLETE);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let e = p.ioctl(&h, IOCTL_ECHO, &[1], 1).unwrap_err();
        let HostError::BugCheck(b) = e else {
            panic!("{e}")
        };
        // The KMDF verifier's break for a request that is not driver-owned
        // (VerifyRequestIsDriverOwned): the second completion is refused and the run stops.
        assert_eq!(
            (b.code, b.params[0], b.params[3]),
            (
                wdf::validate::KMODE_EXCEPTION_NOT_HANDLED,
                wdf::validate::STATUS_BREAKPOINT_CODE,
                wdf::validate::verifier_check::REQUEST_NOT_DRIVER_OWNED
            ),
            "{b}"
        );
    }
}

#[test]
fn an_allocation_in_the_isr_stops_the_machine_as_verifier_does() {
    for mode in MODES {
        let r = rig(mode, BUG_ALLOC_IN_ISR);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        // The KICK's interrupt reaches the ISR during the call or just after it (the next
        // request lets a deterministic machine deliver it).
        let _ = p.ioctl(&h, IOCTL_KICK, &5u32.to_le_bytes(), 0);
        let _ = p.ioctl(&h, IOCTL_ECHO, &[1], 1);
        let deadline = std::time::Instant::now() + T;
        while r.m.bugcheck().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let b = r.m.bugcheck().expect("the machine stops");
        assert_eq!(
            (b.code, b.params),
            (0xC4, [0x02, 9, 0x200, 64]),
            "DRIVER_VERIFIER_DETECTED_VIOLATION: non-paged pool above DISPATCH_LEVEL \
             (IRQL, NonPagedPoolNx, bytes): {b}"
        );
    }
}

#[test]
fn the_machine_counts_what_the_dpc_allocates() {
    for (bugs, want) in [(0, 0), (BUG_ALLOC_IN_DPC, 3)] {
        let r = rig(Mode::Threaded, bugs);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        for v in [5u32, 7, 1000] {
            let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            assert_eq!(
                p.ioctl(&h, IOCTL_KICK, &v.to_le_bytes(), 0).unwrap().status,
                STATUS_SUCCESS
            );
            assert_eq!(
                wait.wait(T).expect("completed by the DPC").status,
                STATUS_SUCCESS
            );
        }
        assert_eq!(
            r.m.dpc_allocations(),
            want,
            "one allocation per DPC with the bug"
        );
        p.close(h).unwrap();
        r.finish();
    }
}

#[test]
fn an_irql_violation_is_caught() {
    for mode in MODES {
        let r = rig(mode, BUG_IRQL);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let e = p.ioctl(&h, IOCTL_ECHO, &[1], 1).unwrap_err();
        let HostError::BugCheck(b) = e else {
            panic!("{e}")
        };
        assert_eq!(b.code, 0xA, "IRQL_NOT_LESS_OR_EQUAL: {b}");
    }
}

#[test]
fn a_system_call_that_bug_checks_leaves_its_thread_as_it_was() {
    for mode in MODES {
        let r = rig(mode, BUG_IRQL);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        // The call runs on this thread and stops at DISPATCH_LEVEL inside the driver's callback.
        assert!(matches!(
            p.ioctl(&h, IOCTL_ECHO, &[1], 1),
            Err(HostError::BugCheck(_))
        ));
        // This thread is the application again: not on the stopped machine, at no IRQL, in no
        // driver callback, so what it allocates is nobody's driver allocation. (The call
        // stopped at DISPATCH_LEVEL.)
        // SAFETY: reads this thread's IRQL.
        assert_eq!(unsafe { ntddk::KeGetCurrentIrql() }, 0);
        let counted = r.m.dispatch_allocations();
        let mut mine: Vec<Vec<u8>> = Vec::new();
        for n in 0..8 {
            mine.push(vec![0u8; 64 << n]);
        }
        assert_eq!(mine.iter().map(Vec::len).sum::<usize>(), 64 * 255);
        assert_eq!(r.m.dispatch_allocations(), counted);
        // And it makes system calls to another machine as before.
        let r2 = rig(mode, 0);
        let p2 = r2.host().process();
        let h2 = p2.open(&r2.node).unwrap();
        let out = p2.ioctl(&h2, IOCTL_ECHO, &[1, 2, 3], 3).unwrap();
        assert_eq!((out.status, out.output), (STATUS_SUCCESS, vec![3, 2, 1]));
        p2.close(h2).unwrap();
        r2.finish();
    }
}

#[test]
fn a_callback_returning_at_another_irql_is_caught() {
    for mode in MODES {
        let r = rig(mode, BUG_RAISED_RETURN);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let e = p.ioctl(&h, IOCTL_ECHO, &[1], 1).unwrap_err();
        let HostError::BugCheck(b) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (b.code, b.params[0], b.params[1], b.params[2]),
            (0x10D, 0xE, 0, 2),
            "{b}"
        );
    }
}

#[test]
fn an_object_leaked_at_unload_is_caught() {
    for mode in MODES {
        let mut r = rig(mode, BUG_REFERENCE_LEAK);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let pend = p.ioctl_async(&h, IOCTL_PEND, &[], 0).unwrap();
        pend.cancel().unwrap();
        let _ = pend.wait(T);
        p.close(h).unwrap();
        let host = r.host.take().unwrap();
        host.remove(&r.node).unwrap();
        // The referenced spin lock outlives its parent's deletion; the outstanding reference is
        // reported when the driver unloads.
        let e = host.unload().unwrap_err();
        let HostError::BugCheck(b) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (b.code, b.params[0]),
            (0xC4, wdf::wdf_rule::OBJECTS_LEAKED),
            "{b}"
        );
    }
}

#[test]
fn dma_resources_kept_after_release_are_caught() {
    for mode in MODES {
        let r = rig(mode, BUG_KEEP_ADAPTER);
        let e = r.host().stop(&r.node).unwrap_err();
        let HostError::BugCheck(b) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (b.code, b.params[0]),
            (0xC4, wdf::wdf_rule::DMA_AFTER_RELEASE),
            "{b}"
        );
    }
}

#[test]
fn a_deterministic_seed_replays_exactly() {
    let scenario = |seed: u64| {
        let r = rig(Mode::Deterministic { seed }, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let mut seen = Vec::new();
        for v in 0..30u32 {
            let w = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
            assert_eq!(
                p.ioctl(&h, IOCTL_KICK, &v.to_le_bytes(), 0).unwrap().status,
                STATUS_SUCCESS
            );
            let e = p.ioctl_async(&h, IOCTL_ECHO, &[v as u8, 1], 2).unwrap();
            seen.push(w.wait(T).unwrap().output);
            seen.push(e.wait(T).unwrap().output);
        }
        p.close(h).unwrap();
        let trace = r.host().trace();
        r.finish();
        (trace, seen)
    };
    let (a, seen_a) = scenario(1);
    let (b, seen_b) = scenario(1);
    assert_eq!(a, b, "same seed, same schedule");
    assert_eq!(seen_a, seen_b);
    let (c, seen_c) = scenario(2);
    assert_ne!(a, c, "another seed, another schedule");
    assert_eq!(seen_a, seen_c, "the results do not depend on the schedule");
}

#[test]
fn a_failed_start_releases_what_it_took() {
    for mode in MODES {
        let m = Machine::with_profile(Profile::VERIFIER);
        let dev = Arc::new(EchoDevice::new(BUG_FAIL_START, false));
        let (att, device_bus) = m.attach(dev.clone());
        let _ = dev.bus.set(device_bus);
        let host = Host::load_with(&m, driver_entry, mode).unwrap();
        let node = host.add_device(&att, InterruptResources::Msi(1)).unwrap();
        assert_eq!(
            host.start(&node).unwrap_err(),
            HostError::Status(STATUS_DEVICE_HARDWARE_ERROR)
        );
        host.remove(&node).unwrap();
        host.unload().unwrap();
        assert_eq!(
            m.leaks().unwrap(),
            Vec::<String>::new(),
            "the adapter and buffer were released"
        );
        assert!(m.bugcheck().is_none());
    }
}

#[test]
fn an_asynchronous_purge_cancels_waiters_and_reports_idle() {
    for mode in MODES {
        let r = rig(mode, 0);
        let p = r.host().process();
        let h = p.open(&r.node).unwrap();
        let before = PURGED.load(Ordering::SeqCst);
        let wait = p.ioctl_async(&h, IOCTL_WAIT, &[], 4).unwrap();
        assert_eq!(
            p.ioctl(&h, IOCTL_PURGE_WAITERS, &[], 0).unwrap().status,
            STATUS_SUCCESS
        );
        assert_eq!(wait.wait(T).unwrap().status, STATUS_CANCELLED);
        assert!(PURGED.load(Ordering::SeqCst) > before, "PurgeComplete ran");
        // An IN_DIRECT request's input buffer gets an MDL on demand, freed with the request.
        let got = p.ioctl(&h, IOCTL_INPUT_MDL, &[1, 2, 3, 4, 5], 0).unwrap();
        assert_eq!((got.status, got.information), (STATUS_SUCCESS, 5));
        p.close(h).unwrap();
        r.finish();
    }
}
