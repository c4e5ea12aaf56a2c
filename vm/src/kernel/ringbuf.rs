//! BPF ring buffers: records reserved in a data area programs write through pointers,
//! then submitted or discarded. The consumer is taken to keep up: it reads every record
//! at the end of each event, in ring order, so space is free again for the next event.
//! Positions keep advancing around the ring as in the kernel, so a record's bytes that
//! the program leaves unwritten show what was there before (zeros on the first lap).

use crate::buffer::HostBuffer;

/// Each record starts with the kernel's 8-byte header (length, busy/discard bits, page
/// offset); the data that follows is what `reserve` returns.
pub const HEADER: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Reserved,
    Committed,
    Discarded,
}

#[derive(Clone, Debug)]
struct Record {
    /// Offset of the data (after the header) in the data area.
    data: usize,
    len: usize,
    state: State,
}

/// One ring buffer map.
#[derive(Debug)]
pub struct RingBuf {
    data: HostBuffer,
    /// Producer and consumer positions, counting bytes since the ring was created.
    producer: u64,
    consumer: u64,
    records: Vec<Record>,
}

impl RingBuf {
    pub fn new(capacity: usize) -> Self {
        RingBuf {
            // Twice the capacity, as the kernel maps the data pages twice: a record that
            // wraps around the end stays contiguous for the program.
            data: HostBuffer::zeroed(capacity.saturating_mul(2)),
            producer: 0,
            consumer: 0,
            records: Vec::new(),
        }
    }

    /// The data area, mapped into program memory.
    pub fn data(&self) -> &HostBuffer {
        &self.data
    }

    pub fn capacity(&self) -> usize {
        self.data.len() / 2
    }

    /// Reserves `len` bytes; the offset of the record's data, or None when the ring has no
    /// room (the program gets NULL). As in the kernel, the producer stays less than the
    /// ring's size ahead of the consumer: a ring is never filled to its last byte.
    pub fn reserve(&mut self, len: usize) -> Option<usize> {
        let total = HEADER.checked_add(len)?.checked_next_multiple_of(8)? as u64;
        let cap = self.capacity() as u64;
        if len == 0 || total > cap {
            return None;
        }
        let start = self.producer;
        if start + total - self.consumer >= cap {
            return None;
        }
        let at = (start % cap) as usize;
        let data = at + HEADER;
        // Busy bit, as the kernel sets it until commit.
        let _ = self.data.write_uint(at, 4, len as u64 | 1 << 31);
        self.producer = start + total;
        self.records.push(Record {
            data,
            len,
            state: State::Reserved,
        });
        Some(data)
    }

    /// Submits (or discards) the reservation whose data starts at `data`. False if there is
    /// no such pending reservation.
    pub fn commit(&mut self, data: usize, discard: bool) -> bool {
        let Some(r) = self
            .records
            .iter_mut()
            .find(|r| r.data == data && r.state == State::Reserved)
        else {
            return false;
        };
        r.state = if discard {
            State::Discarded
        } else {
            State::Committed
        };
        let flag = if discard { 1u64 << 30 } else { 0 };
        let _ = self.data.write_uint(data - HEADER, 4, r.len as u64 | flag);
        true
    }

    /// `bpf_ringbuf_output`: reserve, copy and submit.
    pub fn output(&mut self, bytes: &[u8]) -> bool {
        match self.reserve(bytes.len()) {
            Some(off) => {
                let _ = self.data.write(off, bytes);
                self.commit(off, false)
            }
            None => false,
        }
    }

    /// Bytes submitted or reserved but not consumed (BPF_RB_AVAIL_DATA).
    pub fn pending(&self) -> usize {
        (self.producer - self.consumer) as usize
    }

    /// The kernel's `consumer_pos` (BPF_RB_CONS_POS): bytes consumed since the ring was
    /// created.
    pub fn consumer_pos(&self) -> u64 {
        self.consumer
    }

    /// The kernel's `producer_pos` (BPF_RB_PROD_POS): bytes reserved since the ring was
    /// created.
    pub fn producer_pos(&self) -> u64 {
        self.producer
    }

    /// Reservations not yet submitted or discarded.
    pub fn outstanding(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.state == State::Reserved)
            .count()
    }

    /// The consumer: committed records in ring order; the ring is empty afterwards.
    /// Records still reserved are dropped (a program leaking them is rejected by the
    /// kernel's verifier).
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let out = self
            .records
            .iter()
            .filter(|r| r.state == State::Committed)
            .map(|r| self.data.to_vec(r.data, r.len).unwrap_or_default())
            .collect();
        self.records.clear();
        self.consumer = self.producer;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_out_in_ring_order_without_discarded_ones() {
        let mut rb = RingBuf::new(128);
        let a = rb.reserve(4).unwrap();
        let b = rb.reserve(4).unwrap();
        assert_eq!((a, b), (8, 24));
        rb.data().write(b, b"bbbb").unwrap();
        rb.data().write(a, b"aaaa").unwrap();
        assert!(rb.commit(b, false));
        assert!(rb.commit(a, false));
        assert!(!rb.commit(a, false), "a second submit is refused");
        assert!(rb.output(b"cc"));
        let d = rb.reserve(1).unwrap();
        assert!(rb.commit(d, true));
        assert_eq!(
            rb.drain(),
            vec![b"aaaa".to_vec(), b"bbbb".to_vec(), b"cc".to_vec()]
        );
        assert_eq!(rb.pending(), 0);
        assert_eq!((rb.consumer_pos(), rb.producer_pos()), (64, 64));
        rb.output(b"d");
        assert_eq!((rb.consumer_pos(), rb.producer_pos()), (64, 80));
    }

    #[test]
    fn a_full_ring_refuses_reservations() {
        let mut rb = RingBuf::new(32);
        assert!(rb.reserve(16).is_some());
        assert!(rb.reserve(1).is_none(), "24 + 16 > 32");
        let mut rb = RingBuf::new(32);
        assert!(rb.reserve(24).is_none(), "32 bytes would fill the ring");
        assert!(rb.reserve(16).is_some(), "24 bytes leave room");
        assert!(rb.reserve(0).is_none());
        assert!(rb.reserve(usize::MAX / 2).is_none());
    }

    #[test]
    fn positions_go_around_the_ring() {
        let mut rb = RingBuf::new(64);
        let a = rb.reserve(8).unwrap();
        rb.data().write(a, b"stale!!!").unwrap();
        rb.commit(a, false);
        rb.drain();
        // The next record is placed after the first, not over it.
        let b = rb.reserve(8).unwrap();
        assert_eq!(b, 24);
        assert_eq!(rb.data().to_vec(b, 8).unwrap(), vec![0; 8]);
        rb.commit(b, true);
        rb.drain();
        // A record may run past the end (the data pages are mapped twice).
        let c = rb.reserve(40).unwrap();
        assert_eq!(c, 40);
        assert!(
            rb.reserve(17).is_none(),
            "80 + 32 - 32 > 64: full until consumed"
        );
        rb.commit(c, true);
        rb.drain();
        assert_eq!((rb.producer_pos(), rb.consumer_pos()), (80, 80));
        // Position 80 is offset 16 again; after it, position 128 is offset 0, where the
        // first record's bytes still are.
        let d = rb.reserve(40).unwrap();
        assert_eq!(d, 24);
        rb.commit(d, true);
        rb.drain();
        let e = rb.reserve(8).unwrap();
        assert_eq!(e, 8);
        assert_eq!(rb.data().to_vec(e, 8).unwrap(), b"stale!!!".to_vec());
    }
}
