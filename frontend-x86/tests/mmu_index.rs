//! Soft-MMU indexes on the exec loop: ring-3 and ring-0 code alternate
//! (`syscall`/`sysretq`) around a page mapped supervisor-only. The kernel's
//! accesses to it succeed, the user's fault with a user #PF, and the
//! privilege changes flush no TLB: each privilege has its own.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Arc;

use accel_tcg::exec::engine::{Engine, InterpEngine, JitEngine};
use accel_tcg::exec::{Machine, TcgVcpu};
use accel_tcg::guest::GuestCpu;
use accel_tcg::softmmu::Access;
use devices::{Bus, VmLifecycle};
use frontend_x86::X86Cpu;
use frontend_x86::mmu::{MMU_SUPERVISOR, MMU_USER};
use machine::{VcpuExit, X86CpuState};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const CODE: u64 = 0x10_0000;
const USER: u64 = 0x10_1000;
const HANDLERS: u64 = 0x2_0000;
/// The syscall handler shares the exception handlers' page (in vector 32's
/// slot, never used), so that translating the #PF handler marks no new code
/// page: a new code page flushes the TLBs, which would hide what the
/// privilege changes left in them.
const LSTAR: u64 = HANDLERS + 32 * 0x40;
const IDT: u64 = 0x8000;
const GDT: u64 = 0x500;
const TSS: u64 = 0x7000;
const STACK_TOP: u64 = 0x9_0000;
const RSP0: u64 = 0x8_0000;
const USER_STACK: u64 = 0x7_0000;
/// Mapped for the supervisor only.
const SUPERVISOR_PAGE: u64 = 0x5000;
/// Mapped for the user (and so for the supervisor too).
const USER_PAGE: u64 = 0x6000;

fn imm32(v: u64) -> [u8; 4] {
    (v as u32).to_le_bytes()
}

/// A long-mode machine whose kernel enters user mode, where the user calls
/// the kernel `rounds` times with `syscall` and then reads the supervisor
/// page. Every vector's handler is `hlt`.
fn machine(rounds: u32) -> (GuestMemoryMmap, X86Cpu) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
    // PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000: the first 2 MiB
    // in 4 KiB user pages, but for the supervisor page.
    for a in [0x1000u64, 0x2000, 0x3000] {
        mem.write_obj(a + 0x1000 + 7, GuestAddress(a)).unwrap();
    }
    for i in 0..512u64 {
        let pa = i << 12;
        let flags = if pa == SUPERVISOR_PAGE { 3 } else { 7 };
        mem.write_obj(pa | flags, GuestAddress(0x4000 + i * 8))
            .unwrap();
    }
    // GDT: kernel code64 0x08, kernel data 0x10, user data 0x20, user
    // code64 0x28, TSS 0x30 (16 bytes).
    let gdt: [u64; 8] = [
        0,
        0x00af_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0,
        0x00cf_f300_0000_ffff,
        0x00af_fb00_0000_ffff,
        0x67 | (TSS & 0xff_ffff) << 16 | 0x89 << 40 | (TSS >> 24 & 0xff) << 56,
        TSS >> 32,
    ];
    for (i, d) in gdt.iter().enumerate() {
        mem.write_obj(*d, GuestAddress(GDT + i as u64 * 8)).unwrap();
    }
    mem.write_obj(RSP0, GuestAddress(TSS + 4)).unwrap();
    for v in 0..256u64 {
        let h = HANDLERS + v * 0x40;
        mem.write_slice(&[0xf4], GuestAddress(h)).unwrap();
        let lo =
            (h & 0xffff) | (0x08 << 16) | (0xeu64 << 40) | (1 << 47) | (h >> 16 & 0xffff) << 48;
        mem.write_obj(lo, GuestAddress(IDT + v * 16)).unwrap();
        mem.write_obj(h >> 32, GuestAddress(IDT + v * 16 + 8))
            .unwrap();
    }

    // Kernel: ltr, STAR, LSTAR, EFER.SCE, then iretq to USER at CPL 3.
    let mut code = vec![0x66, 0xb8, 0x30, 0x00, 0x0f, 0x00, 0xd8]; // mov ax, 0x30; ltr ax
    code.push(0xb9);
    code.extend(imm32(0xc000_0081));
    code.push(0xba);
    code.extend(imm32(0x0018_0008));
    code.extend([0x31, 0xc0, 0x0f, 0x30]); // STAR
    code.push(0xb9);
    code.extend(imm32(0xc000_0082));
    code.push(0xb8);
    code.extend(imm32(LSTAR));
    code.extend([0x31, 0xd2, 0x0f, 0x30]); // LSTAR
    code.push(0xb9);
    code.extend(imm32(0xc000_0080));
    code.extend([0x0f, 0x32, 0x83, 0xc8, 0x01, 0x0f, 0x30]); // EFER.SCE
    for v in [0x23u64, USER_STACK, 0x202, 0x2b, USER] {
        code.push(0x68);
        code.extend(imm32(v));
    }
    code.extend([0x48, 0xcf]); // iretq
    mem.write_slice(&code, GuestAddress(CODE)).unwrap();

    // User: r12 = rounds; loop { read the user page; syscall } then read the
    // user page and the supervisor page (#PF).
    let mut user = vec![0x41, 0xbc];
    user.extend(imm32(rounds as u64)); // mov r12d, rounds
    user.extend([0x48, 0x8b, 0x04, 0x25]);
    user.extend(imm32(USER_PAGE)); // mov rax, [USER_PAGE]
    user.extend([0x0f, 0x05]); // syscall
    user.extend([0x49, 0xff, 0xcc]); // dec r12
    user.extend([0x75, 0xf1]); // jnz back to the load
    user.extend([0x48, 0x8b, 0x04, 0x25]);
    user.extend(imm32(USER_PAGE)); // mov rax, [USER_PAGE]
    user.extend([0x48, 0x8b, 0x04, 0x25]);
    user.extend(imm32(SUPERVISOR_PAGE)); // mov rax, [SUPERVISOR_PAGE]
    user.push(0xf4);
    mem.write_slice(&user, GuestAddress(USER)).unwrap();

    // syscall handler: r13 += [SUPERVISOR_PAGE]; [SUPERVISOR_PAGE + 8] += 1;
    // sysretq.
    let mut kernel = vec![0x48, 0x8b, 0x04, 0x25];
    kernel.extend(imm32(SUPERVISOR_PAGE)); // mov rax, [SUPERVISOR_PAGE]
    kernel.extend([0x49, 0x01, 0xc5]); // add r13, rax
    kernel.extend([0x48, 0xff, 0x04, 0x25]);
    kernel.extend(imm32(SUPERVISOR_PAGE + 8)); // inc qword [SUPERVISOR_PAGE + 8]
    kernel.extend([0x48, 0x0f, 0x07]); // sysretq
    mem.write_slice(&kernel, GuestAddress(LSTAR)).unwrap();
    mem.write_obj(3u64, GuestAddress(SUPERVISOR_PAGE)).unwrap();

    let mut st: X86CpuState = machine::boards::pc::boot::long_mode_entry(CODE);
    st.cr3 = 0x1000;
    st.cr0 |= 1 << 16; // WP
    st.gdt.base = GDT;
    st.gdt.limit = 63;
    st.idt.base = IDT;
    st.idt.limit = 0xfff;
    st.gprs[4] = STACK_TOP;
    st.cs.selector = 8;
    for s in [&mut st.ds, &mut st.es, &mut st.ss, &mut st.fs, &mut st.gs] {
        s.selector = 0x10;
    }
    let mut cpu = X86Cpu::new();
    cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
        .unwrap();
    (mem, cpu)
}

/// What a run leaves behind.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    state: X86CpuState,
    /// The exception frame's error code and return rip.
    frame: [u64; 2],
    /// `[SUPERVISOR_PAGE + 8]`: how often the kernel wrote there.
    kernel_writes: u64,
    /// Full TLB flushes over the whole run.
    flushes: u64,
    /// Whether each index's TLB maps the supervisor page for reads, and
    /// the user page.
    supervisor_maps: (bool, bool),
    user_maps: (bool, bool),
}

fn run<E: Engine>(engine: E, rounds: u32) -> Outcome {
    let (mem, cpu) = machine(rounds);
    let lifecycle = Arc::new(VmLifecycle::new());
    let machine = Machine {
        memory: mem.clone(),
        pio: Arc::new(Bus::new("pio")),
        mmio: Arc::new(Bus::new("mmio")),
        lifecycle: lifecycle.clone(),
        interrupts: Arc::new(devices::NoInterruptController),
        clock: devices::Clock::new(),
        index: 0,
        cpus: 1,
        shared_code: accel_tcg::exec::SharedCodePages::new(lifecycle),
    };
    let mut vcpu = TcgVcpu::new(cpu, engine, machine);
    let exit = vcpu.run_guest().unwrap();
    assert!(matches!(exit, VcpuExit::Halted { .. }), "{exit:?}");
    let machine::CpuState::X86_64(state) = vcpu.cpu().cpu_state() else {
        panic!("not an x86 CPU state")
    };
    let tlb = &vcpu.cpu().state().header.tlb;
    let maps = |idx: usize, va: u64| tlb[idx].lookup(va, 8, Access::Read).is_some();
    let sp = state.gprs[4];
    Outcome {
        frame: [
            mem.read_obj(GuestAddress(sp)).unwrap(),
            mem.read_obj(GuestAddress(sp + 8)).unwrap(),
        ],
        kernel_writes: mem.read_obj(GuestAddress(SUPERVISOR_PAGE + 8)).unwrap(),
        flushes: tlb.flushes(),
        supervisor_maps: (
            maps(MMU_SUPERVISOR, SUPERVISOR_PAGE),
            maps(MMU_SUPERVISOR, USER_PAGE),
        ),
        user_maps: (maps(MMU_USER, SUPERVISOR_PAGE), maps(MMU_USER, USER_PAGE)),
        state: *state,
    }
}

fn check(o: &Outcome, rounds: u32) {
    let s = &o.state;
    assert_eq!(s.rip, HANDLERS + 14 * 0x40 + 1, "halted in the #PF handler");
    assert_eq!(s.cr2, SUPERVISOR_PAGE);
    assert_eq!(o.frame, [5, USER + 29], "#PF: present | user, at the load");
    assert_eq!(s.gprs[12], 0, "every round ran");
    assert_eq!(s.gprs[13], 3 * rounds as u64, "the kernel read the page");
    assert_eq!(o.kernel_writes, rounds as u64, "the kernel wrote the page");
    assert_eq!(o.supervisor_maps, (true, false));
    assert_eq!(o.user_maps, (false, true));
}

#[test]
fn user_and_kernel_alternate_without_tlb_flushes() {
    const ROUNDS: u32 = 40;
    let jit = || JitEngine::new(1 << 20, size_of::<frontend_x86::X86State>()).unwrap();
    let interp = || InterpEngine::new(size_of::<frontend_x86::X86State>());
    let one = run(jit(), 1);
    let many = run(jit(), ROUNDS);
    check(&one, 1);
    check(&many, ROUNDS);
    // Loading the state, EFER and new code pages flush; 80 privilege
    // changes do not add a single flush.
    assert_eq!(many.flushes, one.flushes);
    assert!(many.flushes < 10, "{} flushes", many.flushes);
    let on_interp = run(interp(), ROUNDS);
    check(&on_interp, ROUNDS);
    assert_eq!(on_interp, many, "interpreter and JIT agree");
}
