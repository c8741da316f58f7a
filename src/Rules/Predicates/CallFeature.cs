using System.Globalization;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;

namespace DriverAudit.Rules.Predicates;

/// <summary>A constraint on one argument: by raw index, or by a named pool helper resolved per API.</summary>
internal enum ArgRole { Raw, Tag, PoolType, PoolFlags }

internal readonly record struct ArgConstraint(ArgRole Role, int Index, ValueTest Test);

/// <summary>
/// <c>call:</c> call sites of an imported API whose arguments meet every constraint. The import list is
/// consulted first: when the image imports none of the APIs, <see cref="IImageFacts.Calls"/> is never read.
/// </summary>
internal sealed class CallFeature(ImportFeature[] apis, ArgConstraint[] constraints) : ItemFeature
{
    public override int Cost => Costs.Call;
    public override EvidenceShape Shape => EvidenceShape.Always(AnchorKind.Call);
    public override bool ReadsCode => true;

    /// <summary>Exact API names when every <c>api</c> pattern is exact; the rule cannot match without one of them imported.</summary>
    public override IReadOnlyCollection<string>? RequiredImports()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var api in apis)
            if (api.RequiredImports() is { } r) names.UnionWith(r); else return null;
        return names;
    }

    private bool IsApi(ImportFact import)
    {
        foreach (var api in apis)
            if (api.Matches(import)) return true;
        return false;
    }

    public bool Matches(CallFact call)
    {
        if (!IsApi(call.Api)) return false;
        var signature = PoolApis.Of(call.Api.Name);
        foreach (var c in constraints)
        {
            int index = c.Role switch
            {
                ArgRole.Raw => c.Index,
                ArgRole.Tag => signature?.TagArg ?? -1,
                ArgRole.PoolType => signature?.PoolTypeArg ?? -1,
                _ => signature?.PoolFlagsArg ?? -1,
            };
            if (index < 0) return false; // this API has no such argument: the constraint cannot hold
            ulong? value = index < call.Args.Count ? call.Args[index] : null;
            if (value is ulong v && c.Role == ArgRole.Tag) value = v & 0xFFFF_FFFF; // tags are 32-bit
            if (!c.Test.Matches(value)) return false;
        }
        return true;
    }

    private bool ImportsAnyApi(EvalContext ctx)
    {
        var imports = ctx.Facts.Imports;
        for (int i = 0; i < imports.Count; i++)
            if (IsApi(imports[i])) return true;
        return false;
    }

    public override int CountMatches(EvalContext ctx, int limit)
    {
        if (limit <= 0 || !ImportsAnyApi(ctx)) return 0;
        var calls = ctx.Facts.Calls;
        int n = 0;
        for (int i = 0; i < calls.Count; i++)
            if (Matches(calls[i]) && ++n >= limit) break;
        return n;
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        if (!ImportsAnyApi(ctx)) return;
        foreach (var call in ctx.Facts.Calls)
            if (Matches(call)) sink.Add(AnchorOf(ctx, call));
    }

    private static Anchor AnchorOf(EvalContext ctx, CallFact call)
    {
        var signature = PoolApis.Of(call.Api.Name);
        string api = call.Api.Ref.Function;
        string key = call.Key;
        var values = ctx.Values(10);
        values["api"] = api;
        values["import"] = api;
        values["module"] = call.Api.Module;
        values["site"] = Hex(call.SiteRva);
        values["function"] = call.FunctionRva is uint f ? Hex(f) : "unknown";
        values["tag"] = signature is { TagArg: >= 0 } s ? Arg(call, s.TagArg) is ulong t ? PoolTag.Format((uint)t) : "unknown"
            : signature is not null && PoolApis.IsUntaggedAllocator(signature) ? PoolTag.Format(PoolTag.None) : "n/a";
        int typeArg = signature is { } sig ? Math.Max(sig.PoolTypeArg, sig.PoolFlagsArg) : -1;
        values["pool-type"] = typeArg < 0 ? "n/a" : Arg(call, typeArg) is ulong p ? Hex(p) : "unknown";
        values["via"] = call.Via is { } via ? $" through {via}" : "";
        values["value"] = key;
        return new Anchor(AnchorKind.Call, key, values) { Rva = call.SiteRva };
    }

    private static ulong? Arg(CallFact call, int index) => index < call.Args.Count ? call.Args[index] : null;

    private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
