//! JIT against interpreter on random instruction sequences: words drawn
//! from the decoder's data-processing and load/store lines with random
//! fields, over random register state; both engines must end in the same
//! architectural state and leave the same memory.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::random::{BASE, word};
use common::*;
use frontend_aarch64::translate::{check, tbflags};
use proptest::prelude::*;
use vm_memory::{Bytes, GuestAddress};

fn run_engine(code: &[u32], regs: &[u64; 31], nzcv: u64, engine: Engine) -> (Run, Vec<u8>) {
    let mem = memory_with(code);
    let mut s = entry_state();
    s.x = *regs;
    s.x[BASE as usize] = DATA + 0x4000;
    s.pstate |= nzcv << 28;
    let r = run_state(&mem, s, engine, 1000);
    let mut data = vec![0u8; 0x8000];
    mem.read_slice(&mut data, GuestAddress(DATA)).unwrap();
    (r, data)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn jit_matches_interpreter(
        insns in proptest::collection::vec((any::<usize>(), any::<u32>()), 1..24),
        regs in any::<[u64; 31]>(),
        nzcv in 0..16u64,
    ) {
        // Unallocated words would end most sequences at their first
        // instruction: keep the allocated ones.
        let code: Vec<u32> = insns
            .iter()
            .map(|&(l, b)| word(l, b))
            .filter(|&w| check(w, tbflags::EL1).is_ok())
            .collect();
        let (a, ma) = run_engine(&code, &regs, nzcv, Engine::Interp);
        let (b, mb) = run_engine(&code, &regs, nzcv, Engine::Jit);
        prop_assert_eq!(&a.exit, &b.exit, "code {:08x?}", code);
        prop_assert_eq!(&a.state, &b.state, "code {:08x?}", code);
        prop_assert!(ma == mb, "memory differs; code {:08x?}", code);
    }
}
