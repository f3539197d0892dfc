//! [`Fifo`]: the output queues of the client machines, as two `Vec`s.

/// A first-in, first-out queue of two `Vec`s: items are pushed onto `back`; `pop` takes from
/// `front`, which holds the oldest items in reverse order and is refilled from `back` (reversed)
/// when empty. Each item is moved twice at most (amortised O(1)), and in the browser build the
/// two `Vec`s cost less code than a `VecDeque`.
#[derive(Debug, Clone)]
pub(crate) struct Fifo<T> {
    front: Vec<T>,
    back: Vec<T>,
}

impl<T> Fifo<T> {
    /// An empty queue (no allocation).
    pub(crate) const fn new() -> Fifo<T> {
        Fifo {
            front: Vec::new(),
            back: Vec::new(),
        }
    }

    /// Appends `item`.
    pub(crate) fn push(&mut self, item: T) {
        self.back.push(item);
    }

    /// Takes the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.front.is_empty() {
            std::mem::swap(&mut self.front, &mut self.back);
            self.front.reverse();
        }
        self.front.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::Fifo;

    #[test]
    fn items_come_out_in_order() {
        let mut q = Fifo::new();
        let mut expected = std::collections::VecDeque::new();
        // Pushes and pops interleaved, so that both vectors hold items at times.
        for round in 0..50u32 {
            for i in 0..round % 7 {
                q.push((round, i));
                expected.push_back((round, i));
            }
            for _ in 0..round % 5 {
                assert_eq!(q.pop(), expected.pop_front());
            }
        }
        while let Some(item) = expected.pop_front() {
            assert_eq!(q.pop(), Some(item));
        }
        assert_eq!(q.pop(), None);
    }
}
