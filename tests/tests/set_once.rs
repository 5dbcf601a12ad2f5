//! `rhca::sys::SetOnce`, the lock-free cell that holds a device's framework objects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rhca::sys::SetOnce;

#[test]
fn empty_until_set_then_refuses_a_second_value() {
    let c = SetOnce::new();
    assert_eq!(c.get(), None);
    assert_eq!(c.set(7u32), Ok(()));
    assert_eq!(c.get(), Some(&7));
    assert_eq!(c.set(8), Err(8), "the second value comes back");
    assert_eq!(c.get(), Some(&7));
}

#[test]
fn exactly_one_of_racing_writers_wins_and_readers_see_its_value() {
    for _ in 0..200 {
        let c = Arc::new(SetOnce::new());
        let wins = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4u32)
            .map(|i| {
                let (c, wins) = (Arc::clone(&c), Arc::clone(&wins));
                std::thread::spawn(move || {
                    if c.set(i).is_ok() {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    // Whoever reads after any set returned sees a written value, never garbage.
                    if let Some(v) = c.get() {
                        assert!(*v < 4);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1);
        assert!(c.get().is_some());
    }
}

#[test]
fn the_value_is_dropped_once_and_an_empty_cell_drops_nothing() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let c = SetOnce::new();
        assert!(c.set(Counted(Arc::clone(&drops))).is_ok());
        // The refused value is handed back and dropped by the caller.
        drop(c.set(Counted(Arc::clone(&drops))));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(SetOnce::<Counted>::new());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}
