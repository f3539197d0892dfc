//! The output queue of a machine, which holds no memory while it is empty.

use std::collections::VecDeque;

/// What a machine has for its driver, in order.
///
/// An output is a large value and most connections are idle: once the driver has taken
/// everything, the room a burst made is given back instead of being kept for the connection's
/// life. The usual round (one input, one or two outputs, all taken at once) allocates
/// nothing: the first output waiting is held in the queue itself.
#[derive(Debug)]
pub(crate) struct Outputs<T> {
    /// The oldest output waiting, when the queue holds one: always older than `rest`'s.
    first: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Outputs<T> {
    /// An empty queue (allocates nothing).
    pub(crate) const fn new() -> Self {
        Outputs {
            first: None,
            rest: VecDeque::new(),
        }
    }

    /// Queues an output.
    #[inline]
    pub(crate) fn push(&mut self, out: T) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(out);
        } else {
            self.rest.push_back(out);
        }
    }

    /// Whether no output is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    /// Takes the next output; the queue's memory goes with the last one.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        // Looked at before anything is moved: `take` on an empty slot still copies the whole
        // (large) value out, as does a `pop_front` that finds nothing.
        if self.first.is_some() {
            return self.first.take();
        }
        if self.rest.is_empty() {
            return None;
        }
        let out = self.rest.pop_front();
        if self.rest.is_empty() && self.rest.capacity() != 0 {
            self.rest = VecDeque::new();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_output_taken_gives_the_room_back() {
        let mut q = Outputs::new();
        for i in 0..10 {
            q.push(i);
        }
        assert_eq!(q.pop(), Some(0));
        assert!(q.rest.capacity() >= 9);
        let rest: Vec<i32> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
        assert_eq!(q.rest.capacity(), 0);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn outputs_keep_their_order_across_the_first_slot() {
        let mut q = Outputs::new();
        q.push(1);
        assert_eq!(q.rest.capacity(), 0, "one output waiting allocates nothing");
        assert_eq!(q.pop(), Some(1));
        q.push(2);
        q.push(3);
        assert_eq!(q.pop(), Some(2));
        // Pushed after the first slot emptied while older outputs wait: behind them.
        q.push(4);
        q.push(5);
        assert_eq!(q.pop(), Some(3));
        q.push(6);
        let rest: Vec<i32> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![4, 5, 6]);
        assert_eq!(q.rest.capacity(), 0);
    }
}
