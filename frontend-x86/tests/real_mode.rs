//! Real mode and 16-bit code on the front end, run by moat's exec loop on
//! the interpreter and on the JIT: 16-bit arithmetic and addressing with
//! operand- and address-size prefixes, real-mode segment arithmetic,
//! interrupts and exceptions through the IVT, and an SMP application-processor trampoline from the SIPI state
//! through protected mode into long mode.
//!
//! The code is hand-assembled; each byte sequence carries its assembly. The
//! expected results follow the Intel SDM (the host cannot run real mode to
//! compare against): Vol. 1 "Effective address computation" and "Stack"
//! for 16-bit address and stack wrap, Vol. 3A "Real-Address Mode Operation"
//! (address translation and interrupt handling in real-address mode), Vol.
//! 2A INT n/IRET ("REAL-ADDRESS-MODE") and LGDT, and Vol. 3A "Processor State
//! After Reset" (Table 9-1) and "Switching to Protected Mode" /
//! "Initializing IA-32e Mode" for the trampoline.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use accel_tcg::guest::GuestCpu;
use common::{Engine, TestVm};
use frontend_x86::X86Cpu;
use machine::{VcpuExit, X86CpuState};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

struct Machine {
    vm: TestVm,
}

impl Machine {
    /// 4 MiB of RAM holding `pieces` (physical address, bytes), with a CPU
    /// started as an AP by a SIPI with `vector`.
    fn sipi(vector: u8, pieces: &[(u64, &[u8])]) -> Machine {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        for (at, bytes) in pieces {
            mem.write_slice(bytes, GuestAddress(*at)).unwrap();
        }
        let mut cpu = X86Cpu::new();
        cpu.start_at_sipi(vector);
        Machine {
            vm: TestVm::new(cpu, mem),
        }
    }

    fn run(&mut self) -> Option<VcpuExit> {
        self.vm.run(1000)
    }

    fn state(&mut self) -> X86CpuState {
        self.vm.state()
    }

    fn read<const N: usize>(&self, at: u64) -> [u8; N] {
        let mut b = [0u8; N];
        self.vm.memory.read_slice(&mut b, GuestAddress(at)).unwrap();
        b
    }

    fn word(&self, at: u64) -> u16 {
        u16::from_le_bytes(self.read(at))
    }
}

/// Runs `m` on the interpreter, then again from scratch on the JIT (where
/// the host is x86-64), checking both with `check`.
fn both(make: impl Fn() -> Machine, check: impl Fn(&mut Machine, Option<VcpuExit>)) {
    let mut m = make();
    let exit = m.run();
    check(&mut m, exit);
    if cfg!(target_arch = "x86_64") {
        let mut m = make();
        m.vm.engine = Engine::Jit;
        let exit = m.run();
        check(&mut m, exit);
    }
}

fn halted_at(exit: Option<VcpuExit>) -> u64 {
    match exit {
        Some(VcpuExit::Halted { pc }) => pc,
        other => panic!("expected hlt, got {other:?}"),
    }
}

/// The INIT state (SDM Vol. 3A, Table 9-1) and the SIPI entry point.
#[test]
fn init_and_sipi_state() {
    let mut cpu = X86Cpu::new();
    cpu.reset_to_init();
    let machine::CpuState::X86_64(s) = cpu.cpu_state() else {
        panic!("not an x86 CPU state")
    };
    assert_eq!(s.cr0, 0x6000_0010);
    assert_eq!(s.rflags, 2);
    assert_eq!(
        (s.cs.selector, s.cs.base, s.cs.limit),
        (0xf000, 0xffff_0000, 0xffff)
    );
    assert_eq!(s.rip, 0xfff0);
    assert_eq!(cpu.pc(), 0xffff_fff0, "the reset vector");
    for seg in [s.ds, s.es, s.fs, s.gs, s.ss] {
        assert_eq!((seg.selector, seg.base, seg.limit), (0, 0, 0xffff));
        assert!(seg.present && seg.s && !seg.db);
    }
    assert_eq!((s.idt.base, s.idt.limit), (0, 0xffff));
    assert_eq!((s.gdt.base, s.gdt.limit), (0, 0xffff));
    assert_eq!(s.efer, 0);
    assert_eq!(s.gprs[2], 0x0005_06e3, "EDX holds the cpuid signature");
    assert!(s.gprs.iter().enumerate().all(|(i, &r)| i == 2 || r == 0));

    cpu.start_at_sipi(0x9a);
    let machine::CpuState::X86_64(s) = cpu.cpu_state() else {
        panic!("not an x86 CPU state")
    };
    assert_eq!(
        (s.cs.selector, s.cs.base, s.cs.limit),
        (0x9a00, 0x9_a000, 0xffff)
    );
    assert_eq!(s.rip, 0);
    assert_eq!(cpu.pc(), 0x9_a000);
    // 16-bit code: neither CS.D nor CS.L, no CR0.PE.
    use frontend_x86::translate::tbflags;
    let f = cpu.tb_flags();
    assert_eq!(f & (tbflags::CODE64 | tbflags::CODE32 | tbflags::PE), 0);

    // A real-mode state round-trips through machine::X86CpuState, at CPL 0
    // whatever the CS cache's DPL field holds.
    let mut st = *s;
    st.cs.dpl = 3;
    st.ds.base = 0x1_2340;
    st.ds.selector = 0x1234;
    let mut other = X86Cpu::new();
    other
        .set_cpu_state(&machine::CpuState::X86_64(Box::new(st.clone())))
        .unwrap();
    assert_eq!(other.state.cpl, 0);
    let machine::CpuState::X86_64(back) = other.cpu_state() else {
        panic!("not an x86 CPU state")
    };
    assert_eq!(*back, st);
}

/// 16-bit arithmetic and addressing, with 0x66 and 0x67 prefixes.
#[test]
fn sixteen_bit_arithmetic_and_prefixes() {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xb8, 0xff, 0xff,                   // 00: mov ax, 0xffff
        0x05, 0x01, 0x00,                   // 03: add ax, 1        ; ax = 0: CF PF AF ZF
        0x9c,                               // 06: pushf            ; SP 0 -> 0xfffe (wraps)
        0x5d,                               // 07: pop bp           ; bp = FLAGS, SP -> 0
        0xb8, 0x34, 0x12,                   // 08: mov ax, 0x1234
        0x66, 0xb9, 0x78, 0x56, 0x34, 0x12, // 0b: mov ecx, 0x12345678
        0x66, 0x01, 0xc8,                   // 11: add eax, ecx
        0xbb, 0xf0, 0xff,                   // 14: mov bx, 0xfff0
        0xbe, 0x30, 0x00,                   // 17: mov si, 0x30
        0x8d, 0x38,                         // 1a: lea di, [bx+si]  ; 0x10020 wraps to 0x0020
        0x67, 0x8d, 0x14, 0x59,             // 1c: lea dx, [ecx+ebx*2] ; 32-bit address, 16-bit result
        0xc6, 0x40, 0x40, 0x5a,             // 20: mov byte [bx+si+0x40], 0x5a ; DS:0x0060
        0x66, 0x6a, 0xfe,                   // 24: push dword -2    ; 4 bytes, SP 0 -> 0xfffc
        0x66, 0x5e,                         // 27: pop esi          ; esi = 0xfffffffe, SP -> 0
        0xb9, 0x03, 0x00,                   // 29: mov cx, 3
        0x47,                               // 2c: inc di
        0xe2, 0xfd,                         // 2d: loop 0x2c        ; counts cx only
        0x67, 0xe3, 0x07,                   // 2f: jecxz 0x39       ; ecx = 0x12340000: not taken
        0xe3, 0x01,                         // 32: jcxz 0x35        ; cx = 0: taken
        0xf4,                               // 34: hlt              ; (skipped)
        0x43,                               // 35: inc bx
        0xe8, 0x01, 0x00,                   // 36: call 0x3a        ; pushes IP 0x39 at SS:0xfffe
        0xf4,                               // 39: hlt
        0x43,                               // 3a: inc bx
        0xc3,                               // 3b: ret
    ];
    both(
        || Machine::sipi(0x01, &[(0x1000, code)]),
        |m, exit| {
            assert_eq!(halted_at(exit), 0x103a);
            let s = m.state();
            let r = |n: usize| s.gprs[n];
            // FLAGS from pushf: CF, PF, AF, ZF and the fixed bit 1.
            assert_eq!(r(5), 0x57, "bp");
            // 0x1234 + 0x12345678
            assert_eq!(r(0), 0x1234_68ac, "eax");
            // (0x12345678 + 2 * 0xfff0) & 0xffff into dx; edx's upper half
            // (from the signature 0x000506e3) is kept.
            assert_eq!(r(2), 0x0005_5658, "edx");
            assert_eq!(
                r(7),
                0x23,
                "di: lea wrapped to 0x20, then three loop iterations"
            );
            assert_eq!(r(6), 0xffff_fffe, "esi");
            assert_eq!(r(1), 0x1234_0000, "ecx: loop decremented cx only");
            assert_eq!(r(3), 0xfff2, "bx: jcxz taken, jecxz not, the call returned");
            assert_eq!(r(4), 0, "sp back at 0 after wrapping");
            // The byte store wrapped within the 64 KiB segment.
            assert_eq!(m.read::<1>(0x60), [0x5a]);
            assert_eq!(m.read::<1>(0x1_0060), [0]);
            // The return address the call pushed at SS:0xfffe.
            assert_eq!(m.word(0xfffe), 0x39);
        },
    );
}

/// Real-mode segment arithmetic: linear = (selector << 4) + offset.
#[test]
fn real_mode_segments() {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xb3, 0x77,                         // 00: mov bl, 0x77
        0xb8, 0x34, 0x12,                   // 02: mov ax, 0x1234
        0x8e, 0xd8,                         // 05: mov ds, ax
        0x88, 0x1e, 0x10, 0x00,             // 07: mov [0x10], bl   ; physical 0x12350
        0xc4, 0x3e, 0x20, 0x00,             // 0b: les di, [0x20]   ; far pointer at 0x12360
        0x26, 0x88, 0x1d,                   // 0f: mov es:[di], bl  ; 0x20000 + 0x5678
        0xb8, 0x00, 0x30,                   // 12: mov ax, 0x3000
        0x8e, 0xd0,                         // 15: mov ss, ax
        0xbc, 0x00, 0x01,                   // 17: mov sp, 0x100
        0x53,                               // 1a: push bx          ; physical 0x300fe
        0x1e,                               // 1b: push ds
        0x07,                               // 1c: pop es           ; es = 0x1234
        0x8c, 0xc2,                         // 1d: mov dx, es
        0xbe, 0x10, 0x00,                   // 1f: mov si, 0x10
        0xbf, 0x00, 0x01,                   // 22: mov di, 0x100
        0xb9, 0x02, 0x00,                   // 25: mov cx, 2
        0xf3, 0xa4,                         // 28: rep movsb        ; DS:SI -> ES:DI, cx times
        0x9a, 0x00, 0x00, 0x00, 0x02,       // 2a: call 0x0200:0x0000 ; pushes CS, IP
        0xf4,                               // 2f: hlt
    ];
    #[rustfmt::skip]
    let far: &[u8] = &[
        0x42,                               // inc dx
        0xcb,                               // retf
    ];
    // The far pointer 0x2000:0x5678 at DS:0x20.
    let ptr: &[u8] = &[0x78, 0x56, 0x00, 0x20];
    both(
        || Machine::sipi(0x01, &[(0x1000, code), (0x1_2360, ptr), (0x2000, far)]),
        |m, exit| {
            assert_eq!(halted_at(exit), 0x1030);
            // The far call's frame below SS:0xfe: IP 0x2f, then CS 0x100.
            assert_eq!((m.word(0x3_00fa), m.word(0x3_00fc)), (0x2f, 0x100));
            assert_eq!(m.read::<2>(0x1_2440), [0x77, 0]);
            assert_eq!(m.read::<1>(0x1_2350), [0x77]);
            assert_eq!(m.read::<1>(0x2_5678), [0x77], "through es:di from les");
            assert_eq!(m.word(0x3_00fe), 0x77);
            let s = m.state();
            assert_eq!(
                (s.ds.selector, s.ds.base, s.ds.limit),
                (0x1234, 0x1_2340, 0xffff)
            );
            assert_eq!((s.es.selector, s.es.base), (0x1234, 0x1_2340));
            assert_eq!((s.ss.selector, s.ss.base), (0x3000, 0x3_0000));
            assert_eq!(
                s.gprs[2] & 0xffff,
                0x1235,
                "dx = es, plus one in the far procedure"
            );
            assert_eq!((s.cs.selector, s.cs.base), (0x100, 0x1000));
            assert_eq!(
                (s.gprs[6], s.gprs[7], s.gprs[1]),
                (0x12, 0x102, 0),
                "si, di, cx"
            );
            assert_eq!(s.gprs[4], 0xfe, "sp after push, push, pop");
        },
    );
}

/// `int 0x40` through the IVT and back with `iret`; `ud2` through IVT
/// entry 6 with the faulting IP pushed.
#[test]
fn interrupts_through_the_ivt() {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xfb,                               // 00: sti
        0xbc, 0x00, 0x80,                   // 01: mov sp, 0x8000
        0xcd, 0x40,                         // 04: int 0x40
        0x0f, 0x0b,                         // 06: ud2
    ];
    #[rustfmt::skip]
    let handler40: &[u8] = &[
        0x9c,                               // pushf
        0x58,                               // pop ax               ; FLAGS inside: IF clear
        0x8c, 0xcb,                         // mov bx, cs
        0x89, 0xe5,                         // mov bp, sp
        0xb9, 0xef, 0xbe,                   // mov cx, 0xbeef
        0xcf,                               // iret
    ];
    // IVT entries: 0x40 -> 0200:0010 (physical 0x2010), 6 -> 0300:0004.
    let ivt40: &[u8] = &[0x10, 0x00, 0x00, 0x02];
    let ivt6: &[u8] = &[0x04, 0x00, 0x00, 0x03];
    both(
        || {
            Machine::sipi(
                0x01,
                &[
                    (0x1000, code),
                    (0x2010, handler40),
                    (0x40 * 4, ivt40),
                    (6 * 4, ivt6),
                    (0x3004, &[0xf4]),
                ],
            )
        },
        |m, exit| {
            assert_eq!(halted_at(exit), 0x3005, "in the #UD handler");
            let s = m.state();
            assert_eq!(s.gprs[0] & 0x200, 0, "IF clear in the handler");
            assert_eq!(s.gprs[0] & 0x2, 2);
            assert_eq!(s.gprs[3], 0x200, "bx = cs in the handler");
            assert_eq!(s.gprs[5], 0x7ffa, "bp: three words pushed");
            assert_eq!(s.gprs[1], 0xbeef);
            // The int 0x40 frame: IP after int, CS, FLAGS with IF.
            assert_eq!(m.word(0x7ffa), 0x06);
            assert_eq!(m.word(0x7ffc), 0x100);
            assert_eq!(m.word(0x7ffe), 0x202);
            // After iret, ud2 faulted: its own IP, CS, FLAGS (IF restored).
            assert_eq!(s.gprs[4], 0x7ffa);
            assert_eq!(m.word(0x7ffa), 0x06);
            assert_eq!((s.cs.selector, s.cs.base), (0x300, 0x3000));
            assert_eq!(s.rflags & 0x200, 0, "IF clear in the #UD handler");
        },
    );
}

/// An AP trampoline: SIPI state → lgdt → CR0.PE → ljmpl to 32-bit code →
/// flat segments, PAE, EFER.LME, paging → ljmp to 64-bit code, which stores
/// a marker and halts.
#[test]
fn ap_trampoline_to_long_mode() {
    // At 0x8000 (SIPI vector 8: CS = 0x0800, IP = 0).
    #[rustfmt::skip]
    let real: &[u8] = &[
        0xfa,                               // 00: cli
        0x8c, 0xc8,                         // 01: mov ax, cs
        0x8e, 0xd8,                         // 03: mov ds, ax
        0x0f, 0x01, 0x16, 0xf0, 0x00,       // 05: lgdt [0xf0]      ; 16-bit operand: 24-bit base
        0x0f, 0x20, 0xc0,                   // 0a: mov eax, cr0
        0x66, 0x83, 0xc8, 0x01,             // 0d: or eax, 1        ; CR0.PE
        0x0f, 0x22, 0xc0,                   // 11: mov cr0, eax     ; 16-bit protected mode now
        0x66, 0xea, 0x00, 0x82, 0x00, 0x00, 0x08, 0x00, // 14: ljmpl 0x08:0x8200
    ];
    // The GDT pseudo-descriptor at 0x80f0: limit 0x1f, base 0xff008100. The
    // top byte is ignored by a 16-bit lgdt (SDM Vol. 2A, LGDT), so the GDT
    // is at 0x8100; a 32-bit base would point outside RAM and fault.
    let gdt_desc: &[u8] = &[0x1f, 0x00, 0x00, 0x81, 0x00, 0xff];
    let gdt: Vec<u8> = [
        0u64,
        0x00cf_9a00_0000_ffff, // 0x08: 32-bit code, flat
        0x00cf_9200_0000_ffff, // 0x10: data, flat
        0x00af_9a00_0000_ffff, // 0x18: 64-bit code
    ]
    .iter()
    .flat_map(|d| d.to_le_bytes())
    .collect();
    // At 0x8200, 32-bit protected mode.
    #[rustfmt::skip]
    let prot: &[u8] = &[
        0xb8, 0x10, 0x00, 0x00, 0x00,       // 00: mov eax, 0x10
        0x8e, 0xd8,                         // 05: mov ds, eax
        0x8e, 0xc0,                         // 07: mov es, eax
        0x8e, 0xd0,                         // 09: mov ss, eax
        0xbc, 0x00, 0x90, 0x00, 0x00,       // 0b: mov esp, 0x9000
        0x0f, 0x20, 0xe0,                   // 10: mov eax, cr4
        0x83, 0xc8, 0x20,                   // 13: or eax, 0x20     ; CR4.PAE
        0x0f, 0x22, 0xe0,                   // 16: mov cr4, eax
        0xb8, 0x00, 0x00, 0x01, 0x00,       // 19: mov eax, 0x10000
        0x0f, 0x22, 0xd8,                   // 1e: mov cr3, eax
        0xb9, 0x80, 0x00, 0x00, 0xc0,       // 21: mov ecx, 0xc0000080 ; IA32_EFER
        0x0f, 0x32,                         // 26: rdmsr
        0x0d, 0x00, 0x01, 0x00, 0x00,       // 28: or eax, 0x100    ; EFER.LME
        0x0f, 0x30,                         // 2d: wrmsr
        0x0f, 0x20, 0xc0,                   // 2f: mov eax, cr0
        0x0d, 0x00, 0x00, 0x00, 0x80,       // 32: or eax, 0x80000000 ; CR0.PG: long mode active
        0x0f, 0x22, 0xc0,                   // 37: mov cr0, eax
        0x6a, 0x2a,                         // 3a: push 42          ; 32-bit stack at 0x8ffc
        0xea, 0x00, 0x83, 0x00, 0x00, 0x18, 0x00, // 3c: ljmp 0x18:0x8300
    ];
    // At 0x8300, 64-bit mode.
    #[rustfmt::skip]
    let long: &[u8] = &[
        0x48, 0xb8, 0xef, 0xbe, 0xad, 0xde, 0x0d, 0xd0, 0xfe, 0xca, // mov rax, 0xcafed00ddeadbeef
        0x48, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,             // mov [0x5000], rax
        0xf4,                                                       // hlt
    ];
    // PML4 0x10000 -> PDPT 0x11000 -> PD 0x12000: one 2 MiB identity page.
    let pml4 = 0x1_1003u64.to_le_bytes();
    let pdpt = 0x1_2003u64.to_le_bytes();
    let pd = 0x83u64.to_le_bytes();
    both(
        || {
            Machine::sipi(
                0x08,
                &[
                    (0x8000, real),
                    (0x80f0, gdt_desc),
                    (0x8100, &gdt),
                    (0x8200, prot),
                    (0x8300, long),
                    (0x1_0000, &pml4),
                    (0x1_1000, &pdpt),
                    (0x1_2000, &pd),
                ],
            )
        },
        |m, exit| {
            assert_eq!(halted_at(exit), 0x8313);
            assert_eq!(
                u64::from_le_bytes(m.read(0x5000)),
                0xcafe_d00d_dead_beef,
                "the marker"
            );
            assert_eq!(m.word(0x8ffc), 42, "the 32-bit push");
            let s = m.state();
            assert_eq!(s.gdt.base, 0x8100);
            assert_eq!(s.gdt.limit, 0x1f);
            assert_eq!(s.cr0 & 0x8000_0001, 0x8000_0001);
            assert_eq!(s.efer & 0x500, 0x500, "LME and LMA");
            assert!(s.cs.l && s.cs.selector == 0x18);
            assert_eq!(
                (s.ss.selector, s.ss.base, s.ss.limit),
                (0x10, 0, 0xffff_ffff)
            );
            assert_eq!(s.gprs[4], 0x8ffc);
        },
    );
}

/// pusha/popa on a 16-bit stack, then the older way into protected mode:
/// `lmsw` sets CR0.PE (and cannot clear it again), a 16-bit `ljmp`.
#[test]
fn pusha_popa_and_lmsw() {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xb8, 0x11, 0x11,                   // 00: mov ax, 0x1111
        0xb9, 0x22, 0x22,                   // 03: mov cx, 0x2222
        0xbc, 0x00, 0x40,                   // 06: mov sp, 0x4000
        0x60,                               // 09: pusha            ; 16 bytes at 0x3ff0
        0x31, 0xc0,                         // 0a: xor ax, ax
        0x31, 0xc9,                         // 0c: xor cx, cx
        0x61,                               // 0e: popa             ; ax, cx back, sp 0x4000
        0x89, 0xc3,                         // 0f: mov bx, ax
        0x0f, 0x01, 0x16, 0xf0, 0x80,       // 11: lgdt [0x80f0]
        0xb8, 0x01, 0x00,                   // 16: mov ax, 1
        0x0f, 0x01, 0xf0,                   // 19: lmsw ax          ; CR0.PE
        0xea, 0x00, 0x82, 0x08, 0x00,       // 1c: ljmp 0x0008:0x8200 (ptr16:16)
    ];
    #[rustfmt::skip]
    let prot: &[u8] = &[
        0x31, 0xc0,                         // xor eax, eax
        0x0f, 0x01, 0xf0,                   // lmsw ax              ; PE stays set
        0xf4,                               // hlt
    ];
    let gdt_desc: &[u8] = &[0x17, 0x00, 0x00, 0x81, 0x00, 0x00];
    let gdt: Vec<u8> = [0u64, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    both(
        || {
            Machine::sipi(
                0x01,
                &[
                    (0x1000, code),
                    (0x80f0, gdt_desc),
                    (0x8100, &gdt),
                    (0x8200, prot),
                ],
            )
        },
        |m, exit| {
            assert_eq!(halted_at(exit), 0x8206);
            let s = m.state();
            assert_eq!(s.cr0 & 1, 1, "PE set by lmsw and kept");
            assert!(s.cs.db && s.cs.selector == 8);
            assert_eq!((s.gprs[1], s.gprs[3], s.gprs[4]), (0x2222, 0x1111, 0x4000));
            // pusha's frame: ax at the top, then cx, dx, bx, the original
            // sp, bp, si, di.
            assert_eq!(m.word(0x3ffe), 0x1111);
            assert_eq!(m.word(0x3ffc), 0x2222);
            assert_eq!(m.word(0x3ff6), 0x4000);
        },
    );
}
