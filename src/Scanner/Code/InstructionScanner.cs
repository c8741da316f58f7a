using DriverAudit.Rules.Facts;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>Which decoded instructions are privileged ones (MSR access, port I/O, control-register writes).</summary>
internal static class InstructionScanner
{
    // Per Iced Code: whether Classify can return a hit for it (one of the mnemonics below, or mov to a control
    // register). Checked first, so the common instruction costs one table load instead of the mnemonic switch.
    private static readonly bool[] Candidates = BuildCandidates();

    private static bool[] BuildCandidates()
    {
        var codes = Enum.GetValues<Iced.Intel.Code>();
        var table = new bool[(int)codes.Max() + 1];
        foreach (var code in codes)
        {
            var c = (int)code;
            table[c] = code.Mnemonic() is Mnemonic.Wrmsr or Mnemonic.Rdmsr or Mnemonic.In or Mnemonic.Out
                    or Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd
                || code.Mnemonic() == Mnemonic.Mov && code.ToOpCode() is { OpCount: > 0 } op && op.Op0Kind == OpCodeOperandKind.cr_reg;
        }
        return table;
    }

    /// <summary>
    /// The two-byte opcodes (0F xx) that an <c>instruction:</c> feature's x86/x64 matches need, mirroring
    /// <c>InstructionFeature.Matches</c>: mov-to → <c>mov crN, reg</c> (0F 22); wrmsr (0F 30); rdmsr (0F 32); msr/mrs are
    /// ARM64 only, so they need nothing here. Null when a wanted instruction is a one-byte opcode (in, out, ins*, outs*,
    /// found in almost any code's bytes) or unknown: no byte search can rule it out. Iced decodes these mnemonics from
    /// these legacy 0F-table opcodes only (prefixes come before the 0F), which a test checks over every Iced code.
    /// </summary>
    internal static OpcodeNeedles? Needles(IReadOnlyList<string>? mnemonics, IReadOnlyList<string>? controlRegisters)
    {
        if (controlRegisters is not null) return OpcodeNeedles.MovToCr;
        if (mnemonics is null) return OpcodeNeedles.None;
        var needles = OpcodeNeedles.None;
        foreach (var m in mnemonics)
        {
            switch (m)
            {
                case InstructionNames.Wrmsr: needles |= OpcodeNeedles.Wrmsr; break;
                case InstructionNames.Rdmsr: needles |= OpcodeNeedles.Rdmsr; break;
                case InstructionNames.Msr or InstructionNames.Mrs: break;
                default: return null;
            }
        }
        return needles;
    }

    /// <summary>The second opcode byte (after 0F) of one needle.</summary>
    internal static byte SecondByte(OpcodeNeedles needle) => needle switch
    {
        OpcodeNeedles.Wrmsr => 0x30,
        OpcodeNeedles.Rdmsr => 0x32,
        OpcodeNeedles.MovToCr => 0x22,
        _ => throw new ArgumentOutOfRangeException(nameof(needle)),
    };

    /// <summary>Whether 0F <paramref name="second"/> occurs anywhere in <paramref name="bytes"/> (vectorised search).</summary>
    internal static bool Contains(ReadOnlySpan<byte> bytes, byte second) => bytes.IndexOf([(byte)0x0F, second]) >= 0;

    /// <summary>How many Iced codes there are (tables indexed by <see cref="Iced.Intel.Code"/>).</summary>
    internal static int CodeCount => Candidates.Length;

    /// <summary>Whether <see cref="Classify"/> can return a hit for an instruction of this code.</summary>
    internal static bool MayClassify(Iced.Intel.Code code) => Candidates[(int)code];

    internal static InstructionHit? Classify(in Instruction i)
    {
        if (!Candidates[(int)i.Code]) return null;
        var name = i.Mnemonic switch
        {
            Mnemonic.Wrmsr => InstructionNames.Wrmsr,
            Mnemonic.Rdmsr => InstructionNames.Rdmsr,
            Mnemonic.In => InstructionNames.In,
            Mnemonic.Out => InstructionNames.Out,
            Mnemonic.Insb => InstructionNames.Insb,
            Mnemonic.Insw => InstructionNames.Insw,
            Mnemonic.Insd => InstructionNames.Insd,
            Mnemonic.Outsb => InstructionNames.Outsb,
            Mnemonic.Outsw => InstructionNames.Outsw,
            Mnemonic.Outsd => InstructionNames.Outsd,
            _ => null,
        };
        if (name is not null) return new InstructionHit((uint)i.IP, name, null);
        // Writes only (mov crN, reg); reads of control registers are ordinary.
        if (i.Mnemonic == Mnemonic.Mov && i.Op0Kind == OpKind.Register && i.Op0Register.IsCR()
            && InstructionNames.ControlRegister(i.Op0Register - Register.CR0) is { } cr)
            return new InstructionHit((uint)i.IP, InstructionNames.Mov, cr);
        return null;
    }
}

/// <summary>Opcode byte pairs whose absence proves an instruction absent (see <see cref="InstructionScanner.Needles"/>).</summary>
[Flags]
internal enum OpcodeNeedles
{
    None = 0,
    /// <summary>0F 30.</summary>
    Wrmsr = 1,
    /// <summary>0F 32.</summary>
    Rdmsr = 2,
    /// <summary>0F 22: mov crN, reg.</summary>
    MovToCr = 4,
}
