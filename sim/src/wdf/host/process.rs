//! User mode: processes, their handles to a device, and their requests (buffered and direct
//! I/O, asynchronous completion, cancellation, handle close and process termination).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bugcheck::BugCheck;
use crate::constants::POOL_FLAG_NON_PAGED;
use crate::machine::with_state;
use crate::typed::FALSE;
use crate::types::PVOID;
use crate::wdf::functions::callback;
#[allow(
    clippy::wildcard_imports,
    reason = "the harness uses the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::{Completion, Kind, ReqKind, ReqState, RequestData, wdf_rule};
use crate::{
    NT_SUCCESS, NTSTATUS, STATUS_DEVICE_REMOVED, STATUS_INVALID_DEVICE_REQUEST, STATUS_SUCCESS,
    ntddk,
};

use super::{
    Core, DevNode, HostError, Identity, Mode, cancel, complete, dispatch, pump, run, step,
};

/// A simulated user-mode process.
pub struct Process {
    pub(super) core: Arc<Core>,
    /// The file objects of the handles still open.
    pub(super) handles: Mutex<Vec<usize>>,
    /// Every file object the process ever opened: a request sent on a handle closed since is
    /// still the process's, and its rundown waits for it.
    pub(super) opened: Mutex<Vec<usize>>,
    /// The process's user memory, released when it exits.
    pub(super) memory: Arc<Mutex<Vec<usize>>>,
    /// Buffers of completed buffered calls kept for the next calls (their address and
    /// capacity), as an application reuses its buffers: still in `memory`, not counted by
    /// [`Process::allocations`]. See [`Process::call_buffer`].
    pub(super) spare: SpareBuffers,
    /// The completions of the requests the process sent that had not completed when it last
    /// sent one: its rundown waits for each to be signalled, not only for the request objects
    /// to go (a completing CPU deletes the request, then unlocks its pages and frees its
    /// buffers, and signals the completion last).
    pub(super) issued: Mutex<Vec<Arc<crate::wdf::Completion>>>,
    pub(super) identity: Identity,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process").finish_non_exhaustive()
    }
}

/// An open handle to a device (a file object).
#[derive(Debug, Clone, Copy)]
pub struct Handle {
    pub(super) file: usize,
    pub(super) device: usize,
}

/// The result of an I/O request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoResult {
    /// Final status.
    pub status: NTSTATUS,
    /// `IoStatus.Information`.
    pub information: usize,
    /// The output buffer after completion (buffered I/O), `information` bytes.
    pub output: Vec<u8>,
}

/// An overlapped request in flight.
#[derive(Debug)]
pub struct Pending {
    pub(super) core: Arc<Core>,
    pub(super) request: usize,
    pub(super) completion: Arc<Completion>,
    pub(super) user_out: usize,
    pub(super) out_len: usize,
    /// Buffers the call allocated in the process for this request (its input and output), and
    /// the process's memory list: released once the request has completed.
    pub(super) owned: Option<Owned>,
    /// The result, once seen: a second `wait` returns it again.
    pub(super) result: std::sync::OnceLock<IoResult>,
}

/// User buffers a call allocated for one request, and the memory list of their process.
#[derive(Debug)]
pub(super) struct Owned {
    pub(super) memory: Arc<Mutex<Vec<usize>>>,
    pub(super) buffers: [usize; 2],
    /// Where the buffers go back for reuse once the request has completed (their capacity
    /// beside them), for a `METHOD_BUFFERED` call; `None`: they are freed.
    pub(super) spare: Option<(SpareBuffers, [usize; 2])>,
}

/// A process's spare call buffers: (address, capacity) of each.
pub(super) type SpareBuffers = Arc<Mutex<Vec<(usize, usize)>>>;

/// Buffers of completed calls a process keeps for reuse, at most.
const SPARE_CALL_BUFFERS: usize = 8;

/// Capacity of a user buffer of `len` bytes: whole pages.
fn capacity(len: usize) -> usize {
    len.div_ceil(crate::mem::PAGE).max(1) * crate::mem::PAGE
}

/// A thread counted among the idle CPUs of its machine ([`super::cpu::IdleCpus`]) until dropped.
struct IdleCpu<'a> {
    core: &'a Core,
    completion: &'a Arc<Completion>,
}

impl<'a> IdleCpu<'a> {
    fn enter(core: &'a Core, completion: &'a Arc<Completion>) -> Self {
        core.idle.enter(completion);
        Self { core, completion }
    }
}

impl Drop for IdleCpu<'_> {
    fn drop(&mut self) {
        self.core.idle.leave(self.completion, &self.core.tx);
    }
}

impl Pending {
    /// Waits up to `timeout` for completion.
    ///
    /// In threaded mode the waiting thread is one of the machine's idle CPUs: a device
    /// interrupt raised meanwhile may be handed to it, and it runs the ISR and the DPCs
    /// (`IdleCpus`) before it looks at its request again.
    #[must_use]
    pub fn wait(&self, timeout: Duration) -> Option<IoResult> {
        if let Some(r) = self.result.get() {
            return Some(r.clone());
        }
        let deadline = Instant::now() + timeout;
        let threaded = self.core.mode == Mode::Threaded;
        // While it waits, this thread is an idle CPU: the device's interrupts come here.
        let _idle = threaded.then(|| IdleCpu::enter(&self.core, &self.completion));
        let c = &*self.completion;
        // A completion, or an interrupt for this thread to take.
        let ready = || {
            c.done.try_lock().is_ok_and(|g| g.is_some())
                || c.taken.try_lock().is_ok_and(|t| !t.is_empty())
        };
        if threaded {
            // A completion usually follows within microseconds (the DPC is running), and the
            // device's interrupts come at a pace this thread's recent waits have shown: poll
            // before blocking on the condition variable, as an idle CPU (`spin::spin_idle`).
            // `try_lock`: a poll never makes the completing CPU wait for the lock.
            let _ = crate::spin::spin_idle(|| ready().then_some(()));
        }
        // When this thread first blocked, for the idle-poll policy.
        let mut asleep: Option<Instant> = None;
        let mut g = c
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while g.is_none() {
            let now = Instant::now();
            if now >= deadline || self.core.machine.bugcheck().is_some() {
                return None;
            }
            if threaded {
                let taken = std::mem::take(
                    &mut *c
                        .taken
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                if !taken.is_empty() {
                    if let Some(t) = asleep.take() {
                        crate::spin::idle_slept(t.elapsed());
                    }
                    drop(g);
                    // A bug check in an ISR or DPC stops the machine: the loop sees it.
                    let _ = self
                        .core
                        .machine
                        .run(move || super::cpu::take_interrupts(taken));
                    // The DPC has usually completed this request (or is about to on another
                    // CPU): look again before blocking.
                    let _ = crate::spin::spin(|| ready().then_some(()));
                    g = c
                        .done
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    continue;
                }
            } else {
                // The waiting thread drives the event loop: deliver everything pending.
                drop(g);
                let delivered = pump(&self.core, true).unwrap_or(false);
                g = c
                    .done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if delivered || g.is_some() {
                    continue;
                }
            }
            if threaded {
                asleep.get_or_insert(now);
            }
            g =
                c.cv.wait_timeout(g, (deadline - now).min(Duration::from_millis(20)))
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        if let Some(t) = asleep {
            crate::spin::idle_slept(t.elapsed());
        }
        let (status, information) = (*g)?;
        drop(g);
        let mut output = vec![0u8; information.min(self.out_len)];
        if self.user_out != 0 && !output.is_empty() {
            let _ = self.core.machine.cpu_read(self.user_out, &mut output);
        }
        let r = IoResult {
            status,
            information,
            output,
        };
        if self.result.set(r.clone()).is_ok() {
            self.release_buffers();
        }
        Some(r)
    }

    /// Frees the user buffers the call allocated for this request, now that it has completed
    /// (the driver may touch them no more): an application that sends millions of requests
    /// does not grow by a page or two per request. A request that never completes keeps them
    /// until the process exits.
    fn release_buffers(&self) {
        let Some(o) = &self.owned else { return };
        // Taken out of the list first (a process that exits meanwhile frees each once), freed
        // with the list's lock released; a buffered call's buffers stay in the list and go
        // back to the spares while there is room (a process that exited has taken them).
        let mine = {
            let mut memory = o
                .memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut spare = o.spare.as_ref().map(|(s, caps)| {
                (
                    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                    caps,
                )
            });
            let mut i = 0;
            o.buffers.map(|va| {
                let k = i;
                i += 1;
                let at = memory.iter().rposition(|&m| va != 0 && m == va)?;
                if let Some((s, caps)) = spare.as_mut()
                    && s.len() < SPARE_CALL_BUFFERS
                {
                    s.push((va, caps[k]));
                    return None;
                }
                Some(memory.swap_remove(at))
            })
        };
        for va in mine.into_iter().flatten() {
            self.core.machine.free_user(va);
        }
    }

    /// `CancelIoEx` for this request.
    ///
    /// # Errors
    /// A bug check the cancellation caused.
    pub fn cancel(&self) -> Result<(), HostError> {
        let r = self.request;
        if self
            .completion
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
        {
            return Ok(());
        }
        step(&self.core, move || cancel(r))
    }

    /// The request's handle value (for tests that inspect the framework).
    #[must_use]
    pub const fn request(&self) -> usize {
        self.request
    }
}

impl Process {
    /// `CreateFile` on the device: a file object, `EvtDeviceFileCreate`.
    ///
    /// # Errors
    /// The status the driver failed the create with, or a bug check.
    pub fn open(&self, d: &DevNode) -> Result<Handle, HostError> {
        self.open_name(d, "")
    }

    /// `CreateFile` of a name below the device (`\\.\Device\suffix`). The I/O manager checks
    /// the device's DACL for the device itself, and for names below it only when the device
    /// object has `FILE_DEVICE_SECURE_OPEN` (otherwise the driver would have to).
    ///
    /// # Errors
    /// `STATUS_ACCESS_DENIED` when the DACL does not admit the process; as [`Process::open`].
    pub fn open_name(&self, d: &DevNode, suffix: &str) -> Result<Handle, HostError> {
        let allowed = self
            .core
            .security
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&d.slot)
            .cloned();
        if let Some(allowed) = allowed {
            let dev = d.device;
            let secure_open = run(&self.core.machine, move || {
                with_state(|st, _| {
                    Ok(st.wdf.device(dev).map_or(0, |d| d.fdo.Characteristics)
                        & crate::FILE_DEVICE_SECURE_OPEN
                        != 0)
                })
            })?;
            let checked = suffix.is_empty() || secure_open;
            if checked
                && !self
                    .identity
                    .sids()
                    .iter()
                    .any(|s| allowed.iter().any(|a| a == s))
            {
                return Err(HostError::Status(crate::STATUS_ACCESS_DENIED));
            }
        }
        let dev = d.device;
        let (file, pending) = step(&self.core, move || {
            let (file, req, cb, completion) = with_state(|st, _| {
                let w = &mut st.wdf;
                if !w.objects.contains_key(&dev) {
                    return Ok(None);
                }
                let cb = w.device(dev)?.file.EvtDeviceFileCreate;
                let file = w.insert(
                    Kind::File(Box::new(crate::wdf::FileData { device: dev })),
                    Some(dev),
                    None,
                );
                let completion = Arc::new(Completion::default());
                let req = w.insert(
                    Kind::Request(Box::new(RequestData::new(
                        ReqKind::Create,
                        dev,
                        file,
                        completion.clone(),
                    ))),
                    Some(dev),
                    None,
                );
                w.request(req)?.state = ReqState::Presented;
                Ok(Some((file, req, cb, completion)))
            })
            .ok_or(HostError::Status(STATUS_DEVICE_REMOVED))?;
            match cb {
                // SAFETY: the driver's create callback with a create request it must complete.
                Some(f) => callback(|| unsafe {
                    f(dev as WDFDEVICE, req as WDFREQUEST, file as WDFFILEOBJECT);
                }),
                None => complete(req, STATUS_SUCCESS, 0),
            }
            Ok::<_, HostError>((file, completion))
        })??;
        let p = Pending {
            core: self.core.clone(),
            request: 0,
            completion: pending,
            user_out: 0,
            out_len: 0,
            owned: None,
            result: std::sync::OnceLock::new(),
        };
        let r = p
            .wait(Duration::from_secs(5))
            .ok_or(HostError::State("the create request was never completed"))?;
        if !NT_SUCCESS(r.status) {
            let c = self.core.clone();
            step(&c, move || {
                let objs = with_state(|st, _| Ok(st.wdf.detach_tree(file)));
                crate::wdf::run_cleanup(objs);
            })?;
            return Err(HostError::Status(r.status));
        }
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file);
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file);
        Ok(Handle { file, device: dev })
    }

    /// How many user allocations the process holds: those it made with [`Process::alloc`], and
    /// the buffers its calls made for requests that have not completed (a completed request's
    /// are freed when [`Pending::wait`] sees its completion).
    #[must_use]
    pub fn allocations(&self) -> usize {
        let memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        memory.len() - spare.len()
    }

    /// A user buffer of at least `len` bytes for a `METHOD_BUFFERED` call: a spare one left by
    /// a completed call, else a new one. Its bytes are whatever the last call left there: only
    /// the I/O manager reads or writes a buffered call's user buffers (the input, which the
    /// caller writes first, and the `Information` bytes of the output, which the caller reads),
    /// never the driver, so reusing them is what an application's reused buffers are.
    fn call_buffer(&self, len: usize) -> usize {
        {
            // Lock order: the memory list, then the spares (as `release_buffers` and `kill`).
            let _memory = self
                .memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut spare = self
                .spare
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(i) = spare.iter().position(|&(_, cap)| cap >= len) {
                return spare.swap_remove(i).0;
            }
        }
        self.alloc(len)
    }

    /// User memory of this process (a buffer for direct I/O).
    #[must_use]
    pub fn alloc(&self, len: usize) -> usize {
        let va = self.core.machine.alloc_user(len);
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(va);
        va
    }

    /// `DeviceIoControl`, synchronous.
    ///
    /// # Errors
    /// A bug check, or `State` when the request never completes (5 s).
    pub fn ioctl(
        &self,
        h: &Handle,
        code: u32,
        input: &[u8],
        out_len: usize,
    ) -> Result<IoResult, HostError> {
        let p = self.ioctl_async(h, code, input, out_len)?;
        p.wait(Duration::from_secs(5)).ok_or_else(|| {
            self.core.machine.bugcheck().map_or(
                HostError::State("the request never completed"),
                HostError::BugCheck,
            )
        })
    }

    /// `DeviceIoControl` on an overlapped handle: returns once the driver has the request.
    ///
    /// # Errors
    /// A bug check during dispatch.
    pub fn ioctl_async(
        &self,
        h: &Handle,
        code: u32,
        input: &[u8],
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let method = code & 3;
        // A buffered call's user buffers are reused (`call_buffer`); the driver sees the
        // others' (direct I/O, `METHOD_NEITHER`), so those are fresh, and freed once the call
        // completes: a device DMA into them afterwards is a fault.
        let buffered = method == 0;
        let alloc = |len: usize| {
            if buffered {
                self.call_buffer(len)
            } else {
                self.alloc(len)
            }
        };
        let user_in = if input.is_empty() {
            0
        } else {
            alloc(input.len())
        };
        if user_in != 0 {
            let _ = self.core.machine.cpu_write(user_in, input);
        }
        let user_out = if out_len == 0 { 0 } else { alloc(out_len) };
        let p = self.submit(h, code, method, user_in, input.len(), user_out, out_len)?;
        let mut p = self.owning(p, [user_in, user_out]);
        if buffered && let Some(o) = p.owned.as_mut() {
            o.spare = Some((
                self.spare.clone(),
                [capacity(input.len()), capacity(out_len)],
            ));
        }
        Ok(p)
    }

    /// `p`, which frees `buffers` (the call's own, in this process) once it has completed.
    fn owning(&self, mut p: Pending, buffers: [usize; 2]) -> Pending {
        p.owned = Some(Owned {
            memory: self.memory.clone(),
            buffers,
            spare: None,
        });
        p
    }

    /// `DeviceIoControl` with a caller-supplied output buffer (`METHOD_OUT_DIRECT`/`IN_DIRECT`:
    /// the buffer is locked for the request's life and described by an MDL).
    ///
    /// # Errors
    /// A bug check during dispatch.
    pub fn ioctl_with_buffer(
        &self,
        h: &Handle,
        code: u32,
        input: &[u8],
        user_out: usize,
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let user_in = if input.is_empty() {
            0
        } else {
            self.alloc(input.len())
        };
        if user_in != 0 {
            let _ = self.core.machine.cpu_write(user_in, input);
        }
        let p = self.submit(h, code, code & 3, user_in, input.len(), user_out, out_len)?;
        // The output buffer is the caller's; the input is the call's own.
        Ok(self.owning(p, [user_in, 0]))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of one DeviceIoControl call"
    )]
    fn submit(
        &self,
        h: &Handle,
        code: u32,
        method: u32,
        user_in: usize,
        in_len: usize,
        user_out: usize,
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let (file, dev) = (h.file, h.device);
        let (req, completion) = step(&self.core, move || {
            submit_ioctl(
                dev,
                file,
                ReqKind::Ioctl { code },
                method,
                user_in,
                in_len,
                user_out,
                out_len,
            )
        })?;
        self.issue(&completion);
        Ok(Pending {
            core: self.core.clone(),
            request: req,
            completion,
            user_out,
            out_len,
            owned: None,
            result: std::sync::OnceLock::new(),
        })
    }

    /// Records a request's completion for the process's rundown, forgetting those already
    /// signalled.
    fn issue(&self, completion: &Arc<crate::wdf::Completion>) {
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        issued.retain(|c| {
            c.done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_none()
        });
        issued.push(completion.clone());
    }

    /// `ReadFile` of `len` bytes, synchronous: the bytes the driver returned (`Information`).
    ///
    /// # Errors
    /// The status the driver completed the read with; a bug check; or `State` when the read
    /// never completes (5 s).
    pub fn read(&self, h: &Handle, len: usize) -> Result<Vec<u8>, HostError> {
        let p = self.read_async(h, len)?;
        let r = self.wait5(&p)?;
        if !NT_SUCCESS(r.status) {
            return Err(HostError::Status(r.status));
        }
        Ok(r.output)
    }

    /// `ReadFile` on an overlapped handle: returns once the driver has the request. The device's
    /// I/O type (`WdfDeviceInitSetIoType`) decides the buffer: a system buffer copied back at
    /// completion (buffered), the caller's pages locked for writing (direct), or the caller's
    /// address itself (neither).
    ///
    /// # Errors
    /// A bug check during dispatch.
    pub fn read_async(&self, h: &Handle, len: usize) -> Result<Pending, HostError> {
        let user_out = if len == 0 { 0 } else { self.alloc(len) };
        let p = self.submit_rw(h, ReqKind::Read, 0, 0, user_out, len)?;
        Ok(self.owning(p, [0, user_out]))
    }

    /// `WriteFile`, synchronous: the bytes the driver took (`Information`).
    ///
    /// # Errors
    /// As [`Process::read`].
    pub fn write(&self, h: &Handle, data: &[u8]) -> Result<usize, HostError> {
        let p = self.write_async(h, data)?;
        let r = self.wait5(&p)?;
        if !NT_SUCCESS(r.status) {
            return Err(HostError::Status(r.status));
        }
        Ok(r.information)
    }

    /// `WriteFile` on an overlapped handle: returns once the driver has the request.
    ///
    /// # Errors
    /// A bug check during dispatch.
    pub fn write_async(&self, h: &Handle, data: &[u8]) -> Result<Pending, HostError> {
        let user_in = if data.is_empty() {
            0
        } else {
            self.alloc(data.len())
        };
        if user_in != 0 {
            let _ = self.core.machine.cpu_write(user_in, data);
        }
        let p = self.submit_rw(h, ReqKind::Write, user_in, data.len(), 0, 0)?;
        Ok(self.owning(p, [user_in, 0]))
    }

    fn wait5(&self, p: &Pending) -> Result<IoResult, HostError> {
        p.wait(Duration::from_secs(5)).ok_or_else(|| {
            self.core.machine.bugcheck().map_or(
                HostError::State("the request never completed"),
                HostError::BugCheck,
            )
        })
    }

    fn submit_rw(
        &self,
        h: &Handle,
        kind: ReqKind,
        user_in: usize,
        in_len: usize,
        user_out: usize,
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let (file, dev) = (h.file, h.device);
        let (req, completion) =
            step(&self.core, move || {
                let io_type = with_state(|st, _| Ok(st.wdf.device(dev).map_or(0, |d| d.io_type)));
                // The transfer method the device's I/O type gives a read or write (`DO_BUFFERED_IO`,
                // `DO_DIRECT_IO`, neither), in the I/O control's numbering.
                let method =
                    match io_type {
                        x if x == _WDF_DEVICE_IO_TYPE::WdfDeviceIoNeither => 3,
                        x if x == _WDF_DEVICE_IO_TYPE::WdfDeviceIoDirect => {
                            if kind == ReqKind::Read { 2 } else { 1 }
                        }
                        _ => 0,
                    };
                submit_ioctl(dev, file, kind, method, user_in, in_len, user_out, out_len)
            })?;
        self.issue(&completion);
        Ok(Pending {
            core: self.core.clone(),
            request: req,
            completion,
            // Buffered and direct reads land in the caller's buffer; `Pending::wait` reads it.
            user_out,
            out_len,
            owned: None,
            result: std::sync::OnceLock::new(),
        })
    }

    /// `CloseHandle`: pending requests of the handle cancelled, then `EvtFileCleanup` and
    /// `EvtFileClose`, and the file object deleted.
    ///
    /// # Errors
    /// A bug check.
    pub fn close(&self, h: Handle) -> Result<(), HostError> {
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|&f| f != h.file);
        let (file, dev) = (h.file, h.device);
        step(&self.core, move || close_file(dev, file))
    }

    /// The process is terminated: every handle closed abruptly (pending requests cancelled),
    /// then, once every request of the process has completed (I/O rundown), its memory
    /// released — a device DMA into it afterwards is a fault.
    ///
    /// # Errors
    /// A bug check.
    pub fn kill(&self) -> Result<(), HostError> {
        let files: Vec<usize> = std::mem::take(
            &mut *self
                .handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for f in files {
            let dev = step(&self.core, move || {
                with_state(|st, _| {
                    Ok(match st.wdf.objects.get(&f).map(|o| &o.kind) {
                        Some(Kind::File(fd)) => fd.device,
                        _ => 0,
                    })
                })
            })?;
            if dev != 0 {
                step(&self.core, move || close_file(dev, f))?;
            }
        }
        // Requests sent on handles closed before are the process's too (an IRP belongs to the
        // thread that issued it, not to the handle): the rundown waits for them all.
        let closed: Vec<usize> = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // I/O rundown: Windows deletes the address space only after every request of the
        // process has completed (thread termination waits for the threads' IRPs, whose locked
        // pages keep the memory pinned). A driver that never completes a cancelled request
        // hangs the process there; here that is a bug check after `Config::rundown_limit`.
        let deadline = Instant::now() + self.core.machine.config().rundown_limit;
        loop {
            let files = closed.clone();
            let left = run(&self.core.machine, move || {
                with_state(|st, _| {
                    Ok(st
                        .wdf
                        .objects
                        .iter()
                        .filter(
                            |(_, o)| matches!(&o.kind, Kind::Request(r) if files.contains(&r.file)),
                        )
                        .map(|(&h, _)| h)
                        .collect::<Vec<usize>>())
                })
            })?;
            let Some(&first) = left.first() else { break };
            if Instant::now() >= deadline {
                let n = left.len() as u64;
                return run(&self.core.machine, move || {
                    with_state::<()>(|_, _| {
                        Err(BugCheck::sim(
                            wdf_rule::RUNDOWN_HUNG,
                            first as u64,
                            n,
                            "process terminated with requests the driver never completed (the process would hang in rundown)",
                        ))
                    });
                });
            }
            // Deterministic mode: this thread drives the interrupts and DPCs that complete them.
            if !pump(&self.core, true)? {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Every request object is gone; a CPU may still be completing the last ones (unlocking
        // their pages, freeing their buffers): the memory goes only once each is signalled. (In
        // the deterministic mode completions run on this thread, done by now.)
        let issued = std::mem::take(
            &mut *self
                .issued
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for c in issued {
            let mut done = c
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while done.is_none() && self.core.mode == Mode::Threaded {
                if Instant::now() >= deadline || self.core.machine.bugcheck().is_some() {
                    break;
                }
                done =
                    c.cv.wait_timeout(done, Duration::from_millis(1))
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
            }
            drop(done);
        }
        // The address space goes away: later device DMA into these pages is a fault. The
        // spares are in the memory list; no call reuses them after.
        let memory: Vec<usize> = {
            let mut memory = self
                .memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.spare
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            std::mem::take(&mut *memory)
        };
        for va in memory {
            self.core.machine.free_user(va);
        }
        Ok(())
    }
}

#[expect(
    clippy::too_many_arguments,
    clippy::too_many_lines,
    reason = "the fields of one DeviceIoControl call, and the I/O manager's buffer setup for each method in one place"
)]
pub(super) fn submit_ioctl(
    dev: usize,
    file: usize,
    kind: ReqKind,
    method: u32,
    user_in: usize,
    in_len: usize,
    user_out: usize,
    out_len: usize,
) -> (usize, Arc<Completion>) {
    let completion = Arc::new(Completion::default());
    // The I/O manager builds the buffers before the driver sees the request.
    let mut sys_buf = 0usize;
    let mut out_mdl = 0usize;
    let (in_buf, out_buf) = match method {
        // A direct write: the caller's pages, locked for reading, are the request's input.
        1 if kind == ReqKind::Write => {
            // SAFETY: the user buffer belongs to the calling process; the MDL only records it.
            let mdl = unsafe {
                ntddk::IoAllocateMdl(
                    user_in as PVOID,
                    in_len as u32,
                    FALSE,
                    FALSE,
                    core::ptr::null_mut(),
                )
            };
            // SAFETY: the MDL describes the caller's buffer; the machine checks the range.
            unsafe {
                ntddk::MmProbeAndLockPages(mdl, 1, crate::types::_LOCK_OPERATION::IoReadAccess);
            }
            out_mdl = mdl as usize;
            (user_in, 0)
        }
        0 => {
            let len = in_len.max(out_len);
            if len > 0 {
                // SAFETY: pool allocation has no pointer preconditions.
                sys_buf = unsafe {
                    ntddk::ExAllocatePool2(
                        POOL_FLAG_NON_PAGED,
                        len as u64,
                        u32::from_le_bytes(*b"Irp "),
                    )
                } as usize;
                // The I/O manager copies the input and does not clear the rest: the output part
                // holds whatever the pool held (here a recognisable fill), so a driver that
                // reports more bytes than it wrote leaks it to the caller.
                with_state(|st, _| {
                    st.mem
                        .fill_va(sys_buf + in_len, crate::UNINITIALIZED_FILL, len - in_len);
                    if in_len > 0 {
                        st.mem.copy_va(sys_buf, user_in, in_len);
                    }
                    Ok(())
                });
            }
            (
                if in_len > 0 { sys_buf } else { 0 },
                if out_len > 0 { sys_buf } else { 0 },
            )
        }
        1 | 2 => {
            if in_len > 0 {
                // SAFETY: as above.
                sys_buf = unsafe {
                    ntddk::ExAllocatePool2(
                        POOL_FLAG_NON_PAGED,
                        in_len as u64,
                        u32::from_le_bytes(*b"Irp "),
                    )
                } as usize;
                with_state(|st, _| {
                    st.mem.copy_va(sys_buf, user_in, in_len);
                    Ok(())
                });
            }
            if out_len > 0 {
                // SAFETY: the user buffer belongs to the calling process; the MDL only records it.
                let mdl = unsafe {
                    ntddk::IoAllocateMdl(
                        user_out as PVOID,
                        out_len as u32,
                        FALSE,
                        FALSE,
                        core::ptr::null_mut(),
                    )
                };
                let op = if method == 2 {
                    crate::types::_LOCK_OPERATION::IoWriteAccess
                } else {
                    crate::types::_LOCK_OPERATION::IoReadAccess
                };
                // SAFETY: the MDL describes the caller's user buffer; the machine checks the range.
                unsafe { ntddk::MmProbeAndLockPages(mdl, 1, op) };
                out_mdl = mdl as usize;
            }
            (if in_len > 0 { sys_buf } else { 0 }, user_out)
        }
        _ => (user_in, user_out),
    };
    let queued = with_state(|st, _| {
        let w = &mut st.wdf;
        let Ok(d) = w.device(dev) else {
            return Ok(None);
        };
        let q = match kind {
            ReqKind::Read => d.read_queue,
            ReqKind::Write => d.write_queue,
            _ => d.ioctl_queue,
        }
        .or(d.default_queue);
        let attributes = d.request_attributes;
        let mut rd = RequestData::new(kind, dev, file, completion.clone());
        rd.in_len = in_len;
        rd.out_len = out_len;
        rd.in_buf = in_buf;
        rd.out_buf = out_buf;
        rd.out_mdl = out_mdl;
        rd.sys_buf = sys_buf;
        rd.user_out = if method == 0 { user_out } else { 0 };
        rd.method = method;
        rd.queue = q;
        let accepting = q.is_some_and(|q| w.queue(q).is_ok_and(|qd| qd.accepting));
        // A zero-length read or write never reaches a queue that does not allow them
        // (`WDF_IO_QUEUE_CONFIG.AllowZeroLengthRequests`, FALSE by default): the framework
        // completes it with STATUS_SUCCESS.
        let zero = matches!(kind, ReqKind::Read | ReqKind::Write)
            && in_len == 0
            && out_len == 0
            && q.is_some_and(|q| {
                w.queue(q)
                    .is_ok_and(|qd| qd.config.AllowZeroLengthRequests == 0)
            });
        let r = w.insert(Kind::Request(Box::new(rd)), Some(dev), attributes.as_ref());
        if zero {
            w.request(r)?.state = ReqState::Presented;
            return Ok(Some((r, None, true)));
        }
        if accepting && let Some(q) = q {
            w.queue(q)?.waiting.push_back(r);
        }
        Ok(Some((r, q, accepting)))
    });
    match queued {
        Some((r, Some(q), true)) => {
            dispatch(q);
            (r, completion)
        }
        Some((r, None, true)) => {
            complete(r, STATUS_SUCCESS, 0);
            (r, completion)
        }
        Some((r, _, _)) => {
            complete(r, STATUS_INVALID_DEVICE_REQUEST, 0);
            (r, completion)
        }
        None => {
            if sys_buf != 0 {
                // SAFETY: allocated above, never handed out.
                unsafe { ntddk::ExFreePool(sys_buf as PVOID) };
            }
            *completion
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((STATUS_DEVICE_REMOVED, 0));
            (0, completion)
        }
    }
}

pub(super) fn close_file(dev: usize, file: usize) {
    // Cancel every request of this handle, then cleanup and close.
    let (mine, cfg) = with_state(|st, _| {
        let w = &mut st.wdf;
        let mine: Vec<usize> = w
            .objects
            .iter()
            .filter(|(_, o)| matches!(&o.kind, Kind::Request(r) if r.file == file))
            .map(|(&h, _)| h)
            .collect();
        let cfg = w.device(dev).map(|d| d.file).unwrap_or_default();
        Ok((mine, cfg))
    });
    for r in mine {
        cancel(r);
    }
    if let Some(f) = cfg.EvtFileCleanup {
        // SAFETY: the driver's cleanup callback with the closing file object.
        callback(|| unsafe { f(file as WDFFILEOBJECT) });
    }
    if let Some(f) = cfg.EvtFileClose {
        // SAFETY: the driver's close callback.
        callback(|| unsafe { f(file as WDFFILEOBJECT) });
    }
    let objs = with_state(|st, _| Ok(st.wdf.detach_tree(file)));
    crate::wdf::run_cleanup(objs);
}
