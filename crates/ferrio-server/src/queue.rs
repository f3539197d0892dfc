//! A bounded queue from many senders to one async receiver that holds no memory for its items
//! while it is empty.
//!
//! Every session has one (its inputs and commands) and every namespace socket another (its
//! events), and most of them are empty most of the time: tokio's channel allocates a block of
//! 32 slots up front and keeps it, which was a tenth of an idle connection's memory. This one is
//! a `VecDeque` behind a mutex: it grows with what is queued and gives back what a burst made it
//! grow once it is empty again, or, for a receiver that asked to keep it
//! ([`Receiver::keep_room`]: a session, which gets bursts of broadcast commands), when the
//! receiver releases it ([`Receiver::release`], at the session's timer rounds).
//!
//! The receiver takes everything queued at once (the two `VecDeque`s are swapped under the
//! lock) and hands the items out from its own side without the lock: a burst of items (a
//! broadcast's commands to a session) costs the receiver one lock, not one per item. Items the
//! receiver holds still count against the bound.
//!
//! Like tokio's own channels, the receiver spends a unit of its task's cooperative budget on
//! each item: a task that always finds an item waiting (its senders on other threads keep up
//! with it) still yields to the runtime after a bounded number of them, instead of keeping its
//! thread from every other task.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

/// Room kept for items once the queue is empty again; a burst that grew it beyond is given
/// back.
const KEEP: usize = 8;

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    /// The receiver was dropped.
    closed: bool,
    /// The receiver, waiting for an item.
    waiting: Option<Waker>,
    /// A sender found the queue full since the receiver last took the items: the receiver
    /// wakes the senders waiting for room when it next finds its own side empty.
    full_seen: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Items the receiver took and has not handed out yet (written by the receiver without the
    /// lock: a sender may see a count a little high, never too low).
    held: AtomicUsize,
    bound: usize,
    /// Senders waiting for room.
    room: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why [`Sender::try_send`] did not queue an item (which it gives back).
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The queue holds its bound.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// A sending side; cloned for each sender.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving side.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The items taken from the queue at once, handed out first.
    taken: VecDeque<T>,
    /// The room a burst made is kept once the queue is empty, until [`Receiver::release`]
    /// (see [`Receiver::keep_room`]).
    keep_room: bool,
}

/// A queue of at most `bound` items.
pub(crate) fn channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            closed: false,
            waiting: None,
            full_seen: false,
        }),
        held: AtomicUsize::new(0),
        bound,
        room: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            taken: VecDeque::new(),
            keep_room: false,
        },
    )
}

impl<T> Sender<T> {
    /// Queues `item` if there is room.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.push(item, true)
    }

    /// Queues `item` if there is room, without waking the receiver: for the receiver's own
    /// task, which takes it before it waits again (a wake-up of the running task would only
    /// poll it once more for nothing).
    pub(crate) fn try_send_quiet(&self, item: T) -> Result<(), TrySendError<T>> {
        self.push(item, false)
    }

    fn push(&self, item: T, wake: bool) -> Result<(), TrySendError<T>> {
        let mut st = self.shared.lock();
        if st.closed {
            return Err(TrySendError::Closed(item));
        }
        if self.is_full(&st) {
            st.full_seen = true;
            return Err(TrySendError::Full(item));
        }
        st.items.push_back(item);
        let waiting = if wake { st.waiting.take() } else { None };
        drop(st);
        if let Some(w) = waiting {
            w.wake();
        }
        Ok(())
    }

    /// Whether the queue holds its bound, the items the receiver holds counted.
    fn is_full(&self, st: &State<T>) -> bool {
        st.items.len() + self.shared.held.load(Ordering::Relaxed) >= self.shared.bound
    }

    /// Queues `item`, waiting for room; gives it back if the receiver is gone. Dropped while
    /// waiting, the future drops `item` without queuing it.
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        let mut item = item;
        loop {
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(back),
                // Another sender may take the room first: then wait again.
                Err(TrySendError::Full(back)) => item = back,
            }
            self.room().await;
        }
    }

    /// Waits until the queue has room for an item, or its receiver is gone.
    pub(crate) async fn room(&self) {
        loop {
            let mut notified = pin!(self.shared.room.notified());
            // Registered before looking, so that room made after the look wakes it.
            notified.as_mut().enable();
            {
                let mut st = self.shared.lock();
                if st.closed || !self.is_full(&st) {
                    return;
                }
                st.full_seen = true;
            }
            notified.await;
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.senders -= 1;
        let waiting = if st.senders == 0 {
            st.waiting.take()
        } else {
            None
        };
        drop(st);
        if let Some(w) = waiting {
            w.wake();
        }
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field(
                "queued",
                &(self.shared.lock().items.len() + self.taken.len()),
            )
            .finish()
    }
}

impl<T> Receiver<T> {
    /// Keeps the room a burst made once the queue is empty again, for the next burst, instead
    /// of giving it back at once (and growing the queue again for every burst): the receiver
    /// gives it back with [`Receiver::release`] when it is quiet.
    pub(crate) fn keep_room(&mut self) {
        self.keep_room = true;
    }

    /// Gives back the room a burst made, if the queue is empty (see [`Receiver::keep_room`]).
    pub(crate) fn release(&mut self) {
        if !self.taken.is_empty() {
            return;
        }
        self.taken.shrink_to(KEEP);
        let mut st = self.shared.lock();
        if st.items.is_empty() && st.items.capacity() > KEEP {
            st.items.shrink_to(KEEP);
        }
    }

    /// The next item, if there is one now. `None` also when every sender is gone.
    #[inline]
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        if let Some(item) = self.pop_taken() {
            return Some(item);
        }
        self.try_recv_queued()
    }

    /// [`Receiver::try_recv`] when the receiver's side is empty.
    #[inline(never)]
    fn try_recv_queued(&mut self) -> Option<T> {
        let st = self.shared.lock();
        Self::take_queued(&self.shared, &mut self.taken, self.keep_room, st);
        self.pop_taken()
    }

    /// Waits for the next item; `None` once the queue is empty and every sender is gone.
    pub(crate) fn recv(&mut self) -> impl Future<Output = Option<T>> + '_ {
        std::future::poll_fn(|cx| self.poll_recv(cx))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // Out of budget: the task is woken again once the runtime has run the others.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if let Some(item) = self.pop_taken() {
            coop.made_progress();
            return Poll::Ready(Some(item));
        }
        let mut st = self.shared.lock();
        if !st.items.is_empty() {
            Self::take_queued(&self.shared, &mut self.taken, self.keep_room, st);
            coop.made_progress();
            return Poll::Ready(self.pop_taken());
        }
        let ended = st.senders == 0;
        if !ended && !st.waiting.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.waiting = Some(cx.waker().clone());
        }
        // Senders that found the queue full wait for room: there is all of it now.
        Self::take_queued(&self.shared, &mut self.taken, self.keep_room, st);
        if ended {
            coop.made_progress();
            return Poll::Ready(None);
        }
        // (Dropping `coop` gives the unit back: nothing was received.)
        Poll::Pending
    }

    /// The next item of those taken at once, if any.
    #[inline]
    fn pop_taken(&mut self) -> Option<T> {
        let item = self.taken.pop_front()?;
        let left = self.taken.len();
        self.shared.held.store(left, Ordering::Relaxed);
        if left == 0 && !self.keep_room && self.taken.capacity() > KEEP {
            self.taken.shrink_to(KEEP);
        }
        Some(item)
    }

    /// Takes every queued item at once (the receiver's side is empty), and wakes the senders
    /// waiting for room if any found the queue full.
    fn take_queued(
        shared: &Shared<T>,
        taken: &mut VecDeque<T>,
        keep_room: bool,
        mut st: MutexGuard<'_, State<T>>,
    ) {
        debug_assert!(taken.is_empty());
        if !st.items.is_empty() {
            // The two sides trade their room: once both grew for a burst, none grows again.
            std::mem::swap(&mut st.items, taken);
            shared.held.store(taken.len(), Ordering::Relaxed);
            if !keep_room && st.items.capacity() > KEEP {
                st.items.shrink_to(KEEP);
            }
        }
        if st.full_seen {
            st.full_seen = false;
            drop(st);
            shared.room.notify_waiters();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut st = self.shared.lock();
            st.closed = true;
            std::mem::take(&mut st.items)
        };
        // Dropped outside the lock: an item's drop may send to this queue again.
        drop(items);
        drop(std::mem::take(&mut self.taken));
        self.shared.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_up_to_the_bound() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_when_the_receiver_takes_an_item() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let sender = tokio::spawn(async move {
            tx.send(2).await.unwrap();
            tx
        });
        tokio::task::yield_now().await;
        assert_eq!(rx.recv().await, Some(1));
        let tx = sender.await.unwrap();
        assert_eq!(rx.recv().await, Some(2));
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn room_is_awaited_until_an_item_is_taken() {
        let (tx, mut rx) = channel(1);
        tx.room().await;
        tx.try_send(1).unwrap();
        let waiter = tokio::spawn(async move {
            tx.room().await;
            tx.try_send(2).is_ok()
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(rx.recv().await, Some(1));
        assert!(waiter.await.unwrap());
        assert_eq!(rx.recv().await, Some(2));
    }

    #[tokio::test]
    async fn the_receiver_wakes_for_an_item_and_when_the_senders_are_gone() {
        let (tx, mut rx) = channel::<u8>(4);
        let tx2 = tx.clone();
        let receiver = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        drop(tx);
        tokio::task::yield_now().await;
        drop(tx2);
        assert_eq!(receiver.await.unwrap(), (Some(7), None));
    }

    #[tokio::test]
    async fn senders_see_a_dropped_receiver_and_its_items_are_dropped() {
        let (tx, rx) = channel(1);
        let item = Arc::new(());
        tx.try_send(item.clone()).unwrap();
        let waiting = {
            let tx = tx.clone();
            let item = item.clone();
            tokio::spawn(async move { tx.send(item).await.is_err() })
        };
        tokio::task::yield_now().await;
        drop(rx);
        assert!(waiting.await.unwrap());
        assert!(matches!(
            tx.try_send(item.clone()),
            Err(TrySendError::Closed(_))
        ));
        assert_eq!(Arc::strong_count(&item), 1);
    }

    /// A receiver with thousands of items waiting lets a task that became ready meanwhile run
    /// before it takes the last one.
    #[tokio::test(flavor = "current_thread")]
    async fn a_receiver_with_items_waiting_lets_other_tasks_run() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        const ITEMS: usize = 5000;
        let (tx, mut rx) = channel(ITEMS);
        for i in 0..ITEMS {
            tx.try_send(i).unwrap();
        }
        let taken = Arc::new(AtomicUsize::new(0));
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let receiver = {
            let taken = taken.clone();
            tokio::spawn(async move {
                let mut seen_tx = Some(seen_tx);
                while let Some(i) = rx.recv().await {
                    taken.fetch_add(1, Ordering::SeqCst);
                    if i == 0 {
                        // Ready from now on: it runs when the receiver yields.
                        let taken = taken.clone();
                        let seen_tx = seen_tx.take().unwrap();
                        tokio::spawn(async move {
                            let _ = seen_tx.send(taken.load(Ordering::SeqCst));
                        });
                    }
                    if i + 1 == ITEMS {
                        break;
                    }
                }
            })
        };
        let seen = seen_rx.await.unwrap();
        receiver.await.unwrap();
        assert_eq!(taken.load(Ordering::SeqCst), ITEMS);
        assert!(
            seen < ITEMS,
            "the other task ran only after all {seen} items"
        );
    }

    /// The room the queue holds, on both sides.
    fn room<T>(rx: &Receiver<T>) -> usize {
        rx.shared.lock().items.capacity() + rx.taken.capacity()
    }

    #[tokio::test]
    async fn a_queue_that_keeps_its_room_gives_it_back_when_released() {
        let (tx, mut rx) = channel(1000);
        rx.keep_room();
        // Two bursts: each side's room is made once.
        for _ in 0..2 {
            for i in 0..500 {
                tx.try_send(i).unwrap();
            }
            while rx.try_recv().is_some() {}
        }
        let kept = room(&rx);
        assert!(kept >= 1000, "the bursts' room is kept: {kept}");
        // The next bursts as large find their room.
        for _ in 0..2 {
            for i in 0..500 {
                tx.try_send(i).unwrap();
            }
            assert_eq!(rx.try_recv(), Some(0));
            // Not given back while items wait.
            rx.release();
            assert_eq!(room(&rx), kept);
            while rx.try_recv().is_some() {}
            assert_eq!(room(&rx), kept);
        }
        rx.release();
        assert!(room(&rx) <= 2 * KEEP);
    }

    #[tokio::test]
    async fn items_taken_at_once_keep_their_order_and_count_against_the_bound() {
        let (tx, mut rx) = channel(4);
        for i in 0..4 {
            tx.try_send(i).unwrap();
        }
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        // The receiver took all four at once: they still fill the queue until handed out.
        assert_eq!(rx.try_recv(), Some(0));
        tx.try_send(4).unwrap();
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        let waiter = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(5).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let mut got = Vec::new();
        while let Some(i) = rx.try_recv() {
            got.push(i);
        }
        // Every item handed out: the waiting sender is told there is room.
        assert!(waiter.await.unwrap());
        while let Some(i) = rx.try_recv() {
            got.push(i);
        }
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_burst_gives_its_room_back_once_taken() {
        let (tx, mut rx) = channel(1000);
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert!(room(&rx) <= 2 * KEEP);
    }
}
