//! The LRU lists of `LRU_HASH` and `LRU_PERCPU_HASH`: a port of
//! `kernel/bpf/bpf_lru_list.c`, list for list, on index-linked lists.
//!
//! Every element (node) is on exactly one list. With the common LRU (the default) there is
//! one global list set (active, inactive, free) plus, per CPU, a local free list and a
//! local pending list: a CPU takes elements from its local free list, refilling it with up
//! to `target_free` elements from the global free list and, when that runs dry, by
//! *shrinking*: evicting up to `target_free` unreferenced elements from the tail of the
//! inactive list at once. New elements wait on the CPU's pending list until the next
//! refill flushes them to the global active (if referenced) or inactive list. A lookup from
//! a program sets the element's `ref` bit, which gives it another round on the active list
//! when the lists rotate. With `BPF_F_NO_COMMON_LRU` each CPU has its own list set and
//! evicts 4 elements at a time.
//!
//! The sequence of nodes handed out and evicted is the kernel's for the same operations on
//! the same CPUs: the algorithm is the same and our single-threaded runs never lose the
//! races the kernel code allows for (its `del_from_htab` always succeeds here).

/// Bookkeeping bytes per node, for the simulator's memory limit.
pub(crate) const NODE_BYTES: u64 = 16;

const ACTIVE: u8 = 0;
const INACTIVE: u8 = 1;
const FREE: u8 = 2;
const LOCAL_FREE: u8 = 3;
const LOCAL_PENDING: u8 = 4;

const LOCAL_FREE_TARGET: u32 = 128;
const LOCAL_NR_SCANS: u32 = LOCAL_FREE_TARGET;
const PERCPU_FREE_TARGET: u32 = 4;
const PERCPU_NR_SCANS: u32 = PERCPU_FREE_TARGET;

fn is_local(t: u8) -> bool {
    t >= LOCAL_FREE
}

#[derive(Clone, Debug)]
struct ListState {
    /// Elements on the active and inactive lists.
    counts: [u32; 2],
    /// Where the next inactive rotation starts (a node or the inactive list's head).
    next_inactive_rotation: u32,
}

/// Removes an element from the hash table before the LRU reuses it; returns whether it was
/// there (the kernel's `htab_lru_map_delete_node`).
pub(crate) type DelFromHtab<'a> = &'a mut dyn FnMut(u32) -> bool;

#[derive(Clone, Debug)]
pub(crate) struct Lru {
    /// Element nodes are `0..n`; list heads follow.
    n: u32,
    ncpus: u32,
    percpu: bool,
    prev: Vec<u32>,
    next: Vec<u32>,
    ty: Vec<u8>,
    refd: Vec<bool>,
    cpu: Vec<u32>,
    lists: Vec<ListState>,
    next_steal: Vec<u32>,
    nr_scans: u32,
    target_free: u32,
}

impl Lru {
    /// `bpf_lru_init` + `bpf_lru_populate` for `n` elements.
    pub fn new(n: u32, ncpus: u32, percpu: bool) -> Self {
        let nlists = if percpu { ncpus } else { 1 };
        let nlocal = if percpu { 0 } else { ncpus };
        let total = n as usize + 3 * nlists as usize + 2 * nlocal as usize;
        let mut lru = Lru {
            n,
            ncpus,
            percpu,
            prev: (0..total as u32).collect(),
            next: (0..total as u32).collect(),
            ty: vec![FREE; total],
            refd: vec![false; total],
            cpu: vec![0; total],
            lists: Vec::with_capacity(nlists as usize),
            next_steal: (0..nlocal).collect(),
            nr_scans: if percpu {
                PERCPU_NR_SCANS
            } else {
                LOCAL_NR_SCANS
            },
            target_free: 0,
        };
        for l in 0..nlists as usize {
            let inactive = lru.head(l, INACTIVE);
            lru.lists.push(ListState {
                counts: [0, 0],
                next_inactive_rotation: inactive,
            });
        }
        if percpu {
            let per_cpu = (n / ncpus).max(1);
            let mut i = 0u32;
            'cpus: for c in 0..ncpus {
                loop {
                    lru.cpu[i as usize] = c;
                    let head = lru.head(c as usize, FREE);
                    lru.link_after(i, head);
                    i += 1;
                    if i == n {
                        break 'cpus;
                    }
                    if i.is_multiple_of(per_cpu) {
                        break;
                    }
                }
            }
        } else {
            let head = lru.head(0, FREE);
            for i in 0..n {
                lru.link_after(i, head);
            }
            lru.target_free = (n / ncpus / 2).clamp(1, LOCAL_FREE_TARGET);
        }
        lru
    }

    fn head(&self, l: usize, t: u8) -> u32 {
        self.n + 3 * l as u32 + t as u32
    }

    fn local_head(&self, cpu: u32, t: u8) -> u32 {
        self.n + 3 * self.lists.len() as u32 + 2 * cpu + (t - LOCAL_FREE) as u32
    }

    fn is_empty(&self, head: u32) -> bool {
        self.next[head as usize] == head
    }

    /// `list_add`: `node` right after `head`.
    fn link_after(&mut self, node: u32, head: u32) {
        let first = self.next[head as usize];
        self.next[node as usize] = first;
        self.prev[node as usize] = head;
        self.prev[first as usize] = node;
        self.next[head as usize] = node;
    }

    /// `list_del`.
    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
        self.prev[node as usize] = node;
        self.next[node as usize] = node;
    }

    /// `list_move`.
    fn move_to(&mut self, node: u32, head: u32) {
        self.unlink(node);
        self.link_after(node, head);
    }

    fn count_inc(&mut self, l: usize, t: u8) {
        if t < 2 {
            self.lists[l].counts[t as usize] += 1;
        }
    }

    fn count_dec(&mut self, l: usize, t: u8) {
        if t < 2 {
            let c = &mut self.lists[l].counts[t as usize];
            *c = c.saturating_sub(1);
        }
    }

    fn bump_rotation(&mut self, l: usize, node: u32) {
        if self.lists[l].next_inactive_rotation == node {
            self.lists[l].next_inactive_rotation = self.prev[node as usize];
        }
    }

    /// The list set a node belongs to.
    fn list_of(&self, node: u32) -> usize {
        if self.percpu {
            self.cpu[node as usize] as usize
        } else {
            0
        }
    }

    /// `__bpf_lru_node_move_to_free`.
    fn node_move_to_free(&mut self, l: usize, node: u32, free_head: u32, tgt: u8) {
        let t = self.ty[node as usize];
        if is_local(t) {
            return;
        }
        self.bump_rotation(l, node);
        self.count_dec(l, t);
        self.ty[node as usize] = tgt;
        self.move_to(node, free_head);
    }

    /// `__bpf_lru_node_move_in`: from a local list to the LRU list.
    fn node_move_in(&mut self, l: usize, node: u32, tgt: u8) {
        if !is_local(self.ty[node as usize]) || is_local(tgt) {
            return;
        }
        self.count_inc(l, tgt);
        self.ty[node as usize] = tgt;
        self.refd[node as usize] = false;
        let head = self.head(l, tgt);
        self.move_to(node, head);
    }

    /// `__bpf_lru_node_move`: between or within the active/inactive/free lists.
    fn node_move(&mut self, l: usize, node: u32, tgt: u8) {
        let t = self.ty[node as usize];
        if is_local(t) || is_local(tgt) {
            return;
        }
        if t != tgt {
            self.count_dec(l, t);
            self.count_inc(l, tgt);
            self.ty[node as usize] = tgt;
        }
        self.refd[node as usize] = false;
        self.bump_rotation(l, node);
        let head = self.head(l, tgt);
        self.move_to(node, head);
    }

    fn inactive_low(&self, l: usize) -> bool {
        let c = self.lists[l].counts;
        c[INACTIVE as usize] < c[ACTIVE as usize]
    }

    /// `__bpf_lru_list_rotate_active`: from the tail, referenced nodes go back to the head
    /// of the active list, others to the inactive list; at most `nr_scans` nodes.
    fn rotate_active(&mut self, l: usize) {
        let active = self.head(l, ACTIVE);
        let first = self.next[active as usize];
        let mut i = 0;
        let mut node = self.prev[active as usize];
        while node != active {
            let tmp = self.prev[node as usize];
            if self.refd[node as usize] {
                self.node_move(l, node, ACTIVE);
            } else {
                self.node_move(l, node, INACTIVE);
            }
            i += 1;
            if i == self.nr_scans || node == first {
                break;
            }
            node = tmp;
        }
    }

    /// `__bpf_lru_list_rotate_inactive`: from `next_inactive_rotation` backwards,
    /// referenced nodes move to the active list; at most `nr_scans` nodes.
    fn rotate_inactive(&mut self, l: usize) {
        let inactive = self.head(l, INACTIVE);
        if self.is_empty(inactive) {
            return;
        }
        let start = self.lists[l].next_inactive_rotation;
        let mut last = self.next[start as usize];
        if last == inactive {
            last = self.next[last as usize];
        }
        let mut cur = start;
        let mut next = inactive;
        let mut i = 0;
        while i < self.nr_scans {
            if cur == inactive {
                if self.is_empty(inactive) {
                    break;
                }
                cur = self.prev[cur as usize];
                continue;
            }
            next = self.prev[cur as usize];
            if self.refd[cur as usize] {
                self.node_move(l, cur, ACTIVE);
            }
            if cur == last {
                break;
            }
            cur = next;
            i += 1;
        }
        self.lists[l].next_inactive_rotation = next;
    }

    /// `__bpf_lru_list_shrink_inactive`: from the tail of the inactive list, evict up to
    /// `tgt` unreferenced nodes onto `free_head` (referenced ones go to the active list).
    fn shrink_inactive(
        &mut self,
        l: usize,
        tgt: u32,
        free_head: u32,
        free_ty: u8,
        del: DelFromHtab<'_>,
    ) -> u32 {
        let inactive = self.head(l, INACTIVE);
        let mut shrunk = 0;
        let mut i = 0;
        let mut node = self.prev[inactive as usize];
        while node != inactive {
            let tmp = self.prev[node as usize];
            if self.refd[node as usize] {
                self.node_move(l, node, ACTIVE);
            } else if del(node) {
                self.node_move_to_free(l, node, free_head, free_ty);
                shrunk += 1;
                if shrunk == tgt {
                    break;
                }
            }
            i += 1;
            if i == self.nr_scans {
                break;
            }
            node = tmp;
        }
        shrunk
    }

    /// `__bpf_lru_list_rotate`.
    fn rotate(&mut self, l: usize) {
        if self.inactive_low(l) {
            self.rotate_active(l);
        }
        self.rotate_inactive(l);
    }

    /// `__bpf_lru_list_shrink`: shrink the inactive list, or else evict the oldest node of
    /// the inactive (or, if empty, active) list regardless of its ref bit.
    fn shrink(
        &mut self,
        l: usize,
        tgt: u32,
        free_head: u32,
        free_ty: u8,
        del: DelFromHtab<'_>,
    ) -> u32 {
        let n = self.shrink_inactive(l, tgt, free_head, free_ty, del);
        if n > 0 {
            return n;
        }
        let inactive = self.head(l, INACTIVE);
        let force = if !self.is_empty(inactive) {
            inactive
        } else {
            self.head(l, ACTIVE)
        };
        let mut node = self.prev[force as usize];
        while node != force {
            let tmp = self.prev[node as usize];
            if del(node) {
                self.node_move_to_free(l, node, free_head, free_ty);
                return 1;
            }
            node = tmp;
        }
        0
    }

    /// `__local_list_flush`: a CPU's pending nodes join the LRU list.
    fn local_flush(&mut self, l: usize, cpu: u32) {
        let pending = self.local_head(cpu, LOCAL_PENDING);
        let mut node = self.prev[pending as usize];
        while node != pending {
            let tmp = self.prev[node as usize];
            if self.refd[node as usize] {
                self.node_move_in(l, node, ACTIVE);
            } else {
                self.node_move_in(l, node, INACTIVE);
            }
            node = tmp;
        }
    }

    /// `bpf_lru_list_pop_free_to_local`.
    fn pop_free_to_local(&mut self, cpu: u32, del: DelFromHtab<'_>) {
        let l = 0;
        self.local_flush(l, cpu);
        self.rotate(l);
        let free = self.head(l, FREE);
        let local_free = self.local_head(cpu, LOCAL_FREE);
        let mut nfree = 0;
        let mut node = self.next[free as usize];
        while node != free {
            let tmp = self.next[node as usize];
            self.node_move_to_free(l, node, local_free, LOCAL_FREE);
            nfree += 1;
            if nfree == self.target_free {
                break;
            }
            node = tmp;
        }
        if nfree < self.target_free {
            self.shrink(l, self.target_free - nfree, local_free, LOCAL_FREE, del);
        }
    }

    fn add_pending(&mut self, cpu: u32, node: u32) {
        self.cpu[node as usize] = cpu;
        self.ty[node as usize] = LOCAL_PENDING;
        self.refd[node as usize] = false;
        let pending = self.local_head(cpu, LOCAL_PENDING);
        self.link_after(node, pending);
    }

    fn local_pop_free(&mut self, cpu: u32) -> Option<u32> {
        let head = self.local_head(cpu, LOCAL_FREE);
        if self.is_empty(head) {
            return None;
        }
        let node = self.next[head as usize];
        self.unlink(node);
        Some(node)
    }

    /// `__local_list_pop_pending`: the oldest unreferenced pending node, else the oldest.
    fn local_pop_pending(&mut self, cpu: u32, del: DelFromHtab<'_>) -> Option<u32> {
        let pending = self.local_head(cpu, LOCAL_PENDING);
        for force in [false, true] {
            let mut node = self.prev[pending as usize];
            while node != pending {
                if (!self.refd[node as usize] || force) && del(node) {
                    self.unlink(node);
                    return Some(node);
                }
                node = self.prev[node as usize];
            }
        }
        None
    }

    fn common_pop_free(&mut self, cpu: u32, del: DelFromHtab<'_>) -> Option<u32> {
        let mut node = self.local_pop_free(cpu);
        if node.is_none() {
            self.pop_free_to_local(cpu, &mut *del);
            node = self.local_pop_free(cpu);
        }
        if let Some(n) = node {
            self.add_pending(cpu, n);
            return Some(n);
        }
        // Steal from the CPUs' local free, then pending lists, round robin.
        let first = self.next_steal[cpu as usize];
        let mut steal = first;
        loop {
            node = self.local_pop_free(steal);
            if node.is_none() {
                node = self.local_pop_pending(steal, &mut *del);
            }
            steal = (steal + 1) % self.ncpus;
            if node.is_some() || steal == first {
                break;
            }
        }
        self.next_steal[cpu as usize] = steal;
        if let Some(n) = node {
            self.add_pending(cpu, n);
        }
        node
    }

    fn percpu_pop_free(&mut self, cpu: u32, del: DelFromHtab<'_>) -> Option<u32> {
        let l = cpu as usize;
        self.rotate(l);
        let free = self.head(l, FREE);
        if self.is_empty(free) {
            self.shrink(l, PERCPU_FREE_TARGET, free, FREE, del);
        }
        if self.is_empty(free) {
            return None;
        }
        let node = self.next[free as usize];
        self.refd[node as usize] = false;
        self.node_move(l, node, INACTIVE);
        Some(node)
    }

    /// `bpf_lru_pop_free` on `cpu`: a free node, evicting (through `del`) if needed.
    pub fn pop_free(&mut self, cpu: u32, del: DelFromHtab<'_>) -> Option<u32> {
        if self.percpu {
            self.percpu_pop_free(cpu, del)
        } else {
            self.common_pop_free(cpu, del)
        }
    }

    /// `bpf_lru_push_free`: a node no longer in the hash table.
    pub fn push_free(&mut self, node: u32) {
        let t = self.ty[node as usize];
        if t == FREE || t == LOCAL_FREE {
            return;
        }
        if !self.percpu && t == LOCAL_PENDING {
            let c = self.cpu[node as usize];
            self.ty[node as usize] = LOCAL_FREE;
            self.refd[node as usize] = false;
            let head = self.local_head(c, LOCAL_FREE);
            self.move_to(node, head);
            return;
        }
        let l = self.list_of(node);
        self.node_move(l, node, FREE);
    }

    /// `bpf_lru_node_set_ref`: a program looked the element up.
    pub fn set_ref(&mut self, node: u32) {
        if let Some(r) = self.refd.get_mut(node as usize) {
            *r = true;
        }
    }

    /// Nodes on each list of CPU/list set `l`, for tests: (active, inactive, free).
    #[cfg(test)]
    pub fn list(&self, l: usize, t: u8) -> Vec<u32> {
        let head = self.head(l, t);
        let mut out = Vec::new();
        let mut node = self.next[head as usize];
        while node != head {
            out.push(node);
            node = self.next[node as usize];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_lru_refills_local_lists_and_evicts_in_batches() {
        // 4 nodes, 1 CPU: target_free = 2.
        let mut lru = Lru::new(4, 1, false);
        assert_eq!(lru.list(0, FREE), vec![3, 2, 1, 0]);
        let gone = std::cell::RefCell::new(Vec::new());
        let mut del = |n: u32| {
            gone.borrow_mut().push(n);
            true
        };
        let got: Vec<_> = (0..4).map(|_| lru.pop_free(0, &mut del).unwrap()).collect();
        assert_eq!(got, vec![2, 3, 0, 1]);
        assert!(gone.borrow().is_empty());
        // Full: the next pop flushes the pending nodes to the inactive list and evicts the
        // two oldest from its tail.
        let n = lru.pop_free(0, &mut del).unwrap();
        assert_eq!(*gone.borrow(), vec![2, 3]);
        assert_eq!(n, 3);
    }
}
