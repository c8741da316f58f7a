using System.Globalization;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Rules.Predicates;

/// <summary>
/// <c>instruction:</c> notable instructions by mnemonic (<c>wrmsr</c>, <c>in</c>, ...) or control-register
/// writes (<c>mov-to: [cr0, cr4]</c>). The facts hold one item per function and kind (with a count), so one
/// function with fifty <c>in</c> instructions is one anchor. Key <c>mnemonic[@cr]@fn_0x..#k</c>: function and
/// ordinal, not the address, so unrelated code moving does not change it; <c>@nofn#k</c> when no function is known.
/// </summary>
internal sealed class InstructionFeature(string[]? mnemonics, string[]? controlRegisters) : ItemFeature
{
    public override int Cost => Costs.Instruction;
    public override EvidenceShape Shape => EvidenceShape.Always(AnchorKind.Instruction);
    public override bool ReadsCode => true;

    // mov-to names x86 control registers (mov crN, reg) and ARM64 system registers written by msr; mnemonic
    // msr/mrs facts carry the system register, the x86 ones none.
    public bool Matches(InstructionFact i) => controlRegisters is not null
        ? i.Mnemonic is InstructionNames.Mov or InstructionNames.Msr && i.ControlRegister is { } cr && Array.IndexOf(controlRegisters, cr) >= 0
        : mnemonics is not null && Array.IndexOf(mnemonics, i.Mnemonic) >= 0 && (i.ControlRegister is null || i.Mnemonic is InstructionNames.Msr or InstructionNames.Mrs);

    /// <summary>A mnemonic feature all of whose mnemonics are in <paramref name="absent"/>.</summary>
    public bool OnlyMnemonicsIn(IReadOnlySet<string> absent) => mnemonics is not null && mnemonics.All(absent.Contains);

    public override int CountMatches(EvalContext ctx, int limit)
    {
        if (limit <= 0) return 0;
        var items = ctx.Facts.InstructionsFor(mnemonics, controlRegisters);
        int n = 0;
        for (int i = 0; i < items.Count; i++)
            if (Matches(items[i]) && (n += items[i].Count) >= limit) break;
        return Math.Min(n, limit);
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        var items = ctx.Facts.InstructionsFor(mnemonics, controlRegisters);
        List<InstructionFact>? matched = null;
        foreach (var i in items)
            if (Matches(i)) (matched ??= []).Add(i);
        if (matched is null) return;
        // Ordinals follow address order within (function, mnemonic, register), whatever order the scanner used.
        matched.Sort((a, b) => a.Rva.CompareTo(b.Rva));
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var i in matched)
        {
            string what = i.ControlRegister is { } cr ? $"{i.Mnemonic}@{cr}" : i.Mnemonic;
            string scope = i.FunctionRva is uint f ? "fn_0x" + f.ToString("x", CultureInfo.InvariantCulture) : "nofn";
            string group = what + "@" + scope;
            seen.TryGetValue(group, out int ordinal);
            seen[group] = ordinal + 1;
            string key = $"{group}#{ordinal}";
            var values = ctx.Values(4);
            values["mnemonic"] = i.ControlRegister is { } reg ? $"{i.Mnemonic} {reg}" : i.Mnemonic;
            values["site"] = "0x" + i.Rva.ToString("x", CultureInfo.InvariantCulture);
            values["function"] = i.FunctionRva is uint fn ? "0x" + fn.ToString("x", CultureInfo.InvariantCulture) : "unknown";
            values["count"] = i.Count.ToString(CultureInfo.InvariantCulture);
            values["value"] = key;
            sink.Add(new Anchor(AnchorKind.Instruction, key, values) { Rva = i.Rva });
        }
    }
}
