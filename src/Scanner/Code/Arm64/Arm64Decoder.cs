using System.Globalization;

namespace DriverAudit.Scanner.Code.Arm64;

/// <summary>What an ARM64 instruction is, as far as the code analysis needs to know.</summary>
internal enum A64Kind : byte
{
    /// <summary>Not modelled: <see cref="A64Instruction.Clobbers"/> says which general registers it may write.</summary>
    Other,
    Undefined,
    Adr,
    Adrp,
    /// <summary>ADD/SUB immediate (Imm is signed: SUB is a negative Imm); S set = ADDS/SUBS (Rd 31 is XZR).</summary>
    AddImm,
    MovZ,
    MovN,
    MovK,
    /// <summary>AND/ORR/EOR/ANDS with a bitmask immediate (Op: 0 AND, 1 ORR, 2 EOR, 3 ANDS).</summary>
    LogicalImm,
    /// <summary>AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS shifted register (Op = opc*2 + N).</summary>
    LogicalReg,
    /// <summary>LDR/LDRSW (literal): Rd = destination, Target = the literal's address.</summary>
    LoadLiteral,
    /// <summary>Load of one register: unsigned offset, unscaled, pre- or post-index (Writeback).</summary>
    Load,
    Store,
    LoadPair,
    StorePair,
    B,
    BCond,
    /// <summary>CBZ/CBNZ/TBZ/TBNZ: conditional, Target is the taken branch.</summary>
    CompareBranch,
    Bl,
    Blr,
    Br,
    Ret,
    /// <summary>MSR (register): Rd is the source, SysReg the register.</summary>
    Msr,
    /// <summary>MRS: Rd is the destination.</summary>
    Mrs,
    /// <summary>MSR (immediate) to a PSTATE field: SysReg = op1 &lt;&lt; 3 | op2, Imm = CRm.</summary>
    MsrImm,
    /// <summary>BRK, HLT, SVC, HVC, SMC, UDF: control does not fall through in compiled code (BRK/UDF), or leaves.</summary>
    Exception,
    Nop,
}

/// <summary>
/// One decoded ARM64 instruction (always 4 bytes). Registers are 0..31; whether 31 means SP or XZR depends on the
/// instruction (<see cref="RdIsSp"/>, <see cref="RnIsSp"/>). Addresses (Target) are absolute, from the PC given
/// to the decoder.
/// </summary>
internal readonly record struct A64Instruction(
    A64Kind Kind, uint Word, ulong Pc, byte Rd, byte Rn, byte Rm, byte Rt2, bool Is64, long Imm, byte Shift,
    ulong Target, byte Size, bool Signed, bool Writeback, bool PostIndex, byte Op, ushort SysReg, bool SetsFlags, uint Clobbers)
{
    public bool RdIsSp => Kind is A64Kind.AddImm && !SetsFlags || Kind == A64Kind.LogicalImm && Op != 3;
    public bool RnIsSp => Kind is A64Kind.AddImm or A64Kind.Load or A64Kind.Store or A64Kind.LoadPair or A64Kind.StorePair;
    public bool EndsFlow => Kind is A64Kind.B or A64Kind.Br or A64Kind.Ret or A64Kind.Exception or A64Kind.Undefined;
    public bool IsConditional => Kind is A64Kind.BCond or A64Kind.CompareBranch;

    public override string ToString() => A64Format.Format(this);
}

/// <summary>
/// A small ARM64 (A64) decoder for exactly what the code analysis models: PC-relative addresses (ADR/ADRP),
/// ADD/SUB immediate, move-wide (MOVZ/MOVN/MOVK), logical immediates (bitmask), logical shifted register (the
/// MOV register alias), loads and stores of general registers (literal, unsigned offset, unscaled, pre/post
/// index, pairs), branches (B, B.cond, CBZ/CBNZ, TBZ/TBNZ, BL, BLR, BR, RET), MSR/MRS and exceptions. Every other
/// encoding is <see cref="A64Kind.Other"/> with the general registers it may write, so constant tracking stays
/// sound. Validated instruction by instruction against llvm-objdump (tests/fixtures/expected/arm64).
/// </summary>
internal static class A64Decoder
{
    private const uint AllRegs = 0x7FFF_FFFF; // x0..x30

    public static A64Instruction Decode(uint w, ulong pc)
    {
        var rd = (byte)(w & 31);
        var rn = (byte)((w >> 5) & 31);
        var sf = (w >> 31) != 0;
        var op0 = (w >> 25) & 0xF;

        // ---- Data processing, immediate: op0 = 100x
        if ((op0 & 0xE) == 0x8)
        {
            switch ((w >> 23) & 7)
            {
                case 0:
                case 1:
                    {
                        var imm = SignExtend(((w >> 5) & 0x7FFFF) << 2 | ((w >> 29) & 3), 21);
                        return (w >> 31) != 0
                            ? Make(A64Kind.Adrp, w, pc, rd: rd, is64: true, imm: imm, target: (pc & ~0xFFFUL) + (ulong)(imm << 12))
                            : Make(A64Kind.Adr, w, pc, rd: rd, is64: true, imm: imm, target: pc + (ulong)imm);
                    }
                case 2:
                    {
                        var imm12 = (long)((w >> 10) & 0xFFF);
                        var shift = (byte)(((w >> 22) & 1) * 12);
                        var sub = ((w >> 30) & 1) != 0;
                        var s = ((w >> 29) & 1) != 0;
                        var value = imm12 << shift;
                        return Make(A64Kind.AddImm, w, pc, rd: rd, rn: rn, is64: sf, imm: sub ? -value : value, shift: shift, setsFlags: s,
                            op: (byte)(sub ? 1 : 0));
                    }
                case 4:
                    {
                        var n = (w >> 22) & 1;
                        if (!sf && n != 0) return Undefined(w, pc);
                        if (DecodeBitMask(n, (w >> 16) & 0x3F, (w >> 10) & 0x3F, sf ? 64 : 32) is not { } mask) return Undefined(w, pc);
                        var opc = (byte)((w >> 29) & 3);
                        return Make(A64Kind.LogicalImm, w, pc, rd: rd, rn: rn, is64: sf, imm: (long)mask, op: opc, setsFlags: opc == 3);
                    }
                case 5:
                    {
                        var opc = (w >> 29) & 3;
                        var hw = (w >> 21) & 3;
                        if (opc == 1 || (!sf && hw > 1)) return Undefined(w, pc);
                        var kind = opc switch { 0 => A64Kind.MovN, 2 => A64Kind.MovZ, _ => A64Kind.MovK };
                        return Make(kind, w, pc, rd: rd, is64: sf, imm: (w >> 5) & 0xFFFF, shift: (byte)(hw * 16));
                    }
                default:
                    return Other(w, pc, 1u << rd);
            }
        }

        // ---- Branches, exception generation, system: op0 = 101x
        if ((op0 & 0xE) == 0xA)
        {
            if ((w & 0x7C00_0000) == 0x1400_0000)
            {
                var target = pc + (ulong)(SignExtend(w & 0x3FF_FFFF, 26) << 2);
                return (w >> 31) != 0 ? Make(A64Kind.Bl, w, pc, target: target, clobbers: AllRegs) : Make(A64Kind.B, w, pc, target: target);
            }
            if ((w & 0xFF00_0010) == 0x5400_0000)
                return Make(A64Kind.BCond, w, pc, op: (byte)(w & 0xF), target: pc + (ulong)(SignExtend((w >> 5) & 0x7FFFF, 19) << 2));
            if ((w & 0x7E00_0000) == 0x3400_0000)
                return Make(A64Kind.CompareBranch, w, pc, rd: rd, is64: sf, op: (byte)((w >> 24) & 1),
                    target: pc + (ulong)(SignExtend((w >> 5) & 0x7FFFF, 19) << 2));
            if ((w & 0x7E00_0000) == 0x3600_0000)
                return Make(A64Kind.CompareBranch, w, pc, rd: rd, is64: sf, op: (byte)(2 | ((w >> 24) & 1)),
                    imm: ((w >> 26) & 0x20) | ((w >> 19) & 0x1F), target: pc + (ulong)(SignExtend((w >> 5) & 0x3FFF, 14) << 2));
            if ((w & 0xFE00_0000) == 0xD600_0000)
            {
                var opc = (w >> 21) & 0xF;
                var op2 = (w >> 16) & 0x1F;
                var op3 = (w >> 10) & 0x3F;
                var op4 = w & 0x1F;
                // Plain forms only (op3 = 0, op4 = 0); pointer-authenticated ones (BRAA, RETAA...) keep their flow.
                if (op2 != 0x1F) return Undefined(w, pc);
                var plain = op3 == 0 && op4 == 0;
                return opc switch
                {
                    0 when plain => Make(A64Kind.Br, w, pc, rn: rn),
                    1 when plain => Make(A64Kind.Blr, w, pc, rn: rn, clobbers: AllRegs),
                    2 when plain => Make(A64Kind.Ret, w, pc, rn: rn),
                    0 or 8 => Make(A64Kind.Br, w, pc, rn: rn, op: 1),
                    1 or 9 => Make(A64Kind.Blr, w, pc, rn: rn, op: 1, clobbers: AllRegs),
                    2 => Make(A64Kind.Ret, w, pc, rn: 30, op: 1),
                    _ => Make(A64Kind.Exception, w, pc), // ERET, DRPS
                };
            }
            if ((w & 0xFF00_0000) == 0xD400_0000) return Make(A64Kind.Exception, w, pc, imm: (w >> 5) & 0xFFFF, op: (byte)(((w >> 21) & 7) << 2 | (w & 3)));
            if ((w & 0xFFC0_0000) == 0xD500_0000)
            {
                var l = (w >> 21) & 1;
                var sysOp0 = (w >> 19) & 3;
                var sys = (ushort)((w >> 5) & 0xFFFF); // op0:op1:CRn:CRm:op2 with op0 in bits 14..15
                if (sysOp0 >= 2)
                    return l == 0 ? Make(A64Kind.Msr, w, pc, rd: rd, is64: true, sysReg: sys) : Make(A64Kind.Mrs, w, pc, rd: rd, is64: true, sysReg: sys, clobbers: 1u << rd);
                var crn = (w >> 12) & 0xF;
                if (sysOp0 == 0 && l == 0 && crn == 4 && rd == 31)
                    return Make(A64Kind.MsrImm, w, pc, imm: (w >> 8) & 0xF, sysReg: (ushort)((((w >> 16) & 7) << 3) | ((w >> 5) & 7)));
                if (sysOp0 == 0 && l == 0 && crn == 2 && rd == 31 && w == 0xD503201F) return Make(A64Kind.Nop, w, pc);
                return Other(w, pc, l != 0 ? 1u << rd : 0); // hints, barriers, SYS; SYSL writes Rt
            }
            return Undefined(w, pc);
        }

        // ---- Loads and stores: op0 = x1x0
        if ((op0 & 0x5) == 0x4) return LoadStore(w, pc, rd, rn);

        // ---- Data processing, register: op0 = x101
        if ((op0 & 0x7) == 0x5)
        {
            if ((w & 0x1F00_0000) == 0x0A00_0000)
            {
                var opc = (byte)((w >> 29) & 3);
                var n = (byte)((w >> 21) & 1);
                if (!sf && ((w >> 15) & 1) != 0) return Undefined(w, pc); // 32-bit shift amounts stop at 31
                return Make(A64Kind.LogicalReg, w, pc, rd: rd, rn: rn, rm: (byte)((w >> 16) & 31), is64: sf,
                    imm: (w >> 10) & 0x3F, shift: (byte)((w >> 22) & 3), op: (byte)(opc * 2 + n), setsFlags: opc == 3);
            }
            return Other(w, pc, 1u << rd);
        }

        // ---- SIMD and floating point (x111): only moves to general registers write one (Rd).
        if ((op0 & 0x7) == 0x7) return Other(w, pc, 1u << rd);
        return Undefined(w, pc);
    }

    private static A64Instruction LoadStore(uint w, ulong pc, byte rt, byte rn)
    {
        var v = ((w >> 26) & 1) != 0;
        var rt2 = (byte)((w >> 10) & 31);
        // Load register (literal): xx01 1x00
        if ((w & 0x3B00_0000) == 0x1800_0000)
        {
            var opc = w >> 30;
            var target = pc + (ulong)(SignExtend((w >> 5) & 0x7FFFF, 19) << 2);
            if (v || opc == 3) return Other(w, pc, 0, target); // SIMD literal, PRFM
            return Make(A64Kind.LoadLiteral, w, pc, rd: rt, is64: opc != 0, size: (byte)(opc == 0 ? 4 : opc == 1 ? 8 : 4), signed: opc == 2,
                target: target, clobbers: 1u << rt);
        }
        // Load/store pair: xx10 1xxx
        if ((w & 0x3A00_0000) == 0x2800_0000)
        {
            var mode = (w >> 23) & 3; // 0 no-allocate, 1 post, 2 offset, 3 pre
            var load = ((w >> 22) & 1) != 0;
            var opc = w >> 30;
            var writeback = mode is 1 or 3;
            var wbClobber = writeback && rn != 31 ? 1u << rn : 0;
            if (v) return Other(w, pc, wbClobber);
            if (opc == 3 || (opc == 1 && (!load || mode == 0))) return Undefined(w, pc); // LDPSW has no no-allocate form
            var size = (byte)(opc == 2 ? 8 : 4);
            var imm = SignExtend((w >> 15) & 0x7F, 7) * size;
            return Make(load ? A64Kind.LoadPair : A64Kind.StorePair, w, pc, rd: rt, rn: rn, rt2: rt2, is64: opc != 0, imm: imm, size: size,
                signed: opc == 1, writeback: writeback, postIndex: mode == 1,
                clobbers: (load ? (1u << rt) | (1u << rt2) : 0) | wbClobber);
        }
        // Load/store register: xx11 1xxx
        if ((w & 0x3A00_0000) == 0x3800_0000)
        {
            var size = w >> 30;
            var opc = (w >> 22) & 3;
            var unsignedOffset = ((w >> 24) & 1) != 0;
            long imm;
            bool writeback = false, post = false;
            if (unsignedOffset) imm = ((w >> 10) & 0xFFF) << (int)size;
            else
            {
                var bit21 = (w >> 21) & 1;
                var mode = (w >> 10) & 3;
                if (bit21 != 0 || mode == 2)
                {
                    // Register offset, atomics, unprivileged: the loaded/status registers become unknown.
                    var rs = (byte)((w >> 16) & 31);
                    var isLoadish = opc != 0 || bit21 != 0;
                    return Other(w, pc, v ? 0 : (isLoadish ? (1u << rt) | (bit21 != 0 && mode == 0 ? 1u << rs : 0) : 0));
                }
                imm = SignExtend((w >> 12) & 0x1FF, 9);
                writeback = mode is 1 or 3;
                post = mode == 1;
            }
            var wbClobber = writeback && rn != 31 ? 1u << rn : 0;
            if (v) return Other(w, pc, wbClobber);
            if (opc == 0)
                return Make(A64Kind.Store, w, pc, rd: rt, rn: rn, is64: size == 3, imm: imm, size: (byte)(1 << (int)size),
                    writeback: writeback, postIndex: post, clobbers: wbClobber);
            if (size == 3 && opc >= 2) return Other(w, pc, wbClobber); // PRFM / PRFUM
            if (size == 2 && opc == 3) return Undefined(w, pc);
            var signed = opc >= 2;
            var is64 = size == 3 || opc == 2;
            return Make(A64Kind.Load, w, pc, rd: rt, rn: rn, is64: is64, imm: imm, size: (byte)(1 << (int)size), signed: signed,
                writeback: writeback, postIndex: post, clobbers: (1u << rt) | wbClobber);
        }
        // Exclusives, LDAPR/STLR, memory tags and other load/store classes: whatever register may be written.
        var rs2 = (byte)((w >> 16) & 31);
        return Other(w, pc, v ? 0 : (1u << rt) | (1u << rs2) | (1u << rt2) | (rn != 31 ? 1u << rn : 0));
    }

    /// <summary>DecodeBitMasks of the ARM ARM: the logical-immediate value, or null for a reserved encoding.</summary>
    internal static ulong? DecodeBitMask(uint n, uint immr, uint imms, int dataSize)
    {
        var combined = (n << 6) | (~imms & 0x3F);
        if (combined == 0) return null;
        var len = 31 - System.Numerics.BitOperations.LeadingZeroCount(combined);
        if (len < 1) return null;
        var levels = (uint)((1 << len) - 1);
        if ((imms & levels) == levels) return null;
        var s = (int)(imms & levels);
        var r = (int)(immr & levels);
        var esize = 1 << len;
        var welem = s + 1 == 64 ? ulong.MaxValue : (1UL << (s + 1)) - 1;
        var emask = esize == 64 ? ulong.MaxValue : (1UL << esize) - 1;
        var elem = r == 0 ? welem : ((welem >> r) | (welem << (esize - r))) & emask;
        var result = 0UL;
        for (var i = 0; i < dataSize; i += esize) result |= elem << i;
        return dataSize == 64 ? result : result & 0xFFFF_FFFF;
    }

    private static long SignExtend(uint value, int bits) => (long)((ulong)value << (64 - bits)) >> (64 - bits);

    private static A64Instruction Undefined(uint w, ulong pc) => Make(A64Kind.Undefined, w, pc);

    private static A64Instruction Other(uint w, ulong pc, uint clobbers, ulong target = 0) =>
        Make(A64Kind.Other, w, pc, clobbers: clobbers & AllRegs, target: target);

    private static A64Instruction Make(A64Kind kind, uint w, ulong pc, byte rd = 0, byte rn = 0, byte rm = 0, byte rt2 = 0, bool is64 = false,
        long imm = 0, byte shift = 0, ulong target = 0, byte size = 0, bool signed = false, bool writeback = false, bool postIndex = false,
        byte op = 0, ushort sysReg = 0, bool setsFlags = false, uint clobbers = uint.MaxValue)
    {
        if (clobbers == uint.MaxValue)
            clobbers = kind switch
            {
                A64Kind.Adr or A64Kind.Adrp or A64Kind.MovZ or A64Kind.MovN or A64Kind.MovK => 1u << rd,
                A64Kind.AddImm or A64Kind.LogicalImm or A64Kind.LogicalReg => rd == 31 ? 0 : 1u << rd,
                _ => 0,
            };
        return new A64Instruction(kind, w, pc, rd, rn, rm, rt2, is64, imm, shift, target, size, signed, writeback, postIndex, op, sysReg, setsFlags,
            clobbers & AllRegs);
    }
}

/// <summary>System register names (llvm's spelling) for the registers drivers touch; others print as S&lt;op0&gt;_&lt;op1&gt;_C&lt;n&gt;_C&lt;m&gt;_&lt;op2&gt;.</summary>
internal static class A64SystemRegisters
{
    private static readonly Dictionary<ushort, string> Names = Build();

    private static ushort Key(int op0, int op1, int crn, int crm, int op2) =>
        (ushort)((op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2);

    private static Dictionary<ushort, string> Build()
    {
        var d = new Dictionary<ushort, string>();
        void Add(string name, int op0, int op1, int crn, int crm, int op2) => d[Key(op0, op1, crn, crm, op2)] = name;
        Add("MIDR_EL1", 3, 0, 0, 0, 0); Add("MPIDR_EL1", 3, 0, 0, 0, 5); Add("REVIDR_EL1", 3, 0, 0, 0, 6);
        Add("ID_AA64PFR0_EL1", 3, 0, 0, 4, 0); Add("ID_AA64PFR1_EL1", 3, 0, 0, 4, 1); Add("ID_AA64DFR0_EL1", 3, 0, 0, 5, 0);
        Add("ID_AA64ISAR0_EL1", 3, 0, 0, 6, 0); Add("ID_AA64ISAR1_EL1", 3, 0, 0, 6, 1);
        Add("ID_AA64MMFR0_EL1", 3, 0, 0, 7, 0); Add("ID_AA64MMFR1_EL1", 3, 0, 0, 7, 1); Add("ID_AA64MMFR2_EL1", 3, 0, 0, 7, 2);
        Add("CCSIDR_EL1", 3, 1, 0, 0, 0); Add("CLIDR_EL1", 3, 1, 0, 0, 1); Add("CSSELR_EL1", 3, 2, 0, 0, 0); Add("CTR_EL0", 3, 3, 0, 0, 1);
        Add("DCZID_EL0", 3, 3, 0, 0, 7);
        Add("SCTLR_EL1", 3, 0, 1, 0, 0); Add("ACTLR_EL1", 3, 0, 1, 0, 1); Add("CPACR_EL1", 3, 0, 1, 0, 2);
        Add("TTBR0_EL1", 3, 0, 2, 0, 0); Add("TTBR1_EL1", 3, 0, 2, 0, 1); Add("TCR_EL1", 3, 0, 2, 0, 2);
        Add("SPSR_EL1", 3, 0, 4, 0, 0); Add("ELR_EL1", 3, 0, 4, 0, 1); Add("SP_EL0", 3, 0, 4, 1, 0);
        Add("SPSel", 3, 0, 4, 2, 0); Add("CurrentEL", 3, 0, 4, 2, 2); Add("PAN", 3, 0, 4, 2, 3); Add("UAO", 3, 0, 4, 2, 4);
        Add("NZCV", 3, 3, 4, 2, 0); Add("DAIF", 3, 3, 4, 2, 1); Add("FPCR", 3, 3, 4, 4, 0); Add("FPSR", 3, 3, 4, 4, 1);
        Add("ESR_EL1", 3, 0, 5, 2, 0); Add("FAR_EL1", 3, 0, 6, 0, 0); Add("PAR_EL1", 3, 0, 7, 4, 0);
        Add("PMCR_EL0", 3, 3, 9, 12, 0); Add("PMCNTENSET_EL0", 3, 3, 9, 12, 1); Add("PMCNTENCLR_EL0", 3, 3, 9, 12, 2);
        Add("PMOVSCLR_EL0", 3, 3, 9, 12, 3); Add("PMSELR_EL0", 3, 3, 9, 12, 5); Add("PMCCNTR_EL0", 3, 3, 9, 13, 0);
        Add("PMXEVTYPER_EL0", 3, 3, 9, 13, 1); Add("PMXEVCNTR_EL0", 3, 3, 9, 13, 2); Add("PMUSERENR_EL0", 3, 3, 9, 14, 0);
        Add("PMINTENSET_EL1", 3, 0, 9, 14, 1); Add("PMINTENCLR_EL1", 3, 0, 9, 14, 2); Add("PMCCFILTR_EL0", 3, 3, 14, 15, 7);
        Add("MAIR_EL1", 3, 0, 10, 2, 0); Add("AMAIR_EL1", 3, 0, 10, 3, 0); Add("VBAR_EL1", 3, 0, 12, 0, 0);
        Add("CONTEXTIDR_EL1", 3, 0, 13, 0, 1); Add("TPIDR_EL1", 3, 0, 13, 0, 4); Add("TPIDR_EL0", 3, 3, 13, 0, 2); Add("TPIDRRO_EL0", 3, 3, 13, 0, 3);
        Add("CNTKCTL_EL1", 3, 0, 14, 1, 0); Add("CNTFRQ_EL0", 3, 3, 14, 0, 0); Add("CNTPCT_EL0", 3, 3, 14, 0, 1); Add("CNTVCT_EL0", 3, 3, 14, 0, 2);
        Add("CNTP_TVAL_EL0", 3, 3, 14, 2, 0); Add("CNTP_CTL_EL0", 3, 3, 14, 2, 1); Add("CNTP_CVAL_EL0", 3, 3, 14, 2, 2);
        Add("CNTV_TVAL_EL0", 3, 3, 14, 3, 0); Add("CNTV_CTL_EL0", 3, 3, 14, 3, 1); Add("CNTV_CVAL_EL0", 3, 3, 14, 3, 2);
        Add("SCTLR_EL2", 3, 4, 1, 0, 0); Add("HCR_EL2", 3, 4, 1, 1, 0); Add("TTBR0_EL2", 3, 4, 2, 0, 0); Add("TCR_EL2", 3, 4, 2, 0, 2);
        Add("VTTBR_EL2", 3, 4, 2, 1, 0); Add("VTCR_EL2", 3, 4, 2, 1, 2); Add("VBAR_EL2", 3, 4, 12, 0, 0); Add("CNTHCTL_EL2", 3, 4, 14, 1, 0);
        Add("SCTLR_EL3", 3, 6, 1, 0, 0); Add("SCR_EL3", 3, 6, 1, 1, 0); Add("VBAR_EL3", 3, 6, 12, 0, 0);
        Add("MDSCR_EL1", 2, 0, 0, 2, 2); Add("OSLAR_EL1", 2, 0, 1, 0, 4); Add("OSDLR_EL1", 2, 0, 1, 3, 4);
        return d;
    }

    /// <summary>The register's name: llvm's spelling, or the generic S3_1_C15_C2_3 form.</summary>
    public static string Name(ushort sys) => Names.TryGetValue(sys, out var n) ? n
        : string.Create(CultureInfo.InvariantCulture, $"S{sys >> 14}_{(sys >> 11) & 7}_C{(sys >> 7) & 15}_C{(sys >> 3) & 15}_{sys & 7}");

    /// <summary>Registers of EL0 and the unprivileged PSTATE/FP views: reading or writing them is ordinary code, not a privileged access.</summary>
    public static bool IsUnprivileged(ushort sys) =>
        Name(sys) is var n && (n.EndsWith("_EL0", StringComparison.Ordinal) || n is "NZCV" or "DAIF" or "FPCR" or "FPSR" or "CurrentEL");

    /// <summary>PSTATE field names of MSR (immediate), keyed op1 &lt;&lt; 3 | op2.</summary>
    public static string? PstateField(ushort key) => key switch
    {
        0x05 => "SPSel",
        0x1E => "DAIFSet",
        0x1F => "DAIFClr",
        0x04 => "PAN",
        0x03 => "UAO",
        0x1A => "SSBS",
        0x19 => "DIT",
        _ => null,
    };
}

/// <summary>llvm-objdump's text for the modelled instructions (the decoder test compares against it); null for the rest.</summary>
internal static class A64Format
{
    public static string Format(in A64Instruction i) => TryFormat(i) ?? $"<0x{i.Word:x8}>";

    private static string R(int n, bool x, bool sp) => n == 31 ? (sp ? (x ? "sp" : "wsp") : (x ? "xzr" : "wzr")) : (x ? "x" : "w") + n.ToString(CultureInfo.InvariantCulture);

    private static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    private static string Dec(long v) => v.ToString(CultureInfo.InvariantCulture);

    public static string? TryFormat(in A64Instruction i)
    {
        var x = i.Is64;
        switch (i.Kind)
        {
            case A64Kind.Adrp: return $"adrp\t{R(i.Rd, true, false)}, {Hex(i.Target)}";
            case A64Kind.Adr: return $"adr\t{R(i.Rd, true, false)}, #{Dec(i.Imm)}"; // llvm prints ADR's offset, ADRP's address
            case A64Kind.AddImm:
                {
                    var sub = i.Op == 1;
                    var imm = (sub ? -i.Imm : i.Imm) >> i.Shift;
                    var shift = i.Shift != 0 ? ", lsl #12" : "";
                    if (!i.SetsFlags && !sub && imm == 0 && i.Shift == 0 && (i.Rd == 31 || i.Rn == 31))
                        return $"mov\t{R(i.Rd, x, true)}, {R(i.Rn, x, true)}";
                    if (i.SetsFlags && i.Rd == 31) return $"{(sub ? "cmp" : "cmn")}\t{R(i.Rn, x, true)}, #{Dec(imm)}{shift}";
                    var m = (sub ? "sub" : "add") + (i.SetsFlags ? "s" : "");
                    return $"{m}\t{R(i.Rd, x, !i.SetsFlags)}, {R(i.Rn, x, true)}, #{Dec(imm)}{shift}";
                }
            case A64Kind.MovZ:
                if (i.Imm == 0 && i.Shift != 0) return $"movz\t{R(i.Rd, x, false)}, #{Dec(i.Imm)}, lsl #{i.Shift}";
                return $"mov\t{R(i.Rd, x, false)}, #{Dec(x ? i.Imm << i.Shift : (int)(uint)(i.Imm << i.Shift))}";
            case A64Kind.MovN:
                {
                    var v = ~((ulong)i.Imm << i.Shift);
                    if (!x) v &= 0xFFFF_FFFF;
                    var alias = !(i.Imm == 0 && i.Shift != 0) && !(!x && i.Imm == 0xFFFF);
                    if (!alias) return $"movn\t{R(i.Rd, x, false)}, #{Dec(i.Imm)}{(i.Shift != 0 ? $", lsl #{i.Shift}" : "")}";
                    return $"mov\t{R(i.Rd, x, false)}, #{Dec(x ? (long)v : (int)(uint)v)}";
                }
            case A64Kind.MovK: return $"movk\t{R(i.Rd, x, false)}, #{Dec(i.Imm)}{(i.Shift != 0 ? $", lsl #{i.Shift}" : "")}";
            case A64Kind.LogicalImm:
                {
                    var imm = (ulong)i.Imm;
                    if (i.Op == 1 && i.Rn == 31 && !MoveWidePreferred(imm, x)) return $"mov\t{R(i.Rd, x, true)}, #{Dec(x ? (long)imm : (int)(uint)imm)}";
                    if (i.Op == 3 && i.Rd == 31) return $"tst\t{R(i.Rn, x, false)}, #{Hex(imm)}";
                    var m = i.Op switch { 0 => "and", 1 => "orr", 2 => "eor", _ => "ands" };
                    return $"{m}\t{R(i.Rd, x, i.Op != 3)}, {R(i.Rn, x, false)}, #{Hex(imm)}";
                }
            case A64Kind.LogicalReg:
                {
                    if (i.Op == 2 && i.Rn == 31 && i.Imm == 0 && i.Shift == 0) return $"mov\t{R(i.Rd, x, false)}, {R(i.Rm, x, false)}";
                    if (i.Op == 3 && i.Rn == 31) return $"mvn\t{R(i.Rd, x, false)}, {R(i.Rm, x, false)}{ShiftText(i)}";
                    if (i.Op == 6 && i.Rd == 31) return $"tst\t{R(i.Rn, x, false)}, {R(i.Rm, x, false)}{ShiftText(i)}";
                    var m = i.Op switch { 0 => "and", 1 => "bic", 2 => "orr", 3 => "orn", 4 => "eor", 5 => "eon", 6 => "ands", _ => "bics" };
                    return $"{m}\t{R(i.Rd, x, false)}, {R(i.Rn, x, false)}, {R(i.Rm, x, false)}{ShiftText(i)}";
                }
            case A64Kind.LoadLiteral:
                return $"{(i.Signed ? "ldrsw" : "ldr")}\t{R(i.Rd, x, false)}, {Hex(i.Target)}";
            case A64Kind.Load or A64Kind.Store:
                {
                    var m = (i.Kind == A64Kind.Store ? "st" : "ld") + (UnscaledForm(i) ? "ur" : "r") + (i.Signed ? "s" : "") + (i.Size switch { 1 => "b", 2 => "h", 4 when !i.Is64 || !i.Signed => "", 4 => "w", _ => "" });
                    var rt = R(i.Rd, i.Kind == A64Kind.Store ? i.Size == 8 : i.Is64, false);
                    return $"{m}\t{rt}, {Address(i)}";
                }
            case A64Kind.LoadPair or A64Kind.StorePair:
                {
                    var m = (i.Kind == A64Kind.StorePair ? "stp" : i.Signed ? "ldpsw" : "ldp") + (((i.Word >> 23) & 3) == 0 ? "" : "");
                    if (((i.Word >> 23) & 3) == 0) m = i.Kind == A64Kind.StorePair ? "stnp" : "ldnp";
                    return $"{m}\t{R(i.Rd, i.Is64, false)}, {R(i.Rt2, i.Is64, false)}, {Address(i)}";
                }
            case A64Kind.B: return $"b\t{Hex(i.Target)}";
            case A64Kind.Bl: return $"bl\t{Hex(i.Target)}";
            case A64Kind.BCond: return $"b.{Conditions[i.Op]}\t{Hex(i.Target)}";
            case A64Kind.CompareBranch:
                return i.Op < 2
                    ? $"{(i.Op == 0 ? "cbz" : "cbnz")}\t{R(i.Rd, x, false)}, {Hex(i.Target)}"
                    : $"{(i.Op == 2 ? "tbz" : "tbnz")}\t{R(i.Rd, i.Imm >= 32, false)}, #{Dec(i.Imm)}, {Hex(i.Target)}";
            case A64Kind.Blr when i.Op == 0: return $"blr\t{R(i.Rn, true, false)}";
            case A64Kind.Br when i.Op == 0: return $"br\t{R(i.Rn, true, false)}";
            case A64Kind.Ret when i.Op == 0: return i.Rn == 30 ? "ret" : $"ret\t{R(i.Rn, true, false)}";
            case A64Kind.Msr: return $"msr\t{A64SystemRegisters.Name(i.SysReg)}, {R(i.Rd, true, false)}";
            case A64Kind.Mrs: return $"mrs\t{R(i.Rd, true, false)}, {A64SystemRegisters.Name(i.SysReg)}";
            case A64Kind.MsrImm: return A64SystemRegisters.PstateField(i.SysReg) is { } f ? $"msr\t{f}, #{Dec(i.Imm)}" : null;
            case A64Kind.Nop: return "nop";
            default: return null;
        }
    }

    private static readonly string[] Conditions = ["eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv"];

    private static bool UnscaledForm(in A64Instruction i) => ((i.Word >> 24) & 1) == 0 && !i.Writeback;

    private static string ShiftText(in A64Instruction i) =>
        i.Imm == 0 && i.Shift == 0 ? "" : $", {(i.Shift switch { 0 => "lsl", 1 => "lsr", 2 => "asr", _ => "ror" })} #{Dec(i.Imm)}";

    private static string Address(in A64Instruction i)
    {
        var rn = R(i.Rn, true, true);
        if (i.Writeback && i.PostIndex) return $"[{rn}], #{Dec(i.Imm)}";
        if (i.Writeback) return $"[{rn}, #{Dec(i.Imm)}]!";
        return i.Imm == 0 ? $"[{rn}]" : $"[{rn}, #{Dec(i.Imm)}]";
    }

    /// <summary>The ARM ARM's MoveWidePreferred: MOVZ/MOVN can make the value, so llvm prints ORR as orr, not mov.</summary>
    private static bool MoveWidePreferred(ulong imm, bool x)
    {
        var width = x ? 64 : 32;
        for (var shift = 0; shift < width; shift += 16)
        {
            var mask = 0xFFFFUL << shift;
            if ((imm & ~mask) == 0) return true;
            var inv = ~imm & (x ? ulong.MaxValue : 0xFFFF_FFFF);
            if ((inv & ~mask) == 0) return true;
        }
        return false;
    }
}

/// <summary>
/// The encodings the decoder makes <see cref="A64Kind.Msr"/>, <see cref="A64Kind.Mrs"/> or <see cref="A64Kind.MsrImm"/>
/// of, as mask/value pairs over the instruction word, and a vectorised search for them: a section without such a
/// word has no system-register move to report, so it need not be decoded (a test checks every word the decoder
/// makes one of these kinds of against the masks).
/// </summary>
internal static class A64SystemMoves
{
    /// <summary>MSR/MRS (register): 1101 0101 00 L 1 (op0 = 2 or 3).</summary>
    public const uint RegisterMask = 0xFFD0_0000, RegisterValue = 0xD510_0000;

    /// <summary>MSR (immediate) to a PSTATE field: op0 = 0, L = 0, CRn = 4, Rt = 31.</summary>
    public const uint PstateMask = 0xFFF8_F01F, PstateValue = 0xD500_401F;

    public static bool IsCandidate(uint w) => (w & RegisterMask) == RegisterValue || (w & PstateMask) == PstateValue;

    /// <summary>
    /// The byte offset of the first candidate word at or after <paramref name="from"/> among the words at offsets
    /// <paramref name="from"/>, +4, +8... (whole words only), or -1.
    /// </summary>
    public static int IndexOfCandidate(ReadOnlySpan<byte> bytes, int from)
    {
        if ((uint)from >= (uint)bytes.Length) return -1;
        var tail = bytes[from..];
        var count = tail.Length / 4;
        var i = 0;
        if (BitConverter.IsLittleEndian && System.Numerics.Vector.IsHardwareAccelerated && count >= System.Numerics.Vector<uint>.Count)
        {
            var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(tail[..(count * 4)]);
            var width = System.Numerics.Vector<uint>.Count;
            var registerMask = new System.Numerics.Vector<uint>(RegisterMask);
            var registerValue = new System.Numerics.Vector<uint>(RegisterValue);
            var pstateMask = new System.Numerics.Vector<uint>(PstateMask);
            var pstateValue = new System.Numerics.Vector<uint>(PstateValue);
            for (; i + width <= count; i += width)
            {
                var v = new System.Numerics.Vector<uint>(words.Slice(i, width));
                if (System.Numerics.Vector.EqualsAny(v & registerMask, registerValue) || System.Numerics.Vector.EqualsAny(v & pstateMask, pstateValue)) break;
            }
        }
        for (; i < count; i++)
            if (IsCandidate(System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(tail[(i * 4)..]))) return from + (i * 4);
        return -1;
    }

    /// <summary>Whether a section's 4-byte-aligned words (by RVA, as the analysis reads them) hold a candidate.</summary>
    public static bool AnyIn(CodeSection section) => IndexOfCandidate(section.Bytes, FirstWord(section)) >= 0;

    /// <summary>The offset of the section's first word at a 4-aligned RVA.</summary>
    public static int FirstWord(CodeSection section) => (int)((4 - (section.Rva & 3)) & 3);
}
