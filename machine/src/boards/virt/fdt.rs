//! The `virt` board's flattened device tree, generated from the board that
//! was built (its CPUs, RAM and devices), in the shape QEMU `virt` gives its
//! guests, so kernels and test programs written for QEMU find everything
//! where they look.

use vm_fdt::{FdtWriter, FdtWriterResult};

use super::layout::*;

const PHANDLE_GIC: u32 = 0x8002;
const PHANDLE_CLOCK: u32 = 0x8000;
/// The first PHANDLE of the CPU nodes.
const PHANDLE_CPU0: u32 = 0x8100;

/// `#interrupt-cells` = 3 of the GIC: type (0 SPI, 1 PPI), number, flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
const IRQ_EDGE_RISING: u32 = 1;

/// PSCI 0.2 function ids the device tree names (SMC64 where they take
/// addresses).
const PSCI_CPU_SUSPEND: u32 = 0xc400_0001;
const PSCI_CPU_OFF: u32 = 0x8400_0002;
const PSCI_CPU_ON: u32 = 0xc400_0003;
const PSCI_MIGRATE: u32 = 0xc400_0005;

/// The board facts the tree describes.
pub struct TreeConfig<'a> {
    pub cpus: u32,
    pub memory_size: u64,
    pub cmdline: &'a str,
    /// `[start, end)` of the initrd in guest memory.
    pub initrd: Option<(u64, u64)>,
    /// virtio-mmio slots in use, from slot 0.
    pub virtio_slots: usize,
}

/// Builds the device tree blob.
pub fn build(config: &TreeConfig<'_>) -> FdtWriterResult<Vec<u8>> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_string("model", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", PHANDLE_GIC)?;

    chosen(&mut fdt, config)?;
    memory(&mut fdt, config.memory_size)?;
    cpus(&mut fdt, config.cpus)?;
    psci(&mut fdt)?;
    gic(&mut fdt)?;
    timer(&mut fdt, config.cpus)?;
    clock(&mut fdt)?;
    primecell(
        &mut fdt,
        "pl011",
        UART_BASE,
        UART_SIZE,
        UART_SPI,
        &["arm,pl011", "arm,primecell"],
        &["uartclk", "apb_pclk"],
    )?;
    for slot in 0..config.virtio_slots {
        virtio_mmio(&mut fdt, slot)?;
    }
    primecell(
        &mut fdt,
        "pl031",
        RTC_BASE,
        RTC_SIZE,
        RTC_SPI,
        &["arm,pl031", "arm,primecell"],
        &["apb_pclk"],
    )?;
    fdt.end_node(root)?;
    fdt.finish()
}

/// The UART's node path, for `stdout-path`.
fn uart_path() -> String {
    format!("/pl011@{UART_BASE:x}")
}

fn chosen(fdt: &mut FdtWriter, config: &TreeConfig<'_>) -> FdtWriterResult<()> {
    let node = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", config.cmdline)?;
    fdt.property_string("stdout-path", &uart_path())?;
    if let Some((start, end)) = config.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(node)
}

fn memory(fdt: &mut FdtWriter, size: u64) -> FdtWriterResult<()> {
    let node = fdt.begin_node(&format!("memory@{RAM_BASE:x}"))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[RAM_BASE, size])?;
    fdt.end_node(node)
}

fn cpus(fdt: &mut FdtWriter, count: u32) -> FdtWriterResult<()> {
    let node = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for cpu in 0..count {
        let cpu_node = fdt.begin_node(&format!("cpu@{cpu}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,cortex-a57")?;
        fdt.property_u32("reg", cpu)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.property_u32("phandle", PHANDLE_CPU0 + cpu)?;
        fdt.end_node(cpu_node)?;
    }
    fdt.end_node(node)
}

fn psci(fdt: &mut FdtWriter) -> FdtWriterResult<()> {
    let node = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec![
            "arm,psci-1.0".to_string(),
            "arm,psci-0.2".to_string(),
            "arm,psci".to_string(),
        ],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.property_u32("cpu_suspend", PSCI_CPU_SUSPEND)?;
    fdt.property_u32("cpu_off", PSCI_CPU_OFF)?;
    fdt.property_u32("cpu_on", PSCI_CPU_ON)?;
    fdt.property_u32("migrate", PSCI_MIGRATE)?;
    fdt.end_node(node)
}

fn gic(fdt: &mut FdtWriter) -> FdtWriterResult<()> {
    let node = fdt.begin_node(&format!("intc@{GIC_DIST_BASE:x}"))?;
    fdt.property_string("compatible", "arm,cortex-a15-gic")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_null("ranges")?;
    fdt.property_array_u64(
        "reg",
        &[GIC_DIST_BASE, GIC_DIST_SIZE, GIC_CPU_BASE, GIC_CPU_SIZE],
    )?;
    fdt.property_u32("phandle", PHANDLE_GIC)?;
    fdt.end_node(node)
}

fn timer(fdt: &mut FdtWriter, cpus: u32) -> FdtWriterResult<()> {
    // PPI flags carry the mask of the CPUs they reach in bits 8-15.
    let cpu_mask = ((1u32 << cpus.min(8)) - 1) << 8;
    let interrupts: Vec<u32> = TIMER_PPIS
        .iter()
        .flat_map(|&ppi| [GIC_PPI, ppi, cpu_mask | IRQ_LEVEL_HIGH])
        .collect();
    let node = fdt.begin_node("timer")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,armv8-timer".to_string(), "arm,armv7-timer".to_string()],
    )?;
    fdt.property_array_u32("interrupts", &interrupts)?;
    fdt.property_null("always-on")?;
    fdt.end_node(node)
}

fn clock(fdt: &mut FdtWriter) -> FdtWriterResult<()> {
    let node = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", 24_000_000)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_u32("phandle", PHANDLE_CLOCK)?;
    fdt.end_node(node)
}

/// QEMU's virtio-mmio node: edge-rising SPI, DMA-coherent.
fn virtio_mmio(fdt: &mut FdtWriter, slot: usize) -> FdtWriterResult<()> {
    let base = VIRTIO_BASE + slot as u64 * VIRTIO_SLOT_SIZE;
    let node = fdt.begin_node(&format!("virtio_mmio@{base:x}"))?;
    fdt.property_string("compatible", "virtio,mmio")?;
    fdt.property_array_u64("reg", &[base, VIRTIO_SLOT_SIZE])?;
    fdt.property_array_u32(
        "interrupts",
        &[GIC_SPI, VIRTIO_FIRST_SPI + slot as u32, IRQ_EDGE_RISING],
    )?;
    fdt.property_null("dma-coherent")?;
    fdt.end_node(node)
}

fn primecell(
    fdt: &mut FdtWriter,
    name: &str,
    base: u64,
    size: u64,
    spi: u32,
    compatible: &[&str],
    clock_names: &[&str],
) -> FdtWriterResult<()> {
    let node = fdt.begin_node(&format!("{name}@{base:x}"))?;
    fdt.property_string_list(
        "compatible",
        compatible.iter().map(|s| s.to_string()).collect(),
    )?;
    fdt.property_array_u64("reg", &[base, size])?;
    fdt.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_LEVEL_HIGH])?;
    fdt.property_array_u32("clocks", &vec![PHANDLE_CLOCK; clock_names.len()])?;
    fdt.property_string_list(
        "clock-names",
        clock_names.iter().map(|s| s.to_string()).collect(),
    )?;
    fdt.end_node(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_a_dtb_naming_what_the_board_has() {
        let dtb = build(&TreeConfig {
            cpus: 2,
            memory_size: 256 << 20,
            cmdline: "console=ttyAMA0",
            initrd: Some((0x4800_0000, 0x4810_0000)),
            virtio_slots: 2,
        })
        .expect("the device tree builds");
        assert_eq!(dtb[0..4], 0xd00d_feedu32.to_be_bytes());
        let text = String::from_utf8_lossy(&dtb);
        for expected in [
            "linux,dummy-virt",
            "arm,cortex-a15-gic",
            "arm,armv8-timer",
            "arm,pl011",
            "arm,pl031",
            "arm,psci-0.2",
            "console=ttyAMA0",
            "/pl011@9000000",
            "cpu@1",
            "memory@40000000",
            "linux,initrd-start",
            "virtio_mmio@a000200",
            "virtio,mmio",
        ] {
            assert!(text.contains(expected), "no {expected} in the tree");
        }
    }
}
