//! The translation-block cache: blocks keyed by where their code is and the
//! CPU mode they were translated for, the physical pages each came from (to
//! invalidate them when the guest writes there), and the chained jumps into
//! each (to unlink them when it goes).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher (the one rustc uses) for the exec loop's maps:
/// much faster than SipHash on small integer keys, and it needs no random seed,
/// so no `getrandom` call after the sandbox is on. A guest that picks colliding
/// pcs only slows its own emulation.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// What a translation depends on: its virtual pc (x86 code embeds pc-relative
/// addresses as constants), the physical address of that pc (two mappings of
/// one virtual page may hold different code), and the front end's mode flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TbKey {
    pub pc: u64,
    pub phys_pc: u64,
    pub flags: u64,
}

/// Index of a block in the cache's arena.
pub type TbId = usize;

/// One translated block.
#[derive(Debug)]
pub struct Tb<C, S> {
    pub key: TbKey,
    /// The engine's code for it (compiled host code, or IR for the interpreter).
    pub code: C,
    /// Physical pages its guest code came from.
    pub pages: Vec<u64>,
    /// Chained jumps from other blocks into this one, as the engine's jump
    /// sites, so they can be unlinked when this block is invalidated.
    pub incoming: Vec<S>,
    /// Whether it may still run.
    pub valid: bool,
}

/// All translated blocks of one vCPU.
#[derive(Debug)]
pub struct TbCache<C, S> {
    blocks: Vec<Tb<C, S>>,
    by_key: FastMap<TbKey, TbId>,
    by_page: FastMap<u64, Vec<TbId>>,
}

impl<C, S> Default for TbCache<C, S> {
    fn default() -> Self {
        TbCache {
            blocks: Vec::new(),
            by_key: FastMap::default(),
            by_page: FastMap::default(),
        }
    }
}

impl<C, S> TbCache<C, S> {
    pub fn lookup(&self, key: &TbKey) -> Option<TbId> {
        self.by_key.get(key).copied()
    }

    pub fn get(&self, id: TbId) -> Option<&Tb<C, S>> {
        self.blocks.get(id)
    }

    pub fn get_mut(&mut self, id: TbId) -> Option<&mut Tb<C, S>> {
        self.blocks.get_mut(id)
    }

    /// Adds a block; returns its id and which of its pages held no code before.
    pub fn insert(&mut self, key: TbKey, code: C, pages: Vec<u64>) -> TbId {
        let id = self.blocks.len();
        for &page in &pages {
            self.by_page.entry(page).or_default().push(id);
        }
        self.blocks.push(Tb {
            key,
            code,
            pages,
            incoming: Vec::new(),
            valid: true,
        });
        self.by_key.insert(key, id);
        id
    }

    /// Invalidates every block whose code came from `page`. Returns them, so
    /// the caller can unlink jumps into them.
    pub fn invalidate_page(&mut self, page: u64) -> Vec<TbId> {
        let ids = self.by_page.remove(&page).unwrap_or_default();
        for &id in &ids {
            if let Some(tb) = self.blocks.get_mut(id)
                && tb.valid
            {
                tb.valid = false;
                if self.by_key.get(&tb.key) == Some(&id) {
                    self.by_key.remove(&tb.key);
                }
            }
        }
        ids
    }

    /// Forgets everything (the code cache was flushed).
    pub fn clear(&mut self) {
        self.blocks.clear();
        self.by_key.clear();
        self.by_page.clear();
    }

    /// Number of blocks that may still run.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pc: u64) -> TbKey {
        TbKey {
            pc,
            phys_pc: pc,
            flags: 0,
        }
    }

    #[test]
    fn invalidation_removes_only_blocks_on_the_page() {
        let mut cache: TbCache<(), ()> = TbCache::default();
        let a = cache.insert(key(0x1000), (), vec![0x1000]);
        let b = cache.insert(key(0x1ff0), (), vec![0x1000, 0x2000]);
        let c = cache.insert(key(0x3000), (), vec![0x3000]);
        assert_eq!(cache.invalidate_page(0x2000), vec![b]);
        assert_eq!(cache.lookup(&key(0x1ff0)), None);
        assert_eq!(cache.lookup(&key(0x1000)), Some(a));
        assert_eq!(cache.lookup(&key(0x3000)), Some(c));
        assert!(!cache.get(b).unwrap().valid);
        // Retranslating at the same key gives a new block.
        let b2 = cache.insert(key(0x1ff0), (), vec![0x1000, 0x2000]);
        assert_ne!(b, b2);
        assert_eq!(cache.len(), 3);
    }
}
