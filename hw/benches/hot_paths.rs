//! Criterion benchmarks of the `rhca-hw` code on the driver's hot paths: ring index arithmetic
//! (every post and poll), WQE encoding (every send), CQE and stream-record decoding and checking
//! (every completion), IOCTL input decoding (every request), and the stream data pattern (every
//! verified segment). `cargo bench -p rhca-hw`.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rhca_hw::cqe::{CQE_SIZE, Cqe};
use rhca_hw::ioctl::SendMadIn;
use rhca_hw::mad;
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Record, RecordStatus};
use rhca_hw::wqe::{Ctrl, Opcode, Payload, Wqe};

fn ring(c: &mut Criterion) {
    let r = Ring::from_log2(6).unwrap();
    c.bench_function("ring: next + slot + owner (64 entries)", |b| {
        let mut i = r.start();
        b.iter(|| {
            i = r.next(i);
            black_box((r.slot(i), r.owner(i)))
        });
    });
    c.bench_function("ring: used (producer, consumer)", |b| {
        let p = r.index(70).unwrap();
        let q = r.index(10).unwrap();
        b.iter(|| black_box(r.used(black_box(p), black_box(q))));
    });
}

fn wqe(c: &mut Criterion) {
    let m = [0x5Au8; mad::MAD_SIZE];
    let mut out = [0u8; 512];
    c.bench_function("wqe: encode an inline MAD send", |b| {
        b.iter(|| {
            let w = Wqe {
                ctrl: Ctrl {
                    opcode: Opcode::Send as u8,
                    signaled: true,
                    owner: true,
                    dlid: 0xFFFF,
                    ..Ctrl::default()
                },
                payload: Payload::Inline(black_box(&m)),
            };
            black_box(w.encode(&mut out))
        });
    });
}

fn completions(c: &mut Criterion) {
    let mut bytes = [0u8; CQE_SIZE];
    let cqe = Cqe {
        wqe_index: 3,
        qpn: 1,
        opcode: rhca_hw::cqe::Opcode::Recv,
        byte_count: 296,
        slid: 3,
        pkey_index: 0,
        src_qpn: 1,
        status: rhca_hw::cqe::Status::Success,
        syndrome: 0,
        grh: false,
        sl: 0,
        owner: true,
    };
    cqe.encode(&mut bytes).unwrap();
    c.bench_function("cqe: decode", |b| {
        b.iter(|| black_box(Cqe::decode(black_box(&bytes))));
    });
    let ring = Ring::new(64).unwrap();
    let at = ring.index(5).unwrap();
    let rec = Record {
        seq: 5,
        byte_count: 65536,
        status: RecordStatus::Ok,
        owner: ring.owner(at),
    };
    let mut rb = [0u8; stream::RECORD_SIZE];
    rec.encode(&mut rb).unwrap();
    c.bench_function("stream record: decode + check", |b| {
        b.iter(|| {
            let r = Record::decode(black_box(&rb)).unwrap();
            black_box(r.check(ring, at, 5, 65536))
        });
    });
}

fn ioctl(c: &mut Criterion) {
    let mut b = [0u8; SendMadIn::SIZE];
    let _ = SendMadIn::default().encode(&mut b);
    c.bench_function("ioctl: decode + validate SendMadIn", |bench| {
        bench.iter(|| {
            let i = SendMadIn::decode(black_box(&b));
            black_box(i.map(|i| i.validate()))
        });
    });
}

fn pattern(c: &mut Criterion) {
    let mut seg = vec![0u8; 4096];
    let mut g = c.benchmark_group("pattern 4 KiB");
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("fill", |b| {
        b.iter(|| stream::fill_pattern(black_box(&mut seg), 7, 0));
    });
    stream::fill_pattern(&mut seg, 7, 0).unwrap();
    g.bench_function("verify", |b| {
        b.iter(|| black_box(stream::verify_pattern(black_box(&seg), 7, 0)));
    });
    g.finish();
}

criterion_group!(benches, ring, wqe, completions, ioctl, pattern);
criterion_main!(benches);
