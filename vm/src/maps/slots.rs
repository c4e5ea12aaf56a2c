//! A deterministic allocator of value slots in a map's preallocated storage.

/// Hands out slot numbers `0..cap` in increasing order first, then reuses freed slots
/// last-freed-first. The same sequence of calls gives the same slots on every run, and
/// no O(cap) work is done up front (a map of a million entries costs nothing until used).
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    next: u32,
    cap: u32,
    free: Vec<u32>,
}

impl Slots {
    pub fn new(cap: u32) -> Self {
        Slots {
            next: 0,
            cap,
            free: Vec::new(),
        }
    }

    pub fn alloc(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        if self.next < self.cap {
            self.next += 1;
            return Some(self.next - 1);
        }
        None
    }

    pub fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_then_lifo_reuse() {
        let mut s = Slots::new(3);
        assert_eq!((s.alloc(), s.alloc()), (Some(0), Some(1)));
        s.release(0);
        assert_eq!(s.alloc(), Some(0));
        assert_eq!(s.alloc(), Some(2));
        assert_eq!(s.alloc(), None);
        s.release(2);
        s.release(1);
        assert_eq!((s.alloc(), s.alloc(), s.alloc()), (Some(1), Some(2), None));
    }
}
