//! [`HostBuffer`]: host memory shared between Rust code and running programs.
//!
//! Map values, ring buffers, contexts and simulated kernel memory must stay at a fixed host
//! address while a program holds pointers into them, and both Rust code (helpers, map
//! operations) and the program write them. A `HostBuffer` is a fixed-size zeroed
//! allocation that is only ever accessed through its raw pointer, never through a Rust
//! reference, so the two kinds of access cannot alias a `&mut`. Clones share the buffer.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;

struct Raw {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for Raw {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `HostBuffer::zeroed` with this layout.
            unsafe { dealloc(self.ptr.as_ptr(), layout(self.len)) }
        }
    }
}

fn layout(len: usize) -> Layout {
    Layout::from_size_align(len, 8).expect("buffer sizes are checked at creation")
}

/// A fixed-size, zero-initialised, 8-byte aligned byte buffer with shared ownership.
#[derive(Clone)]
pub struct HostBuffer(Rc<Raw>);

impl fmt::Debug for HostBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostBuffer({} bytes)", self.len())
    }
}

/// An access outside a [`HostBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds {
    pub offset: usize,
    pub len: usize,
    pub size: usize,
}

impl HostBuffer {
    /// A zeroed buffer of `len` bytes (at most 4 GiB, what one region can address).
    pub fn zeroed(len: usize) -> Self {
        assert!(len <= u32::MAX as usize, "a host buffer is at most 4 GiB");
        let ptr = if len == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { alloc_zeroed(layout(len)) })
                .unwrap_or_else(|| std::alloc::handle_alloc_error(layout(len)))
        };
        HostBuffer(Rc::new(Raw { ptr, len }))
    }

    pub fn from_bytes(data: &[u8]) -> Self {
        let b = Self::zeroed(data.len());
        b.write(0, data).expect("same length");
        b
    }

    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// The host address of byte 0, for the memory model.
    pub fn as_ptr(&self) -> *mut u8 {
        self.0.ptr.as_ptr()
    }

    fn check(&self, offset: usize, size: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(size) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(OutOfBounds {
                offset,
                len: self.len(),
                size,
            }),
        }
    }

    /// Copies `buf.len()` bytes at `offset` out.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, buf.len())?;
        // SAFETY: the range is inside the allocation; no Rust reference to it exists.
        unsafe { std::ptr::copy(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` in at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, data.len())?;
        // SAFETY: the range is inside the allocation; no Rust reference to it exists.
        unsafe { std::ptr::copy(data.as_ptr(), self.as_ptr().add(offset), data.len()) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), OutOfBounds> {
        self.check(offset, len)?;
        // SAFETY: the range is inside the allocation; no Rust reference to it exists.
        unsafe { std::ptr::write_bytes(self.as_ptr().add(offset), byte, len) };
        Ok(())
    }

    /// Copies `len` bytes within the buffer (ranges may overlap).
    pub fn copy_within(&self, from: usize, to: usize, len: usize) -> Result<(), OutOfBounds> {
        self.check(from, len)?;
        self.check(to, len)?;
        // SAFETY: both ranges are inside the allocation.
        unsafe { std::ptr::copy(self.as_ptr().add(from), self.as_ptr().add(to), len) };
        Ok(())
    }

    /// A copy of `len` bytes at `offset`.
    pub fn to_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, OutOfBounds> {
        let mut v = vec![0; len];
        self.read(offset, &mut v)?;
        Ok(v)
    }

    /// Reads a little-endian u64 (or a shorter unsigned value of `size` bytes).
    pub fn read_uint(&self, offset: usize, size: usize) -> Result<u64, OutOfBounds> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b[..size.min(8)])?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes the low `size` bytes of `v` little-endian.
    pub fn write_uint(&self, offset: usize, size: usize, v: u64) -> Result<(), OutOfBounds> {
        self.write(offset, &v.to_le_bytes()[..size.min(8)])
    }

    /// Whether two handles share one buffer.
    pub fn same(&self, other: &HostBuffer) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_bounds() {
        let b = HostBuffer::zeroed(16);
        b.write(4, &[1, 2, 3]).unwrap();
        assert_eq!(b.to_vec(3, 5).unwrap(), vec![0, 1, 2, 3, 0]);
        assert!(b.write(15, &[1, 2]).is_err());
        assert!(b.read(usize::MAX, &mut [0]).is_err());
        b.write_uint(8, 8, 0x0102030405060708).unwrap();
        assert_eq!(b.read_uint(8, 2).unwrap(), 0x0708);
        let c = b.clone();
        c.fill(0, 16, 0xff).unwrap();
        assert_eq!(b.read_uint(0, 8).unwrap(), u64::MAX);
        assert!(b.same(&c));
        assert_eq!(HostBuffer::zeroed(0).len(), 0);
    }
}
