//! Tests that play the driver: they build guest memory, write descriptor
//! tables and rings by hand, and talk to the devices through the MMIO
//! registers only.

use std::io::Write;
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::blk::*;
use super::console::VirtioConsole;
use super::mmio::{INT_CONFIG_CHANGE, INT_USED_BUFFER, VirtioDevice, VirtioMmio, status};
use super::rng::VirtioRng;
use crate::bus::BusDevice;
use crate::console::ConsoleInput;
use crate::irq::{IrqRouter, LineKind};

const RAM: usize = 1 << 20;
const LINE: u32 = 16;
const QUEUE_SIZE: u16 = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

fn desc_base(queue: u16) -> u64 {
    0x10000 * (u64::from(queue) + 1)
}

struct Driver<D: VirtioDevice> {
    mem: GuestMemoryMmap,
    router: Arc<IrqRouter>,
    dev: VirtioMmio<D>,
    /// Next available-ring slot per queue.
    avail: Vec<u16>,
}

impl<D: VirtioDevice> Driver<D> {
    fn new(device: D) -> Self {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let router = IrqRouter::new();
        let queues = device.queue_count();
        let dev = VirtioMmio::new(device, mem.clone(), router.line(LINE, LineKind::Level));
        Driver {
            mem,
            router,
            dev,
            avail: vec![0; queues],
        }
    }

    fn r32(&mut self, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        self.dev.read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    fn w32(&mut self, offset: u64, value: u32) {
        self.dev.write(offset, &value.to_le_bytes());
    }

    fn features(&mut self) -> u64 {
        self.w32(0x14, 0);
        let low = self.r32(0x10);
        self.w32(0x14, 1);
        u64::from(low) | (u64::from(self.r32(0x10)) << 32)
    }

    /// The status handshake up to FEATURES_OK with `features` accepted;
    /// returns whether the device kept FEATURES_OK.
    fn negotiate(&mut self, features: u64) -> bool {
        self.w32(0x70, 0);
        self.w32(0x70, status::ACKNOWLEDGE);
        self.w32(0x70, status::ACKNOWLEDGE | status::DRIVER);
        self.w32(0x24, 0);
        self.w32(0x20, features as u32);
        self.w32(0x24, 1);
        self.w32(0x20, (features >> 32) as u32);
        self.w32(
            0x70,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        self.r32(0x70) & status::FEATURES_OK != 0
    }

    /// The whole handshake: every queue at 16 entries, then DRIVER_OK.
    fn start(&mut self) {
        let offered = self.features();
        assert!(self.negotiate(offered));
        for q in 0..self.avail.len() as u16 {
            self.w32(0x30, u32::from(q));
            assert_eq!(self.r32(0x34), 256);
            assert_eq!(self.r32(0x44), 0);
            self.w32(0x38, u32::from(QUEUE_SIZE));
            let base = desc_base(q);
            self.w32(0x80, base as u32);
            self.w32(0x84, 0);
            self.w32(0x90, (base + 0x1000) as u32);
            self.w32(0x94, 0);
            self.w32(0xa0, (base + 0x2000) as u32);
            self.w32(0xa4, 0);
            self.w32(0x44, 1);
            assert_eq!(self.r32(0x44), 1);
        }
        self.w32(
            0x70,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
        );
        assert_eq!(self.r32(0x70) & status::DEVICE_NEEDS_RESET, 0);
    }

    fn write_desc(&self, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(table + 16 * u64::from(index));
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&next.to_le_bytes());
        self.mem.write_slice(&raw, at).unwrap();
    }

    /// Writes `chain` (addr, len, writable) into queue `q`'s table from
    /// `first` on, links it with NEXT, and makes it available.
    fn offer(&mut self, q: u16, first: u16, chain: &[(u64, u32, bool)]) {
        let table = desc_base(q);
        for (i, &(addr, len, writable)) in chain.iter().enumerate() {
            let index = first + i as u16;
            let more = i + 1 < chain.len();
            let flags = if more { F_NEXT } else { 0 } | if writable { F_WRITE } else { 0 };
            self.write_desc(table, index, addr, len, flags, index + 1);
        }
        self.publish(q, first);
    }

    /// Puts head `head` on queue `q`'s available ring and notifies.
    fn publish(&mut self, q: u16, head: u16) {
        let avail = desc_base(q) + 0x1000;
        let slot = self.avail[q as usize];
        self.mem
            .write_obj(
                head,
                GuestAddress(avail + 4 + 2 * u64::from(slot % QUEUE_SIZE)),
            )
            .unwrap();
        self.avail[q as usize] = slot.wrapping_add(1);
        self.mem
            .write_obj(self.avail[q as usize], GuestAddress(avail + 2))
            .unwrap();
        self.w32(0x50, u32::from(q));
    }

    fn used_idx(&self, q: u16) -> u16 {
        self.mem
            .read_obj(GuestAddress(desc_base(q) + 0x2002))
            .unwrap()
    }

    fn used_elem(&self, q: u16, slot: u16) -> (u32, u32) {
        let at = desc_base(q) + 0x2004 + 8 * u64::from(slot);
        (
            self.mem.read_obj(GuestAddress(at)).unwrap(),
            self.mem.read_obj(GuestAddress(at + 4)).unwrap(),
        )
    }

    fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    fn needs_reset(&mut self) -> bool {
        self.r32(0x70) & status::DEVICE_NEEDS_RESET != 0
    }
}

#[test]
fn identification_registers() {
    let mut d = Driver::new(VirtioRng::new());
    assert_eq!(d.r32(0x000), 0x7472_6976);
    assert_eq!(d.r32(0x004), 2);
    assert_eq!(d.r32(0x008), 4);
    assert_eq!(d.r32(0x00c), 0x554d_4551);
    let features = d.features();
    assert_ne!(features & (1 << 32), 0, "VERSION_1");
    assert_ne!(features & (1 << 28), 0, "INDIRECT_DESC");
}

#[test]
fn features_ok_needs_version_1_and_only_offered_features() {
    let mut d = Driver::new(VirtioRng::new());
    assert!(!d.negotiate(0), "a legacy driver is refused");
    assert!(!d.negotiate((1 << 32) | (1 << 40)), "unoffered feature");
    assert!(d.negotiate(1 << 32));
    // DRIVER_OK without FEATURES_OK does not start the device.
    d.w32(0x70, 0);
    d.w32(
        0x70,
        status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK,
    );
    assert_eq!(d.r32(0x70) & status::DRIVER_OK, 0);
}

#[test]
fn rng_fills_a_buffer_and_interrupts() {
    let mut d = Driver::new(VirtioRng::new());
    d.start();
    d.offer(0, 0, &[(0x80000, 64, true)]);
    assert_eq!(d.used_idx(0), 1);
    assert_eq!(d.used_elem(0, 0), (0, 64));
    assert!(d.bytes(0x80000, 64).iter().any(|&b| b != 0));
    assert_eq!(d.r32(0x60), INT_USED_BUFFER);
    assert!(d.router.level(LINE));
    d.w32(0x64, INT_USED_BUFFER);
    assert_eq!(d.r32(0x60), 0);
    assert!(!d.router.level(LINE));
    // A chain of two buffers is filled across both.
    d.offer(0, 1, &[(0x81000, 8, true), (0x82000, 8, true)]);
    assert_eq!(d.used_elem(0, 1), (1, 16));
    assert!(d.router.level(LINE));
}

#[test]
fn reset_clears_the_device_and_lowers_the_line() {
    let mut d = Driver::new(VirtioRng::new());
    d.start();
    d.offer(0, 0, &[(0x80000, 4, true)]);
    assert!(d.router.level(LINE));
    d.w32(0x70, 0);
    assert_eq!(d.r32(0x70), 0);
    assert_eq!(d.r32(0x60), 0);
    assert!(!d.router.level(LINE));
    d.w32(0x30, 0);
    assert_eq!(d.r32(0x44), 0);
    // Notifying a reset device does nothing.
    d.w32(0x50, 0);
    assert_eq!(d.used_idx(0), 1);
    // And it starts again.
    d.avail = vec![0];
    d.mem
        .write_obj(0u16, GuestAddress(desc_base(0) + 0x2002))
        .unwrap();
    d.start();
    d.offer(0, 0, &[(0x80000, 4, true)]);
    assert_eq!(d.used_idx(0), 1);
}

#[test]
fn queue_ready_refuses_an_invalid_size() {
    let mut d = Driver::new(VirtioRng::new());
    d.w32(0x30, 0);
    for bad in [0, 3, 512] {
        d.w32(0x38, bad);
        d.w32(0x44, 1);
        assert_eq!(d.r32(0x44), 0, "size {bad}");
    }
    // A queue selector past the last queue reads 0 and takes nothing.
    d.w32(0x30, 7);
    assert_eq!(d.r32(0x34), 0);
    d.w32(0x44, 1);
    assert_eq!(d.r32(0x44), 0);
}

#[test]
fn rings_outside_ram_fail_activation() {
    let mut d = Driver::new(VirtioRng::new());
    let offered = d.features();
    assert!(d.negotiate(offered));
    d.w32(0x30, 0);
    d.w32(0x38, 16);
    d.w32(0x80, 0);
    d.w32(0x84, 0x10); // far beyond RAM
    d.w32(0x44, 1);
    d.w32(0x70, 0xf);
    assert!(d.needs_reset());
    assert_eq!(d.r32(0x60), INT_CONFIG_CHANGE);
    d.w32(0x50, 0); // ignored, no panic
}

fn malformed(setup: impl FnOnce(&mut Driver<VirtioRng>)) {
    let mut d = Driver::new(VirtioRng::new());
    d.start();
    setup(&mut d);
    assert!(d.needs_reset());
    assert_ne!(d.r32(0x60) & INT_CONFIG_CHANGE, 0);
    assert!(d.router.level(LINE));
    // Further notifications are ignored until a reset.
    d.publish(0, 0);
    assert_eq!(d.used_idx(0), 0);
    d.w32(0x70, 0);
    assert!(!d.needs_reset());
}

#[test]
fn a_buffer_outside_ram_needs_reset() {
    malformed(|d| d.offer(0, 0, &[(0xffff_0000, 16, true)]));
}

#[test]
fn a_buffer_straddling_the_end_of_ram_needs_reset() {
    malformed(|d| d.offer(0, 0, &[(RAM as u64 - 8, 16, true)]));
}

#[test]
fn a_length_overflowing_the_address_space_needs_reset() {
    malformed(|d| d.offer(0, 0, &[(u64::MAX - 10, u32::MAX, true)]));
}

#[test]
fn a_descriptor_cycle_needs_reset() {
    malformed(|d| {
        let table = desc_base(0);
        d.write_desc(table, 0, 0x80000, 4, F_NEXT | F_WRITE, 1);
        d.write_desc(table, 1, 0x80010, 4, F_NEXT | F_WRITE, 0);
        d.publish(0, 0);
    });
}

#[test]
fn a_next_index_outside_the_table_needs_reset() {
    malformed(|d| {
        d.write_desc(desc_base(0), 0, 0x80000, 4, F_NEXT | F_WRITE, QUEUE_SIZE);
        d.publish(0, 0);
    });
}

#[test]
fn a_head_outside_the_table_needs_reset() {
    malformed(|d| d.publish(0, 300));
}

#[test]
fn an_available_index_running_ahead_needs_reset() {
    malformed(|d| {
        d.mem
            .write_obj(QUEUE_SIZE + 1, GuestAddress(desc_base(0) + 0x1002))
            .unwrap();
        d.w32(0x50, 0);
    });
}

#[test]
fn an_indirect_cycle_and_nesting_need_reset() {
    malformed(|d| {
        let indirect = 0x90000;
        d.write_desc(indirect, 0, 0x80000, 4, F_NEXT | F_WRITE, 1);
        d.write_desc(indirect, 1, 0x80000, 4, F_NEXT | F_WRITE, 0);
        d.write_desc(desc_base(0), 0, indirect, 32, F_INDIRECT, 0);
        d.publish(0, 0);
    });
    malformed(|d| {
        let indirect = 0x90000;
        d.write_desc(indirect, 0, indirect, 16, F_INDIRECT, 0);
        d.write_desc(desc_base(0), 0, indirect, 16, F_INDIRECT, 0);
        d.publish(0, 0);
    });
    malformed(|d| {
        // A table length that is not a whole number of descriptors.
        d.write_desc(desc_base(0), 0, 0x90000, 20, F_INDIRECT, 0);
        d.publish(0, 0);
    });
}

#[test]
fn a_readable_buffer_after_a_writable_one_needs_reset() {
    malformed(|d| d.offer(0, 0, &[(0x80000, 4, true), (0x81000, 4, false)]));
}

// ---- virtio-blk ----

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> (TempFile, std::fs::File) {
        let path = std::env::temp_dir().join(format!("moat-virtio-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (TempFile(path), file)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const HDR: u64 = 0x70000;
const DATA: u64 = 0x80000;
const STATUS: u64 = 0x7f000;

fn header(d: &Driver<VirtioBlock>, at: u64, kind: u32, sector: u64) {
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&kind.to_le_bytes());
    raw[8..].copy_from_slice(&sector.to_le_bytes());
    d.mem.write_slice(&raw, GuestAddress(at)).unwrap();
}

fn status_byte(d: &Driver<VirtioBlock>) -> u8 {
    d.bytes(STATUS, 1)[0]
}

fn disk(name: &str, read_only: bool) -> (TempFile, Driver<VirtioBlock>) {
    let (tmp, file) = TempFile::new(name, &[0u8; 8 * 512 + 100]);
    let blk = VirtioBlock::new(
        std::sync::Arc::new(file),
        read_only,
        "moat-disk-serial-number-too-long",
    )
    .unwrap();
    assert_eq!(blk.capacity(), 8);
    let mut d = Driver::new(blk);
    d.start();
    (tmp, d)
}

#[test]
fn blk_capacity_is_in_the_config_space() {
    let (_tmp, mut d) = disk("config", false);
    assert_eq!(d.r32(0x100), 8);
    assert_eq!(d.r32(0x104), 0);
    let mut byte = [0xffu8];
    d.dev.read(0x100, &mut byte);
    assert_eq!(byte, [8]);
    // Past the configuration: zeros.
    assert_eq!(d.r32(0x1fc), 0);
    assert_eq!(d.features() & VIRTIO_BLK_F_RO, 0);
    assert_ne!(d.features() & VIRTIO_BLK_F_FLUSH, 0);
}

#[test]
fn blk_writes_then_reads_back_sectors() {
    let (tmp, mut d) = disk("rw", false);
    let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    d.mem.write_slice(&pattern, GuestAddress(DATA)).unwrap();
    header(&d, HDR, VIRTIO_BLK_T_OUT, 2);
    // The data split across two descriptors, the status on its own.
    d.offer(
        0,
        0,
        &[
            (HDR, 16, false),
            (DATA, 100, false),
            (DATA + 100, 924, false),
            (STATUS, 1, true),
        ],
    );
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_OK);
    assert_eq!(d.used_elem(0, 0), (0, 1));
    let on_disk = std::fs::read(&tmp.0).unwrap();
    assert_eq!(&on_disk[1024..2048], &pattern[..]);

    header(&d, HDR, VIRTIO_BLK_T_IN, 2);
    d.offer(
        0,
        4,
        &[(HDR, 16, false), (0x90000, 1024, true), (STATUS, 1, true)],
    );
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_OK);
    assert_eq!(d.used_elem(0, 1), (4, 1025));
    assert_eq!(d.bytes(0x90000, 1024), pattern);

    header(&d, HDR, VIRTIO_BLK_T_FLUSH, 0);
    d.offer(0, 8, &[(HDR, 16, false), (STATUS, 1, true)]);
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_OK);
    assert_eq!(d.used_idx(0), 3);
}

#[test]
fn blk_reads_through_an_indirect_table() {
    let (_tmp, mut d) = disk("indirect", false);
    header(&d, HDR, VIRTIO_BLK_T_IN, 0);
    let table = 0x60000;
    d.write_desc(table, 0, HDR, 16, F_NEXT, 1);
    d.write_desc(table, 1, DATA, 512, F_NEXT | F_WRITE, 2);
    d.write_desc(table, 2, STATUS, 1, F_WRITE, 0);
    d.write_desc(desc_base(0), 0, table, 48, F_INDIRECT, 0);
    d.mem.write_slice(&[0xaa; 512], GuestAddress(DATA)).unwrap();
    d.publish(0, 0);
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_OK);
    assert_eq!(d.used_elem(0, 0), (0, 513));
    assert_eq!(d.bytes(DATA, 512), vec![0u8; 512]);
}

#[test]
fn blk_read_only_refuses_writes() {
    let (tmp, mut d) = disk("ro", true);
    assert_ne!(d.features() & VIRTIO_BLK_F_RO, 0);
    d.mem.write_slice(&[0x55; 512], GuestAddress(DATA)).unwrap();
    header(&d, HDR, VIRTIO_BLK_T_OUT, 0);
    d.offer(
        0,
        0,
        &[(HDR, 16, false), (DATA, 512, false), (STATUS, 1, true)],
    );
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_IOERR);
    assert!(std::fs::read(&tmp.0).unwrap().iter().all(|&b| b == 0));
    assert!(!d.needs_reset());
}

#[test]
fn blk_requests_past_the_end_fail() {
    let (_tmp, mut d) = disk("range", false);
    let mut head = 0;
    for (kind, sector, len) in [
        (VIRTIO_BLK_T_IN, 8, 512),
        (VIRTIO_BLK_T_IN, 7, 1024),
        (VIRTIO_BLK_T_IN, u64::MAX, 512),
        (VIRTIO_BLK_T_OUT, u64::MAX / 512 + 1, 512),
        (VIRTIO_BLK_T_IN, 0, 100), // not a whole sector
    ] {
        header(&d, HDR, kind, sector);
        let writable = kind == VIRTIO_BLK_T_IN;
        d.mem.write_slice(&[0xee], GuestAddress(STATUS)).unwrap();
        d.offer(
            0,
            head,
            &[(HDR, 16, false), (DATA, len, writable), (STATUS, 1, true)],
        );
        assert_eq!(status_byte(&d), VIRTIO_BLK_S_IOERR, "{kind} {sector} {len}");
        assert_eq!(d.used_elem(0, head / 3).1, 1);
        head += 3;
    }
    // The last sector is fine (descriptors reused: the table has 16).
    header(&d, HDR, VIRTIO_BLK_T_IN, 7);
    d.offer(
        0,
        0,
        &[(HDR, 16, false), (DATA, 512, true), (STATUS, 1, true)],
    );
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_OK);
}

#[test]
fn blk_get_id_and_unsupported_types() {
    let (_tmp, mut d) = disk("id", false);
    header(&d, HDR, VIRTIO_BLK_T_GET_ID, 0);
    d.offer(
        0,
        0,
        &[(HDR, 16, false), (DATA, 20, true), (STATUS, 1, true)],
    );
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_OK);
    assert_eq!(d.bytes(DATA, 20), b"moat-disk-serial-num");
    assert_eq!(d.used_elem(0, 0), (0, 21));
    header(&d, HDR, 0x1234, 0);
    d.offer(0, 3, &[(HDR, 16, false), (STATUS, 1, true)]);
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_UNSUPP);
    // A request too short for its header: IOERR, not a reset.
    d.offer(0, 6, &[(HDR, 8, false), (STATUS, 1, true)]);
    assert_eq!(status_byte(&d), VIRTIO_BLK_S_IOERR);
    assert!(!d.needs_reset());
}

// ---- virtio-console ----

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn console_transmits_and_receives() {
    let sink = Sink::default();
    let mut d = Driver::new(VirtioConsole::new(sink.clone()));
    // Input before the driver runs is not taken.
    assert_eq!(d.dev.enqueue_input(b"early"), 0);
    d.start();
    d.mem
        .write_slice(b"hello, ", GuestAddress(0x80000))
        .unwrap();
    d.mem.write_slice(b"world", GuestAddress(0x81000)).unwrap();
    d.offer(1, 0, &[(0x80000, 7, false), (0x81000, 5, false)]);
    assert_eq!(&*sink.0.lock().unwrap(), b"hello, world");
    assert_eq!(d.used_elem(1, 0), (0, 0));
    assert_eq!(d.r32(0x60), INT_USED_BUFFER);
    d.w32(0x64, INT_USED_BUFFER);

    // No receive buffer yet: nothing taken.
    assert_eq!(d.dev.enqueue_input(b"abc"), 0);
    d.offer(0, 0, &[(0x90000, 2, true)]);
    d.offer(0, 1, &[(0x91000, 8, true)]);
    assert_eq!(d.dev.enqueue_input(b"abcdefghijkl"), 10);
    assert_eq!(d.used_elem(0, 0), (0, 2));
    assert_eq!(d.used_elem(0, 1), (1, 8));
    assert_eq!(d.bytes(0x90000, 2), b"ab");
    assert_eq!(d.bytes(0x91000, 8), b"cdefghij");
    assert!(d.router.level(LINE));
    assert_eq!(d.r32(0x100), 0);
}

// ---- hostile register traffic ----

fn hammer<D: VirtioDevice>(mut d: Driver<D>) {
    for offset in 0..0x200u64 {
        for width in [1usize, 2, 4, 8] {
            if offset + width as u64 > 0x200 {
                continue;
            }
            for byte in 0..=255u8 {
                let data = vec![byte; width];
                d.dev.write(offset, &data);
                let mut out = vec![0u8; width];
                d.dev.read(offset, &mut out);
            }
        }
    }
    // Whatever state that left, a reset brings the device back.
    d.w32(0x70, 0);
    assert_eq!(d.r32(0x70), 0);
    assert_eq!(d.r32(0x60), 0);
    assert!(!d.router.level(LINE));
}

#[test]
fn every_register_width_and_byte_value_is_harmless() {
    hammer(Driver::new(VirtioRng::new()));
    hammer(Driver::new(VirtioConsole::new(Sink::default())));
    let (_tmp, file) = TempFile::new("hammer", &[0u8; 4096]);
    hammer(Driver::new(
        VirtioBlock::new(std::sync::Arc::new(file), false, "x").unwrap(),
    ));
}

#[test]
fn hammering_a_running_device_is_harmless() {
    let mut d = Driver::new(VirtioRng::new());
    d.start();
    // Garbage rings: the avail index and table full of one byte value.
    for byte in [0u8, 1, 0x7f, 0xff] {
        d.mem
            .write_slice(&[byte; 0x3000], GuestAddress(desc_base(0)))
            .unwrap();
        d.w32(0x50, 0);
    }
    hammer(d);
}
