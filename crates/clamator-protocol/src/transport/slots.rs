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

    /// Waits until `min` slots are free (at least one), then takes them and the others free at
    /// that moment, `max` in all (at least `min`).
    pub async fn batch_of(&self, min: usize, max: usize) -> Vec<Slot> {
        let min = min.max(1);
        let Ok(mut permits) = Arc::clone(&self.0)
            .acquire_many_owned(u32::try_from(min).unwrap_or(u32::MAX))
            .await
        else {
            // never closed
            return Vec::new();
        };
        let mut slots = Vec::with_capacity(max.max(min));
        while let Some(one) = permits.split(1) {
            slots.push(Slot(one));
        }
        slots.extend(self.take(max.saturating_sub(slots.len())));
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
        // the task's slots were dropped with it; b still holds 2
        assert_eq!(slots.free(), 3);
        let taken: Vec<Slot> = slots.take(4).collect();
        assert_eq!((taken.len(), slots.free()), (3, 0));
    }

    #[tokio::test]
    async fn batch_of_waits_for_its_minimum() {
        let slots = Slots::new(NonZeroUsize::new(4).unwrap());
        let mut held = slots.batch(4).await;
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.batch_of(2, 3).await.len() }
        });
        held.pop();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one free slot is not two");
        held.pop();
        assert_eq!(waiting.await.unwrap(), 2);
        assert_eq!(
            slots.free(),
            2,
            "the task's slots were given back when it ended"
        );
    }
}
