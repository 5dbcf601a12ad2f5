//! `loom` models of the two ownership protocols every RHCA ring uses (`docs/device.md` §5.3,
//! §5.4), explored over every interleaving loom's memory model allows:
//!
//! - the owner-bit protocol of CQEs and stream records: the producer writes an entry's body,
//!   then its owner byte with `Release`; the consumer loads the owner byte with `Acquire` and
//!   reads the body only when the owner bit is the valid one for its ring index — across a wrap,
//!   where the valid value flips (`Ring::owner`);
//! - the doorbell protocol of WQEs: the driver writes the WQE, issues a `Release` fence and
//!   writes the doorbell; the device reads the doorbell, issues an `Acquire` fence, then reads the
//!   WQEs the doorbell covers.
//!
//! Bodies are relaxed atomics (plain memory, no ordering of their own): a consumer that reads a
//! body the protocol did not publish to it can see the old value, and the model's assertion on
//! the values read fails — as it does when the owner byte is loaded `Relaxed` instead of
//! `Acquire`, or the fence is left out.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
use loom::thread;
use rhca_hw::ring::Ring;

/// A two-entry ring of one-word bodies and owner bytes, zeroed ("not valid" on the first lap).
struct Entries {
    body: [AtomicU64; 2],
    owner: [AtomicU8; 2],
}

#[test]
fn owner_bits_hand_over_entries_across_a_wrap() {
    loom::model(|| {
        let ring = Ring::new(2).unwrap();
        let e = Arc::new(Entries {
            body: [AtomicU64::new(0), AtomicU64::new(0)],
            owner: [AtomicU8::new(0), AtomicU8::new(0)],
        });
        // The consumer's acknowledgement (its consumer index), so the producer never overwrites
        // an entry the consumer has not taken (the CQ's CI doorbell, the record credits).
        let consumed = Arc::new(AtomicU32::new(0));
        let producer = {
            let (e, consumed) = (e.clone(), consumed.clone());
            thread::spawn(move || {
                // Three entries through two slots: the third wraps into slot 0 on lap 1.
                for seq in 0..3u32 {
                    while seq >= consumed.load(Ordering::Acquire) + 2 {
                        thread::yield_now();
                    }
                    let at = ring.index(seq % 4).unwrap();
                    let slot = ring.slot(at) as usize;
                    e.body[slot].store(u64::from(seq) + 100, Ordering::Relaxed);
                    // The body is visible before the owner byte (the device's write barrier).
                    e.owner[slot].store(u8::from(ring.owner(at)), Ordering::Release);
                }
            })
        };
        let mut got = Vec::new();
        let mut ci = 0u32;
        while got.len() < 3 {
            let at = ring.index(ci % 4).unwrap();
            let slot = ring.slot(at) as usize;
            // Acquire: the owner byte, then (if ours) the body it publishes.
            let owner = e.owner[slot].load(Ordering::Acquire) != 0;
            if ring.is_owned(at, owner) {
                got.push(e.body[slot].load(Ordering::Relaxed));
                ci += 1;
                consumed.store(ci, Ordering::Release);
            } else {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        // Never a stale entry of the previous lap, never a torn one, in order.
        assert_eq!(got, vec![100, 101, 102]);
    });
}

#[test]
fn a_release_fence_before_the_doorbell_publishes_the_wqes() {
    loom::model(|| {
        let wqes = Arc::new(Entries {
            body: [AtomicU64::new(0), AtomicU64::new(0)],
            owner: [AtomicU8::new(0), AtomicU8::new(0)],
        });
        let doorbell = Arc::new(AtomicU32::new(0));
        let driver = {
            let (w, db) = (wqes.clone(), doorbell.clone());
            thread::spawn(move || {
                w.body[0].store(0xA, Ordering::Relaxed);
                w.body[1].store(0xB, Ordering::Relaxed);
                // Every WQE byte before the doorbell (hca.rs `ring_doorbell`).
                fence(Ordering::Release);
                db.store(2, Ordering::Relaxed);
            })
        };
        // The device: sees the doorbell, fences, fetches what it covers.
        let covered = loop {
            let n = doorbell.load(Ordering::Relaxed);
            if n > 0 {
                fence(Ordering::Acquire);
                break n;
            }
            thread::yield_now();
        };
        let fetched: Vec<u64> = (0..covered as usize)
            .map(|i| wqes.body[i].load(Ordering::Relaxed))
            .collect();
        driver.join().unwrap();
        assert_eq!(fetched, vec![0xA, 0xB]);
    });
}
