use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// VM time that moves only when a test says so, and the deadline last armed.
#[derive(Default)]
struct FakeTime {
    now: AtomicU64,
    armed: Mutex<Option<u64>>,
}

impl FakeTime {
    fn set(&self, ns: u64) {
        self.now.store(ns, Ordering::SeqCst);
    }
    fn armed(&self) -> Option<u64> {
        *self.armed.lock().unwrap()
    }
}

struct FakeTimer(Arc<FakeTime>);

impl TimerSource for FakeTimer {
    fn now_ns(&self) -> u64 {
        self.0.now.load(Ordering::SeqCst)
    }
    fn arm(&self, deadline_ns: Option<u64>) {
        *self.0.armed.lock().unwrap() = deadline_ns;
    }
}

fn apic(id: u8) -> (LocalApic, Arc<FakeTime>) {
    let time = Arc::new(FakeTime::default());
    let apic = LocalApic::new(id, id == 0, Box::new(FakeTimer(time.clone())));
    (apic, time)
}

fn rd(apic: &LocalApic, offset: u64) -> u32 {
    let mut data = [0xaa; 4];
    apic.read(offset, &mut data);
    u32::from_le_bytes(data)
}

fn wr(apic: &mut LocalApic, offset: u64, value: u32) -> Option<ApicEvent> {
    apic.write(offset, &value.to_le_bytes())
}

fn enabled_apic(id: u8) -> (LocalApic, Arc<FakeTime>) {
    let (mut apic, time) = apic(id);
    wr(&mut apic, 0xf0, 0x1ff);
    (apic, time)
}

#[test]
fn reset_values() {
    let (bsp, _) = apic(0);
    let (ap, _) = apic(3);
    assert_eq!(rd(&bsp, 0x20), 0);
    assert_eq!(rd(&ap, 0x20), 0x0300_0000);
    for apic in [&bsp, &ap] {
        assert_eq!(rd(apic, 0x30), 0x0005_0014);
        for offset in [0x80, 0x90, 0xa0, 0xb0, 0xd0, 0x280, 0x300, 0x310] {
            assert_eq!(rd(apic, offset), 0, "register {offset:#x}");
        }
        assert_eq!(rd(apic, 0xe0), 0xffff_ffff);
        assert_eq!(rd(apic, 0xf0), 0xff);
        for offset in (0x100..0x280).step_by(0x10) {
            assert_eq!(rd(apic, offset), 0, "register {offset:#x}");
        }
        for offset in [0x320, 0x330, 0x340, 0x360, 0x370] {
            assert_eq!(rd(apic, offset), 0x1_0000, "LVT {offset:#x}");
        }
        for offset in [0x380, 0x390, 0x3e0] {
            assert_eq!(rd(apic, offset), 0, "timer {offset:#x}");
        }
        assert!(!apic.is_enabled());
    }
    // The BSP's LINT0 is in ExtINT mode, so the PIC reaches it; an AP's is masked.
    assert_eq!(rd(&bsp, 0x350), 0x700);
    assert_eq!(rd(&ap, 0x350), 0x1_0000);
    assert!(bsp.lint0_accepts_extint());
    assert!(!ap.lint0_accepts_extint());
    assert_eq!(bsp.base_msr(), 0xfee0_0900);
    assert_eq!(ap.base_msr(), 0xfee0_0800);
    assert_eq!(bsp.run_state(), RunState::Running);
    assert_eq!(ap.run_state(), RunState::WaitForSipi);
}

#[test]
fn read_only_and_unknown_registers() {
    let (mut apic, _) = apic(2);
    for offset in [0x20, 0x30, 0x90, 0xa0, 0x100, 0x180, 0x200, 0x390] {
        assert_eq!(wr(&mut apic, offset, 0xffff_ffff), None);
    }
    assert_eq!(rd(&apic, 0x20), 0x0200_0000);
    assert_eq!(rd(&apic, 0x30), 0x0005_0014);
    assert_eq!(rd(&apic, 0xa0), 0);
    assert_eq!(rd(&apic, 0x200), 0);
    // Unknown slots, misaligned offsets, wrong widths and offsets past the page.
    for offset in [0x00, 0x10, 0x2f0, 0x3f0, 0x400, 0xff0, 0x1000, 0x24, 0x84] {
        wr(&mut apic, offset, 0xffff_ffff);
        assert_eq!(rd(&apic, offset), 0, "offset {offset:#x}");
    }
    let mut byte = [0xaa];
    apic.read(0x30, &mut byte);
    assert_eq!(byte, [0]);
    let mut wide = [0xaa; 8];
    apic.read(0x30, &mut wide);
    assert_eq!(wide, [0; 8]);
    assert_eq!(apic.write(0x80, &[0x50]), None);
    assert_eq!(apic.write(0x80, &[0x50; 8]), None);
    assert_eq!(rd(&apic, 0x80), 0);
    // Writable fields keep only their defined bits.
    wr(&mut apic, 0x80, 0xffff_ffff);
    assert_eq!(rd(&apic, 0x80), 0xff);
    wr(&mut apic, 0xd0, 0xffff_ffff);
    assert_eq!(rd(&apic, 0xd0), 0xff00_0000);
    wr(&mut apic, 0xe0, 0);
    assert_eq!(rd(&apic, 0xe0), 0x0fff_ffff);
    wr(&mut apic, 0xf0, 0xffff_ffff);
    assert_eq!(rd(&apic, 0xf0), 0x3ff);
    wr(&mut apic, 0x320, 0xffff_ffff);
    assert_eq!(rd(&apic, 0x320), 0x3_00ff, "no TSC-deadline mode");
    wr(&mut apic, 0x350, 0xffff_ffff);
    assert_eq!(rd(&apic, 0x350), 0x1_a7ff);
    wr(&mut apic, 0x3e0, 0xffff_ffff);
    assert_eq!(rd(&apic, 0x3e0), 0xb);
}

#[test]
fn software_enable_gates_delivery_and_masks_lvts() {
    let (mut apic, _) = apic(0);
    apic.accept_fixed(0x40, false);
    assert_eq!(
        rd(&apic, 0x200 + 2 * 0x10),
        1,
        "IRR holds it while disabled"
    );
    assert_eq!(apic.highest_pending(), None);
    wr(&mut apic, 0xf0, 0x1ff);
    assert!(apic.is_enabled());
    assert_eq!(apic.highest_pending(), Some(0x40));
    wr(&mut apic, 0x320, 0x30);
    assert_eq!(rd(&apic, 0x320), 0x30);
    // Software disable masks every LVT, and writes cannot unmask them.
    wr(&mut apic, 0xf0, 0xff);
    assert_eq!(rd(&apic, 0x320), 0x1_0030);
    assert_eq!(rd(&apic, 0x350), 0x1_0700);
    wr(&mut apic, 0x320, 0x30);
    assert_eq!(rd(&apic, 0x320), 0x1_0030);
    assert!(!apic.lint0_accepts_extint());
}

#[test]
fn priorities_tpr_and_eoi() {
    let (mut apic, _) = enabled_apic(0);
    apic.accept_fixed(0x31, false);
    apic.accept_fixed(0x52, false);
    assert_eq!(apic.highest_pending(), Some(0x52));
    assert_eq!(apic.acknowledge(), Some(0x52));
    assert_eq!(rd(&apic, 0x100 + 2 * 0x10), 1 << 18, "ISR has 0x52");
    assert_eq!(rd(&apic, 0xa0), 0x50);
    // Lower and equal classes wait for the EOI; a higher one preempts.
    assert_eq!(apic.highest_pending(), None);
    apic.accept_fixed(0x5f, false);
    assert_eq!(apic.highest_pending(), None);
    apic.accept_fixed(0x61, false);
    assert_eq!(apic.acknowledge(), Some(0x61));
    assert_eq!(rd(&apic, 0xa0), 0x60);
    // EOI retires the highest in-service vector first.
    assert_eq!(wr(&mut apic, 0xb0, 0), None);
    assert_eq!(rd(&apic, 0xa0), 0x50);
    assert_eq!(wr(&mut apic, 0xb0, 0), None);
    assert_eq!(rd(&apic, 0xa0), 0);
    assert_eq!(apic.highest_pending(), Some(0x5f));
    // The TPR blocks classes at or below its own; PPR follows it.
    wr(&mut apic, 0x80, 0x5a);
    assert_eq!(rd(&apic, 0xa0), 0x5a);
    assert_eq!(apic.highest_pending(), None);
    apic.set_cr8(4);
    assert_eq!((rd(&apic, 0x80), apic.cr8()), (0x40, 4));
    assert_eq!(apic.acknowledge(), Some(0x5f));
    assert_eq!(apic.acknowledge(), None, "0x31 is below the ISR's class");
    wr(&mut apic, 0xb0, 0);
    assert_eq!(apic.acknowledge(), None, "0x31 is below the TPR's class");
    apic.set_cr8(0);
    assert_eq!(apic.acknowledge(), Some(0x31));
    // An EOI with nothing in service does nothing.
    wr(&mut apic, 0xb0, 0);
    assert_eq!(wr(&mut apic, 0xb0, 0), None);
}

#[test]
fn level_triggered_eoi_is_reported() {
    let (mut apic, _) = enabled_apic(0);
    apic.accept_fixed(0x41, true);
    apic.accept_fixed(0x40, false);
    assert_eq!(rd(&apic, 0x180 + 2 * 0x10), 0b10, "TMR has 0x41 only");
    assert_eq!(apic.acknowledge(), Some(0x41));
    assert_eq!(wr(&mut apic, 0xb0, 0), Some(ApicEvent::LevelEoi(0x41)));
    assert_eq!(apic.acknowledge(), Some(0x40));
    assert_eq!(wr(&mut apic, 0xb0, 0), None);
}

#[test]
fn illegal_vectors_and_esr() {
    let (mut apic, _) = enabled_apic(0);
    wr(&mut apic, 0x370, 0xfe); // LVT error, vector 0xfe
    apic.accept_fixed(0x0f, false);
    assert_eq!(rd(&apic, 0x280), 0, "ESR updates only on a write");
    wr(&mut apic, 0x280, 0);
    assert_eq!(rd(&apic, 0x280), 1 << 6);
    assert_eq!(apic.highest_pending(), Some(0xfe), "LVT error raised");
    // Sending a fixed IPI with vector 3 is an error, not an IPI.
    assert_eq!(wr(&mut apic, 0x300, 0x0000_4003), None);
    wr(&mut apic, 0x280, 0);
    assert_eq!(rd(&apic, 0x280), 1 << 5);
    wr(&mut apic, 0x280, 0);
    assert_eq!(rd(&apic, 0x280), 0);
}

#[test]
fn icr_writes_send_ipis() {
    let (mut apic, _) = enabled_apic(0);
    wr(&mut apic, 0x310, 0x0100_0000);
    let event = wr(&mut apic, 0x300, 0x0000_c500);
    assert_eq!(
        event,
        Some(ApicEvent::Ipi(Ipi {
            vector: 0,
            mode: DeliveryMode::Init,
            dest: Destination::Physical(1),
            level: true,
            trigger_level: true,
        }))
    );
    // Delivery status (bit 12) reads idle.
    assert_eq!(rd(&apic, 0x300), 0x0000_c500);
    assert_eq!(rd(&apic, 0x310), 0x0100_0000);
    let Some(ApicEvent::Ipi(sipi)) = wr(&mut apic, 0x300, 0x0000_1608) else {
        panic!("no SIPI");
    };
    assert_eq!((sipi.mode, sipi.vector), (DeliveryMode::StartUp, 8));
    assert_eq!(rd(&apic, 0x300), 0x0000_0608);
    let Some(ApicEvent::Ipi(fixed)) = wr(&mut apic, 0x300, 0x000c_0030) else {
        panic!("no fixed IPI");
    };
    assert_eq!(fixed.dest, Destination::AllExcludingSelf);
    assert_eq!(wr(&mut apic, 0x300, 0x0000_0330), None, "reserved mode");
}

#[test]
fn base_msr() {
    let (mut apic, _) = enabled_apic(0);
    assert_eq!(
        apic.set_base_msr(0xfee0_0d00),
        Err(ApicBaseError::X2ApicUnsupported(0xfee0_0d00))
    );
    assert_eq!(
        apic.set_base_msr(0xfee0_0901),
        Err(ApicBaseError::ReservedBits(0xfee0_0901))
    );
    assert_eq!(
        apic.set_base_msr(1 << 60 | 0xfee0_0900),
        Err(ApicBaseError::ReservedBits(1 << 60 | 0xfee0_0900))
    );
    wr(&mut apic, 0x80, 0x20);
    apic.accept_fixed(0x80, false);
    // Global disable: the page vanishes, LINT0 is bypassed, nothing is accepted.
    apic.set_base_msr(0xfee0_0100).unwrap();
    assert_eq!(apic.base_msr(), 0xfee0_0100);
    assert_eq!(rd(&apic, 0x30), 0);
    assert!(apic.lint0_accepts_extint());
    apic.accept_fixed(0x90, false);
    assert_eq!(apic.highest_pending(), None);
    // Re-enabled, it comes back in its reset state. The base cannot move.
    apic.set_base_msr(0xfed0_0900).unwrap();
    assert_eq!(apic.base_msr(), 0xfee0_0900);
    assert_eq!(
        (rd(&apic, 0x30), rd(&apic, 0x80), rd(&apic, 0xf0)),
        (0x0005_0014, 0, 0xff)
    );
    assert_eq!(rd(&apic, 0x200 + 4 * 0x10), 0);
}

#[test]
fn init_and_sipi_state_machine() {
    let (mut bsp, _) = apic(0);
    let (mut ap, _) = apic(1);
    // A running CPU ignores SIPI.
    assert!(!bsp.receive_sipi(0x10));
    assert_eq!(bsp.take_startup(), None);
    // An AP starts waiting; one SIPI starts it, a second is ignored.
    assert!(ap.is_waiting_for_sipi());
    assert!(ap.receive_sipi(0x10));
    assert!(!ap.receive_sipi(0x20));
    assert_eq!(ap.take_startup(), Some(Startup::Sipi(0x10)));
    assert_eq!(ap.take_startup(), None);
    // INIT resets the registers and makes it wait again; then SIPI.
    wr(&mut ap, 0x80, 0x30);
    ap.receive_init();
    assert_eq!(rd(&ap, 0x80), 0);
    assert_eq!(rd(&ap, 0x20), 0x0100_0000);
    assert!(ap.is_waiting_for_sipi());
    assert!(ap.receive_sipi(0x9a));
    assert_eq!(ap.take_startup(), Some(Startup::Init));
    assert_eq!(ap.take_startup(), Some(Startup::Sipi(0x9a)));
    // INIT on the BSP restarts it but does not make it wait.
    bsp.receive_init();
    assert_eq!(bsp.take_startup(), Some(Startup::Init));
    assert!(!bsp.is_waiting_for_sipi());
}

#[test]
fn one_shot_timer() {
    let (mut apic, time) = enabled_apic(0);
    time.set(5_000);
    wr(&mut apic, 0x320, 0x40);
    wr(&mut apic, 0x3e0, 0b1011); // divide by 1
    wr(&mut apic, 0x380, 1000);
    assert_eq!(time.armed(), Some(6_000));
    time.set(5_250);
    assert_eq!(rd(&apic, 0x390), 750);
    // An early callback raises nothing and re-arms.
    assert!(!apic.timer_expired());
    assert_eq!(time.armed(), Some(6_000));
    time.set(6_100);
    assert_eq!(rd(&apic, 0x390), 0);
    assert!(apic.timer_expired());
    assert_eq!(apic.acknowledge(), Some(0x40));
    assert!(!apic.timer_expired(), "a one-shot fires once");
    assert_eq!(rd(&apic, 0x380), 1000);

    // Divide by 2 (the reset value), and changing the divider mid-count.
    wr(&mut apic, 0x3e0, 0);
    wr(&mut apic, 0x380, 1000);
    assert_eq!(time.armed(), Some(8_100));
    time.set(6_600);
    assert_eq!(rd(&apic, 0x390), 750);
    wr(&mut apic, 0x3e0, 0b1010); // divide by 128
    assert_eq!(rd(&apic, 0x390), 750);
    assert_eq!(time.armed(), Some(6_600 + 750 * 128));
    // Writing zero stops it.
    wr(&mut apic, 0x380, 0);
    assert_eq!(time.armed(), None);
    assert_eq!(rd(&apic, 0x390), 0);
}

#[test]
fn periodic_and_masked_timer() {
    let (mut apic, time) = enabled_apic(0);
    wr(&mut apic, 0x320, 0x2_0050); // periodic, vector 0x50
    wr(&mut apic, 0x3e0, 0b0011); // divide by 16
    wr(&mut apic, 0x380, 50_000); // 800 µs
    assert_eq!(time.armed(), Some(800_000));
    time.set(200_000);
    assert_eq!(rd(&apic, 0x390), 37_500);
    time.set(800_000);
    assert!(apic.timer_expired());
    assert_eq!(time.armed(), Some(1_600_000));
    assert_eq!(rd(&apic, 0x390), 50_000, "reloaded");
    // Late by two and a half periods: one interrupt, next deadline on the grid.
    time.set(2_800_000);
    assert!(apic.timer_expired());
    assert_eq!(time.armed(), Some(3_200_000));
    assert_eq!(rd(&apic, 0x390), 25_000);
    // Masked: the count goes on, no interrupt.
    wr(&mut apic, 0x320, 0x3_0050);
    time.set(3_200_000);
    assert!(!apic.timer_expired());
    assert_eq!(time.armed(), Some(4_000_000));
    assert_eq!(apic.acknowledge(), Some(0x50));
    assert_eq!(apic.acknowledge(), None);
    // Switching to one-shot keeps the current count and stops after it.
    wr(&mut apic, 0x320, 0x50);
    time.set(4_000_000);
    assert!(apic.timer_expired());
    time.set(5_000_000);
    assert!(!apic.timer_expired());
    assert_eq!(rd(&apic, 0x390), 0);
}

#[test]
fn tiny_periods_are_clamped() {
    let (mut apic, time) = enabled_apic(0);
    wr(&mut apic, 0x320, 0x2_0050);
    wr(&mut apic, 0x3e0, 0b1011);
    wr(&mut apic, 0x380, 1);
    time.set(1);
    assert!(apic.timer_expired());
    assert_eq!(time.armed(), Some(1 + MIN_PERIODIC_NS));
}

// The bus.

struct Machine {
    bus: Arc<ApicBus>,
    woken: Arc<Mutex<Vec<u32>>>,
    eois: Arc<Mutex<Vec<u8>>>,
    time: Arc<FakeTime>,
}

fn machine(cpus: u32) -> Machine {
    let woken = Arc::new(Mutex::new(Vec::new()));
    let eois = Arc::new(Mutex::new(Vec::new()));
    let time = Arc::new(FakeTime::default());
    let wake_log = woken.clone();
    let clock = time.clone();
    let bus = ApicBus::new(
        cpus,
        Arc::new(move |cpu| wake_log.lock().unwrap().push(cpu)),
        |_, _| Box::new(FakeTimer(clock.clone())),
    )
    .unwrap();
    let eoi_log = eois.clone();
    bus.set_eoi_listener(Arc::new(move |vector| eoi_log.lock().unwrap().push(vector)));
    for cpu in 0..cpus {
        bus.mmio_write(cpu, 0xf0, &0x1ffu32.to_le_bytes());
    }
    Machine {
        bus,
        woken,
        eois,
        time,
    }
}

impl Machine {
    fn woken(&self) -> Vec<u32> {
        std::mem::take(&mut *self.woken.lock().unwrap())
    }

    fn send(&self, from: u32, high: u32, low: u32) {
        self.bus.mmio_write(from, 0x310, &high.to_le_bytes());
        self.bus.mmio_write(from, 0x300, &low.to_le_bytes());
    }

    fn pending(&self) -> Vec<Option<u8>> {
        (0..self.bus.cpu_count())
            .map(|cpu| {
                let vector = self.bus.acknowledge(cpu);
                self.bus.mmio_write(cpu, 0xb0, &[0; 4]);
                vector
            })
            .collect()
    }
}

#[test]
fn bus_rejects_bad_cpu_counts() {
    let make = |cpus| {
        ApicBus::new(cpus, Arc::new(|_| {}), |_, _| {
            Box::new(FakeTimer(Arc::default()))
        })
    };
    assert_eq!(make(0).err(), Some(ApicBusError::CpuCount(0)));
    assert_eq!(make(256).err(), Some(ApicBusError::CpuCount(256)));
    assert!(make(255).is_ok());
}

#[test]
fn bus_routes_physical_and_shorthand_ipis() {
    let m = machine(4);
    m.woken();
    m.send(0, 0x0200_0000, 0x0000_0040);
    assert_eq!(m.woken(), vec![2]);
    assert_eq!(m.pending(), vec![None, None, Some(0x40), None]);
    m.send(1, 0xff00_0000, 0x0000_0041); // physical broadcast
    assert_eq!(m.pending(), vec![Some(0x41); 4]);
    m.send(1, 0, 0x0004_0042); // self
    assert_eq!(m.pending(), vec![None, Some(0x42), None, None]);
    m.send(1, 0, 0x0008_0043); // all including self
    assert_eq!(m.pending(), vec![Some(0x43); 4]);
    m.send(1, 0, 0x000c_0044); // all excluding self
    assert_eq!(m.pending(), vec![Some(0x44), None, Some(0x44), Some(0x44)]);
    m.send(1, 0x0900_0000, 0x0000_0045); // nobody has ID 9
    assert_eq!(m.pending(), vec![None; 4]);
    // The sender sees no delivery status: it is idle at once.
    let mut icr = [0; 4];
    m.bus.mmio_read(1, 0x300, &mut icr);
    assert_eq!(u32::from_le_bytes(icr) & (1 << 12), 0);
}

#[test]
fn bus_routes_logical_ipis() {
    let m = machine(4);
    // Flat model: CPU n has logical ID bit n.
    for cpu in 0..4 {
        m.bus
            .mmio_write(cpu, 0xd0, &(1u32 << (24 + cpu)).to_le_bytes());
    }
    m.send(0, 0x0a00_0000, 0x0000_0850);
    assert_eq!(m.pending(), vec![None, Some(0x50), None, Some(0x50)]);
    // Cluster model: cluster 1 holds CPUs 2 and 3 as members 1 and 2.
    for (cpu, ldr) in [(0u32, 0x01u32), (1, 0x02), (2, 0x11), (3, 0x12)] {
        m.bus.mmio_write(cpu, 0xe0, &0x0fff_ffffu32.to_le_bytes());
        m.bus.mmio_write(cpu, 0xd0, &(ldr << 24).to_le_bytes());
    }
    m.send(0, 0x1300_0000, 0x0000_0851);
    assert_eq!(m.pending(), vec![None, None, Some(0x51), Some(0x51)]);
    m.send(0, 0xf200_0000, 0x0000_0852); // member 2 of every cluster
    assert_eq!(m.pending(), vec![None, Some(0x52), None, Some(0x52)]);
}

#[test]
fn bus_lowest_priority_picks_the_lowest_tpr() {
    let m = machine(3);
    m.bus.set_cr8(0, 5);
    m.bus.set_cr8(1, 2);
    m.bus.set_cr8(2, 3);
    m.send(0, 0xff00_0000, 0x0000_0160);
    assert_eq!(m.pending(), vec![None, Some(0x60), None]);
}

#[test]
fn bus_starts_application_processors() {
    let m = machine(3);
    m.woken();
    // SIPI to the BSP (running) is ignored.
    m.send(1, 0, 0x0000_0610);
    assert_eq!(m.bus.take_startup(0), None);
    assert!(m.woken().is_empty());
    // The Linux sequence: INIT assert, INIT de-assert, SIPI, SIPI.
    m.send(0, 0x0100_0000, 0x0000_c500);
    m.send(0, 0x0100_0000, 0x0000_8500);
    assert!(m.bus.is_waiting_for_sipi(1));
    m.send(0, 0x0100_0000, 0x0000_069a);
    m.send(0, 0x0100_0000, 0x0000_069b);
    assert!(!m.bus.is_waiting_for_sipi(1));
    assert_eq!(m.woken(), vec![1, 1]);
    assert_eq!(m.bus.take_startup(1), Some(Startup::Init));
    assert_eq!(m.bus.take_startup(1), Some(Startup::Sipi(0x9a)));
    assert_eq!(m.bus.take_startup(1), None);
    assert!(m.bus.is_waiting_for_sipi(2), "CPU 2 never started");
    // NMI.
    m.send(0, 0x0200_0000, 0x0000_0400);
    assert!(m.bus.take_nmi(2));
    assert!(!m.bus.take_nmi(2));
}

#[test]
fn bus_reports_level_eois_and_fires_timers() {
    let m = machine(2);
    m.bus.deliver_message(Ipi {
        vector: 0x70,
        mode: DeliveryMode::Fixed,
        dest: Destination::Physical(1),
        level: true,
        trigger_level: true,
    });
    assert!(m.bus.pending_interrupt(1));
    assert_eq!(m.bus.acknowledge(1), Some(0x70));
    m.bus.mmio_write(1, 0xb0, &[0; 4]);
    assert_eq!(*m.eois.lock().unwrap(), vec![0x70]);

    m.woken();
    m.bus.mmio_write(1, 0x320, &0x60u32.to_le_bytes());
    m.bus.mmio_write(1, 0x3e0, &0xbu32.to_le_bytes());
    m.bus.mmio_write(1, 0x380, &100u32.to_le_bytes());
    m.time.set(100);
    m.bus.timer_expired(1);
    assert_eq!(m.woken(), vec![1]);
    assert_eq!(m.bus.acknowledge(1), Some(0x60));
    // Out-of-range CPUs are ignored, not panics.
    m.bus.timer_expired(7);
    assert_eq!(m.bus.acknowledge(7), None);
    assert!(!m.bus.lint0_accepts_extint(7));
    assert!(m.bus.lint0_accepts_extint(0));
    assert_eq!(m.bus.base_msr(1), 0xfee0_0800);
}

#[test]
fn bus_wakes_the_cpu_an_eoi_unblocks() {
    let m = machine(1);
    m.bus.deliver(
        0,
        Ipi {
            vector: 0x80,
            mode: DeliveryMode::Fixed,
            dest: Destination::SelfOnly,
            level: true,
            trigger_level: false,
        },
    );
    assert_eq!(m.bus.acknowledge(0), Some(0x80));
    m.bus.deliver_message(Ipi {
        vector: 0x81,
        mode: DeliveryMode::Fixed,
        dest: Destination::Physical(0),
        level: true,
        trigger_level: false,
    });
    assert!(!m.bus.pending_interrupt(0));
    m.woken();
    m.bus.mmio_write(0, 0xb0, &[0; 4]);
    assert_eq!(m.woken(), vec![0]);
    assert!(m.bus.pending_interrupt(0));
    // Other writes do not wake.
    m.bus.mmio_write(0, 0xd0, &[0; 4]);
    assert!(m.woken().is_empty());
}

/// The I/O APIC and the APIC bus wired both ways, as a board does: delivery
/// from the I/O APIC and the EOI back to it run without deadlock.
#[test]
fn ioapic_level_interrupt_round_trip() {
    use crate::ioapic::IoApic;

    let m = machine(2);
    let bus = m.bus.clone();
    let ioapic = Arc::new(IoApic::new(Arc::new(move |ipi| bus.deliver_message(ipi))));
    let resampled = Arc::new(Mutex::new(Vec::new()));
    let weak = Arc::downgrade(&ioapic);
    let log = resampled.clone();
    m.bus.set_eoi_listener(Arc::new(move |vector| {
        if let Some(ioapic) = weak.upgrade() {
            log.lock().unwrap().extend(ioapic.end_of_interrupt(vector));
        }
    }));
    // Pin 9: level-triggered, vector 0x39, physical destination CPU 1.
    for (select, value) in [(0x23u32, 0x0100_0000u32), (0x22, 0x0000_8039)] {
        ioapic.mmio_write(0x00, &select.to_le_bytes());
        ioapic.mmio_write(0x10, &value.to_le_bytes());
    }
    ioapic.set_level(9, true);
    assert_eq!(m.bus.acknowledge(1), Some(0x39));
    // Still asserted at the EOI: delivered again.
    m.bus.mmio_write(1, 0xb0, &[0; 4]);
    assert_eq!(*resampled.lock().unwrap(), vec![9]);
    assert_eq!(m.bus.acknowledge(1), Some(0x39));
    ioapic.set_level(9, false);
    m.bus.mmio_write(1, 0xb0, &[0; 4]);
    assert_eq!(*resampled.lock().unwrap(), vec![9, 9]);
    assert!(!m.bus.pending_interrupt(1));
    assert_eq!(m.bus.acknowledge(0), None);
}
