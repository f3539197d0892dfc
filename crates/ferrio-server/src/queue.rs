//! A bounded queue from many senders to one async receiver that holds no memory for its items
//! while it is empty.
//!
//! Every session has one (its inputs and commands) and every namespace socket another (its
//! events), and most of them are empty most of the time: tokio's channel allocates a block of
//! 32 slots up front and keeps it, which was a tenth of an idle connection's memory. This one is
//! a `VecDeque` behind a mutex: it grows with what is queued and gives back what a burst made it
//! grow once it is empty again.
//!
//! Like tokio's own channels, the receiver spends a unit of its task's cooperative budget on
//! each item: a task that always finds an item waiting (its senders on other threads keep up
//! with it) still yields to the runtime after a bounded number of them, instead of keeping its
//! thread from every other task.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
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
}

struct Shared<T> {
    state: Mutex<State<T>>,
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
        }),
        bound,
        room: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
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
        if st.items.len() >= self.shared.bound {
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
                let st = self.shared.lock();
                if st.closed || st.items.len() < self.shared.bound {
                    return;
                }
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
            .field("queued", &self.shared.lock().items.len())
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
        let mut st = self.shared.lock();
        if st.items.is_empty() && st.items.capacity() > KEEP {
            st.items.shrink_to(KEEP);
        }
    }

    /// The next item, if there is one now. `None` also when every sender is gone.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let mut st = self.shared.lock();
        let item = st.items.pop_front();
        if item.is_some() {
            self.took(st);
        }
        item
    }

    /// Waits for the next item; `None` once the queue is empty and every sender is gone.
    pub(crate) fn recv(&mut self) -> impl Future<Output = Option<T>> + '_ {
        std::future::poll_fn(|cx| self.poll_recv(cx))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // Out of budget: the task is woken again once the runtime has run the others.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let mut st = self.shared.lock();
        match st.items.pop_front() {
            Some(item) => {
                self.took(st);
                coop.made_progress();
                Poll::Ready(Some(item))
            }
            None if st.senders == 0 => {
                coop.made_progress();
                Poll::Ready(None)
            }
            // (Dropping `coop` gives the unit back: nothing was received.)
            None => {
                if !st.waiting.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.waiting = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// After an item was taken: gives back the room of a burst once the queue is empty, and
    /// wakes the senders waiting for room.
    fn took(&self, mut st: MutexGuard<'_, State<T>>) {
        let was_full = st.items.len() + 1 >= self.shared.bound;
        if !self.keep_room && st.items.is_empty() && st.items.capacity() > KEEP {
            st.items.shrink_to(KEEP);
        }
        drop(st);
        if was_full {
            self.shared.room.notify_waiters();
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

    #[tokio::test]
    async fn a_queue_that_keeps_its_room_gives_it_back_when_released() {
        let (tx, mut rx) = channel(1000);
        rx.keep_room();
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        let room = rx.shared.lock().items.capacity();
        assert!(room >= 500, "the burst's room is kept: {room}");
        // The next burst as large finds its room.
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(rx.shared.lock().items.capacity(), room);
        // Not given back while items wait.
        rx.release();
        assert_eq!(rx.shared.lock().items.capacity(), room);
        while rx.try_recv().is_some() {}
        rx.release();
        assert!(rx.shared.lock().items.capacity() <= KEEP);
    }

    #[tokio::test]
    async fn a_burst_gives_its_room_back_once_taken() {
        let (tx, mut rx) = channel(1000);
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert!(rx.shared.lock().items.capacity() <= KEEP);
    }
}
