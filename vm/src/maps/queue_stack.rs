//! `QUEUE` and `STACK` (`kernel/bpf/queue_stack_maps.c`): a ring of `max_entries + 1`
//! values in storage with the kernel's head/tail arithmetic. Both push at `head`; a queue
//! pops at `tail` (oldest first), a stack at `head - 1` (newest first). Pushing with
//! `BPF_EXIST` into a full map advances `tail`, dropping the oldest value (for a stack,
//! the bottom one).

use super::{flags, map_type, MapError, MapSpec, Values};

#[derive(Debug)]
pub(crate) struct QueueStack {
    stack: bool,
    head: u32,
    tail: u32,
    /// `max_entries + 1`.
    size: u32,
}

impl QueueStack {
    pub fn new(spec: &MapSpec) -> Self {
        QueueStack {
            stack: spec.map_type == map_type::STACK,
            head: 0,
            tail: 0,
            size: spec.max_entries + 1,
        }
    }

    fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    fn is_full(&self) -> bool {
        let mut head = self.head + 1;
        if head >= self.size {
            head = 0;
        }
        head == self.tail
    }

    pub fn len(&self) -> usize {
        ((self.head + self.size - self.tail) % self.size) as usize
    }

    fn off(&self, v: &Values, index: u32) -> usize {
        index as usize * v.value_size
    }

    /// The index the next pop reads.
    fn top(&self) -> u32 {
        if self.stack {
            if self.head == 0 {
                self.size - 1
            } else {
                self.head - 1
            }
        } else {
            self.tail
        }
    }

    fn get(&mut self, v: &Values, out: &mut [u8], delete: bool) -> Result<(), MapError> {
        if self.is_empty() {
            out.fill(0);
            return Err(v.e(MapError::NotFound, "empty"));
        }
        let index = self.top();
        out.copy_from_slice(&v.read(self.off(v, index), v.value_size));
        if delete {
            if self.stack {
                self.head = index;
            } else {
                self.tail += 1;
                if self.tail >= self.size {
                    self.tail = 0;
                }
            }
        }
        Ok(())
    }

    pub fn pop(&mut self, v: &Values, out: &mut [u8]) -> Result<(), MapError> {
        self.get(v, out, true)
    }

    pub fn peek(&self, v: &Values, out: &mut [u8]) -> Result<(), MapError> {
        // `get` only mutates when deleting.
        let mut copy = QueueStack { ..*self };
        copy.get(v, out, false)
    }

    /// `queue_stack_map_push_elem`.
    pub fn push(&mut self, v: &Values, value: &[u8], fl: u64) -> Result<(), MapError> {
        let replace = fl & flags::BPF_EXIST != 0;
        if fl & flags::BPF_NOEXIST != 0 || fl > flags::BPF_EXIST {
            return Err(v.e(MapError::Invalid, format_args!("unknown flags {fl:#x}")));
        }
        if self.is_full() {
            if !replace {
                return Err(v.e(
                    MapError::TooBig,
                    format_args!("full ({} values)", self.size - 1),
                ));
            }
            self.tail += 1;
            if self.tail >= self.size {
                self.tail = 0;
            }
        }
        v.write(self.off(v, self.head), value);
        self.head += 1;
        if self.head >= self.size {
            self.head = 0;
        }
        Ok(())
    }

    /// Values in pop order.
    pub fn entries(&self, v: &Values) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        let n = self.len() as u32;
        (0..n)
            .map(|i| {
                let index = if self.stack {
                    (self.head + 2 * self.size - 1 - i) % self.size
                } else {
                    (self.tail + i) % self.size
                };
                (Vec::new(), vec![v.read(self.off(v, index), v.value_size)])
            })
            .collect()
    }
}
