using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Patterns;

namespace DriverAudit.Rules.Predicates;

/// <summary>
/// Relative costs: header, characteristic and module read one cached value; imports one list; exports,
/// sections and version info a little more; the signature needs the certificate table parsed; hashes read
/// the whole file; strings scan every non-code section; calls and instructions disassemble the code.
/// </summary>
internal static class Costs
{
    public const int Header = 1, Characteristic = 1, Module = 1, Import = 2, Export = 3, Section = 3, VersionInfo = 3;
    public const int Signature = 5, Hash = 8, String = 10, Call = 20, Instruction = 20;
}

/// <summary>A feature over a list of items (imports, exports, sections): each matching item is an anchor.</summary>
internal abstract class ItemFeature : Predicate
{
    public override Tri Test(EvalContext ctx) => TriLogic.From(CountMatches(ctx, 1) > 0);

    /// <summary>Matching items, counting stops at <paramref name="limit"/>.</summary>
    public abstract int CountMatches(EvalContext ctx, int limit);
}

/// <summary><c>import:</c> one pattern over the import list.</summary>
internal sealed class ImportFeature(NamePattern? name, ModulePattern? module, int? ordinal, bool? delayed) : ItemFeature
{
    public override int Cost => Costs.Import;
    public override EvidenceShape Shape => EvidenceShape.Always(AnchorKind.Import);

    public override IReadOnlyCollection<string>? RequiredImports() => name?.ExactName is { } exact ? [exact] : null;

    public bool Matches(ImportFact import)
    {
        if (delayed is bool d && import.Delayed != d) return false;
        if (ordinal is int o && import.Ordinal != o) return false;
        if (name is not null && (import.Name is null || !name.IsMatch(import.Name))) return false;
        return module is null || module.IsMatch(import.Module);
    }

    public override int CountMatches(EvalContext ctx, int limit)
    {
        if (limit <= 0) return 0;
        // Indexed loop: foreach over an IReadOnlyList would box an enumerator on every test.
        var items = ctx.Facts.Imports;
        int n = 0;
        for (int i = 0; i < items.Count; i++)
            if (Matches(items[i]) && ++n >= limit) break;
        return n;
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        foreach (var import in ctx.Facts.Imports)
        {
            if (!Matches(import)) continue;
            var values = ctx.Values(3);
            string key = import.Key;
            values["module"] = import.Module;
            values["import"] = import.Ref.Function;
            values["value"] = key;
            sink.Add(new Anchor(AnchorKind.Import, key, values));
        }
    }
}

/// <summary><c>export:</c> name or ordinal, optionally whether (or to what) the export is forwarded.</summary>
internal sealed class ExportFeature(NamePattern? name, int? ordinal, bool? forwarded, NamePattern? forwarder) : ItemFeature
{
    public override int Cost => Costs.Export;
    public override EvidenceShape Shape => EvidenceShape.Always(AnchorKind.Export);

    public bool Matches(ExportFact export)
    {
        if (ordinal is int o && export.Ordinal != o) return false;
        if (name is not null && (export.Name is null || !name.IsMatch(export.Name))) return false;
        if (forwarded is bool f && (export.Forwarder is not null) != f) return false;
        return forwarder is null || (export.Forwarder is not null && forwarder.IsMatch(export.Forwarder));
    }

    public override int CountMatches(EvalContext ctx, int limit)
    {
        if (limit <= 0) return 0;
        var items = ctx.Facts.Exports;
        int n = 0;
        for (int i = 0; i < items.Count; i++)
            if (Matches(items[i]) && ++n >= limit) break;
        return n;
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        foreach (var export in ctx.Facts.Exports)
        {
            if (!Matches(export)) continue;
            string key = export.Name ?? "#" + export.Ordinal;
            var values = ctx.Values(2);
            values["export"] = key;
            values["value"] = key;
            sink.Add(new Anchor(AnchorKind.Export, key, values) { Rva = export.Rva });
        }
    }
}

/// <summary><c>section:</c> name pattern and permission flags of each section header.</summary>
internal sealed class SectionFeature(
    NamePattern? name, bool? writable, bool? executable, bool? readable, bool? discardable, bool? pageAligned) : ItemFeature
{
    public override int Cost => Costs.Section;
    public override EvidenceShape Shape => EvidenceShape.Always(AnchorKind.Section);

    public bool Matches(SectionFact s) =>
        (writable is not bool w || s.Writable == w)
        && (executable is not bool x || s.Executable == x)
        && (readable is not bool r || s.Readable == r)
        && (discardable is not bool d || s.Discardable == d)
        && (pageAligned is not bool p || s.PageAligned == p)
        && (name is null || name.IsMatch(s.Name));

    public override int CountMatches(EvalContext ctx, int limit)
    {
        if (limit <= 0) return 0;
        var items = ctx.Facts.Sections;
        int n = 0;
        for (int i = 0; i < items.Count; i++)
            if (Matches(items[i]) && ++n >= limit) break;
        return n;
    }

    /// <summary>Key "name#k": the k-th section of that name (0-based), stable when other sections come and go.</summary>
    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        Dictionary<string, int>? seen = null;
        foreach (var section in ctx.Facts.Sections)
        {
            seen ??= new(StringComparer.Ordinal);
            seen.TryGetValue(section.Name, out int occurrence);
            seen[section.Name] = occurrence + 1;
            if (!Matches(section)) continue;
            var values = ctx.Values(2);
            values["section"] = section.Name;
            values["value"] = section.Name;
            sink.Add(new Anchor(AnchorKind.Section, $"{section.Name}#{occurrence}", values) { Rva = section.Rva });
        }
    }
}

/// <summary><c>characteristic:</c> a derived boolean; a null answer is Unknown, never a match.</summary>
internal sealed class CharacteristicFeature(string name) : Predicate
{
    public string Name { get; } = name;
    public override Tri Test(EvalContext ctx) => TriLogic.From(ctx.Facts.GetCharacteristic(Name));
    public override void Collect(EvalContext ctx, List<Anchor> sink) { }
    public override int Cost => Costs.Characteristic;
    public override EvidenceShape Shape => EvidenceShape.Nothing;
}

/// <summary><c>header:</c> file and optional header fields; every key given must hold.</summary>
internal sealed class HeaderFeature : Predicate
{
    public string[]? Machines { get; init; }
    public string[]? Subsystems { get; init; }
    public ushort DllHas { get; init; }
    public ushort DllLacks { get; init; }
    public ushort FileHas { get; init; }
    public ushort FileLacks { get; init; }
    public Comparison[] SectionAlignment { get; init; } = [];
    public Comparison[] FileAlignment { get; init; } = [];

    public override int Cost => Costs.Header;
    public override EvidenceShape Shape => EvidenceShape.Nothing;
    public override void Collect(EvalContext ctx, List<Anchor> sink) { }

    public override Tri Test(EvalContext ctx)
    {
        var h = ctx.Facts.Header;
        bool ok = (Machines is null || Array.Exists(Machines, n => MachineNames.Is(h.Machine, n)))
            && (Subsystems is null || Array.Exists(Subsystems, n => MachineNames.IsSubsystem(h.Subsystem, n)))
            && (h.DllCharacteristics & DllHas) == DllHas && (h.DllCharacteristics & DllLacks) == 0
            && (h.FileCharacteristics & FileHas) == FileHas && (h.FileCharacteristics & FileLacks) == 0
            && Holds(SectionAlignment, h.SectionAlignment) && Holds(FileAlignment, h.FileAlignment);
        return TriLogic.From(ok);
    }

    private static bool Holds(Comparison[] comparisons, long value)
    {
        foreach (var c in comparisons)
            if (!c.Holds(value)) return false;
        return true;
    }
}

internal enum ComparisonOp { Lt, Le, Eq, Ne, Ge, Gt }

internal readonly record struct Comparison(ComparisonOp Op, long Value)
{
    public bool Holds(long actual) => Op switch
    {
        ComparisonOp.Lt => actual < Value,
        ComparisonOp.Le => actual <= Value,
        ComparisonOp.Eq => actual == Value,
        ComparisonOp.Ne => actual != Value,
        ComparisonOp.Ge => actual >= Value,
        _ => actual > Value,
    };
}
