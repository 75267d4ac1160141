//! Per-worker drain signal: tells idle connections and accept loops to stop.
//!
//! Each waiter owns a slot for its waker, registered once per connection, so waiting on
//! every keep-alive idle period costs a slot write, not an allocation, and the slot
//! table never grows past the number of live connections.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Drain {
    draining: Cell<bool>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.draining.get()
    }

    pub fn register(&self) -> usize {
        if let Some(i) = self.free.borrow_mut().pop() {
            return i;
        }
        let mut slots = self.slots.borrow_mut();
        slots.push(None);
        slots.len() - 1
    }

    pub fn unregister(&self, slot: usize) {
        self.slots.borrow_mut()[slot] = None;
        self.free.borrow_mut().push(slot);
    }

    /// Resolves once draining starts.
    pub fn wait(&self, slot: usize) -> DrainWait<'_> {
        DrainWait { drain: self, slot }
    }

    /// Starts draining and wakes every waiter.
    pub fn start(&self) {
        self.draining.set(true);
        let wakers: Vec<Waker> = self.slots.borrow_mut().iter_mut().filter_map(Option::take).collect();
        for w in wakers {
            w.wake();
        }
    }
}

pub struct DrainWait<'a> {
    drain: &'a Drain,
    slot: usize,
}

impl Future for DrainWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.draining.get() {
            return Poll::Ready(());
        }
        let mut slots = self.drain.slots.borrow_mut();
        match &mut slots[self.slot] {
            Some(w) if w.will_wake(cx.waker()) => {}
            s => *s = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[monoio::test_all(timer_enabled = true)]
    async fn start_wakes_every_waiter_and_later_waits_resolve_at_once() {
        let drain = Rc::new(Drain::default());
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let d = drain.clone();
            tasks.push(monoio::spawn(async move {
                let slot = d.register();
                d.wait(slot).await;
                d.unregister(slot);
            }));
        }
        monoio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!drain.is_draining());
        drain.start();
        for t in tasks {
            t.await;
        }
        let slot = drain.register();
        drain.wait(slot).await;
        assert!(drain.is_draining());
    }

    #[test]
    fn slots_are_reused_after_unregister() {
        let drain = Drain::default();
        let a = drain.register();
        let b = drain.register();
        drain.unregister(a);
        assert_eq!(drain.register(), a);
        assert_ne!(a, b);
        assert_eq!(drain.slots.borrow().len(), 2);
    }
}
