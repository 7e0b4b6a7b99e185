use super::*;
use crate::irq::{IrqRouter, LineKind};

const GICD_CTLR: u64 = 0x000;
const GICD_TYPER: u64 = 0x004;
const GICD_IGROUPR: u64 = 0x080;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_ISPENDR: u64 = 0x200;
const GICD_ICPENDR: u64 = 0x280;
const GICD_ISACTIVER: u64 = 0x300;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xc00;
const GICD_SGIR: u64 = 0xf00;
const GICD_SPENDSGIR: u64 = 0xf20;

const GICC_CTLR: u64 = 0x00;
const GICC_PMR: u64 = 0x04;
const GICC_BPR: u64 = 0x08;
const GICC_IAR: u64 = 0x0c;
const GICC_EOIR: u64 = 0x10;
const GICC_RPR: u64 = 0x14;
const GICC_HPPIR: u64 = 0x18;
const GICC_APR0: u64 = 0xd0;
const GICC_IIDR: u64 = 0xfc;
const GICC_DIR: u64 = 0x1000;

type Wakes = Arc<Mutex<Vec<u32>>>;

fn gic(cpus: u32) -> (Arc<Gic>, Wakes) {
    let wakes: Wakes = Arc::default();
    let sink = wakes.clone();
    let gic = Gic::new(cpus, Arc::new(move |cpu| sink.lock().unwrap().push(cpu))).unwrap();
    (gic, wakes)
}

fn take(wakes: &Wakes) -> Vec<u32> {
    std::mem::take(&mut *wakes.lock().unwrap())
}

fn dr(gic: &Gic, cpu: u32, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    gic.distributor_read(cpu, offset, &mut data);
    u32::from_le_bytes(data)
}

fn dw(gic: &Gic, cpu: u32, offset: u64, value: u32) {
    gic.distributor_write(cpu, offset, &value.to_le_bytes());
}

fn db(gic: &Gic, cpu: u32, offset: u64, value: u8) {
    gic.distributor_write(cpu, offset, &[value]);
}

fn cr(gic: &Gic, cpu: u32, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    gic.cpu_interface_read(cpu, offset, &mut data);
    u32::from_le_bytes(data)
}

fn cw(gic: &Gic, cpu: u32, offset: u64, value: u32) {
    gic.cpu_interface_write(cpu, offset, &value.to_le_bytes());
}

/// What Linux's GICv2 driver does: distributor and every CPU interface on,
/// priority mask 0xf0.
fn enable(gic: &Gic) {
    dw(gic, 0, GICD_CTLR, 1);
    for cpu in 0..gic.cpu_count() {
        cw(gic, cpu, GICC_PMR, 0xf0);
        cw(gic, cpu, GICC_CTLR, 1);
    }
}

/// Enables interrupt `id` (as CPU `cpu` for a private one) at `priority`.
fn enable_irq(gic: &Gic, cpu: u32, id: u32, priority: u8) {
    db(gic, cpu, GICD_IPRIORITYR + u64::from(id), priority);
    dw(
        gic,
        cpu,
        GICD_ISENABLER + u64::from(id / 32) * 4,
        1 << (id % 32),
    );
}

#[test]
fn identification_and_reset_state() {
    let (gic, _) = gic(4);
    // 288 interrupts (ITLinesNumber 8), 4 CPUs, no security extensions.
    assert_eq!(dr(&gic, 0, GICD_TYPER), 8 | (3 << 5));
    assert_eq!(dr(&gic, 0, 0x008), 0x0200_043b);
    assert_eq!(cr(&gic, 0, GICC_IIDR), 0x0202_043b);
    assert_eq!(dr(&gic, 0, 0xfe8), 0x2b);
    assert_eq!(dr(&gic, 0, 0xffc), 0xb1);
    assert_eq!(cr(&gic, 0, GICC_BPR), 2);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0xff);
    // Priorities keep their top five bits.
    db(&gic, 0, GICD_IPRIORITYR + 40, 0xff);
    assert_eq!(dr(&gic, 0, GICD_IPRIORITYR + 40), 0xf8);
    cw(&gic, 0, GICC_PMR, 0xff);
    assert_eq!(cr(&gic, 0, GICC_PMR), 0xf8);
    cw(&gic, 0, GICC_BPR, 0);
    assert_eq!(cr(&gic, 0, GICC_BPR), 2);
    // SGIs read as edge, PPIs as level; SPIs' edge bits are writable.
    assert_eq!(dr(&gic, 0, GICD_ICFGR), 0xaaaa_aaaa);
    assert_eq!(dr(&gic, 0, GICD_ICFGR + 4), 0);
    dw(&gic, 0, GICD_ICFGR + 4, 0xffff_ffff);
    assert_eq!(dr(&gic, 0, GICD_ICFGR + 4), 0);
    dw(&gic, 0, GICD_ICFGR + 8, 0xffff_ffff);
    assert_eq!(dr(&gic, 0, GICD_ICFGR + 8), 0xaaaa_aaaa);
    // Groups are stored.
    dw(&gic, 0, GICD_IGROUPR + 4, 0x1234);
    assert_eq!(dr(&gic, 0, GICD_IGROUPR + 4), 0x1234);
}

#[test]
fn level_spi_pends_while_high_and_repends_after_eoi() {
    let (gic, wakes) = gic(1);
    enable(&gic);
    enable_irq(&gic, 0, 33, 0xa0);
    assert!(!gic.irq_pending(0));

    gic.set_level(1, true);
    assert!(gic.irq_pending(0));
    assert_eq!(take(&wakes), [0]);
    assert_eq!(dr(&gic, 0, GICD_ISPENDR + 4), 1 << 1);
    assert_eq!(cr(&gic, 0, GICC_HPPIR), 33);

    assert_eq!(cr(&gic, 0, GICC_IAR), 33);
    assert!(!gic.irq_pending(0));
    assert_eq!(cr(&gic, 0, GICC_RPR), 0xa0);
    // Active and still pending: not signalled again.
    assert_eq!(dr(&gic, 0, GICD_ISACTIVER + 4), 1 << 1);
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);

    // Still high at EOI: pending again, and the CPU is woken.
    cw(&gic, 0, GICC_EOIR, 33);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0xff);
    assert!(gic.irq_pending(0));
    assert_eq!(take(&wakes), [0]);
    assert_eq!(cr(&gic, 0, GICC_IAR), 33);

    // The device lowered it before the EOI: done.
    gic.set_level(1, false);
    cw(&gic, 0, GICC_EOIR, 33);
    assert!(!gic.irq_pending(0));
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
    // Clearing the pending state of a high level input leaves it pending.
    gic.set_level(1, true);
    dw(&gic, 0, GICD_ICPENDR + 4, 1 << 1);
    assert!(gic.irq_pending(0));
}

#[test]
fn edge_spi_latches_the_rising_edge() {
    let (gic, _) = gic(1);
    enable(&gic);
    dw(&gic, 0, GICD_ICFGR + 8, 2 << 2); // interrupt 33 edge-triggered
    enable_irq(&gic, 0, 33, 0x80);
    gic.set_level(1, true);
    gic.set_level(1, false);
    assert!(gic.irq_pending(0));
    assert_eq!(cr(&gic, 0, GICC_IAR), 33);
    // A second edge while active is pending behind it.
    gic.set_level(1, true);
    gic.set_level(1, false);
    assert!(!gic.irq_pending(0));
    cw(&gic, 0, GICC_EOIR, 33);
    assert_eq!(cr(&gic, 0, GICC_IAR), 33);
    cw(&gic, 0, GICC_EOIR, 33);
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
    // Software pending and its clearing.
    dw(&gic, 0, GICD_ISPENDR + 4, 1 << 1);
    assert!(gic.irq_pending(0));
    dw(&gic, 0, GICD_ICPENDR + 4, 1 << 1);
    assert!(!gic.irq_pending(0));
}

#[test]
fn routing_through_the_interrupt_router_and_eoi_listener() {
    let (gic, _) = gic(1);
    let router = IrqRouter::new();
    router.connect(gic.clone());
    let eois: Arc<Mutex<Vec<u32>>> = Arc::default();
    let sink = eois.clone();
    gic.set_eoi_listener(Arc::new(move |line| sink.lock().unwrap().push(line)));
    enable(&gic);
    enable_irq(&gic, 0, 32 + 5, 0xa0);
    router.line(5, LineKind::Level).raise();
    assert_eq!(cr(&gic, 0, GICC_IAR), 37);
    cw(&gic, 0, GICC_EOIR, 37);
    assert_eq!(*eois.lock().unwrap(), [5]);
    // Lines beyond the last SPI are ignored.
    router.line(GIC_SPI_COUNT, LineKind::Level).raise();
}

#[test]
fn priorities_mask_and_preemption() {
    let (gic, _) = gic(1);
    enable(&gic);
    enable_irq(&gic, 0, 40, 0xa0);
    enable_irq(&gic, 0, 41, 0x80);
    enable_irq(&gic, 0, 42, 0x80);
    enable_irq(&gic, 0, 43, 0xf0);
    dw(&gic, 0, GICD_ISPENDR + 4, 0xf << 8);
    // The highest priority first; on a tie, the lowest ID.
    assert_eq!(cr(&gic, 0, GICC_IAR), 41);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0x80);
    assert_eq!(cr(&gic, 0, GICC_APR0), 1 << (0x80 >> 3));
    // Same priority does not preempt; a lower one does not either.
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
    assert!(!gic.irq_pending(0));
    // A higher one does (the default BPR makes every bit group priority).
    enable_irq(&gic, 0, 44, 0x78);
    dw(&gic, 0, GICD_ISPENDR + 4, 1 << 12);
    assert!(gic.irq_pending(0));
    assert_eq!(cr(&gic, 0, GICC_IAR), 44);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0x78);
    // EOIs unwind the running priority.
    cw(&gic, 0, GICC_EOIR, 44);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0x80);
    cw(&gic, 0, GICC_EOIR, 41);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0xff);
    assert_eq!(cr(&gic, 0, GICC_IAR), 42);
    cw(&gic, 0, GICC_EOIR, 42);
    assert_eq!(cr(&gic, 0, GICC_IAR), 40);
    cw(&gic, 0, GICC_EOIR, 40);
    // 0xf0 is not above the mask 0xf0.
    assert_eq!(cr(&gic, 0, GICC_HPPIR), 43);
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
    cw(&gic, 0, GICC_PMR, 0xf8);
    assert_eq!(cr(&gic, 0, GICC_IAR), 43);
    cw(&gic, 0, GICC_EOIR, 43);

    // A coarser binary point: 0x80 and 0x78... with BPR 7 no preemption at all.
    cw(&gic, 0, GICC_BPR, 7);
    dw(&gic, 0, GICD_ISPENDR + 4, (1 << 9) | (1 << 12));
    assert_eq!(cr(&gic, 0, GICC_IAR), 44);
    assert_eq!(cr(&gic, 0, GICC_RPR), 0);
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
}

#[test]
fn split_eoi_mode_needs_dir() {
    let (gic, _) = gic(1);
    enable(&gic);
    cw(&gic, 0, GICC_CTLR, 1 | (1 << 9));
    enable_irq(&gic, 0, 50, 0x40);
    dw(&gic, 0, GICD_ISPENDR + 4, 1 << 18);
    assert_eq!(cr(&gic, 0, GICC_IAR), 50);
    cw(&gic, 0, GICC_EOIR, 50);
    // The priority dropped but the interrupt is still active.
    assert_eq!(cr(&gic, 0, GICC_RPR), 0xff);
    assert_eq!(dr(&gic, 0, GICD_ISACTIVER + 4), 1 << 18);
    cw(&gic, 0, GICC_DIR, 50);
    assert_eq!(dr(&gic, 0, GICD_ISACTIVER + 4), 0);
}

#[test]
fn disabled_distributor_or_interface_forwards_nothing() {
    let (gic, _) = gic(1);
    enable_irq(&gic, 0, 33, 0);
    dw(&gic, 0, GICD_ISPENDR + 4, 1 << 1);
    cw(&gic, 0, GICC_PMR, 0xff);
    cw(&gic, 0, GICC_CTLR, 1);
    assert!(!gic.irq_pending(0));
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
    assert_eq!(cr(&gic, 0, GICC_HPPIR), GIC_SPURIOUS);
    dw(&gic, 0, GICD_CTLR, 1);
    assert!(gic.irq_pending(0));
    cw(&gic, 0, GICC_CTLR, 0);
    assert!(!gic.irq_pending(0));
    // A disabled interrupt is not forwarded either.
    cw(&gic, 0, GICC_CTLR, 1);
    dw(&gic, 0, GICD_ICENABLER + 4, 1 << 1);
    assert!(!gic.irq_pending(0));
    // Group 1 needs its own enable bit.
    dw(&gic, 0, GICD_ISENABLER + 4, 1 << 1);
    dw(&gic, 0, GICD_IGROUPR + 4, 1 << 1);
    assert!(!gic.irq_pending(0));
    dw(&gic, 0, GICD_CTLR, 3);
    cw(&gic, 0, GICC_CTLR, 3);
    assert_eq!(cr(&gic, 0, GICC_IAR), 33);
}

#[test]
fn sgis_reach_their_targets_with_the_source_cpu() {
    let (gic, wakes) = gic(4);
    enable(&gic);
    for cpu in 0..4 {
        enable_irq(&gic, cpu, 3, 0x10);
    }
    take(&wakes);
    // CPU 2 sends SGI 3 to CPUs 1 and 3.
    dw(&gic, 2, GICD_SGIR, (0b1010 << 16) | 3);
    assert_eq!(take(&wakes), [1, 3]);
    assert!(!gic.irq_pending(0) && !gic.irq_pending(2));
    assert_eq!(cr(&gic, 1, GICC_IAR), 3 | (2 << 10));
    assert_eq!(cr(&gic, 3, GICC_HPPIR), 3 | (2 << 10));
    assert_eq!(cr(&gic, 3, GICC_IAR), 3 | (2 << 10));
    cw(&gic, 1, GICC_EOIR, 3 | (2 << 10));
    assert_eq!(cr(&gic, 1, GICC_IAR), GIC_SPURIOUS);

    // All but self, from CPU 0; and self only, from CPU 0.
    dw(&gic, 0, GICD_SGIR, (1 << 24) | 3);
    assert_eq!(take(&wakes), [1, 2]);
    dw(&gic, 0, GICD_SGIR, (2 << 24) | 3);
    assert_eq!(take(&wakes), [0]);
    // Pending from two sources on CPU 1: lowest source first.
    dw(&gic, 2, GICD_SGIR, (0b10 << 16) | 3);
    assert_eq!(dr(&gic, 1, GICD_SPENDSGIR) >> 24, 0b101);
    assert_eq!(cr(&gic, 1, GICC_IAR), 3);
    cw(&gic, 1, GICC_EOIR, 3);
    assert_eq!(cr(&gic, 1, GICC_IAR), 3 | (2 << 10));
    cw(&gic, 1, GICC_EOIR, 3 | (2 << 10));
    // The SGI pending registers set and clear by source.
    db(&gic, 1, GICD_SPENDSGIR + 3, 0b1000);
    assert_eq!(dr(&gic, 1, GICD_ISPENDR) & 0xffff, 1 << 3);
    db(&gic, 1, 0xf10 + 3, 0b1000);
    assert_eq!(dr(&gic, 1, GICD_ISPENDR) & 0xffff, 0);
    // ISPENDR cannot pend an SGI.
    dw(&gic, 1, GICD_ISPENDR, 1 << 3);
    assert_eq!(dr(&gic, 1, GICD_ISPENDR) & 0xffff, 0);
}

#[test]
fn ppis_are_banked_per_cpu() {
    let (gic, wakes) = gic(2);
    enable(&gic);
    enable_irq(&gic, 1, 30, 0xa0);
    // Enabled on CPU 1 only, and its priority is CPU 1's.
    assert_eq!(dr(&gic, 1, GICD_ISENABLER), 1 << 30);
    assert_eq!(dr(&gic, 0, GICD_ISENABLER), 0);
    assert_eq!(dr(&gic, 0, GICD_IPRIORITYR + 28) >> 16, 0);
    assert_eq!(dr(&gic, 1, GICD_IPRIORITYR + 28) >> 16, 0xa0);
    take(&wakes);
    gic.set_ppi(0, 30, true);
    assert!(!gic.irq_pending(0));
    gic.set_ppi(1, 30, true);
    assert_eq!(take(&wakes), [1]);
    assert_eq!(cr(&gic, 1, GICC_IAR), 30);
    // Level: still high after EOI, so pending again.
    cw(&gic, 1, GICC_EOIR, 30);
    assert!(gic.irq_pending(1));
    gic.set_ppi(1, 30, false);
    assert!(!gic.irq_pending(1));
    // Out-of-range PPIs and CPUs are ignored.
    gic.set_ppi(0, 14, true);
    gic.set_ppi(7, 30, true);
    // ITARGETSR of private interrupts reads the accessing CPU, read-only.
    assert_eq!(dr(&gic, 1, GICD_ITARGETSR + 28), 0x0202_0202);
    dw(&gic, 1, GICD_ITARGETSR + 28, 0);
    assert_eq!(dr(&gic, 0, GICD_ITARGETSR), 0x0101_0101);
}

#[test]
fn itargetsr_routes_an_spi_to_cpu_1_only() {
    let (gic, wakes) = gic(2);
    enable(&gic);
    enable_irq(&gic, 0, 34, 0x20);
    db(&gic, 0, GICD_ITARGETSR + 34, 0b10);
    assert_eq!(dr(&gic, 0, GICD_ITARGETSR + 32) >> 16 & 0xff, 0b10);
    // Targets that do not exist are dropped.
    db(&gic, 0, GICD_ITARGETSR + 35, 0xff);
    assert_eq!(dr(&gic, 0, GICD_ITARGETSR + 32) >> 24, 0b11);
    take(&wakes);
    gic.set_spi(2, true);
    assert_eq!(take(&wakes), [1]);
    assert!(!gic.irq_pending(0));
    assert_eq!(cr(&gic, 0, GICC_IAR), GIC_SPURIOUS);
    assert_eq!(cr(&gic, 1, GICC_IAR), 34);
    cw(&gic, 1, GICC_EOIR, 34);
    // Retargeted to CPU 0.
    db(&gic, 0, GICD_ITARGETSR + 34, 0b01);
    assert!(gic.irq_pending(0) && !gic.irq_pending(1));
}

#[test]
fn one_cpu_targets_are_fixed() {
    let (gic, _) = gic(1);
    db(&gic, 0, GICD_ITARGETSR + 40, 0);
    assert_eq!(dr(&gic, 0, GICD_ITARGETSR + 40), 0x0101_0101);
}

#[test]
fn virt_interrupts_reach_the_timer_and_the_gic() {
    let wakes: Wakes = Arc::default();
    let sink = wakes.clone();
    let virt = VirtInterrupts::new(
        Clock::new(),
        2,
        Arc::new(move |cpu| sink.lock().unwrap().push(cpu)),
    )
    .unwrap();
    let gic = virt.gic.clone();
    enable(&gic);
    enable_irq(&gic, 1, 27, 0xa0);
    let timer = |reg| CpuRegister::ArmTimer(reg);
    assert_eq!(
        virt.cpu_register_read(0, timer(TimerReg::Cntfrq)),
        Some(crate::arm_timer::CNTFRQ_HZ)
    );
    assert_eq!(virt.cpu_register_read(9, timer(TimerReg::Cntfrq)), None);
    assert!(!virt.cpu_register_write(9, timer(TimerReg::CntvCtl), 1));
    // A virtual timer already expired fires at once on CPU 1.
    assert!(virt.cpu_register_write(1, timer(TimerReg::CntvCval), 0));
    assert!(virt.cpu_register_write(1, timer(TimerReg::CntvCtl), 1));
    assert!(virt.interrupt_pending(1) && virt.wake_pending(1));
    assert!(!virt.interrupt_pending(0));
    assert_eq!(virt.acknowledge(1), None);
    assert_eq!(take(&wakes), [1]);
    assert_eq!(cr(&gic, 1, GICC_IAR), 27);
    // The handler masks the timer, which lowers the PPI.
    virt.cpu_register_write(1, timer(TimerReg::CntvCtl), 3);
    cw(&gic, 1, GICC_EOIR, 27);
    assert!(!virt.interrupt_pending(1));
}

#[test]
fn through_the_bus_the_current_vcpu_picks_the_bank() {
    let (gic, _) = gic(2);
    let mut dist = GicDistributor(gic.clone());
    let mut cpu_if = GicCpuInterface(gic.clone());
    crate::irqchip::set_current_vcpu(1);
    dist.write(GICD_ISENABLER, &(1u32 << 27).to_le_bytes());
    cpu_if.write(GICC_PMR, &0xf0u32.to_le_bytes());
    let mut data = [0u8; 4];
    cpu_if.read(GICC_PMR, &mut data);
    crate::irqchip::set_current_vcpu(0);
    assert_eq!(u32::from_le_bytes(data), 0xf0);
    assert_eq!(dr(&gic, 1, GICD_ISENABLER), 1 << 27);
    assert_eq!(dr(&gic, 0, GICD_ISENABLER), 0);
    assert_eq!(cr(&gic, 0, GICC_PMR), 0);
}

#[test]
fn every_offset_and_width_is_harmless() {
    let (gic, _) = gic(2);
    enable(&gic);
    gic.set_spi(0, true);
    for offset in 0..0x2000u64 {
        for width in [1usize, 2, 4, 8] {
            let mut data = vec![0u8; width];
            if offset < 0x1000 {
                gic.distributor_read(0, offset, &mut data);
                gic.distributor_write(1, offset, &vec![0xff; width]);
            }
            gic.cpu_interface_read(1, offset, &mut data);
            gic.cpu_interface_write(0, offset, &vec![0xff; width]);
        }
    }
    // CPUs that do not exist.
    let mut data = [0u8; 4];
    gic.distributor_read(9, 0, &mut data);
    gic.cpu_interface_read(9, GICC_IAR, &mut data);
    gic.cpu_interface_write(9, GICC_EOIR, &[0; 4]);
    gic.distributor_read(0, u64::MAX, &mut data);
}
