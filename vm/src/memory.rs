//! The memory model shared by the interpreter and the JITs.
//!
//! A program sees a 64-bit virtual address space cut into regions: a virtual address is
//! `region << 32 | offset`. Region ids are fixed for the stack frames, the context and
//! the packet, and handed out in registration order for everything else, so the same
//! program and input see the same addresses on every run and machine. An access is valid
//! when `offset + size` is within the region's length for that kind of access (0 for
//! stores to read-only regions).
//!
//! The check engines run inline is one compare: regions `0..FAST_REGIONS` sit in a fixed
//! table indexed by the region bits modulo [`FAST_REGIONS`], whose entries hold the end of
//! the valid addresses (`addr + size` must be below it) and the host displacement. An
//! address of a region beyond the table aliases an entry whose limit lies below it, and
//! an `addr + size` that wraps around has all region bits set and lands on
//! [`HOLE_REGION`], which is never mapped: both fail the compare and take the slow path
//! ([`Memory::translate`]'s cold half), which looks at the whole table and at far
//! mappings, and explains faults.

use std::fmt;
use std::marker::PhantomData;

use crate::buffer::HostBuffer;
use crate::isa::{MAX_CALL_FRAMES, STACK_SIZE};

/// Bits of a virtual address that hold the offset within a region.
pub const REGION_SHIFT: u32 = 32;
/// Region 0 is never mapped, so NULL and small integers are never valid pointers.
pub const NULL_REGION: u32 = 0;
/// The stack of call frame `f` is region `STACK_REGION + f`.
pub const STACK_REGION: u32 = 1;
pub const CTX_REGION: u32 = STACK_REGION + MAX_CALL_FRAMES as u32;
pub const PACKET_REGION: u32 = CTX_REGION + 1;
/// Addresses of BPF functions (`lddw` of a function, used by `callx` and callbacks): never
/// readable; the offset is the instruction index.
pub const CODE_REGION: u32 = PACKET_REGION + 1;
/// Lowest address of the window below 4 GiB that [`Memory::map_far`] accepts (the rest of
/// region 0 stays unmapped, so NULL and small numbers are never pointers).
pub const LOW_WINDOW_START: u64 = 0x1_0000;
/// Map handles (what `lddw` of a map gives a program): never readable; the offset is the
/// map's index.
pub const MAP_REGION: u32 = CODE_REGION + 1;
/// First id handed out by [`Memory::add_region`].
pub const FIRST_DYNAMIC_REGION: u32 = MAP_REGION + 1;

/// The virtual address of `offset` in `region`.
pub const fn vaddr(region: u32, offset: u32) -> u64 {
    ((region as u64) << REGION_SHIFT) | offset as u64
}

/// The value r10 holds in call frame `frame`: the top of that frame's stack.
pub const fn frame_pointer(frame: usize) -> u64 {
    vaddr(STACK_REGION + frame as u32, STACK_SIZE as u32)
}

/// Regions in the fixed table the inline check indexes (a power of two).
pub const FAST_REGIONS: usize = 64;
/// The fast table's last slot: never handed out, so it stays unmapped (see the module
/// comment).
pub const HOLE_REGION: u32 = FAST_REGIONS as u32 - 1;

/// One entry of the region table, laid out for the inline check of the JITs (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Region {
    /// `vaddr(id, 0) + load length + 1`: `size` bytes at `addr` may be loaded when
    /// `addr + size < load_limit`. 0 when unmapped.
    pub load_limit: u64,
    /// The same for stores (0 for read-only regions).
    pub store_limit: u64,
    /// `host - vaddr(id, 0)`, wrapping: the host address of `addr` is `addr + delta`.
    pub delta: u64,
    /// Where offset 0 lives.
    pub host: *mut u8,
}

impl Region {
    const UNMAPPED: Region = Region {
        load_limit: 0,
        store_limit: 0,
        delta: 0,
        host: std::ptr::null_mut(),
    };

    fn new(id: u32, host: *mut u8, len: usize, writable: bool) -> Region {
        let limit = vaddr(id, 0) + len as u64 + 1;
        Region {
            load_limit: limit,
            store_limit: if writable { limit } else { 0 },
            delta: (host as u64).wrapping_sub(vaddr(id, 0)),
            host,
        }
    }

    /// The limit of a stack frame's region while it is mapped: its r10 plus one.
    pub const fn frame_limit(frame: usize) -> u64 {
        frame_pointer(frame) + 1
    }

    /// The limit for this kind of access.
    #[inline(always)]
    fn limit(&self, access: Access) -> u64 {
        if access == Access::Load {
            self.load_limit
        } else {
            self.store_limit
        }
    }

    /// Bytes that may be accessed this way (`id` is this entry's region id).
    fn len(&self, id: usize, access: Access) -> u64 {
        self.limit(access)
            .saturating_sub((id as u64) << REGION_SHIFT | 1)
    }
}

/// What a region holds, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Null,
    Stack {
        frame: usize,
    },
    Ctx,
    Packet,
    Code,
    /// Anything registered later: map values, globals, ring buffers, simulated memory.
    Named(String),
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionKind::Null => f.write_str("null"),
            RegionKind::Stack { frame } => write!(f, "stack of frame {frame}"),
            RegionKind::Ctx => f.write_str("context"),
            RegionKind::Packet => f.write_str("packet"),
            RegionKind::Code => f.write_str("code"),
            RegionKind::Named(n) => f.write_str(n),
        }
    }
}

/// The kind of a faulting access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Load,
    Store,
    Atomic,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Load => "load",
            Access::Store => "store",
            Access::Atomic => "atomic",
        })
    }
}

/// Why an access was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFault {
    pub access: Access,
    pub addr: u64,
    pub size: usize,
    pub reason: String,
}

impl std::error::Error for AccessFault {}

impl fmt::Display for AccessFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} of {} byte{} at {:#x}: {}",
            self.access,
            self.size,
            if self.size == 1 { "" } else { "s" },
            self.addr,
            self.reason
        )
    }
}

/// A buffer mapped at an arbitrary address (simulated kernel memory).
#[derive(Clone, Debug)]
struct FarRegion {
    start: u64,
    buf: HostBuffer,
    name: String,
    writable: bool,
}

/// The address space of one run. Regions borrow host buffers for `'a`; the stack frames
/// are owned here and reused between runs.
pub struct Memory<'a> {
    /// Regions `0..FAST_REGIONS`; boxed so its address stays put for JIT code.
    fast: Box<[Region; FAST_REGIONS]>,
    /// Regions from `FAST_REGIONS` on (slow path only).
    more: Vec<Region>,
    /// Ids handed out so far (the next region's id).
    count: usize,
    kinds: Vec<RegionKind>,
    stack: Box<[u8]>,
    /// Frames touched since the stack was last cleared.
    dirty_frames: usize,
    /// Buffers mapped by handle, kept alive as long as they are mapped (index: region id).
    owned: Vec<Option<HostBuffer>>,
    /// Simulated kernel memory at the addresses a trace gives it (far above the region
    /// table), sorted by start; reached on the slow path of an access.
    far: Vec<FarRegion>,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl Default for Memory<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Memory<'a> {
    pub fn new() -> Self {
        let mut stack = vec![0u8; STACK_SIZE * MAX_CALL_FRAMES].into_boxed_slice();
        let mut fast = Box::new([Region::UNMAPPED; FAST_REGIONS]);
        let mut kinds = vec![RegionKind::Null; FIRST_DYNAMIC_REGION as usize];
        for frame in 0..MAX_CALL_FRAMES {
            let id = STACK_REGION + frame as u32;
            let host = stack[frame * STACK_SIZE..].as_mut_ptr();
            fast[id as usize] = Region {
                load_limit: 0,
                store_limit: 0,
                ..Region::new(id, host, STACK_SIZE, true)
            };
            kinds[id as usize] = RegionKind::Stack { frame };
        }
        kinds[CTX_REGION as usize] = RegionKind::Ctx;
        kinds[PACKET_REGION as usize] = RegionKind::Packet;
        kinds[CODE_REGION as usize] = RegionKind::Code;
        kinds[MAP_REGION as usize] = RegionKind::Named("map handles".into());
        let mut mem = Memory {
            fast,
            more: Vec::new(),
            count: FIRST_DYNAMIC_REGION as usize,
            kinds,
            stack,
            // Frame 0 is mapped by the first reset.
            dirty_frames: 1,
            owned: vec![None; FIRST_DYNAMIC_REGION as usize],
            far: Vec::new(),
            _borrow: PhantomData,
        };
        mem.reset_stack();
        mem
    }

    /// The entry of region `id`, if it was handed out.
    pub fn region(&self, id: usize) -> Option<&Region> {
        if id >= self.count {
            None
        } else if id < FAST_REGIONS {
            Some(&self.fast[id])
        } else {
            self.more.get(id - FAST_REGIONS)
        }
    }

    fn region_mut(&mut self, id: usize) -> &mut Region {
        if id < FAST_REGIONS {
            &mut self.fast[id]
        } else {
            &mut self.more[id - FAST_REGIONS]
        }
    }

    fn set(&mut self, id: u32, host: *mut u8, len: usize, writable: bool) {
        *self.region_mut(id as usize) = Region::new(id, host, len, writable);
    }

    /// Maps `data` as the program's context; returns its address.
    pub fn set_ctx(&mut self, data: &'a mut [u8]) -> u64 {
        self.owned[CTX_REGION as usize] = None;
        self.set(CTX_REGION, data.as_mut_ptr(), data.len(), true);
        vaddr(CTX_REGION, 0)
    }

    /// Maps `data` as packet data; returns its address.
    pub fn set_packet(&mut self, data: &'a mut [u8]) -> u64 {
        self.owned[PACKET_REGION as usize] = None;
        self.set(PACKET_REGION, data.as_mut_ptr(), data.len(), true);
        vaddr(PACKET_REGION, 0)
    }

    /// Makes the packet region show the context's bytes, for raw runs (`exec`, the
    /// conformance suite) where one buffer serves both.
    pub fn packet_is_ctx(&mut self) {
        let ctx = self.fast[CTX_REGION as usize];
        let len = ctx.len(CTX_REGION as usize, Access::Load) as usize;
        self.set(PACKET_REGION, ctx.host, len, ctx.store_limit != 0);
    }

    /// Maps a writable buffer in a new region; returns its base address.
    pub fn add_region(&mut self, name: impl Into<String>, data: &'a mut [u8]) -> u64 {
        self.push(name.into(), data.as_mut_ptr(), data.len(), true)
    }

    /// Maps a read-only buffer in a new region; returns its base address.
    pub fn add_readonly_region(&mut self, name: impl Into<String>, data: &'a [u8]) -> u64 {
        // Never written through: its store length is 0.
        self.push(name.into(), data.as_ptr().cast_mut(), data.len(), false)
    }

    fn push(&mut self, name: String, host: *mut u8, len: usize, writable: bool) -> u64 {
        assert!(
            len <= u32::MAX as usize,
            "region larger than the 4 GiB a region can address"
        );
        if self.count == HOLE_REGION as usize {
            self.kinds.push(RegionKind::Null);
            self.owned.push(None);
            self.count += 1;
        }
        let id = self.count as u32;
        self.count += 1;
        if id as usize >= FAST_REGIONS {
            self.more.push(Region::UNMAPPED);
        }
        self.kinds.push(RegionKind::Named(name));
        self.owned.push(None);
        self.set(id, host, len, writable);
        vaddr(id, 0)
    }

    /// Maps a shared buffer in a new region; the memory keeps it alive while mapped.
    pub fn map_buffer(&mut self, name: impl Into<String>, buf: &HostBuffer, writable: bool) -> u64 {
        let addr = self.push(name.into(), buf.as_ptr(), buf.len(), writable);
        *self.owned.last_mut().expect("just pushed") = Some(buf.clone());
        addr
    }

    /// Maps a shared buffer as the context; returns its address.
    pub fn set_ctx_buffer(&mut self, buf: &HostBuffer, writable: bool) -> u64 {
        self.set(CTX_REGION, buf.as_ptr(), buf.len(), writable);
        self.owned[CTX_REGION as usize] = Some(buf.clone());
        vaddr(CTX_REGION, 0)
    }

    /// Maps a shared buffer as packet data; returns its address.
    pub fn set_packet_buffer(&mut self, buf: &HostBuffer) -> u64 {
        self.set(PACKET_REGION, buf.as_ptr(), buf.len(), true);
        self.owned[PACKET_REGION as usize] = Some(buf.clone());
        vaddr(PACKET_REGION, 0)
    }

    /// Maps `len` bytes of a shared buffer from `offset` as packet data (the bytes LD_ABS
    /// and LD_IND read); returns its address.
    pub fn set_packet_window(&mut self, buf: &HostBuffer, offset: usize, len: usize) -> u64 {
        let len = len.min(buf.len().saturating_sub(offset));
        self.set(PACKET_REGION, buf.as_ptr().wrapping_add(offset), len, true);
        self.owned[PACKET_REGION as usize] = Some(buf.clone());
        vaddr(PACKET_REGION, 0)
    }

    /// Unmaps the context and the packet.
    pub fn clear_ctx_and_packet(&mut self) {
        for id in [CTX_REGION, PACKET_REGION] {
            self.fast[id as usize] = Region::UNMAPPED;
            self.owned[id as usize] = None;
        }
    }

    /// Number of regions (the next [`Self::add_region`] gets this id).
    pub fn region_count(&self) -> usize {
        self.count
    }

    /// Unmaps every region from id `count` on (per-event regions), so the next ones get the
    /// same ids again.
    pub fn truncate_regions(&mut self, count: usize) {
        let count = count.max(FIRST_DYNAMIC_REGION as usize);
        if count >= self.count {
            return;
        }
        for r in &mut self.fast[count.min(FAST_REGIONS)..] {
            *r = Region::UNMAPPED;
        }
        self.more.truncate(count.saturating_sub(FAST_REGIONS));
        self.count = count;
        self.kinds.truncate(count);
        self.owned.truncate(count);
    }

    /// Clears the stack frames used since the last reset and leaves only frame 0 mapped,
    /// so every run starts from the same zeroed state. After a run that wrote nothing
    /// there (see [`Self::stack_untouched`]) this is one store: a run's fixed cost.
    #[inline]
    pub fn reset_stack(&mut self) {
        if self.dirty_frames > 0 {
            self.clear_frames();
        }
        // Until a run says otherwise (Self::stack_untouched), frame 0 may be written.
        self.dirty_frames = 1;
    }

    /// Zeroes the frames used since the last reset and unmaps all but frame 0 (which no
    /// run unmaps: only callee frames come and go).
    #[inline(never)]
    fn clear_frames(&mut self) {
        let used = self.dirty_frames;
        for (frame, stack) in self
            .stack
            .chunks_exact_mut(STACK_SIZE)
            .enumerate()
            .take(used)
        {
            stack.fill(0);
            let limit = if frame == 0 {
                Region::frame_limit(0)
            } else {
                0
            };
            let r = &mut self.fast[STACK_REGION as usize + frame];
            r.load_limit = limit;
            r.store_limit = limit;
        }
        self.dirty_frames = 0;
    }

    /// Says the run since the last [`Self::reset_stack`] could not write the stack (its
    /// program never names r10; see `Program::touches_stack`), so the next reset has
    /// nothing to clear unless a callee frame was mapped.
    #[inline]
    pub fn stack_untouched(&mut self) {
        if self.dirty_frames <= 1 {
            self.dirty_frames = 0;
        }
    }

    /// Maps (when entering) or unmaps (when returning from) the stack of `frame`, so a
    /// pointer into a finished frame's stack faults instead of reading stale data.
    pub fn set_frame_mapped(&mut self, frame: usize, mapped: bool) {
        let limit = if mapped {
            Region::frame_limit(frame)
        } else {
            0
        };
        let r = &mut self.fast[STACK_REGION as usize + frame];
        r.load_limit = limit;
        r.store_limit = limit;
        self.dirty_frames = self.dirty_frames.max(frame + 1);
    }

    /// The fast table ([`FAST_REGIONS`] entries), for JIT-compiled code, which reads it
    /// and maps or unmaps stack frames in it during a run. Its address never changes.
    #[inline]
    pub fn fast_table_mut(&mut self) -> *mut Region {
        self.fast.as_mut_ptr()
    }

    /// Records that frames `0..frames` were used (by code that mapped them itself), so the
    /// next [`Self::reset_stack`] clears them.
    #[inline]
    pub fn note_frames_used(&mut self, frames: usize) {
        self.dirty_frames = self.dirty_frames.max(frames.min(MAX_CALL_FRAMES));
    }

    /// Host address of byte 0 of `frame`'s stack (its r10 is 512 bytes above).
    #[inline]
    pub fn stack_base(&mut self, frame: usize) -> *mut u8 {
        self.stack[frame * STACK_SIZE..].as_mut_ptr()
    }

    /// Checks an access and gives the host address of its first byte: the compare the JITs
    /// emit inline (see the module comment), then the slow path.
    #[inline(always)]
    pub fn translate(
        &self,
        addr: u64,
        size: usize,
        access: Access,
    ) -> Result<*mut u8, AccessFault> {
        let r = &self.fast[(addr >> REGION_SHIFT) as usize % FAST_REGIONS];
        // Sizes up to 4 GiB cannot wrap past the hole (see the module comment).
        if size as u64 <= 1 << REGION_SHIFT && addr.wrapping_add(size as u64) < r.limit(access) {
            return Ok(r.host.wrapping_add((addr & 0xffff_ffff) as usize));
        }
        self.translate_slow(addr, size, access)
    }

    /// Every region (beyond the fast table too), then far mappings; the fault otherwise.
    #[cold]
    pub fn translate_slow(
        &self,
        addr: u64,
        size: usize,
        access: Access,
    ) -> Result<*mut u8, AccessFault> {
        let id = (addr >> REGION_SHIFT) as usize;
        let off = addr & 0xffff_ffff;
        if let Some(r) = self.region(id) {
            if off
                .checked_add(size as u64)
                .is_some_and(|end| end <= r.len(id, access))
            {
                return Ok(r.host.wrapping_add(off as usize));
            }
        }
        self.translate_far(addr, size, access)
            .ok_or_else(|| self.fault(addr, size, access))
    }

    /// The slow path: simulated kernel memory mapped at trace-given addresses.
    #[cold]
    pub fn translate_far(&self, addr: u64, size: usize, access: Access) -> Option<*mut u8> {
        let r = self.far_region(addr)?;
        let off = addr - r.start;
        let end = off.checked_add(size as u64)?;
        if end > r.buf.len() as u64 || (access != Access::Load && !r.writable) {
            return None;
        }
        Some(r.buf.as_ptr().wrapping_add(off as usize))
    }

    fn far_region(&self, addr: u64) -> Option<&FarRegion> {
        let i = self
            .far
            .partition_point(|r| r.start <= addr)
            .checked_sub(1)?;
        let r = &self.far[i];
        (addr - r.start < r.buf.len() as u64).then_some(r)
    }

    /// Maps `buf` at the fixed address `start`: simulated kernel memory (a task_struct, a
    /// blob a trace gives) far above the region table's addresses, or a window below 4 GiB
    /// (above [`LOW_WINDOW_START`]) for data whose address programs load as 32 bits, such
    /// as packet data through `xdp_md.data`. Fails on overlaps.
    pub fn map_far(
        &mut self,
        name: impl Into<String>,
        start: u64,
        buf: &HostBuffer,
        writable: bool,
    ) -> Result<(), String> {
        let name = name.into();
        let end = start
            .checked_add(buf.len() as u64)
            .ok_or_else(|| format!("{name} at {start:#x} wraps around the address space"))?;
        let low = start >= LOW_WINDOW_START && end <= 1 << REGION_SHIFT;
        if !low && start >> REGION_SHIFT < (1 << 16) {
            return Err(format!(
                "{name} at {start:#x} is neither in the low window (0x10000..4 GiB) nor above \
                 0x1000000000000: the simulator's own regions live in between"
            ));
        }
        let i = self.far.partition_point(|r| r.start < start);
        let clash = self.far.get(i).is_some_and(|r| r.start < end)
            || i.checked_sub(1)
                .and_then(|j| self.far.get(j))
                .is_some_and(|r| r.start + r.buf.len() as u64 > start);
        if clash {
            return Err(format!("{name} at {start:#x} overlaps another mapping"));
        }
        self.far.insert(
            i,
            FarRegion {
                start,
                buf: buf.clone(),
                name,
                writable,
            },
        );
        Ok(())
    }

    /// Drops the far mapping that starts at `start`, if any.
    pub fn unmap_far(&mut self, start: u64) {
        self.far.retain(|r| r.start != start);
    }

    /// Drops every far mapping (per-event memory).
    pub fn clear_far(&mut self) {
        self.far.clear();
    }

    /// Explains why an access at `addr` is invalid (the slow path of [`Self::translate`]).
    #[cold]
    pub fn fault(&self, addr: u64, size: usize, access: Access) -> AccessFault {
        let id = (addr >> REGION_SHIFT) as usize;
        let off = addr & 0xffff_ffff;
        if let Some(r) = self.far_region(addr) {
            let reason = if access != Access::Load && !r.writable {
                format!("{} is read-only", r.name)
            } else {
                format!(
                    "offset {} is outside {} ({} bytes)",
                    addr - r.start,
                    r.name,
                    r.buf.len()
                )
            };
            return AccessFault {
                access,
                addr,
                size,
                reason,
            };
        }
        let reason = match (self.region(id), self.kinds.get(id)) {
            (_, Some(RegionKind::Null)) if id == NULL_REGION as usize => {
                "not a pointer (null or a plain number)".to_string()
            }
            (Some(r), Some(kind)) if id != HOLE_REGION as usize => {
                if r.load_limit == 0 {
                    format!("{kind} is not mapped")
                } else if access != Access::Load && r.store_limit == 0 {
                    format!("{kind} is read-only")
                } else {
                    format!(
                        "offset {off} is outside {kind} ({} bytes)",
                        r.len(id, Access::Load)
                    )
                }
            }
            _ => format!("no region {id} is mapped"),
        };
        AccessFault {
            access,
            addr,
            size,
            reason,
        }
    }

    /// Reads `size` (1, 2, 4 or 8) bytes, little-endian, zero-extended.
    #[inline(always)]
    pub fn load(&self, addr: u64, size: usize) -> Result<u64, AccessFault> {
        let p = self.translate(addr, size, Access::Load)?;
        // SAFETY: `translate` checked that `size` bytes at `p` lie inside a live region
        // (a buffer borrowed for 'a or the owned stack); unaligned reads are allowed.
        Ok(unsafe { read_host(p, size) })
    }

    /// Writes the low `size` bytes of `value`, little-endian.
    #[inline(always)]
    pub fn store(&mut self, addr: u64, size: usize, value: u64) -> Result<(), AccessFault> {
        let p = self.translate(addr, size, Access::Store)?;
        // SAFETY: `translate` checked that `size` bytes at `p` lie inside a writable live
        // region.
        unsafe { write_host(p, size, value) };
        Ok(())
    }

    /// Copies program memory into `buf` (for helpers).
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        if buf.is_empty() {
            return Ok(());
        }
        let p = self.translate(addr, buf.len(), Access::Load)?;
        // SAFETY: `translate` checked the whole range; `buf` is a separate host buffer
        // (regions never alias a `&mut` the caller holds: they borrow for 'a).
        unsafe { std::ptr::copy(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into program memory (for helpers).
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), AccessFault> {
        if data.is_empty() {
            return Ok(());
        }
        let p = self.translate(addr, data.len(), Access::Store)?;
        // SAFETY: `translate` checked the whole range is writable; `copy` tolerates overlap.
        unsafe { std::ptr::copy(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// The kind of the region an address points into, if any.
    pub fn region_kind(&self, addr: u64) -> Option<&RegionKind> {
        self.kinds.get((addr >> REGION_SHIFT) as usize)
    }
}

/// Reads `size` bytes at `p` little-endian.
///
/// # Safety
/// `p..p+size` must be readable host memory.
#[inline(always)]
pub unsafe fn read_host(p: *const u8, size: usize) -> u64 {
    // SAFETY: the caller guarantees `size` readable bytes at `p`.
    unsafe {
        match size {
            1 => *p as u64,
            2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
            4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
            _ => u64::from_le(p.cast::<u64>().read_unaligned()),
        }
    }
}

/// Writes the low `size` bytes of `v` at `p` little-endian.
///
/// # Safety
/// `p..p+size` must be writable host memory.
#[inline(always)]
pub unsafe fn write_host(p: *mut u8, size: usize, v: u64) {
    // SAFETY: the caller guarantees `size` writable bytes at `p`.
    unsafe {
        match size {
            1 => *p = v as u8,
            2 => p.cast::<u16>().write_unaligned((v as u16).to_le()),
            4 => p.cast::<u32>().write_unaligned((v as u32).to_le()),
            _ => p.cast::<u64>().write_unaligned(v.to_le()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_fixed_and_checked() {
        let mut ctx = [1u8, 2, 3, 4];
        let mut mem = Memory::new();
        let a = mem.set_ctx(&mut ctx);
        assert_eq!(a, vaddr(CTX_REGION, 0));
        assert_eq!(mem.load(a, 4).unwrap(), 0x04030201);
        assert_eq!(mem.load(a + 2, 2).unwrap(), 0x0403);
        let e = mem.load(a + 1, 4).unwrap_err();
        assert!(e.reason.contains("outside context (4 bytes)"), "{e}");
        mem.store(a, 1, 9).unwrap();
        assert_eq!(mem.load(a, 1).unwrap(), 9);
        assert!(mem.load(0, 1).unwrap_err().reason.contains("not a pointer"));
        assert!(mem.load(u64::MAX, 1).is_err());
    }

    #[test]
    fn readonly_regions_refuse_stores() {
        let data = [7u8; 8];
        let mut mem = Memory::new();
        let a = mem.add_readonly_region(".rodata", &data);
        assert_eq!(a, vaddr(FIRST_DYNAMIC_REGION, 0));
        assert_eq!(mem.load(a, 8).unwrap(), 0x0707070707070707);
        let e = mem.store(a, 1, 0).unwrap_err();
        assert!(e.reason.contains(".rodata is read-only"), "{e}");
    }

    #[test]
    fn far_regions_sit_at_trace_addresses() {
        let mut mem = Memory::new();
        let task = HostBuffer::from_bytes(&[1, 2, 3, 4]);
        let at = 0xffff_8880_0000_1000;
        mem.map_far("task 42", at, &task, false).unwrap();
        assert_eq!(mem.load(at + 1, 2).unwrap(), 0x0302);
        let e = mem.load(at + 2, 4).unwrap_err();
        assert!(e.reason.contains("outside task 42 (4 bytes)"), "{e}");
        assert!(mem
            .store(at, 1, 0)
            .unwrap_err()
            .reason
            .contains("read-only"));
        assert!(mem.map_far("clash", at + 2, &task, false).is_err());
        assert!(mem.map_far("low", 0x1000, &task, false).is_err());
        mem.map_far("packet", 0x100_0000, &task, true).unwrap();
        assert_eq!(mem.load(0x100_0003, 1).unwrap(), 4);
        assert!(mem.map_far("mid", 1 << 40, &task, false).is_err());
        mem.clear_far();
        assert!(mem.load(at, 1).is_err());
    }

    #[test]
    fn regions_beyond_the_fast_table_and_wrapping_addresses() {
        let mut mem = Memory::new();
        let bufs: Vec<HostBuffer> = (0..100u8)
            .map(|i| HostBuffer::from_bytes(&[i; 4]))
            .collect();
        let addrs: Vec<u64> = bufs
            .iter()
            .map(|b| mem.map_buffer("value", b, true))
            .collect();
        // The hole is skipped; every region reads its own bytes, aliases do not leak.
        assert!(addrs
            .iter()
            .all(|&a| a >> REGION_SHIFT != HOLE_REGION as u64));
        for (i, &a) in addrs.iter().enumerate() {
            assert_eq!(mem.load(a, 1).unwrap(), i as u64, "region of {a:#x}");
            assert!(mem.load(a + 1, 4).is_err());
        }
        let e = mem.load(vaddr(HOLE_REGION, 0), 1).unwrap_err();
        assert!(e.reason.contains("no region 63"), "{e}");
        let e = mem
            .load(vaddr(HOLE_REGION + FAST_REGIONS as u32, 0), 1)
            .unwrap_err();
        assert!(e.reason.contains("no region"), "{e}");
        for size in [1, 2, 4, 8] {
            assert!(mem.load(u64::MAX - size as u64 + 1, size).is_err());
            assert!(mem.load(u64::MAX - size as u64 + 2, size).is_err());
        }
        // Sizes beyond a region's reach never pass by wrapping.
        let mut big = vec![0u8; 8];
        assert!(mem.read_bytes(addrs[0], &mut big).is_err());
        mem.truncate_regions(FIRST_DYNAMIC_REGION as usize + 1);
        assert_eq!(mem.load(addrs[0], 1).unwrap(), 0);
        assert!(mem.load(addrs[1], 1).is_err());
        assert!(mem.load(addrs[70], 1).is_err());
    }

    #[test]
    fn stack_frames_map_and_unmap() {
        let mut mem = Memory::new();
        let fp = frame_pointer(0);
        mem.store(fp - 8, 8, 42).unwrap();
        assert!(mem.store(fp, 1, 0).is_err());
        assert!(mem.load(frame_pointer(1) - 8, 8).is_err());
        mem.set_frame_mapped(1, true);
        mem.store(frame_pointer(1) - 8, 8, 5).unwrap();
        mem.set_frame_mapped(1, false);
        let e = mem.load(frame_pointer(1) - 8, 8).unwrap_err();
        assert!(e.reason.contains("stack of frame 1 is not mapped"), "{e}");
        mem.reset_stack();
        assert_eq!(mem.load(fp - 8, 8).unwrap(), 0);
    }
}
