//! The rig: a machine, an RHCA model on its bus, a DMA adapter, and a host side without a driver.
//!
//! Its helpers do what a driver does — lay out rings in common buffers, write WQEs, ring
//! doorbells, poll CQEs — by hand, through the HAL routines and the device's registers.
//!
//! For the model's tests and `rhca-lab bench`'s raw-ring baselines: every helper panics on a
//! failure (a test failure), which is why they carry no `# Panics` sections.

#![allow(
    clippy::cast_possible_truncation,
    reason = "rig geometry is small: ring sizes, slots and 32-bit register halves of addresses"
)]
#![allow(
    clippy::missing_panics_doc,
    clippy::must_use_candidate,
    clippy::missing_errors_doc,
    reason = "a test rig: every helper panics on failure by design"
)]

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{HostPort, ModelConfig, RhcaDevice};
use rhca_hw::cqe::{CQE_SIZE, Cqe};
use rhca_hw::mad::{self, MadHeader};
use rhca_hw::regs::{self, WqId, cq, db, se, wq};
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Descriptor, Record};
use rhca_hw::wqe::{Ctrl, DataSeg, Opcode, Payload, Wqe};
use wdk_sim::testkit::{CommonBuffer, Mapping, TestAdapter};
use wdk_sim::{Attached, Config, DeviceBus, Entered, Machine, PciFunction, Profile};

/// A machine with one RHCA and a DMA adapter, entered on the test's thread.
pub struct Rig {
    /// The device model.
    pub dev: Arc<RhcaDevice>,
    /// Where the device sits on the bus (its PDO and slot).
    pub att: Attached,
    buffers: RefCell<Vec<CommonBuffer>>,
    mappings: RefCell<Vec<Mapping>>,
    adapter: Option<TestAdapter>,
    cpu: Option<Entered>,
    /// The machine.
    pub m: Machine,
}

/// A created work queue as the driver tracks it.
#[derive(Debug, Clone, Copy)]
pub struct WqH {
    /// Which queue.
    pub id: WqId,
    /// The ring's CPU address.
    pub va: usize,
    /// The ring's logical address.
    pub la: u64,
    /// The ring geometry.
    pub ring: Ring,
    /// Bytes per WQE.
    pub stride: usize,
    /// Producer ring index (next slot to write).
    pub pi: u32,
}

/// A created completion queue as the driver tracks it.
#[derive(Debug, Clone)]
pub struct CqH {
    /// CQ number.
    pub n: u32,
    /// The ring geometry.
    pub ring: Ring,
    /// Logical address of every ring byte offset (contiguous or through a page list).
    pub pages: Vec<usize>,
    /// Consumer ring index.
    pub ci: u32,
}

impl Rig {
    /// A rig on a machine with `profile` and the default device.
    pub fn new(profile: Profile) -> Self {
        Self::with(Config::with_profile(profile), ModelConfig::default())
    }

    /// A rig on a machine built from `config`, with device `model`.
    pub fn with(config: Config, model: ModelConfig) -> Self {
        Self::with_port(config, model, |bus| Arc::new(bus))
    }

    /// As [`Rig::with`], with the device reaching the machine's bus through the port `wrap`
    /// makes of it (a test's port that delays or watches the device's DMA).
    pub fn with_port(
        config: Config,
        model: ModelConfig,
        wrap: impl FnOnce(DeviceBus) -> Arc<dyn HostPort>,
    ) -> Self {
        let width = model.caps.dma_width;
        let m = Machine::new(config);
        let dev = RhcaDevice::new(model).expect("valid model configuration");
        let (att, bus) = m.attach(dev.clone());
        dev.connect(wrap(bus));
        let cpu = m.enter();
        let adapter = TestAdapter::new(&att, width, 64 << 20).expect("adapter");
        Self {
            dev,
            att,
            buffers: RefCell::new(Vec::new()),
            mappings: RefCell::new(Vec::new()),
            adapter: Some(adapter),
            cpu: Some(cpu),
            m,
        }
    }

    /// The DMA adapter.
    pub const fn adapter(&self) -> &TestAdapter {
        self.adapter.as_ref().expect("adapter")
    }

    /// Pool mapped for the device; returns (va, logical address of the first element, the
    /// Maps `len` bytes of a user buffer (the application's circular buffer) for the stream's
    /// life; returns the mapping's elements. Unmapped at teardown.
    pub fn map_user(&self, va: usize, len: u32, device_writes: bool) -> Vec<(u64, u32)> {
        let m = self
            .adapter()
            .map_user(va, len, device_writes)
            .expect("mapping");
        let el = m.elements.clone();
        self.mappings.borrow_mut().push(m);
        el
    }

    /// `FlushDmaBuffer` on the mapping of `va`.
    pub fn flush(&self, va: usize) {
        let maps = self.mappings.borrow();
        let m = maps.iter().find(|m| m.va == va).expect("a mapped buffer");
        self.adapter().flush_dma(m).expect("flush");
    }

    /// Unmaps the receive buffer at `va` (copying back a bounce buffer) and returns its bytes.
    pub fn recv_data(&self, va: usize) -> Vec<u8> {
        let mut maps = self.mappings.borrow_mut();
        let i = maps
            .iter()
            .position(|m| m.va == va)
            .expect("a mapped buffer");
        let m = maps.swap_remove(i);
        drop(maps);
        self.adapter().unmap_read(m)
    }

    /// Quiesces the device, releases every buffer and the adapter; returns what leaked.
    pub fn teardown(&mut self) -> Vec<String> {
        if !regs::ALL_ONES.eq(&self.r(regs::STATUS.offset)) {
            self.w(
                regs::CTRL.offset,
                regs::CTRL_ENABLE.mask() | regs::CTRL_QUIESCE.mask(),
            );
            assert!(regs::STATUS_QUIESCED.is_set(self.r(regs::STATUS.offset)));
        }
        if let Some(a) = self.adapter.as_ref() {
            for m in self.mappings.borrow_mut().drain(..) {
                a.unmap(m);
            }
            for b in self.buffers.borrow_mut().drain(..) {
                a.free_common(b);
            }
        }
        self.adapter = None;
        let leaks = self.m.leaks().expect("no late device writes");
        self.cpu = None;
        leaks
    }
}

/// What a host without a driver needs of its machine to drive the device by hand.
///
/// That is registers, zeroed device-visible memory, buffers mapped for the device, and CPU
/// access to what it allocated. [`Rig`] implements it over the simulated machine's HAL; `rhca-vfio-user`'s tests
/// over a VM's memory and the vfio-user socket. The queue operations (create, post, ring,
/// poll) are provided on top, once, for both.
pub trait HostSide {
    /// Reads the register at BAR0 offset `off`.
    fn r(&self, off: u32) -> u32;

    /// Writes the register at BAR0 offset `off`.
    fn w(&self, off: u32, v: u32);

    /// A zeroed buffer the device can reach (a common buffer): (CPU handle, device address).
    fn common(&self, len: u32) -> (usize, u64);

    /// A buffer of `len` bytes mapped for the device: (CPU handle, the mapping's elements as
    /// (device address, length)).
    fn pool(&self, len: u32, device_writes: bool) -> (usize, Vec<(u64, u32)>);

    /// A buffer holding `bytes`, mapped for the device to read: its elements.
    fn pool_with(&self, bytes: &[u8]) -> Vec<(u64, u32)>;

    /// Writes memory at CPU handle `va`.
    fn write(&self, va: usize, data: &[u8]);

    /// Reads `len` bytes of memory at CPU handle `va`.
    fn read(&self, va: usize, len: usize) -> Vec<u8>;

    /// Reset, wait for READY (bounded, as the driver does), enable.
    fn bring_up(&self) {
        self.w(regs::CTRL.offset, regs::CTRL_RESET.mask());
        let deadline = Instant::now() + Duration::from_millis(100);
        while !regs::STATUS_READY.is_set(self.r(regs::STATUS.offset)) {
            assert!(Instant::now() < deadline, "reset did not complete");
            std::thread::sleep(Duration::from_micros(20));
        }
        self.w(regs::CTRL.offset, regs::CTRL_ENABLE.mask());
    }

    /// Creates CQ `n` with `2^log_entries` entries in one contiguous common buffer.
    fn create_cq(&self, n: u32, log_entries: u32) -> CqH {
        let ring = Ring::from_log2(log_entries).unwrap();
        let len = ring.entries() * CQE_SIZE as u32;
        let (va, la) = self.common(len.max(4096));
        self.w(cq::offset(n, cq::BASE_LO).unwrap(), la as u32);
        self.w(cq::offset(n, cq::BASE_HI).unwrap(), (la >> 32) as u32);
        self.w(
            cq::offset(n, cq::CFG).unwrap(),
            cq::CFG_LOG_ENTRIES.set(0, log_entries) | cq::CFG_VALID.mask(),
        );
        CqH {
            n,
            ring,
            pages: (0..len.div_ceil(4096) as usize)
                .map(|i| va + i * 4096)
                .collect(),
            ci: 0,
        }
    }

    /// A CQ whose ring is `pages` separate 4 KiB common buffers listed in a page list.
    fn create_cq_paged(&self, n: u32, log_entries: u32) -> CqH {
        let ring = Ring::from_log2(log_entries).unwrap();
        let len = ring.entries() as usize * CQE_SIZE;
        assert!(len >= 4096);
        let (table_va, table_logical) = self.common(4096);
        let mut pages = Vec::new();
        let mut list = Vec::new();
        for _ in 0..len / 4096 {
            let (page_va, page_logical) = self.common(4096);
            pages.push(page_va);
            list.extend_from_slice(&page_logical.to_le_bytes());
        }
        self.write(table_va, &list);
        self.w(cq::offset(n, cq::BASE_LO).unwrap(), table_logical as u32);
        self.w(
            cq::offset(n, cq::BASE_HI).unwrap(),
            (table_logical >> 32) as u32,
        );
        self.w(
            cq::offset(n, cq::CFG).unwrap(),
            cq::CFG_LOG_ENTRIES.set(0, log_entries)
                | cq::CFG_PAGE_LIST.mask()
                | cq::CFG_VALID.mask(),
        );
        CqH {
            n,
            ring,
            pages,
            ci: 0,
        }
    }

    /// Creates work queue `id` reporting to CQ `cqn`.
    fn create_wq(&self, id: WqId, log_entries: u32, log_stride: u32, cqn: u32) -> WqH {
        let ring = Ring::from_log2(log_entries).unwrap();
        let stride = 1usize << log_stride;
        let len = (ring.entries() as usize * stride).max(4096) as u32;
        let (va, la) = self.common(len);
        self.w(wq::offset(id, wq::BASE_LO), la as u32);
        self.w(wq::offset(id, wq::BASE_HI), (la >> 32) as u32);
        self.w(
            wq::offset(id, wq::CFG),
            wq::CFG_LOG_ENTRIES.set(0, log_entries)
                | wq::CFG_LOG_STRIDE.set(0, log_stride)
                | wq::CFG_CQN.set(0, cqn)
                | wq::CFG_VALID.mask(),
        );
        WqH {
            id,
            va,
            la,
            ring,
            stride,
            pi: 0,
        }
    }

    /// Writes `w` into the next slot with the right owner bit and index; does not ring.
    fn post(&self, q: &mut WqH, ctrl: Ctrl, payload: Payload<'_>) {
        let at = q.ring.index(q.pi).unwrap();
        let slot = q.ring.slot(at);
        let wqe = Wqe {
            ctrl: Ctrl {
                owner: q.ring.owner(at),
                wqe_index: slot as u16,
                qpn: q.id.qpn() as u8,
                ..ctrl
            },
            payload,
        };
        let mut buf = vec![0u8; q.stride];
        wqe.encode(&mut buf).unwrap();
        self.write(q.va + slot as usize * q.stride, &buf);
        q.pi = q.ring.next(at).raw();
    }

    /// Rings `q`'s doorbell with its producer index.
    fn ring(&self, q: &WqH) {
        // The release fence a driver issues here is implicit: the WQE was written through the
        // machine's lock (or the vfio-user socket) that the device's fetch also goes through.
        self.w(db::wq(q.id), q.pi);
    }

    /// Posts one receive buffer of `len` bytes (pool mapped for device writes); returns its va.
    fn post_recv(&self, q: &mut WqH, len: u32) -> usize {
        let (va, el) = self.pool(len, true);
        let mut segs = [DataSeg::default(); 4];
        for (s, &(addr, l)) in segs.iter_mut().zip(el.iter()) {
            *s = DataSeg {
                byte_count: l,
                lkey: 0,
                addr,
            };
        }
        self.post(
            q,
            Ctrl {
                opcode: Opcode::Recv as u8,
                signaled: true,
                ..Ctrl::default()
            },
            Payload::Segments {
                segs,
                count: el.len(),
            },
        );
        va
    }

    /// Posts a send of `mad` from a mapped pool buffer.
    fn post_send(
        &self,
        q: &mut WqH,
        mad_bytes: &[u8; mad::MAD_SIZE],
        dlid: u16,
        rqpn: u32,
        qkey: u32,
    ) {
        let el = self.pool_with(mad_bytes);
        let mut segs = [DataSeg::default(); 4];
        for (s, &(addr, l)) in segs.iter_mut().zip(el.iter()) {
            *s = DataSeg {
                byte_count: l,
                lkey: 0,
                addr,
            };
        }
        self.post(
            q,
            Ctrl {
                opcode: Opcode::Send as u8,
                signaled: true,
                dlid,
                remote_qpn: rqpn,
                qkey,
                ..Ctrl::default()
            },
            Payload::Segments {
                segs,
                count: el.len(),
            },
        );
    }

    /// The CQE at the consumer index if its owner bit says it is valid.
    fn poll(&self, c: &mut CqH) -> Option<Cqe> {
        let at = c.ring.index(c.ci).unwrap();
        let off = c.ring.slot(at) as usize * CQE_SIZE;
        let va = c.pages[off / 4096] + off % 4096;
        let bytes = self.read(va, CQE_SIZE);
        if !c.ring.is_owned(at, Cqe::owner_of(bytes[31])) {
            return None;
        }
        c.ci = c.ring.next(at).raw();
        Some(Cqe::decode(&bytes).expect("the model writes valid CQEs"))
    }

    /// Raw bytes of the CQE at the consumer index (valid or not), advancing.
    fn poll_raw(&self, c: &mut CqH) -> Option<Vec<u8>> {
        let at = c.ring.index(c.ci).unwrap();
        let off = c.ring.slot(at) as usize * CQE_SIZE;
        let va = c.pages[off / 4096] + off % 4096;
        let bytes = self.read(va, CQE_SIZE);
        if !c.ring.is_owned(at, Cqe::owner_of(bytes[31])) {
            return None;
        }
        c.ci = c.ring.next(at).raw();
        Some(bytes)
    }

    /// Every valid CQE, then the consumer index written back.
    fn drain(&self, c: &mut CqH) -> Vec<Cqe> {
        let mut v = Vec::new();
        while let Some(e) = self.poll(c) {
            v.push(e);
        }
        self.w(db::cq_ci(c.n).unwrap(), c.ci);
        v
    }

    /// The latched error: (code, source).
    fn syndrome(&self) -> (u32, u32) {
        let s = self.r(regs::ERR_SYNDROME.offset);
        (
            regs::ERR_SYNDROME_CODE.get(s),
            regs::ERR_SYNDROME_SOURCE.get(s),
        )
    }
}

impl HostSide for Rig {
    /// Reads the register at BAR0 offset `off`.
    fn r(&self, off: u32) -> u32 {
        self.dev.mmio_read(0, u64::from(off))
    }

    /// Writes the register at BAR0 offset `off`.
    fn w(&self, off: u32, v: u32) {
        self.dev.mmio_write(0, u64::from(off), v);
    }

    /// A zeroed common buffer, freed at teardown.
    fn common(&self, len: u32) -> (usize, u64) {
        let b = self.adapter().common_buffer(len).expect("common buffer");
        self.m.cpu_write(b.va, &vec![0u8; len as usize]).unwrap();
        let r = (b.va, b.logical);
        self.buffers.borrow_mut().push(b);
        r
    }

    /// elements). Unmapped at teardown.
    fn pool(&self, len: u32, device_writes: bool) -> (usize, Vec<(u64, u32)>) {
        let m = self
            .adapter()
            .map_pool(len, device_writes)
            .expect("mapping");
        let r = (m.va, m.elements.clone());
        self.mappings.borrow_mut().push(m);
        r
    }

    /// Writes host memory at `va` as the CPU.
    fn write(&self, va: usize, data: &[u8]) {
        self.m.cpu_write(va, data).unwrap();
    }

    /// Reads `len` bytes of host memory at `va` as the CPU.
    fn read(&self, va: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.m.cpu_read(va, &mut v).unwrap();
        v
    }

    fn pool_with(&self, bytes: &[u8]) -> Vec<(u64, u32)> {
        let m = self.adapter().map_pool_with(bytes).expect("mapping");
        let el = m.elements.clone();
        self.mappings.borrow_mut().push(m);
        el
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if self.cpu.is_some() && !std::thread::panicking() && self.m.bugcheck().is_none() {
            let _ = self.teardown();
        } else {
            // A failed test or a stopped machine: releasing now could bug-check inside an
            // `extern "C"` routine, which cannot unwind. Leak instead; the process ends soon.
            std::mem::forget(self.adapter.take());
            std::mem::forget(std::mem::take(&mut *self.mappings.borrow_mut()));
            std::mem::forget(std::mem::take(&mut *self.buffers.borrow_mut()));
        }
    }
}

/// A stream engine started by hand (`docs/device.md` §8), tracked as the driver tracks it: the
/// buffer's CPU handle, the record ring, and the sequence number of the next record.
#[derive(Debug, Clone)]
pub struct StreamH {
    /// The engine.
    pub n: u32,
    /// The circular buffer's CPU handle.
    pub va: usize,
    /// Bytes per segment.
    pub seg_size: u32,
    /// Segments in the buffer.
    pub seg_count: u32,
    /// The record ring's CPU handle.
    pub rec_va: usize,
    /// The record ring's geometry.
    pub ring: Ring,
    /// Sequence number of the next record the host expects.
    pub next: u64,
}

impl StreamH {
    /// Describes the buffer at `va`, mapped as `elements`, in a descriptor table, programs
    /// engine `n` and starts it (no credit yet).
    #[expect(
        clippy::too_many_arguments,
        reason = "the engine's registers, one argument each, as the datasheet lists them"
    )]
    pub fn start(
        h: &impl HostSide,
        n: u32,
        capture: bool,
        verify: bool,
        seg_size: u32,
        seg_count: u32,
        va: usize,
        elements: &[(u64, u32)],
    ) -> Self {
        let mut table = vec![0u8; elements.len() * stream::DESC_SIZE];
        for (i, (&(addr, l), out)) in elements.iter().zip(table.chunks_exact_mut(16)).enumerate() {
            Descriptor {
                addr,
                len: l,
                last: i + 1 == elements.len(),
            }
            .encode(out)
            .unwrap();
        }
        let (tva, tla) = h.common((table.len() as u32).max(4096));
        h.write(tva, &table);
        let (rec_va, records_logical) = h.common((seg_count * 16).max(4096));
        let r = |reg| se::offset(n, reg).unwrap();
        h.w(r(se::DESC_LO), tla as u32);
        h.w(r(se::DESC_HI), (tla >> 32) as u32);
        h.w(r(se::DESC_COUNT), elements.len() as u32);
        h.w(r(se::SEG_SIZE), seg_size);
        h.w(r(se::SEG_COUNT), seg_count);
        h.w(r(se::REC_LO), records_logical as u32);
        h.w(r(se::REC_HI), (records_logical >> 32) as u32);
        let dir = if capture { 0 } else { se::CTRL_DIR.mask() };
        let verify = if verify { se::CTRL_VERIFY.mask() } else { 0 };
        h.w(r(se::CTRL), se::CTRL_START.mask() | dir | verify);
        Self {
            n,
            va,
            seg_size,
            seg_count,
            rec_va,
            ring: Ring::new(seg_count).unwrap(),
            next: 0,
        }
    }

    /// Grants `k` credits.
    pub fn grant(&self, h: &impl HostSide, k: u32) {
        h.w(db::se_credit(self.n).unwrap(), k);
    }

    /// The engine's STATUS register.
    pub fn status(&self, h: &impl HostSide) -> u32 {
        h.r(se::offset(self.n, se::STATUS).unwrap())
    }

    /// The next record if the device has written it, checked as the driver checks it.
    pub fn poll(&mut self, h: &impl HostSide) -> Option<Record> {
        let at = self
            .ring
            .index((self.next % (2 * u64::from(self.seg_count))) as u32)
            .unwrap();
        let b = h.read(self.rec_va + self.ring.slot(at) as usize * 16, 16);
        if !self
            .ring
            .is_owned(at, b[15] & stream::RECORD_OWNER_BIT != 0)
        {
            return None;
        }
        let rec = Record::decode(&b).unwrap();
        rec.check(self.ring, at, self.next, self.seg_size).unwrap();
        self.next += 1;
        Some(rec)
    }

    /// The bytes of segment `seq` in the buffer.
    pub fn segment(&self, h: &impl HostSide, seq: u64) -> Vec<u8> {
        let s = (seq % u64::from(self.seg_count)) as usize;
        h.read(self.va + s * self.seg_size as usize, self.seg_size as usize)
    }
}

/// A MAD with `hdr` and zeroed data.
pub fn mad_with(hdr: MadHeader) -> [u8; mad::MAD_SIZE] {
    let mut m = [0u8; mad::MAD_SIZE];
    hdr.encode(&mut m).unwrap();
    m
}

/// A directed-route `SubnGet` of `attr_id` along `path` (hop count = path length - 1).
pub fn dr_get(attr_id: u16, attr_mod: u32, path: &[u8], tid: u64) -> [u8; mad::MAD_SIZE] {
    mad::directed_route_get(attr_id, attr_mod, path, tid).expect("a valid route")
}
