//! Which vCPUs hold translated code on which guest physical pages, VM-wide,
//! so that a store by one vCPU into code another has translated reaches the
//! other (see the protocol in the [`super`] module doc).
//!
//! Three things live here, one set per VM:
//!
//! - the page registry: for each guest physical page, a bit mask of the vCPUs
//!   with translations there. It is sharded by page so vCPUs touching
//!   different pages do not contend; a slow-path store to a registered page
//!   holds its shard's lock while it posts and writes, which orders it against
//!   a translator registering the page (the translator re-reads its bytes
//!   after registering);
//! - one inbox per vCPU: the byte ranges other vCPUs wrote on pages where it
//!   had code, which it checks against its own byte map before its next block;
//! - the TLB shootdown state: a VM-wide generation, bumped whenever a page
//!   becomes code for the first vCPU, and per vCPU the last generation it
//!   acknowledged (by flushing its TLB) and whether it is running at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};

use devices::VmLifecycle;

use super::cache::FastMap;
use crate::softmmu::PAGE_MASK;

/// Most vCPUs a VM's registry tracks (one bit each in a page's mask).
pub const MAX_VCPUS: u32 = 64;

/// log2 of the number of registry shards.
const SHARD_BITS: u32 = 6;

/// Posted writes a vCPU's inbox holds before it gives up on detail and
/// asks its owner to drop every translation instead.
const INBOX_LIMIT: usize = 4096;

/// The VM-wide code-page registry, inboxes and shootdown state.
#[derive(Debug)]
pub struct SharedCodePages {
    shards: Box<[Mutex<FastMap<u64, u64>>]>,
    generation: AtomicU64,
    slots: Box<[Slot]>,
    lifecycle: Arc<VmLifecycle>,
}

/// One vCPU's part of the shared state.
#[derive(Debug, Default)]
struct Slot {
    /// Running guest code (inside `run_guest`, not asleep): shootdowns wait
    /// only for active vCPUs, which flush their TLB when they become active.
    active: AtomicBool,
    /// The last shootdown generation this vCPU has flushed its TLB for.
    acked: AtomicU64,
    inbox: Mutex<Inbox>,
}

/// Writes other vCPUs made to pages where this one had code.
#[derive(Debug, Default)]
struct Inbox {
    writes: Vec<(u64, u64)>,
    /// More writes came than the inbox holds: drop every translation.
    overflow: bool,
}

/// What a vCPU's inbox held.
#[derive(Debug, Default)]
pub(crate) struct Posted {
    /// Guest physical `(address, length)` of each write.
    pub writes: Vec<(u64, u64)>,
    /// Some writes were lost: every translation must go.
    pub overflow: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here leaves the protected data half-updated on a panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bit(cpu: u32) -> u64 {
    if cpu < MAX_VCPUS { 1 << cpu } else { 0 }
}

impl SharedCodePages {
    /// The shared state of a VM whose vCPUs are `lifecycle`'s (at most
    /// [`MAX_VCPUS`]; vCPUs beyond are not tracked, which `TcgVm` refuses).
    pub fn new(lifecycle: Arc<VmLifecycle>) -> Arc<SharedCodePages> {
        let count = lifecycle.vcpu_count().min(MAX_VCPUS);
        Arc::new(SharedCodePages {
            shards: (0..1 << SHARD_BITS)
                .map(|_| Mutex::new(FastMap::default()))
                .collect(),
            generation: AtomicU64::new(0),
            slots: (0..count).map(|_| Slot::default()).collect(),
            lifecycle,
        })
    }

    /// How many vCPUs are tracked.
    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    fn shard(&self, page: u64) -> &Mutex<FastMap<u64, u64>> {
        let index = (page >> crate::softmmu::PAGE_BITS) as usize & ((1 << SHARD_BITS) - 1);
        &self.shards[index]
    }

    fn slot(&self, cpu: u32) -> Option<&Slot> {
        self.slots.get(cpu as usize)
    }

    /// Whether any vCPU has translated code on `page`.
    pub(crate) fn is_code(&self, page: u64) -> bool {
        let page = page & PAGE_MASK;
        lock(self.shard(page)).contains_key(&page)
    }

    /// Records that `cpu` has code on `page`. Returns true if no vCPU had
    /// before, so TLB entries allowing writes to it may exist anywhere.
    /// Always takes the page's lock, so a store into the page that another
    /// vCPU is making right now has finished when this returns.
    pub(crate) fn register(&self, page: u64, cpu: u32) -> bool {
        let page = page & PAGE_MASK;
        let mut map = lock(self.shard(page));
        let mask = map.entry(page).or_insert(0);
        let first = *mask == 0;
        *mask |= bit(cpu);
        first
    }

    /// `cpu` dropped its code on `page`.
    pub(crate) fn unregister(&self, page: u64, cpu: u32) {
        let page = page & PAGE_MASK;
        let mut map = lock(self.shard(page));
        if let Some(mask) = map.get_mut(&page) {
            *mask &= !bit(cpu);
            if *mask == 0 {
                map.remove(&page);
            }
        }
    }

    /// `cpu` dropped all its code.
    pub(crate) fn unregister_all(&self, cpu: u32) {
        for shard in &self.shards {
            let mut map = lock(shard);
            map.retain(|_, mask| {
                *mask &= !bit(cpu);
                *mask != 0
            });
        }
    }

    /// Performs `store`, a store by `cpu` of `len` bytes at guest physical
    /// `paddr` (within one page), after posting it to every other vCPU with
    /// code on the page and kicking them. The page's lock is held
    /// throughout, so a vCPU registering the page either is told or sees
    /// the new bytes when it re-reads them.
    pub(crate) fn store<R>(&self, paddr: u64, len: u64, cpu: u32, store: impl FnOnce() -> R) -> R {
        let page = paddr & PAGE_MASK;
        let map = lock(self.shard(page));
        let others = map.get(&page).copied().unwrap_or(0) & !bit(cpu);
        if others != 0 {
            self.post(others, paddr, len);
        }
        let result = store();
        drop(map);
        result
    }

    fn post(&self, mut cpus: u64, paddr: u64, len: u64) {
        while cpus != 0 {
            let cpu = cpus.trailing_zeros();
            cpus &= cpus - 1;
            let Some(slot) = self.slot(cpu) else { continue };
            {
                let mut inbox = lock(&slot.inbox);
                if inbox.writes.len() < INBOX_LIMIT {
                    inbox.writes.push((paddr, len));
                } else {
                    inbox.overflow = true;
                }
            }
            // After the post: the kick's exit request makes the vCPU look at
            // its inbox before its next block.
            self.lifecycle.vcpu(cpu).kick();
        }
    }

    /// Takes what other vCPUs posted to `cpu`, into `into` (cleared first).
    pub(crate) fn take_posted(&self, cpu: u32, into: &mut Posted) {
        into.writes.clear();
        into.overflow = false;
        let Some(slot) = self.slot(cpu) else { return };
        let mut inbox = lock(&slot.inbox);
        std::mem::swap(&mut inbox.writes, &mut into.writes);
        into.overflow = std::mem::take(&mut inbox.overflow);
    }

    /// `cpu` starts running guest code. The caller must then flush its TLB
    /// and call [`SharedCodePages::ack`] with [`SharedCodePages::generation`].
    pub(crate) fn activate(&self, cpu: u32) {
        if let Some(slot) = self.slot(cpu) {
            slot.active.store(true, Ordering::SeqCst);
        }
        // Pairs with the fence in `shootdown_begin` (Dekker): either the
        // shooter sees this vCPU active and waits for it, or this vCPU's
        // later TLB fills see the shooter's registration.
        fence(Ordering::SeqCst);
    }

    /// `cpu` stops running guest code (its run ended, or it sleeps).
    pub(crate) fn deactivate(&self, cpu: u32) {
        if let Some(slot) = self.slot(cpu) {
            slot.active.store(false, Ordering::Release);
        }
    }

    /// The current shootdown generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The generation `cpu` must flush its TLB for, if it has not yet.
    pub(crate) fn pending_shootdown(&self, cpu: u32) -> Option<u64> {
        let slot = self.slot(cpu)?;
        let generation = self.generation();
        (generation > slot.acked.load(Ordering::Relaxed)).then_some(generation)
    }

    /// `cpu` flushed its TLB after seeing `generation`.
    pub(crate) fn ack(&self, cpu: u32, generation: u64) {
        if let Some(slot) = self.slot(cpu) {
            // Release: the vCPU's stores through its old TLB entries happen
            // before the shooter's re-read of the code bytes.
            slot.acked.fetch_max(generation, Ordering::Release);
        }
    }

    /// Starts a shootdown by `cpu`: a new generation, and a kick to every
    /// other active vCPU. Returns the generation to wait for.
    pub(crate) fn shootdown_begin(&self, cpu: u32) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        fence(Ordering::SeqCst);
        for (index, slot) in self.slots.iter().enumerate() {
            if index as u32 != cpu && slot.active.load(Ordering::SeqCst) {
                self.lifecycle.vcpu(index as u32).kick();
            }
        }
        generation
    }

    /// The other vCPUs that are running and have not acknowledged
    /// `generation` yet.
    fn late(&self, cpu: u32, generation: u64) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(move |&(index, slot)| {
                index as u32 != cpu
                    && slot.active.load(Ordering::SeqCst)
                    && slot.acked.load(Ordering::Acquire) < generation
            })
            .map(|(index, _)| index as u32)
    }

    /// Whether every other vCPU has acknowledged `generation` or is not
    /// running.
    pub(crate) fn shootdown_done(&self, cpu: u32, generation: u64) -> bool {
        self.late(cpu, generation).next().is_none()
    }

    /// The vCPUs a shootdown still waits for (for a warning).
    pub(crate) fn shootdown_late(&self, cpu: u32, generation: u64) -> Vec<u32> {
        self.late(cpu, generation).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(cpus: u32) -> Arc<SharedCodePages> {
        SharedCodePages::new(Arc::new(VmLifecycle::with_vcpus(cpus)))
    }

    #[test]
    fn registration_tracks_each_vcpu() {
        let s = shared(2);
        assert!(s.register(0x5123, 0));
        assert!(!s.register(0x5000, 1));
        assert!(s.is_code(0x5fff));
        s.unregister(0x5000, 0);
        assert!(s.is_code(0x5000));
        s.unregister_all(1);
        assert!(!s.is_code(0x5000));
    }

    #[test]
    fn stores_are_posted_to_the_other_vcpus_only() {
        let s = shared(3);
        s.register(0x7000, 0);
        s.register(0x7000, 2);
        assert_eq!(s.store(0x7010, 4, 0, || 42), 42);
        let mut posted = Posted::default();
        s.take_posted(0, &mut posted);
        assert!(posted.writes.is_empty());
        s.take_posted(1, &mut posted);
        assert!(posted.writes.is_empty());
        s.take_posted(2, &mut posted);
        assert_eq!(posted.writes, vec![(0x7010, 4)]);
        assert!(!posted.overflow);
        // A kick was left for vCPU 2.
        assert!(s.lifecycle.vcpu(2).wait(Some(std::time::Duration::ZERO)));
    }

    #[test]
    fn a_full_inbox_overflows() {
        let s = shared(2);
        s.register(0x7000, 1);
        for _ in 0..=INBOX_LIMIT {
            s.store(0x7000, 1, 0, || ());
        }
        let mut posted = Posted::default();
        s.take_posted(1, &mut posted);
        assert!(posted.overflow);
        assert_eq!(posted.writes.len(), INBOX_LIMIT);
    }

    #[test]
    fn shootdowns_wait_for_active_vcpus_only() {
        let s = shared(3);
        let generation = s.shootdown_begin(0);
        assert!(s.shootdown_done(0, generation));
        s.activate(1);
        let generation = s.shootdown_begin(0);
        assert!(!s.shootdown_done(0, generation));
        assert_eq!(s.shootdown_late(0, generation), vec![1]);
        assert_eq!(s.pending_shootdown(1), Some(generation));
        s.ack(1, generation);
        assert_eq!(s.pending_shootdown(1), None);
        assert!(s.shootdown_done(0, generation));
        s.deactivate(1);
    }
}
