//! `LPM_TRIE` (`kernel/bpf/lpm_trie.c`): a binary trie of prefixes, keys being a u32
//! prefix length (host order) followed by `key_size - 4` bytes of data (big endian: bit 0 is
//! the top bit of byte 0). Lookups return the longest stored prefix matching the key;
//! updates and deletes match exactly. Intermediate nodes (without a value) split the trie
//! where two prefixes diverge, exactly as in the kernel, so `next_key`'s postorder is the
//! kernel's. A full trie is `ENOSPC`; replacing a value gives the prefix a new node and
//! value slot (the kernel allocates a new node).

use super::slots::Slots;
use super::{flags, MapError, MapSpec, Values};

pub(crate) const DATA_SIZE_MIN: u64 = 1;
pub(crate) const DATA_SIZE_MAX: u64 = 256;
/// `LPM_VAL_SIZE_MAX`: `KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - sizeof(struct
/// lpm_trie_node)`.
pub(crate) const VALUE_SIZE_MAX: u64 = (1 << 22) - DATA_SIZE_MAX - 24;

const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    child: [u32; 2],
    prefixlen: u32,
    im: bool,
    data: Vec<u8>,
    /// Value slot (meaningless for intermediate nodes).
    slot: u32,
}

/// Where a node hangs: the root pointer or a child pointer.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Root,
    Child(u32, usize),
}

#[derive(Debug)]
pub(crate) struct Lpm {
    max_prefixlen: u32,
    max_entries: u32,
    n_entries: u32,
    root: u32,
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    slots: Slots,
}

fn extract_bit(data: &[u8], index: u32) -> usize {
    let byte = data.get(index as usize / 8).copied().unwrap_or(0);
    ((byte >> (7 - index % 8)) & 1) as usize
}

impl Lpm {
    pub fn new(spec: &MapSpec) -> Self {
        let data_size = spec.key_size as usize - 4;
        Lpm {
            max_prefixlen: data_size as u32 * 8,
            max_entries: spec.max_entries,
            n_entries: 0,
            root: NONE,
            nodes: Vec::new(),
            free_nodes: Vec::new(),
            slots: Slots::new(spec.max_entries + 1),
        }
    }

    pub fn len(&self) -> usize {
        self.n_entries as usize
    }

    fn split_key<'k>(&self, v: &Values, key: &'k [u8]) -> Result<(u32, &'k [u8]), MapError> {
        v.check_key(key)?;
        let mut p = [0u8; 4];
        p.copy_from_slice(&key[..4]);
        Ok((u32::from_le_bytes(p), &key[4..]))
    }

    fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    fn get(&self, loc: Loc) -> u32 {
        match loc {
            Loc::Root => self.root,
            Loc::Child(n, b) => self.node(n).child[b],
        }
    }

    fn set(&mut self, loc: Loc, to: u32) {
        match loc {
            Loc::Root => self.root = to,
            Loc::Child(n, b) => self.nodes[n as usize].child[b] = to,
        }
    }

    fn alloc_node(&mut self, node: Node) -> u32 {
        match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() as u32 - 1
            }
        }
    }

    /// Frees a node and, if it holds a value, its slot.
    fn free_node(&mut self, i: u32) {
        let n = &mut self.nodes[i as usize];
        if !n.im {
            self.slots.release(n.slot);
        }
        n.im = true;
        n.child = [NONE, NONE];
        self.free_nodes.push(i);
    }

    /// `longest_prefix_match`: leading bits `node` and the key share, at most both lengths.
    fn match_len(&self, node: &Node, prefixlen: u32, data: &[u8]) -> u32 {
        let limit = node.prefixlen.min(prefixlen);
        let mut bits = 0u32;
        for (a, b) in node.data.iter().zip(data) {
            let diff = a ^ b;
            if diff != 0 {
                bits += diff.leading_zeros();
                break;
            }
            bits += 8;
        }
        bits.min(limit)
    }

    fn find(&self, prefixlen: u32, data: &[u8]) -> Option<u32> {
        if prefixlen > self.max_prefixlen {
            return None;
        }
        let mut found = None;
        let mut node = self.root;
        while node != NONE {
            let n = self.node(node);
            let matchlen = self.match_len(n, prefixlen, data);
            if matchlen == self.max_prefixlen {
                found = Some(node);
                break;
            }
            if matchlen < n.prefixlen {
                break;
            }
            if !n.im {
                found = Some(node);
            }
            node = n.child[extract_bit(data, n.prefixlen)];
        }
        found
    }

    pub fn lookup(&self, v: &Values, key: &[u8]) -> Option<usize> {
        let (prefixlen, data) = self.split_key(v, key).ok()?;
        let node = self.find(prefixlen, data)?;
        Some(v.off(self.node(node).slot, 0))
    }

    pub fn lookup_user(&self, v: &Values, key: &[u8]) -> Result<Vec<u8>, MapError> {
        let (prefixlen, data) = self.split_key(v, key)?;
        let node = self
            .find(prefixlen, data)
            .ok_or_else(|| v.e(MapError::NotFound, "no matching prefix"))?;
        Ok(v.get_value(v.off(self.node(node).slot, 0)))
    }

    /// `trie_check_add_elem`.
    fn check_add(&mut self, v: &Values, fl: u64) -> Result<(), MapError> {
        if fl == flags::BPF_EXIST {
            return Err(v.e(MapError::NotFound, "no such prefix (BPF_EXIST)"));
        }
        if self.n_entries == self.max_entries {
            return Err(v.e(
                MapError::NoSpace,
                format_args!("the trie is full ({} entries)", self.max_entries),
            ));
        }
        self.n_entries += 1;
        Ok(())
    }

    fn value_node(&mut self, v: &Values, prefixlen: u32, data: &[u8], value: &[u8]) -> u32 {
        // A slot is always free: entries <= max_entries, plus one while replacing.
        let slot = self.slots.alloc().unwrap_or(0);
        let off = v.off(slot, 0);
        v.zero_copy(off);
        v.put_value(off, value);
        self.alloc_node(Node {
            child: [NONE, NONE],
            prefixlen,
            im: false,
            data: data.to_vec(),
            slot,
        })
    }

    /// `trie_update_elem`.
    pub fn update(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
    ) -> Result<(), MapError> {
        let (prefixlen, data) = self.split_key(v, key)?;
        v.check_value(value)?;
        if fl > flags::BPF_EXIST {
            return Err(v.e(MapError::Invalid, format_args!("unknown flags {fl:#x}")));
        }
        if prefixlen > self.max_prefixlen {
            return Err(v.e(
                MapError::Invalid,
                format_args!("prefix length {prefixlen} above {}", self.max_prefixlen),
            ));
        }
        let mut slot = Loc::Root;
        let mut matchlen = 0;
        let mut node = self.get(slot);
        while node != NONE {
            let n = self.node(node);
            matchlen = self.match_len(n, prefixlen, data);
            if n.prefixlen != matchlen || n.prefixlen == prefixlen {
                break;
            }
            slot = Loc::Child(node, extract_bit(data, n.prefixlen));
            node = self.get(slot);
        }
        if node == NONE {
            self.check_add(v, fl)?;
            let new = self.value_node(v, prefixlen, data, value);
            self.set(slot, new);
            return Ok(());
        }
        if self.node(node).prefixlen == matchlen {
            if !self.node(node).im {
                if fl == flags::BPF_NOEXIST {
                    return Err(v.e(MapError::Exists, "prefix exists (BPF_NOEXIST)"));
                }
            } else {
                self.check_add(v, fl)?;
            }
            let new = self.value_node(v, prefixlen, data, value);
            self.nodes[new as usize].child = self.node(node).child;
            self.set(slot, new);
            self.free_node(node);
            return Ok(());
        }
        self.check_add(v, fl)?;
        let new = self.value_node(v, prefixlen, data, value);
        if matchlen == prefixlen {
            let bit = extract_bit(&self.node(node).data, matchlen);
            self.nodes[new as usize].child[bit] = node;
            self.set(slot, new);
            return Ok(());
        }
        let child = if extract_bit(data, matchlen) == 1 {
            [node, new]
        } else {
            [new, node]
        };
        let im = self.alloc_node(Node {
            child,
            prefixlen: matchlen,
            im: true,
            data: self.node(node).data.clone(),
            slot: 0,
        });
        self.set(slot, im);
        Ok(())
    }

    /// `trie_delete_elem`.
    pub fn delete(&mut self, v: &Values, key: &[u8]) -> Result<(), MapError> {
        let (prefixlen, data) = self.split_key(v, key)?;
        if prefixlen > self.max_prefixlen {
            return Err(v.e(
                MapError::Invalid,
                format_args!("prefix length {prefixlen} above {}", self.max_prefixlen),
            ));
        }
        let mut trim = Loc::Root;
        let mut trim2 = trim;
        let mut parent = NONE;
        let mut matchlen = 0;
        let mut node = self.get(trim);
        while node != NONE {
            let n = self.node(node);
            matchlen = self.match_len(n, prefixlen, data);
            if n.prefixlen != matchlen || n.prefixlen == prefixlen {
                break;
            }
            parent = node;
            trim2 = trim;
            trim = Loc::Child(node, extract_bit(data, n.prefixlen));
            node = self.get(trim);
        }
        if node == NONE || {
            let n = self.node(node);
            n.prefixlen != prefixlen || n.prefixlen != matchlen || n.im
        } {
            return Err(v.e(MapError::NotFound, "no such prefix"));
        }
        self.n_entries -= 1;
        let children = self.node(node).child;
        if children[0] != NONE && children[1] != NONE {
            // Keep it as an intermediate node.
            let slot = self.node(node).slot;
            self.slots.release(slot);
            self.nodes[node as usize].im = true;
            return Ok(());
        }
        if parent != NONE && self.node(parent).im && children[0] == NONE && children[1] == NONE {
            let pc = self.node(parent).child;
            let other = if pc[0] == node { pc[1] } else { pc[0] };
            self.set(trim2, other);
            self.free_node(parent);
            self.free_node(node);
            return Ok(());
        }
        let promote = if children[0] != NONE {
            children[0]
        } else {
            children[1]
        };
        self.set(trim, promote);
        self.free_node(node);
        Ok(())
    }

    /// The first value node in postorder under `from`.
    fn leftmost(&self, from: u32) -> u32 {
        let mut next = NONE;
        let mut node = from;
        while node != NONE {
            let n = self.node(node);
            if n.im {
                node = n.child[0];
            } else {
                next = node;
                node = n.child[0];
                if node == NONE {
                    node = self.node(next).child[1];
                }
            }
        }
        next
    }

    fn key_of(&self, node: u32) -> Vec<u8> {
        let n = self.node(node);
        let mut k = n.prefixlen.to_le_bytes().to_vec();
        k.extend_from_slice(&n.data);
        k
    }

    /// `trie_get_next_key`: postorder, more specific prefixes first.
    fn next_node(&self, key: Option<(u32, &[u8])>) -> Option<u32> {
        if self.root == NONE {
            return None;
        }
        let Some((prefixlen, data)) = key.filter(|&(p, _)| p <= self.max_prefixlen) else {
            return Some(self.leftmost(self.root)).filter(|&n| n != NONE);
        };
        let mut stack = Vec::new();
        let mut matchlen = 0;
        let mut node = self.root;
        while node != NONE {
            stack.push(node);
            let n = self.node(node);
            matchlen = self.match_len(n, prefixlen, data);
            if n.prefixlen != matchlen || n.prefixlen == prefixlen {
                break;
            }
            node = n.child[extract_bit(data, n.prefixlen)];
        }
        if node == NONE || self.node(node).prefixlen != matchlen || self.node(node).im {
            return Some(self.leftmost(self.root)).filter(|&n| n != NONE);
        }
        while stack.len() > 1 {
            let parent = stack[stack.len() - 2];
            let p = self.node(parent);
            if p.child[0] == node && p.child[1] != NONE {
                return Some(self.leftmost(p.child[1])).filter(|&n| n != NONE);
            }
            if !p.im {
                return Some(parent);
            }
            node = parent;
            stack.pop();
        }
        None
    }

    pub fn next_key(&self, v: &Values, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let key = match key {
            Some(k) => Some(self.split_key(v, k)?),
            None => None,
        };
        self.next_node(key)
            .map(|n| self.key_of(n))
            .ok_or_else(|| v.e(MapError::NotFound, "no more prefixes"))
    }

    pub fn entries(&self, v: &Values) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        let mut out = Vec::with_capacity(self.len());
        let mut node = self.next_node(None);
        while let Some(n) = node {
            let key = self.key_of(n);
            out.push((key.clone(), vec![v.get_value(v.off(self.node(n).slot, 0))]));
            let (p, d) = key.split_at(4);
            let p = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
            node = self.next_node(Some((p, d)));
            if out.len() > self.nodes.len() {
                break;
            }
        }
        out
    }
}
