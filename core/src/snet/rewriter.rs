//! The rewrite buffer (SNET.md §6): a ring keeping the most recent bytes written (ciphertext), so that
//! after a reconnect the bytes the peer has not received can be sent again.
//!
//! The ring's memory grows with what is written, up to its capacity, so an idle session costs nothing.

/// Ring of the last `capacity` bytes written.
#[derive(Debug, Clone)]
pub struct Rewriter {
    /// Stored bytes. While `buf.len() < capacity` they are in order from index 0; once full, the oldest
    /// byte is at `head` (the next write position).
    buf: Vec<u8>,
    capacity: usize,
    head: usize,
}

impl Rewriter {
    /// An empty ring holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::new(),
            capacity,
            head: 0,
        }
    }

    /// The most bytes it can keep.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many bytes are stored: `min(total written, capacity)`.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends bytes; the oldest bytes fall out once the ring is full. A write larger than the ring
    /// keeps only its tail.
    pub fn push(&mut self, mut data: &[u8]) {
        let capacity = self.capacity;
        if data.len() >= capacity {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - capacity..]);
            self.head = 0;
            return;
        }
        if self.buf.len() < capacity {
            let n = (capacity - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.head = 0;
            if data.is_empty() {
                return;
            }
        }
        // Full ring, 0 < data.len() < capacity.
        let first = (capacity - self.head).min(data.len());
        self.buf[self.head..self.head + first].copy_from_slice(&data[..first]);
        let rest = &data[first..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.head = (self.head + data.len()) % capacity;
    }

    /// The last `n` bytes written, in order, as two slices (the second is non-empty when the range wraps).
    /// `None` when fewer than `n` bytes are stored.
    pub fn rewrite(&self, n: usize) -> Option<(&[u8], &[u8])> {
        if n > self.buf.len() {
            return None;
        }
        if n == 0 {
            return Some((&[], &[]));
        }
        if self.buf.len() < self.capacity {
            let len = self.buf.len();
            return Some((&self.buf[len - n..], &[]));
        }
        // Full ring: the newest byte is just before `head`.
        let start = (self.head + self.capacity - n) % self.capacity;
        if start < self.head {
            Some((&self.buf[start..self.head], &[]))
        } else {
            Some((&self.buf[start..], &self.buf[..self.head]))
        }
    }

    /// The last `n` bytes written, copied into one contiguous vector.
    pub fn rewrite_to_vec(&self, n: usize) -> Option<Vec<u8>> {
        let (a, b) = self.rewrite(n)?;
        let mut out = Vec::with_capacity(n);
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rw(r: &Rewriter, n: usize) -> Option<Vec<u8>> {
        r.rewrite_to_vec(n)
    }

    #[test]
    fn snet_s6_rewriter_vectors_capacity_5() {
        let mut r = Rewriter::new(5);
        r.push(&[0, 1, 2, 3]);
        assert_eq!(rw(&r, 4), Some(vec![0, 1, 2, 3]));
        assert_eq!(rw(&r, 3), Some(vec![1, 2, 3]));
        assert_eq!(rw(&r, 0), Some(vec![]));
        r.push(&[4, 5, 6, 7]);
        assert_eq!(rw(&r, 5), Some(vec![3, 4, 5, 6, 7]));
        r.push(&[8, 9, 0xa, 0xb]);
        assert_eq!(rw(&r, 5), Some(vec![7, 8, 9, 0xa, 0xb]));
        assert_eq!(rw(&r, 4), Some(vec![8, 9, 0xa, 0xb]));
    }

    #[test]
    fn snet_s6_rewriter_empty_ring_cannot_rewrite() {
        let r = Rewriter::new(5);
        assert_eq!(rw(&r, 2), None);
        assert_eq!(rw(&r, 0), Some(vec![]));
    }

    #[test]
    fn snet_s6_rewriter_oversized_write_keeps_its_tail() {
        let mut r = Rewriter::new(5);
        r.push(&[0, 1, 2, 3]);
        r.push(&[4]);
        r.push(&[5, 6, 7, 8, 9]);
        assert_eq!(rw(&r, 5), Some(vec![5, 6, 7, 8, 9]));
        r.push(&[10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(rw(&r, 5), Some(vec![12, 13, 14, 15, 16]));
        assert_eq!(rw(&r, 6), None);
    }

    #[test]
    fn snet_s6_rewriter_stored_length_is_exact_not_capacity() {
        let mut r = Rewriter::new(5);
        r.push(&[1]);
        assert_eq!(r.len(), 1);
        assert_eq!(rw(&r, 2), None);
    }

    #[test]
    fn snet_s6_rewriter_with_zero_capacity_stores_nothing() {
        let mut r = Rewriter::new(0);
        r.push(&[1, 2, 3]);
        assert_eq!(rw(&r, 0), Some(vec![]));
        assert_eq!(rw(&r, 1), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn snet_s6_rewriter_matches_the_tail_of_everything_written(
            capacity in 0usize..40,
            pushes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..30),
        ) {
            let mut r = Rewriter::new(capacity);
            let mut all = Vec::new();
            for p in &pushes {
                r.push(p);
                all.extend_from_slice(p);
                let stored = all.len().min(capacity);
                prop_assert_eq!(r.len(), stored);
                for n in 0..=stored {
                    prop_assert_eq!(rw(&r, n), Some(all[all.len() - n..].to_vec()));
                }
                prop_assert_eq!(rw(&r, stored + 1), None);
            }
        }
    }
}
