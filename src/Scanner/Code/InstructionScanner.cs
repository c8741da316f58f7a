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
