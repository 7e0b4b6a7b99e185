//! x86-64 specifics of the KVM accelerator: VM-wide setup, CPUID, MSRs, and
//! translation between moat's [`X86CpuState`] and KVM's register structs.

use kvm_bindings::{
    CpuId, Msrs, kvm_dtable, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs,
};
use kvm_ioctls::{VcpuFd, VmFd};
use machine::{AccelError, CpuState, Segment, TableRegister, X86CpuState};

/// Where KVM on Intel keeps its real-mode TSS: three pages just below the BIOS
/// area at the top of the 32-bit space, well away from RAM and the device hole.
const TSS_ADDRESS: usize = 0xfffb_d000;

pub(crate) fn setup_vm(vm: &VmFd) -> Result<(), AccelError> {
    // Only Intel's VMX needs this, and only for real mode; other KVM flavours
    // (AMD, PVM) may refuse it, which is harmless.
    if let Err(error) = vm.set_tss_address(TSS_ADDRESS) {
        log::debug!("KVM_SET_TSS_ADDR: {error} (not needed on this host)");
    }
    // The in-kernel 8259 pair, I/O APIC and local APICs take the board's
    // interrupt lines (KVM_IRQ_LINE) and start secondary vCPUs on INIT/SIPI;
    // moat's own models of them serve TCG only.
    vm.create_irq_chip()
        .map_err(|error| AccelError::host("creating KVM's in-kernel irqchip", error))?;
    Ok(())
}

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

const MISC_ENABLE_FAST_STRING: u64 = 1;
/// MTRRs enabled, default type write-back: without it, a guest that reads the
/// MTRRs believes all memory is uncached.
const MTRR_ENABLE_WRITEBACK: u64 = (1 << 11) | 6;

const CPUID_HYPERVISOR: u32 = 1 << 31;

pub(crate) fn setup_vcpu(vcpu: &VcpuFd, index: u32, supported: &CpuId) -> Result<(), AccelError> {
    let mut cpuid = supported.clone();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            1 => {
                // Initial APIC ID in EBX[31:24]; the hypervisor-present bit.
                entry.ebx = (entry.ebx & 0x00ff_ffff) | (index << 24);
                entry.ecx |= CPUID_HYPERVISOR;
            }
            // Extended topology: the x2APIC ID.
            0xb | 0x1f => entry.edx = index,
            _ => {}
        }
    }
    vcpu.set_cpuid2(&cpuid)
        .map_err(|error| AccelError::host("setting the vCPU's CPUID", error))?;

    let entries: Vec<kvm_msr_entry> = [
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK),
    ]
    .into_iter()
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    })
    .collect();
    let msrs = Msrs::from_entries(&entries)
        .map_err(|error| AccelError::host("building the MSR list", error))?;
    let written = vcpu
        .set_msrs(&msrs)
        .map_err(|error| AccelError::host("setting the vCPU's MSRs", error))?;
    if written != entries.len() {
        // KVM stops at the first MSR it refuses; the rest keep their reset values,
        // which a guest copes with.
        log::debug!(
            "KVM accepted {written} of {} boot MSRs; MSR {:#x} was refused",
            entries.len(),
            entries.get(written).map_or(0, |entry| entry.index)
        );
    }

    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu)
        .map_err(|error| AccelError::host("setting the vCPU's FPU state", error))?;
    Ok(())
}

fn to_kvm_segment(segment: &Segment) -> kvm_segment {
    kvm_segment {
        base: segment.base,
        limit: segment.limit,
        selector: segment.selector,
        type_: segment.type_,
        present: u8::from(segment.present),
        dpl: segment.dpl,
        db: u8::from(segment.db),
        s: u8::from(segment.s),
        l: u8::from(segment.l),
        g: u8::from(segment.g),
        avl: u8::from(segment.avl),
        unusable: u8::from(segment.unusable),
        padding: 0,
    }
}

fn from_kvm_segment(segment: &kvm_segment) -> Segment {
    Segment {
        selector: segment.selector,
        base: segment.base,
        limit: segment.limit,
        type_: segment.type_,
        present: segment.present != 0,
        dpl: segment.dpl,
        db: segment.db != 0,
        s: segment.s != 0,
        l: segment.l != 0,
        g: segment.g != 0,
        avl: segment.avl != 0,
        unusable: segment.unusable != 0,
    }
}

fn to_dtable(table: &TableRegister) -> kvm_dtable {
    kvm_dtable {
        base: table.base,
        limit: table.limit,
        padding: [0; 3],
    }
}

pub(crate) fn set_cpu_state(vcpu: &VcpuFd, state: &CpuState) -> Result<(), AccelError> {
    let CpuState::X86_64(state) = state else {
        return Err(AccelError::WrongArch {
            expected: machine::Arch::X86_64,
            found: state.arch(),
        });
    };
    let g = &state.gprs;
    let regs = kvm_regs {
        rax: g[0],
        rcx: g[1],
        rdx: g[2],
        rbx: g[3],
        rsp: g[4],
        rbp: g[5],
        rsi: g[6],
        rdi: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: state.rip,
        rflags: state.rflags,
    };
    // Start from KVM's own values so fields moat does not model (the APIC base,
    // the pending-interrupt bitmap) keep what KVM considers valid.
    let mut sregs: kvm_sregs = vcpu
        .get_sregs()
        .map_err(|error| AccelError::host("reading the vCPU's special registers", error))?;
    sregs.cs = to_kvm_segment(&state.cs);
    sregs.ds = to_kvm_segment(&state.ds);
    sregs.es = to_kvm_segment(&state.es);
    sregs.fs = to_kvm_segment(&state.fs);
    sregs.gs = to_kvm_segment(&state.gs);
    sregs.ss = to_kvm_segment(&state.ss);
    sregs.tr = to_kvm_segment(&state.tr);
    sregs.ldt = to_kvm_segment(&state.ldtr);
    sregs.gdt = to_dtable(&state.gdt);
    sregs.idt = to_dtable(&state.idt);
    sregs.cr0 = state.cr0;
    sregs.cr2 = state.cr2;
    sregs.cr3 = state.cr3;
    sregs.cr4 = state.cr4;
    sregs.efer = state.efer;
    vcpu.set_sregs(&sregs)
        .map_err(|error| AccelError::host("setting the vCPU's special registers", error))?;
    vcpu.set_regs(&regs)
        .map_err(|error| AccelError::host("setting the vCPU's registers", error))
}

pub(crate) fn get_cpu_state(vcpu: &VcpuFd) -> Result<CpuState, AccelError> {
    let regs = vcpu
        .get_regs()
        .map_err(|error| AccelError::host("reading the vCPU's registers", error))?;
    let sregs = vcpu
        .get_sregs()
        .map_err(|error| AccelError::host("reading the vCPU's special registers", error))?;
    Ok(CpuState::X86_64(Box::new(X86CpuState {
        gprs: [
            regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi,
            regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
        ],
        rip: regs.rip,
        rflags: regs.rflags,
        cs: from_kvm_segment(&sregs.cs),
        ds: from_kvm_segment(&sregs.ds),
        es: from_kvm_segment(&sregs.es),
        fs: from_kvm_segment(&sregs.fs),
        gs: from_kvm_segment(&sregs.gs),
        ss: from_kvm_segment(&sregs.ss),
        tr: from_kvm_segment(&sregs.tr),
        ldtr: from_kvm_segment(&sregs.ldt),
        gdt: TableRegister {
            base: sregs.gdt.base,
            limit: sregs.gdt.limit,
        },
        idt: TableRegister {
            base: sregs.idt.base,
            limit: sregs.idt.limit,
        },
        cr0: sregs.cr0,
        cr2: sregs.cr2,
        cr3: sregs.cr3,
        cr4: sregs.cr4,
        efer: sregs.efer,
    })))
}
