//! Handler slots: a server reads no more messages than it has free slots for.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The handler slots of one served service (`concurrency` of them). A transport takes slots
/// before it reads, reads at most that many messages, and gives each message one slot; a slot
/// is free again when its [`Slot`] is dropped (after the reply and ack).
#[derive(Debug, Clone)]
pub struct Slots(Arc<Semaphore>);

/// One taken handler slot.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Slots {
    /// `concurrency` free slots.
    pub fn new(concurrency: NonZeroUsize) -> Self {
        Self(Arc::new(Semaphore::new(concurrency.get())))
    }

    /// How many are free now.
    pub fn free(&self) -> usize {
        self.0.available_permits()
    }

    /// Waits for one free slot, then takes the others free at that moment, `max` in all: what
    /// a read may ask for. Never empty (for `max` ≥ 1).
    pub async fn batch(&self, max: usize) -> Vec<Slot> {
        let first = match Arc::clone(&self.0).acquire_owned().await {
            Ok(permit) => Slot(permit),
            // never closed
            Err(_) => return Vec::new(),
        };
        let mut slots = Vec::with_capacity(max.min(self.free() + 1));
        slots.push(first);
        slots.extend(self.take(max.saturating_sub(1)));
        slots
    }

    /// Up to `max` free slots, without waiting.
    pub fn take(&self, max: usize) -> impl Iterator<Item = Slot> + '_ {
        std::iter::from_fn(|| Arc::clone(&self.0).try_acquire_owned().ok().map(Slot)).take(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_is_what_is_free_up_to_max() {
        let slots = Slots::new(NonZeroUsize::new(5).unwrap());
        let a = slots.batch(3).await;
        assert_eq!((a.len(), slots.free()), (3, 2));
        let b = slots.batch(10).await;
        assert_eq!((b.len(), slots.free()), (2, 0));
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.batch(10).await.len() }
        });
        tokio::task::yield_now().await;
        drop(a);
        assert_eq!(waiting.await.unwrap(), 3);
        assert_eq!(slots.take(4).count(), 0);
    }
}
