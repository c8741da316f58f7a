using DriverAudit.Rules.Facts;
using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>Which decoded instructions are privileged ones (MSR access, port I/O, control-register writes).</summary>
internal static class InstructionScanner
{
    internal static InstructionHit? Classify(in Instruction i)
    {
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
