//! The A64 encoding table (Arm ARM, "A64 Instruction Set Encoding"), in
//! lookup order: within a class, aliases and narrower encodings first.

use crate::translate::{
    branch as br, data_proc_imm as dpi, data_proc_reg as dpr, fp, load_store as ls,
    not_implemented, simd, system as sys,
};

super::a64_table! {
    // ---- Data processing, immediate -------------------------------------
    ADR:        DpImm: "0ii10000 iiiiiiiiiiiiiiiiiii ddddd" => dpi::adr;
    ADRP:       DpImm: "1ii10000 iiiiiiiiiiiiiiiiiii ddddd" => dpi::adrp;
    ADDSUB_IMM: DpImm: "zoS10001 0h iiiiiiiiiiii nnnnn ddddd" => dpi::add_sub_imm;
    LOGIC_IMM:  DpImm: "zoo10010 0N rrrrrr ssssss nnnnn ddddd" => dpi::logic_imm;
    MOVE_WIDE:  DpImm: "zoo10010 1hh iiiiiiiiiiiiiiii ddddd" => dpi::move_wide;
    BITFIELD:   DpImm: "zoo10011 0N rrrrrr ssssss nnnnn ddddd" => dpi::bitfield;
    EXTR:       DpImm: "z0010011 1N0 mmmmm ssssss nnnnn ddddd" => dpi::extr;

    // ---- Branches, exception generation ----------------------------------
    B_BL:       Branch: "o00101 iiiiiiiiiiiiiiiiiiiiiiiiii" => br::b_bl;
    CB:         Branch: "z011010o iiiiiiiiiiiiiiiiiii ttttt" => br::cbz;
    TB:         Branch: "b011011o bbbbb iiiiiiiiiiiiii ttttt" => br::tbz;
    B_COND:     Branch: "01010100 iiiiiiiiiiiiiiiiiii 0 cccc" => br::b_cond;
    BR_BLR_RET: Branch: "1101011 00 pp 11111 000000 nnnnn 00000" => br::br_blr_ret;
    ERET:       Branch: "1101011 0100 11111 000000 11111 00000" => br::eret;
    EXC_GEN:    Branch: "11010100 000 iiiiiiiiiiiiiiii 000 ll" => br::svc_hvc_smc;
    BRK:        Branch: "11010100 001 iiiiiiiiiiiiiiii 000 00" => br::brk;
    // Debug state (HLT, DCPS1-3): no external debugger, so UNDEFINED.
    HLT:        Branch: "11010100 010 iiiiiiiiiiiiiiii 000 00" => not_implemented;
    DCPS:       Branch: "11010100 101 iiiiiiiiiiiiiiii 000 ll" => br::dcps;

    // ---- System ----------------------------------------------------------
    HINT:       System: "11010101 00000011 0010 mmmm ooo 11111" => sys::hint;
    BARRIER:    System: "11010101 00000011 0011 mmmm ooo 11111" => sys::barrier;
    MSR_IMM:    System: "11010101 00000 ooo 0100 mmmm ppp 11111" => sys::msr_imm;
    SYS:        System: "11010101 00 l 01 ooo nnnn mmmm ppp ttttt" => sys::sys;
    MRS_MSR:    System: "11010101 00 l 1o ooo nnnn mmmm ppp ttttt" => sys::mrs_msr;

    // ---- Loads and stores ------------------------------------------------
    LDST_EXCL:  LoadStore: "ss001000 ooo mmmmm o aaaaa nnnnn ttttt" => ls::exclusive;
    LDR_LIT:    LoadStore: "oo011 0 00 iiiiiiiiiiiiiiiiiii ttttt" => ls::literal;
    LDST_PAIR:  LoadStore: "oo101 0 0 pp L iiiiiii aaaaa nnnnn ttttt" => ls::pair;
    LDST_IMM9:  LoadStore: "ss111 0 00 oo 0 iiiiiiiii pp nnnnn ttttt" => ls::imm9;
    LDST_ATOM:  LoadStore: "ss111 0 00 AR 1 mmmmm oooo 00 nnnnn ttttt" => ls::atomic;
    LDST_REG:   LoadStore: "ss111 0 00 oo 1 mmmmm xxx S 10 nnnnn ttttt" => ls::reg_offset;
    LDST_UIMM:  LoadStore: "ss111 0 01 oo iiiiiiiiiiii nnnnn ttttt" => ls::unsigned_offset;

    // ---- Data processing, register ---------------------------------------
    LOGIC_SHIFT: DpReg: "zoo01010 hhN mmmmm iiiiii nnnnn ddddd" => dpr::logic_shifted;
    ADDSUB_SHIFT: DpReg: "zoS01011 hh0 mmmmm iiiiii nnnnn ddddd" => dpr::add_sub_shifted;
    ADDSUB_EXT: DpReg: "zoS01011 001 mmmmm eee iii nnnnn ddddd" => dpr::add_sub_extended;
    ADC_SBC:    DpReg: "zoS11010 000 mmmmm 000000 nnnnn ddddd" => dpr::adc_sbc;
    CCMP:       DpReg: "zo111010 010 mmmmm cccc i 0 nnnnn 0 vvvv" => dpr::cond_compare;
    CSEL:       DpReg: "zo011010 100 mmmmm cccc 0 o nnnnn ddddd" => dpr::cond_select;
    DP_1SRC:    DpReg: "z1011010 110 00000 oooooo nnnnn ddddd" => dpr::one_source;
    DP_2SRC:    DpReg: "z0011010 110 mmmmm oooooo nnnnn ddddd" => dpr::two_source;
    DP_3SRC:    DpReg: "z0011011 ooo mmmmm o aaaaa nnnnn ddddd" => dpr::three_source;

    // ---- SIMD&FP (the a64-fp helper's block) ----------------------------
    FP_LDST_MULT: FpSimd: "0q001100 pL0mmmmm oooo ss nnnnn ttttt" => simd::multiple;
    FP_LDST_LANE: FpSimd: "0q001101 pLRmmmmm ooo S ss nnnnn ttttt" => simd::single_lane;
    FP_LDR_LIT: FpSimd: "oo011100 iiiiiiiiiiiiiiiiiii ttttt" => simd::literal;
    FP_LDST_PAIR: FpSimd: "oo101 1 0 pp L iiiiiii aaaaa nnnnn ttttt" => simd::pair;
    FP_LDST_IMM9: FpSimd: "ss111 1 00 oo 0 iiiiiiiii pp nnnnn ttttt" => simd::imm9;
    FP_LDST_REG: FpSimd: "ss111 1 00 oo 1 mmmmm xxx S 10 nnnnn ttttt" => simd::reg_offset;
    FP_LDST_UIMM: FpSimd: "ss111 1 01 oo iiiiiiiiiiii nnnnn ttttt" => simd::unsigned_offset;
    // Scalar floating point and Advanced SIMD data processing (op0 x111).
    FP_SIMD:    FpSimd: "----111- -------- -------- --------" => fp::data_processing;
}
