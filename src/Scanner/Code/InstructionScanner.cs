using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>Which decoded instructions are privileged ones (MSR access, port I/O, control-register writes).</summary>
internal static class InstructionScanner
{
    internal static InstructionHit? Classify(in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Wrmsr: return new InstructionHit((uint)i.IP, "wrmsr", null);
            case Mnemonic.Rdmsr: return new InstructionHit((uint)i.IP, "rdmsr", null);
            case Mnemonic.In: return new InstructionHit((uint)i.IP, "in", null);
            case Mnemonic.Out: return new InstructionHit((uint)i.IP, "out", null);
            case Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd:
                return new InstructionHit((uint)i.IP, i.Mnemonic.ToString().ToLowerInvariant(), null);
            case Mnemonic.Mov when i.Op0Kind == OpKind.Register && i.Op0Register.IsCR():
                var cr = i.Op0Register;
                return cr is Register.CR0 or Register.CR3 or Register.CR4 or Register.CR8
                    ? new InstructionHit((uint)i.IP, "mov", cr.ToString().ToLowerInvariant())
                    : null;
            default: return null;
        }
    }
}
