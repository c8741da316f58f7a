using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>One call to a driver's own function that passes the allocator's argument on: call site → wrapper entry.</summary>
public readonly record struct WrapperHop(uint CallRva, uint WrapperRva);

/// <summary>
/// One pool tag use: a constant tag passed to a tagged allocator or to ExFreePoolWithTag, or a call to an untagged
/// allocator (<see cref="Untagged"/>, charged to <c>None</c>).
/// </summary>
/// <param name="SiteRva">The allocator (or free) call itself.</param>
/// <param name="PoolType">POOL_TYPE (ExAllocatePoolWith*, ExAllocatePool) when constant, else null.</param>
/// <param name="PoolFlags">POOL_FLAGS (ExAllocatePool2/3) when constant, else null.</param>
public sealed record TagUse(uint Value, string Api, uint SiteRva, ulong? PoolType, ulong? PoolFlags, CallSiteShape Shape)
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
public sealed record ImageTags(IReadOnlyList<TagUse> Tags, int UnknownTagSites, IReadOnlyList<CallSite> Sites)
{
    /// <summary>The tag-taking sites whose tag is not proven (directly or through wrappers).</summary>
    public IReadOnlyList<CallSite> UnknownSites { get; init; } = [];
}

/// <summary>Builds <see cref="ImageTags"/> from code facts: the per-image entry point of <c>driveraudit tags</c>.</summary>
public static class TagIndex
{
    /// <summary>
    /// For files pass <see cref="CodeImport.FromImage"/>; for a dump module pass the imports resolved from its IAT.
    /// </summary>
    public static ImageTags Build(PeImage image, IReadOnlyList<CodeImport> imports) => Build(new CodeFacts(image, imports), imports);

    public static ImageTags Build(CodeFacts facts) => Build(facts, facts.Imports);

    public static ImageTags Build(CodeFacts facts, IReadOnlyList<CodeImport> imports)
    {
        var tags = new List<TagUse>();
        var unknown = new List<CallSite>();
        var sites = new List<CallSite>();
        foreach (var site in facts.CallSites)
        {
            if (PoolApis.Find(site.Api) is not { } signature) continue;
            if (signature.TagArg < 0)
            {
                if (signature.IsAllocator)
                    tags.Add(new TagUse(PoolTag.None, signature.Name, site.SiteRva, Known(site, signature.PoolTypeArg), null, site.Shape) { Untagged = true });
                continue;
            }
            sites.Add(site);
            var tag = site.Arg(signature.TagArg);
            if (!tag.IsKnown) { unknown.Add(site); continue; }
            tags.Add(new TagUse((uint)tag.Value, signature.Name, site.SiteRva, Known(site, signature.PoolTypeArg), Known(site, signature.PoolFlagsArg), site.Shape));
        }
        // Untagged allocators imported but never seen called: still 'None' owners (DA1001 says so from the import).
        foreach (var import in imports)
            if (PoolApis.Find(import) is { TagArg: < 0, IsAllocator: true } untagged
                && !tags.Any(t => t.Untagged && t.Api == untagged.Name))
                tags.Add(new TagUse(PoolTag.None, untagged.Name, import.SlotRva, null, null, CallSiteShape.Direct) { Untagged = true, ImportOnly = true });
        return new ImageTags(tags, unknown.Count, sites) { UnknownSites = unknown };
    }

    private static ulong? Known(CallSite site, int arg) => arg >= 0 && site.Arg(arg) is { IsKnown: true } v ? v.Value : null;
}
