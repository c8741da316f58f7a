using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>One call to a driver's own function that passes the allocator's argument on: call site → wrapper entry.</summary>
internal readonly record struct WrapperHop(uint CallRva, uint WrapperRva);

/// <summary>
/// One pool tag use: a constant tag passed to a tagged allocator or to ExFreePoolWithTag, or a call to an untagged
/// allocator (<see cref="Untagged"/>, charged to <c>None</c>).
/// </summary>
/// <param name="SiteRva">The allocator (or free) call itself.</param>
/// <param name="PoolType">POOL_TYPE (ExAllocatePoolWith*, ExAllocatePool) when constant, else null.</param>
/// <param name="PoolFlags">POOL_FLAGS (ExAllocatePool2/3) when constant, else null.</param>
internal sealed record TagUse(uint Value, string Api, uint SiteRva, ulong? PoolType, ulong? PoolFlags, CallSiteShape Shape)
{
    /// <summary>Memory order, as PoolMon prints it.</summary>
    public string Tag => PoolTag.Format(Value);

    /// <summary>ExAllocatePool / ExAllocatePoolWithQuota: no tag argument, the kernel charges <c>None</c>.</summary>
    public bool Untagged { get; init; }

    /// <summary>
    /// When the constant comes from a caller of the driver's own wrapper: the calls from the site that passes the
    /// constant, outermost first, down to the wrapper holding <see cref="SiteRva"/>. Empty for a direct use.
    /// </summary>
    public IReadOnlyList<WrapperHop> Via { get; init; } = [];

    public bool ViaWrapper => Via.Count > 0;

    /// <summary>
    /// An untagged allocator the image imports but whose call sites are not in the code at hand (a dump module's
    /// discarded INIT code, a call through a pointer): the import alone makes the driver a <c>None</c> owner.
    /// <see cref="SiteRva"/> is then the IAT slot.
    /// </summary>
    public bool ImportOnly { get; init; }

    /// <summary>An allocation (not ExFreePoolWithTag): what makes a driver the owner of a tag.</summary>
    public bool Allocates => Api != "ExFreePoolWithTag";
}

/// <summary>The tags of one image: every tag use, and how many tag-taking sites have no provable tag.</summary>
/// <param name="Sites">Every call site of an API that takes a tag.</param>
internal sealed record ImageTags(IReadOnlyList<TagUse> Tags, int UnknownTagSites, IReadOnlyList<CallSite> Sites)
{
    /// <summary>The tag-taking sites whose tag is not proven (directly or through wrappers).</summary>
    public IReadOnlyList<CallSite> UnknownSites { get; init; } = [];

    /// <summary>
    /// Why the image's pool call sites are unknown altogether (ARM32, IA64, packed code), when it imports a pool API
    /// whose calls could not be looked for; null when the code was analysed. <see cref="UnknownTagSites"/> is then no count.
    /// </summary>
    public string? CodeNotEvaluated { get; init; }
}

/// <summary>Builds <see cref="ImageTags"/> from code facts: the per-image entry point of <c>driveraudit tags</c>.</summary>
internal static class TagIndex
{
    /// <summary>
    /// For files pass <see cref="PeFacts.ImportsOf"/>; for a dump module pass the imports resolved from its IAT.
    /// </summary>
    public static ImageTags Build(PeImage image, IReadOnlyList<ImportFact> imports) => Build(new CodeFacts(image, imports));

    public static ImageTags Build(CodeFacts facts)
    {
        var imports = facts.Imports;
        var tags = new List<TagUse>();
        var unknown = new List<CallSite>();
        var sites = new List<CallSite>();
        // A site whose tag is a wrapper's parameter is reported at its callers (one use per caller chain).
        var wrapped = facts.WrappedCalls.ToLookup(w => w.Site.SiteRva);
        var traced = new HashSet<uint>();
        foreach (var w in facts.WrappedCalls)
            if (w.Via.Count > 0 && PoolApis.Find(w.Site.Api.Ref) is { TagArg: >= 0 } s && !w.Site.Arg(s.TagArg).IsKnown) traced.Add(w.Site.SiteRva);
        foreach (var site in facts.CallSites)
        {
            if (PoolApis.Find(site.Api.Ref) is not { } signature) continue;
            // The tag is the site's own, but its pool type or flags may come from the wrapper's callers: shown
            // when every caller passes the same value.
            var args = Agreed(site, wrapped[site.SiteRva].Where(w => w.Via.Count > 0).ToList());
            if (signature.TagArg < 0)
            {
                if (signature.IsAllocator)
                    tags.Add(new TagUse(PoolTag.None, signature.Name, site.SiteRva, Known(args, signature.PoolTypeArg), null, site.Shape) { Untagged = true });
                continue;
            }
            sites.Add(site);
            if (traced.Contains(site.SiteRva))
            {
                foreach (var w in wrapped[site.SiteRva]) Add(w.Site, w.Args, w.Via);
                continue;
            }
            Add(site, args, []);
        }
        // Sites found only by the wrapper tracer (a short jump to an import thunk).
        foreach (var w in facts.WrappedCalls)
        {
            if (sites.Contains(w.Site) || PoolApis.Find(w.Site.Api.Ref) is not { TagArg: >= 0 }) continue;
            if (w.Via.Count == 0) sites.Add(w.Site);
            Add(w.Site, w.Args, w.Via);
        }
        // Untagged allocators imported but never seen called: still 'None' owners (DA1001 says so from the import).
        foreach (var import in imports)
            if (PoolApis.Find(import.Ref) is { TagArg: < 0, IsAllocator: true } untagged
                && !tags.Any(t => t.Untagged && t.Api == untagged.Name))
                tags.Add(new TagUse(PoolTag.None, untagged.Name, import.SlotRva.GetValueOrDefault(), null, null, CallSiteShape.Direct) { Untagged = true, ImportOnly = true });
        var notEvaluated = facts.NotEvaluatedReason is { } why && imports.Any(i => PoolApis.Find(i.Ref) is not null) ? why : null;
        return new ImageTags(tags, unknown.Count, sites) { UnknownSites = unknown, CodeNotEvaluated = notEvaluated };

        void Add(CallSite site, IReadOnlyList<ArgValue> args, IReadOnlyList<WrapperHop> via)
        {
            var signature = PoolApis.Find(site.Api.Ref)!;
            var tag = signature.TagArg < args.Count ? args[signature.TagArg] : ArgValue.Unknown;
            if (!tag.IsKnown)
            {
                if (!unknown.Contains(site)) unknown.Add(site);
                return;
            }
            tags.Add(new TagUse((uint)tag.Value, signature.Name, site.SiteRva, Known(args, signature.PoolTypeArg), Known(args, signature.PoolFlagsArg), site.Shape) { Via = via });
        }
    }

    /// <summary>The site's arguments, with those it does not know filled in when every wrapper chain proves the same value.</summary>
    private static IReadOnlyList<ArgValue> Agreed(CallSite site, List<WrappedCall> chains)
    {
        if (chains.Count == 0) return site.Args;
        var args = new ArgValue[CallSite.TrackedArgs];
        for (var a = 0; a < args.Length; a++)
        {
            args[a] = site.Arg(a);
            if (args[a].IsKnown) continue;
            var first = chains[0].Args[a];
            if (first.IsKnown && chains.All(c => c.Args[a] == first)) args[a] = first;
        }
        return args;
    }

    private static ulong? Known(IReadOnlyList<ArgValue> args, int arg) => arg >= 0 && arg < args.Count && args[arg] is { IsKnown: true } v ? v.Value : null;
}
