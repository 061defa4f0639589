//! The one backoff of every retry loop of every transport.

use std::time::Duration;

/// Exponential backoff with jitter for loops that retry a failing broker operation (reads,
/// writes, reconnects, publishes): 100 ms doubling to 5 s, each wait drawn from `[v/2, v)` so
/// that many servers failing at once do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// The first wait (before jitter).
    pub const MIN: Duration = Duration::from_millis(100);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(5);

    /// Starts at [`Backoff::MIN`].
    pub const fn new() -> Self {
        Self { next: Self::MIN }
    }

    /// Back to [`Backoff::MIN`] (after a success).
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// The longest the next wait can be (for "is there time for another attempt").
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// The next wait, and doubles the one after it.
    pub fn next_delay(&mut self) -> Duration {
        let v = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        v.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new();
        let mut cap = Backoff::MIN;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= cap / 2 && d <= cap,
                "{d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
            cap = (cap * 2).min(Backoff::MAX);
        }
        assert_eq!(b.peek(), Backoff::MAX);
        b.reset();
        assert_eq!(b.peek(), Backoff::MIN);
    }
}
