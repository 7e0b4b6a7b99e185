//! Shared set-up for this crate's integration tests.

use machine::{Segment, X86CpuState};

/// A flat 64-bit ring-0 CPU at `rip`: code selector 8, data selector 0x10,
/// every base 0, paging off (the tests' memory is mapped 1:1), long mode
/// active. Tests adjust registers, flags and control registers from here.
pub fn flat64_state(rip: u64) -> X86CpuState {
    let seg = |selector: u16, type_: u8, long: bool| Segment {
        selector,
        base: 0,
        limit: 0xffff_ffff,
        type_,
        present: true,
        dpl: 0,
        db: !long,
        s: true,
        l: long,
        g: true,
        avl: false,
        unusable: false,
    };
    let data = seg(0x10, 3, false);
    X86CpuState {
        rip,
        rflags: 2,
        cs: seg(8, 0xb, true),
        ds: data,
        es: data,
        fs: data,
        gs: data,
        ss: data,
        cr0: 1,
        efer: 0x500,
        ..X86CpuState::default()
    }
}
