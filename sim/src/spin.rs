//! Spinning briefly before blocking, for the simulated machine's hand-offs between threads.
//!
//! What it owns: the one policy every hand-off of the simulated machine uses before it blocks
//! on a channel or a condition variable: a system call handed to a simulated CPU and its result
//! handed back, a request's completion, an interrupt reaching the interrupt CPU, a doorbell
//! reaching the device model. A blocked thread costs a futex wake and a context switch on each
//! hand-off (several microseconds on a loaded two-core host, most of a simulated MAD round
//! trip); a thread that polls for a short while first usually finds the answer already there.
//! Windows spins the same way before it waits (a dispatcher object's wait, a queued spin lock).
//!
//! The budget is short and bounded by time, so a waiter that finds nothing gives its core
//! back quickly: on a host with fewer cores than busy threads, a long spin would only take the
//! core from the thread that is to produce the answer. Nothing here changes what the machine
//! does, only how soon a waiting thread notices.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a waiter polls before it blocks, unless `WDK_SIM_SPIN_US` says otherwise.
pub const SPIN: Duration = Duration::from_micros(20);

/// The budget in force: [`SPIN`], or `WDK_SIM_SPIN_US` microseconds when that is set.
///
/// The variable is read once. `0` turns spinning off, as an instruction-counting run under
/// valgrind wants: there every thread runs on one host thread, and a spinning one only delays
/// the one it waits for.
#[must_use]
pub fn budget() -> Duration {
    static BUDGET: OnceLock<Duration> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("WDK_SIM_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(SPIN, Duration::from_micros)
    })
}

/// Polls between two looks at the clock.
const POLLS_PER_CLOCK: u32 = 16;

/// Calls `poll` until it returns `Some` or the [`budget`] has passed; `None` then, and the
/// caller blocks as it would have without spinning.
pub fn spin<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let budget = budget();
    if budget.is_zero() {
        return None;
    }
    let start = Instant::now();
    loop {
        for _ in 0..POLLS_PER_CLOCK {
            if let Some(v) = poll() {
                return Some(v);
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_already_there_is_returned_at_once() {
        assert_eq!(spin(|| Some(7)), Some(7));
    }

    #[test]
    fn nothing_within_the_budget_gives_up_after_it() {
        let t = Instant::now();
        assert_eq!(spin(|| None::<()>), None);
        assert!(t.elapsed() >= budget());
    }

    #[test]
    fn a_value_that_arrives_while_spinning_is_seen() {
        let mut polls = 0;
        assert_eq!(
            spin(|| {
                polls += 1;
                (polls == 40).then_some(polls)
            }),
            Some(40)
        );
    }
}
