//! wdk-sim part 2: the Kernel-Mode Driver Framework (KMDF 1.33) as the driver sees it.
//!
//! What it owns:
//! - [`types`]: the mirrored WDF types (re-exported at the crate root, as in wdk-sys);
//! - [`functions`]: the WDF methods, called with [`crate::call_unsafe_wdf_function_binding!`]
//!   exactly as with wdk-sys (method name, then the arguments without `DriverGlobals`);
//! - the object model: handles, parent/child trees, cleanup then destroy callbacks, typed
//!   context memory, deletion with the parent, and a leak report at unload;
//! - I/O queues and requests (sequential, parallel, manual; power-managed or not), buffered and
//!   direct transfers, cancellation;
//! - interrupts delivered from the device model to `EvtInterruptIsr` at DIRQL under the
//!   interrupt's spin lock, and `EvtInterruptDpc` at `DISPATCH_LEVEL`, on an interrupt CPU;
//! - [`host`]: the harness that plays the PnP manager, the power manager and user-mode
//!   processes with handles.
//!
//! Violations of KMDF rules stop the machine with the bug check KMDF Verifier raises where one
//! is documented (0x10D `WDF_VIOLATION`) and with a simulator rule otherwise; both are listed in
//! `docs/sim-fidelity.md`.
//!
//! # Safety story
//! The WDF methods are `unsafe fn`s because they take raw pointers from the driver (configs,
//! out-parameters, context type infos); each one reads or writes exactly the structure its
//! C prototype names, after checking the pointer is non-null. Handles are opaque numbers that the
//! simulator never dereferences: every handle is looked up in the object table, so a stale or
//! wrong-type handle is a bug check, not undefined behaviour. Driver callbacks are called
//! without the machine lock held.

#![expect(
    clippy::doc_markdown,
    reason = "the docs quote C prototypes and IRQL names (PASSIVE_LEVEL, DIRQL) verbatim"
)]
#![expect(
    clippy::too_long_first_doc_paragraph,
    reason = "each method's first paragraph is its C prototype, which is long"
)]

pub mod functions;
pub mod host;
pub mod status;
pub mod types;
pub mod validate;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use crate::NTSTATUS;
use crate::bugcheck::BugCheck;
use crate::fasthash::FastMap;
use crate::types::{KIRQL, KSPIN_LOCK, PVOID};
use types::{
    _GUID, CM_PARTIAL_RESOURCE_DESCRIPTOR, PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    PFN_WDF_OBJECT_CONTEXT_DESTROY, PFN_WDF_REQUEST_CANCEL, WDF_DRIVER_CONFIG,
    WDF_FILEOBJECT_CONFIG, WDF_INTERRUPT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_PNPPOWER_EVENT_CALLBACKS,
};

/// Calls a WDF method with wdk-sys's syntax: `call_unsafe_wdf_function_binding!(WdfName, args…)`.
/// The call must sit inside `unsafe {}` (the methods are `unsafe fn`), a wrong argument count or
/// type fails to compile, and an unknown method name fails to resolve — as with wdk-sys, whose
/// macro reads the method from `WdfFunctions` and prepends `WdfDriverGlobals`.
#[macro_export]
macro_rules! call_unsafe_wdf_function_binding {
    ($name:ident $(, $arg:expr)* $(,)?) => {{
        // The framework's own allocations are not the driver's (see `wdk_sim::DriverHeap`).
        let _kernel = $crate::heap::KernelEntry::new();
        $crate::wdf::functions::$name($($arg),*)
    }};
}

/// `WdfDriverGlobals` (wdk-sys: an `extern` static the WDK's stub library defines): the
/// framework's globals of the driver, set by `WdfDriverCreate`. wdk-sim's methods do not read
/// it (each machine knows its driver); a driver may. With several machines in one process (the
/// tests), it holds the globals of the driver created last; each is leaked, so a pointer read
/// from it never dangles.
#[expect(non_upper_case_globals, reason = "wdk-sys's name")]
pub static mut WdfDriverGlobals: types::PWDF_DRIVER_GLOBALS = core::ptr::null_mut();

/// `WDF_VIOLATION`.
pub const WDF_VIOLATION: u32 = 0x10D;

/// Simulator rules of the KMDF layer (bug check 0xC4 with these as parameter 1), for checks
/// KMDF Verifier makes without a documented 0x10D code.
pub mod wdf_rule {
    /// A request was still outstanding when the device's hardware was released or removed.
    pub const REQUEST_LEAKED: u64 = 0x5201;
    /// Framework objects were alive when the driver unloaded.
    pub const OBJECTS_LEAKED: u64 = 0x5202;
    /// A DMA resource was still held after `EvtDeviceReleaseHardware`.
    pub const DMA_AFTER_RELEASE: u64 = 0x5203;
    /// A `WDFDEVICE_INIT` used after `WdfDeviceCreate` consumed it, or never given by the
    /// framework; or `WdfDeviceCreate` before `WdfDriverCreate`.
    pub const BAD_DEVICE_INIT: u64 = 0x5205;
    /// A terminated process still had requests outstanding after the rundown limit: on Windows
    /// the process would hang (its locked pages pinned) until the driver completes them.
    pub const RUNDOWN_HUNG: u64 = 0x5206;
}

/// Base of handle values: kernel-looking addresses the simulator never dereferences.
const HANDLE_BASE: usize = 0xFFFF_B000_0000_0000;

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqState {
    /// Waiting in a queue (not yet presented to the driver).
    Queued,
    /// Owned by the driver.
    Presented,
}

/// The result a user thread waits for.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    pub(crate) done: Mutex<Option<(NTSTATUS, usize)>>,
    pub(crate) cv: Condvar,
    /// Interrupts handed to the thread waiting for this result, as to an idle CPU
    /// (`host::cpu::IdleCpus`); pushed with `done` held, so that a waiter that found none
    /// before it blocked on `cv` is woken for them.
    pub(crate) taken: Mutex<Vec<host::IrqEvent>>,
}

/// What kind of I/O a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqKind {
    Create,
    Ioctl {
        code: u32,
    },
    /// `IRP_MJ_READ` of `Length` bytes (the output buffer).
    Read,
    /// `IRP_MJ_WRITE` of `Length` bytes (the input buffer).
    Write,
}

/// A framework request.
#[derive(Debug)]
pub(crate) struct RequestData {
    pub(crate) kind: ReqKind,
    pub(crate) device: usize,
    pub(crate) file: usize,
    pub(crate) queue: Option<usize>,
    pub(crate) state: ReqState,
    pub(crate) in_len: usize,
    pub(crate) out_len: usize,
    /// Input buffer (system buffer for BUFFERED and DIRECT input).
    pub(crate) in_buf: usize,
    /// Output buffer as the driver sees it (the system buffer, or the user pages for DIRECT).
    pub(crate) out_buf: usize,
    /// The MDL of a DIRECT output buffer.
    pub(crate) out_mdl: usize,
    /// An MDL built on demand for the input buffer (`WdfRequestRetrieveInputWdmMdl`).
    pub(crate) in_mdl: usize,
    pub(crate) cancel: PFN_WDF_REQUEST_CANCEL,
    pub(crate) cancelled: bool,
    pub(crate) completion: Arc<Completion>,
    pub(crate) info: usize,
    /// The I/O manager's system buffer (pool), freed at completion.
    pub(crate) sys_buf: usize,
    /// The caller's output buffer (buffered I/O copies back into it).
    pub(crate) user_out: usize,
    /// `CTL_CODE` transfer method (0 buffered, 1 in-direct, 2 out-direct, 3 neither); for a
    /// read or write, 0 when the device does buffered I/O and 2 (read) or 1 (write) for direct.
    pub(crate) method: u32,
    /// The request's memory objects (`WdfRequestRetrieveInputMemory`, `…OutputMemory`), made on
    /// first use as children of the request, so that they go with its completion.
    pub(crate) memory: [usize; 2],
}

impl RequestData {
    pub(crate) const fn new(
        kind: ReqKind,
        device: usize,
        file: usize,
        completion: Arc<Completion>,
    ) -> Self {
        Self {
            kind,
            device,
            file,
            queue: None,
            state: ReqState::Queued,
            in_len: 0,
            out_len: 0,
            in_buf: 0,
            out_buf: 0,
            out_mdl: 0,
            in_mdl: 0,
            cancel: None,
            cancelled: false,
            completion,
            info: 0,
            sys_buf: 0,
            user_out: 0,
            method: 0,
            memory: [0; 2],
        }
    }
}

/// A framework queue.
#[derive(Debug)]
pub(crate) struct QueueData {
    pub(crate) config: crate::typed::NoDebug<WDF_IO_QUEUE_CONFIG>,
    pub(crate) device: usize,
    pub(crate) started: bool,
    pub(crate) power_managed: bool,
    pub(crate) waiting: VecDeque<usize>,
    pub(crate) presented: usize,
    /// False after a purge: new requests fail until the queue is started again.
    pub(crate) accepting: bool,
    /// `WdfIoQueueStop`/`Purge`'s callback, run when the driver owns no more requests of it.
    pub(crate) idle_callback: Option<(types::PFN_WDF_IO_QUEUE_STATE, usize)>,
}

/// A framework interrupt.
#[derive(Debug)]
pub(crate) struct InterruptData {
    pub(crate) config: WDF_INTERRUPT_CONFIG,
    pub(crate) device: usize,
    /// The interrupt spin lock's word. Shared, so that a CPU that found the interrupt keeps
    /// the word alive while it spins even if removal deletes the object meanwhile.
    pub(crate) lock: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(crate) message: u32,
    pub(crate) irql: KIRQL,
    pub(crate) connected: bool,
    pub(crate) dpc_queued: bool,
    pub(crate) held_irql: KIRQL,
}

/// A framework work item.
#[derive(Debug)]
pub(crate) struct WorkItemData {
    pub(crate) config: types::WDF_WORKITEM_CONFIG,
    /// Enqueued and not yet started (a second enqueue is ignored, as in KMDF).
    pub(crate) queued: bool,
    /// The callback is running.
    pub(crate) running: bool,
}

/// A framework timer.
#[derive(Debug)]
pub(crate) struct TimerData {
    pub(crate) config: types::WDF_TIMER_CONFIG,
    /// In the system's timer queue, due at this instant.
    pub(crate) due: Option<std::time::Instant>,
    /// The callback is running (on the interrupt CPU, at `DISPATCH_LEVEL`).
    pub(crate) running: bool,
}

/// A framework spin lock.
#[derive(Debug)]
pub(crate) struct SpinLockData {
    pub(crate) lock: Box<KSPIN_LOCK>,
    pub(crate) old_irql: KIRQL,
}

/// A framework device.
#[derive(Debug)]
pub(crate) struct DeviceData {
    pub(crate) pnp: WDF_PNPPOWER_EVENT_CALLBACKS,
    pub(crate) file: WDF_FILEOBJECT_CONFIG,
    pub(crate) pdo: usize,
    pub(crate) fdo: Box<crate::typed::NoDebug<crate::types::_DEVICE_OBJECT>>,
    pub(crate) slot: usize,
    pub(crate) interfaces: Vec<_GUID>,
    pub(crate) default_queue: Option<usize>,
    pub(crate) ioctl_queue: Option<usize>,
    /// The queues `WdfDeviceConfigureRequestDispatching` gave reads and writes.
    pub(crate) read_queue: Option<usize>,
    pub(crate) write_queue: Option<usize>,
    /// `WdfDeviceInitSetIoType`: how reads and writes reach the driver (`WDF_DEVICE_IO_TYPE`).
    pub(crate) io_type: i32,
    /// `WdfDeviceInitSetRequestAttributes`: the attributes of every request of the device.
    pub(crate) request_attributes: Option<types::WDF_OBJECT_ATTRIBUTES>,
    pub(crate) queues: Vec<usize>,
    pub(crate) interrupts: Vec<usize>,
    pub(crate) in_d0: bool,
    /// `EvtDeviceSelfManagedIoInit` has run (later starts call `…Restart`).
    pub(crate) self_managed_io: bool,
    pub(crate) failed: bool,
    /// The raw and translated resource lists of the current start.
    pub(crate) res_lists: Option<(usize, usize)>,
}

/// A framework memory object: a buffer the driver created (`WdfMemoryCreate`), or one of a
/// request's buffers (`WdfRequestRetrieveInputMemory`, `…OutputMemory`).
#[derive(Debug)]
pub(crate) struct MemoryData {
    pub(crate) buf: usize,
    pub(crate) len: usize,
    /// `IFxMemoryFlagReadOnly`: a write request's buffer, or a direct I/O control buffer
    /// (`FxRequestSystemBuffer::GetFlags`).
    pub(crate) read_only: bool,
    /// The pool block `WdfMemoryCreate` allocated (freed when the object is destroyed); 0 for
    /// a request's buffer, which the I/O manager owns.
    pub(crate) pool: usize,
    /// The request whose buffer this is (0 for `WdfMemoryCreate`'s).
    pub(crate) request: usize,
}

/// A framework string object: its characters, and the `UNICODE_STRING` that
/// `WdfStringGetUnicodeString` hands out, which points into them.
#[derive(Debug, Default)]
pub(crate) struct StringData {
    pub(crate) text: Vec<u16>,
}

/// A file object (one per open handle).
#[derive(Debug)]
pub(crate) struct FileData {
    pub(crate) device: usize,
}

/// The type-specific part of an object.
#[derive(Debug)]
pub(crate) enum Kind {
    Driver(WDF_DRIVER_CONFIG),
    Device(Box<DeviceData>),
    Queue(Box<QueueData>),
    Request(Box<RequestData>),
    Interrupt(Box<InterruptData>),
    SpinLock(Box<SpinLockData>),
    WorkItem(Box<WorkItemData>),
    Timer(Box<TimerData>),
    ResList(crate::typed::NoDebug<Box<[CM_PARTIAL_RESOURCE_DESCRIPTOR]>>),
    File(Box<FileData>),
    Memory(Box<MemoryData>),
    String(Box<StringData>),
    /// An object deleted while the driver still held a reference: only its name remains, until
    /// the last dereference (or the leak report at unload).
    Zombie(&'static str),
}

impl Kind {
    pub(crate) const fn name(&self) -> &'static str {
        match self {
            Self::Driver(_) => "WDFDRIVER",
            Self::Device(_) => "WDFDEVICE",
            Self::Queue(_) => "WDFQUEUE",
            Self::Request(_) => "WDFREQUEST",
            Self::Interrupt(_) => "WDFINTERRUPT",
            Self::SpinLock(_) => "WDFSPINLOCK",
            Self::WorkItem(_) => "WDFWORKITEM",
            Self::Timer(_) => "WDFTIMER",
            Self::ResList(_) => "WDFCMRESLIST",
            Self::File(_) => "WDFFILEOBJECT",
            Self::Memory(_) => "WDFMEMORY",
            Self::String(_) => "WDFSTRING",
            Self::Zombie(n) => n,
        }
    }
}

/// One framework object.
#[derive(Debug)]
pub(crate) struct Obj {
    pub(crate) kind: Kind,
    pub(crate) parent: Option<usize>,
    pub(crate) children: Vec<usize>,
    pub(crate) cleanup: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    pub(crate) destroy: PFN_WDF_OBJECT_CONTEXT_DESTROY,
    /// Context memory per context type, in the order the types were added.
    pub(crate) contexts: Vec<ObjContext>,
    /// `WdfObjectReference` count beyond the framework's own.
    pub(crate) refs: u32,
    /// Deleted while referenced: cleanup has run, destroy waits for the last dereference.
    pub(crate) zombie: bool,
}

/// One context of an object: zeroed storage aligned as the framework aligns it
/// (`MEMORY_ALLOCATION_ALIGNMENT`, 16 bytes on x64), and the type's name as `!wdfkd.wdfobject`
/// shows it.
#[derive(Debug)]
pub(crate) struct ObjContext {
    /// The type's identity: its `UniqueType`, or the type info's address.
    pub(crate) unique: usize,
    /// `ContextName`, as the debugger extension prints it.
    pub(crate) name: String,
    /// The size asked for (`ContextSize`, or a larger `ContextSizeOverride`).
    pub(crate) size: usize,
    mem: Box<[ContextChunk]>,
}

/// A 16-byte, 16-aligned unit of context storage.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
struct ContextChunk([u8; 16]);

impl ObjContext {
    fn new(unique: usize, name: *const core::ffi::c_char, size: usize) -> Self {
        let name = if name.is_null() {
            String::new()
        } else {
            // SAFETY: validated attributes carry a NUL-terminated name (the literal
            // `WDF_DECLARE_CONTEXT_TYPE` makes) whenever the size is not zero.
            unsafe { core::ffi::CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        };
        Self {
            unique,
            name,
            size,
            mem: vec![ContextChunk([0; 16]); size.div_ceil(16).max(1)].into_boxed_slice(),
        }
    }

    /// The context's address, as `WdfObjectGetTypedContextWorker` returns it.
    pub(crate) fn address(&mut self) -> PVOID {
        self.mem.as_mut_ptr().cast()
    }
}

/// What `WdfDeviceInit*` recorded before `WdfDeviceCreate`.
#[derive(Debug, Default)]
pub(crate) struct DeviceInitData {
    pub(crate) pnp: WDF_PNPPOWER_EVENT_CALLBACKS,
    pub(crate) file: WDF_FILEOBJECT_CONFIG,
    pub(crate) io_type: i32,
    pub(crate) exclusive: bool,
    pub(crate) characteristics: u32,
    pub(crate) pdo: usize,
    pub(crate) slot: usize,
    pub(crate) created: Option<usize>,
    pub(crate) request_attributes: Option<types::WDF_OBJECT_ATTRIBUTES>,
}

/// The framework's state inside the machine.
#[derive(Debug, Default)]
pub(crate) struct WdfState {
    /// Every framework object by handle. A fast hasher (`crate::fasthash`): handle look-ups are
    /// on every WDF call's path (about 60 per MAD round trip), and with `SipHash` they were
    /// ~8 % of a round trip's instructions.
    pub(crate) objects: FastMap<usize, Obj>,
    next: usize,
    pub(crate) driver: Option<usize>,
    /// The tag the framework gives the driver's allocations: `DriverPoolTag`, or the default
    /// `WdfDriverCreate` derives from the service name.
    pub(crate) driver_pool_tag: u32,
    pub(crate) inits: FastMap<usize, DeviceInitData>,
    /// Interrupts whose DPC is queued, in order.
    pub(crate) dpcs: VecDeque<usize>,
    /// The interrupt whose DPC is running.
    pub(crate) dpc_running: Option<usize>,
    /// The CPU draining the DPC queue (its `ntddk::thread_token`): one at a time, the interrupt CPU or a
    /// CPU settling its system call's device work (`cpu::settle`).
    pub(crate) dpc_cpu: Option<u64>,
    /// Work items enqueued, in order (run by a system worker thread at `PASSIVE_LEVEL`).
    pub(crate) work_items: VecDeque<usize>,
    /// The interrupt CPU's mailbox.
    pub(crate) irq_tx: Option<std::sync::mpsc::Sender<host::IrqEvent>>,
    /// The most recent [`RECENT_COMPLETIONS`] completed requests, oldest first: a later
    /// `WdfRequestComplete` of one is the KMDF verifier's "not driver-owned" break rather than
    /// a use of a freed handle.
    pub(crate) completed: VecDeque<usize>,
}

/// The pool tag KMDF gives a driver whose `DriverPoolTag` is zero (`WDF_DRIVER_CONFIG`'s
/// documentation): the first four characters of the service name, after a leading "WDF" (any
/// case); "FxDr" when fewer than four remain.
pub(crate) fn default_pool_tag(service: &str) -> u32 {
    let b = service.as_bytes();
    let rest = if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"WDF") {
        &b[3..]
    } else {
        b
    };
    match rest {
        [a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => u32::from_le_bytes(*b"FxDr"),
    }
}

/// How many completed requests [`WdfState::completed`] remembers.
pub(crate) const RECENT_COMPLETIONS: usize = 65_536;

#[expect(
    clippy::non_send_fields_in_send_ty,
    reason = "see the SAFETY comment: the pointers are identifiers and copies"
)]
// SAFETY: the state holds driver pointers (configs' handle fields, the device object's links)
// only as identifiers and copies; it is reached only under the machine lock.
unsafe impl Send for WdfState {}

impl WdfState {
    /// A new handle value.
    pub(crate) const fn new_handle(&mut self) -> usize {
        self.next += 1;
        HANDLE_BASE + self.next * 0x40
    }

    /// Inserts an object under `parent`; returns its handle.
    pub(crate) fn insert(
        &mut self,
        kind: Kind,
        parent: Option<usize>,
        attrs: Option<&types::WDF_OBJECT_ATTRIBUTES>,
    ) -> usize {
        let h = self.new_handle();
        let mut obj = Obj {
            kind,
            parent,
            children: Vec::new(),
            cleanup: None,
            destroy: None,
            contexts: Vec::new(),
            refs: 0,
            zombie: false,
        };
        if let Some(a) = attrs {
            obj.cleanup = a.EvtCleanupCallback;
            obj.destroy = a.EvtDestroyCallback;
            if !a.ContextTypeInfo.is_null() {
                // SAFETY: a non-null ContextTypeInfo points at the driver's static type info
                // (WDF_DECLARE_CONTEXT_TYPE); the caller checked the attributes pointer.
                let info = unsafe { &*a.ContextTypeInfo };
                let unique = if info.UniqueType.is_null() {
                    a.ContextTypeInfo as usize
                } else {
                    info.UniqueType as usize
                };
                let size = info.ContextSize.max(a.ContextSizeOverride);
                obj.contexts
                    .push(ObjContext::new(unique, info.ContextName, size));
            }
        }
        if let Some(p) = parent
            && let Some(po) = self.objects.get_mut(&p)
        {
            po.children.push(h);
        }
        self.objects.insert(h, obj);
        h
    }

    /// The object behind `h`, or the bug check for a bad handle.
    #[track_caller]
    pub(crate) fn get(&self, h: usize, what: &'static str) -> Result<&Obj, BugCheck> {
        self.objects.get(&h).ok_or_else(|| bad_handle(h, what))
    }

    /// The object behind `h`, mutably.
    #[track_caller]
    pub(crate) fn get_mut(&mut self, h: usize, what: &'static str) -> Result<&mut Obj, BugCheck> {
        self.objects.get_mut(&h).ok_or_else(|| bad_handle(h, what))
    }

    #[track_caller]
    pub(crate) fn device(&mut self, h: usize) -> Result<&mut DeviceData, BugCheck> {
        match &mut self.get_mut(h, "WDFDEVICE")?.kind {
            Kind::Device(d) => Ok(d),
            k => Err(wrong_type(h, k.name(), "WDFDEVICE")),
        }
    }

    #[track_caller]
    pub(crate) fn queue(&mut self, h: usize) -> Result<&mut QueueData, BugCheck> {
        match &mut self.get_mut(h, "WDFQUEUE")?.kind {
            Kind::Queue(q) => Ok(q),
            k => Err(wrong_type(h, k.name(), "WDFQUEUE")),
        }
    }

    #[track_caller]
    pub(crate) fn request(&mut self, h: usize) -> Result<&mut RequestData, BugCheck> {
        match self.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::Request(r)) => Ok(r),
            Some(k) => Err(wrong_type(h, k.name(), "WDFREQUEST")),
            None => Err(bad_handle(h, "WDFREQUEST")),
        }
    }

    #[track_caller]
    pub(crate) fn memory(&mut self, h: usize) -> Result<&mut MemoryData, BugCheck> {
        match &mut self.get_mut(h, "WDFMEMORY")?.kind {
            Kind::Memory(m) => Ok(m),
            k => Err(wrong_type(h, k.name(), "WDFMEMORY")),
        }
    }

    #[track_caller]
    pub(crate) fn string(&mut self, h: usize) -> Result<&mut StringData, BugCheck> {
        match &mut self.get_mut(h, "WDFSTRING")?.kind {
            Kind::String(m) => Ok(m),
            k => Err(wrong_type(h, k.name(), "WDFSTRING")),
        }
    }

    /// Records a completed request for [`WdfState::completed`].
    pub(crate) fn note_completed(&mut self, h: usize) {
        if self.completed.len() == RECENT_COMPLETIONS {
            self.completed.pop_front();
        }
        self.completed.push_back(h);
    }

    #[track_caller]
    pub(crate) fn interrupt(&mut self, h: usize) -> Result<&mut InterruptData, BugCheck> {
        match &mut self.get_mut(h, "WDFINTERRUPT")?.kind {
            Kind::Interrupt(i) => Ok(i),
            k => Err(wrong_type(h, k.name(), "WDFINTERRUPT")),
        }
    }

    /// Removes `h` and its subtree from the table, children first; returns the removed objects
    /// in the order their cleanup callbacks must run (children before parents).
    pub(crate) fn detach_tree(&mut self, h: usize) -> Vec<(usize, Obj)> {
        let mut out = Vec::new();
        let children = self
            .objects
            .get(&h)
            .map(|o| o.children.clone())
            .unwrap_or_default();
        for c in children {
            out.extend(self.detach_tree(c));
        }
        if let Some(mut o) = self.objects.remove(&h) {
            if let Some(p) = o.parent
                && let Some(po) = self.objects.get_mut(&p)
            {
                po.children.retain(|&c| c != h);
            }
            if o.refs > 0 {
                // Deleted while referenced: cleanup runs now, destroy waits for the last
                // dereference; a stub keeps the handle valid for WdfObjectDereference.
                let stub = Obj {
                    kind: Kind::Zombie(o.kind.name()),
                    parent: None,
                    children: Vec::new(),
                    cleanup: None,
                    destroy: o.destroy.take(),
                    contexts: Vec::new(),
                    refs: o.refs,
                    zombie: true,
                };
                self.objects.insert(h, stub);
            }
            out.push((h, o));
        }
        out
    }

    /// Live objects, for the leak report: (handle, type name).
    pub(crate) fn live(&self) -> Vec<(usize, &'static str)> {
        let mut v: Vec<_> = self
            .objects
            .iter()
            .map(|(&h, o)| (h, o.kind.name()))
            .collect();
        v.sort_unstable();
        v
    }
}

/// A handle that names no live object: the framework's handle validation stops with
/// `WDF_VIOLATION`, parameter 1 `WDF_INVALID_HANDLE` (0x5), parameter 2 the handle
/// (`FxObjectHandleGetPtr`, `fxhandle.h` l.300–335). On Windows a freed handle's memory is read
/// first and the outcome depends on what it now holds; wdk-sim always stops (sim-fidelity §8).
#[track_caller]
pub(crate) fn bad_handle(h: usize, what: &'static str) -> BugCheck {
    let at = std::panic::Location::caller();
    BugCheck::new(
        WDF_VIOLATION,
        [0x5, h as u64, 0, 0],
        Box::leak(
            format!("{what} handle {h:#x} names no live framework object (looked up at {at})")
                .into_boxed_str(),
        ),
        "Bug check 0x10D WDF_VIOLATION, parameter 1 = 0x5 WDF_INVALID_HANDLE (fxhandle.h l.300-335)",
    )
}

pub(crate) fn wrong_type(h: usize, found: &'static str, want: &'static str) -> BugCheck {
    BugCheck::new(
        WDF_VIOLATION,
        [0x5, h as u64, 0, 0],
        Box::leak(format!("a {found} handle passed where a {want} is required").into_boxed_str()),
        "Bug check 0x10D WDF_VIOLATION, parameter 1 = 0x5 (incorrect framework object type)",
    )
}

/// Runs the cleanup and destroy callbacks of detached objects (children first), without the
/// machine lock, at the caller's IRQL. The objects stay reachable by handle (their context
/// memory included) until both callbacks have run, as KMDF documents for
/// `EvtCleanupCallback` and `EvtDestroyCallback`.
pub(crate) fn run_cleanup(objs: Vec<(usize, Obj)>) {
    if objs.is_empty() {
        return;
    }
    let calls: Vec<(
        usize,
        PFN_WDF_OBJECT_CONTEXT_CLEANUP,
        PFN_WDF_OBJECT_CONTEXT_DESTROY,
    )> = objs
        .iter()
        .map(|(h, o)| (*h, o.cleanup, o.destroy))
        .collect();
    crate::machine::with_state(|st, _| {
        for (h, o) in objs {
            st.wdf.objects.entry(h).or_insert(o);
        }
        Ok(())
    });
    for &(h, cleanup, _) in &calls {
        if let Some(f) = cleanup {
            // SAFETY: the driver registered this cleanup callback for this object, which is
            // still reachable with its context.
            unsafe { f(h as PVOID) };
        }
    }
    for &(h, _, destroy) in &calls {
        if let Some(f) = destroy {
            // SAFETY: as above; destroy runs after every cleanup of the tree.
            unsafe { f(h as PVOID) };
        }
    }
    let gone = crate::machine::with_state(|st, _| {
        let mut gone = Vec::new();
        for &(h, _, _) in &calls {
            if st.wdf.objects.get(&h).is_some_and(|o| !o.zombie) {
                gone.extend(st.wdf.objects.remove(&h));
            }
        }
        Ok(gone)
    });
    // A memory object the driver created owns its pool block: destroying the object frees it,
    // as `FxMemoryBuffer`'s destructor does.
    for o in &gone {
        if let Kind::Memory(m) = &o.kind
            && m.pool != 0
        {
            // SAFETY: the block WdfMemoryCreate allocated for this object, freed once, here.
            unsafe { crate::ntddk::ExFreePool(m.pool as PVOID) };
        }
    }
    drop(gone);
}

#[cfg(test)]
mod pool_tag_tests {
    use super::default_pool_tag;

    #[test]
    fn the_default_tag_is_the_service_names_first_four_characters_after_wdf() {
        assert_eq!(default_pool_tag("rhca").to_le_bytes(), *b"rhca");
        assert_eq!(default_pool_tag("Serial").to_le_bytes(), *b"Seri");
        assert_eq!(default_pool_tag("WdfEcho").to_le_bytes(), *b"Echo");
        assert_eq!(default_pool_tag("wdfToaster").to_le_bytes(), *b"Toas");
        assert_eq!(default_pool_tag("abc").to_le_bytes(), *b"FxDr");
        assert_eq!(default_pool_tag("WDFab").to_le_bytes(), *b"FxDr");
        assert_eq!(default_pool_tag("").to_le_bytes(), *b"FxDr");
    }
}
