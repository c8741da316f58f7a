using Iced.Intel;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Finds privileged instructions (MSR access, port I/O, control-register writes) by a linear sweep of every
/// executable section, resynchronising one byte further after an undecodable byte. A linear sweep can decode
/// data embedded in code; that is the accepted price of not needing a control-flow graph.
/// </summary>
internal static class InstructionScanner
{
    public static List<InstructionHit> Sweep(CodeImage code, out long decoded)
    {
        var hits = new List<InstructionHit>();
        decoded = 0;
        foreach (var section in code.Sections)
        {
            CodeStats.AddSweep();
            var reader = new ByteArrayCodeReader(section.Bytes);
            var decoder = Decoder.Create(code.Bitness, reader, section.Rva, DecoderOptions.None);
            var end = (ulong)section.Rva + (uint)section.Bytes.Length;
            long n = 0;
            while (decoder.IP < end)
            {
                var ip = decoder.IP;
                decoder.Decode(out var i);
                n++;
                if (i.IsInvalid)
                {
                    decoder.IP = ip + 1;
                    reader.Position = (int)(ip + 1 - section.Rva);
                    continue;
                }
                if (Classify(i) is { } hit) hits.Add(hit);
            }
            decoded += n;
            CodeStats.AddInstructions(n);
        }
        return hits;
    }

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
