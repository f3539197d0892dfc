//! The output queue of a machine, which holds no memory while it is empty.

use std::collections::VecDeque;

/// What a machine has for its driver, in order.
///
/// An output is a large value and most connections are idle: once the driver has taken
/// everything, the room a burst made is given back instead of being kept for the connection's
/// life.
#[derive(Debug)]
pub(crate) struct Outputs<T>(VecDeque<T>);

impl<T> Outputs<T> {
    /// An empty queue (allocates nothing).
    pub(crate) const fn new() -> Self {
        Outputs(VecDeque::new())
    }

    /// Queues an output.
    pub(crate) fn push(&mut self, out: T) {
        self.0.push_back(out);
    }

    /// Takes the next output; the queue's memory goes with the last one.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let out = self.0.pop_front();
        if self.0.is_empty() && self.0.capacity() != 0 {
            self.0 = VecDeque::new();
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
        assert!(q.0.capacity() >= 9);
        let rest: Vec<i32> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
        assert_eq!(q.0.capacity(), 0);
        assert_eq!(q.pop(), None);
    }
}
