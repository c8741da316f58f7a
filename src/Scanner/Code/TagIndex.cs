using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>One constant pool tag passed to a tagged allocator or to ExFreePoolWithTag.</summary>
/// <param name="PoolType">POOL_TYPE (ExAllocatePoolWith*) when constant, else null.</param>
/// <param name="PoolFlags">POOL_FLAGS (ExAllocatePool2/3) when constant, else null.</param>
public sealed record TagUse(uint Value, string Api, uint SiteRva, ulong? PoolType, ulong? PoolFlags, CallSiteShape Shape)
{
    /// <summary>Memory order, as PoolMon prints it.</summary>
    public string Tag => PoolTag.Format(Value);
}

/// <summary>The tags of one image: every constant tag, and how many tag-taking sites have no provable tag.</summary>
public sealed record ImageTags(IReadOnlyList<TagUse> Tags, int UnknownTagSites, IReadOnlyList<CallSite> Sites);

/// <summary>Builds <see cref="ImageTags"/> from code facts: the per-image entry point of <c>driveraudit tags</c>.</summary>
public static class TagIndex
{
    /// <summary>
    /// For files pass <see cref="CodeImport.FromImage"/>; for a dump module pass the imports resolved from its IAT.
    /// </summary>
    public static ImageTags Build(PeImage image, IReadOnlyList<CodeImport> imports) => Build(new CodeFacts(image, imports));

    public static ImageTags Build(CodeFacts facts)
    {
        var tags = new List<TagUse>();
        var unknown = 0;
        var sites = new List<CallSite>();
        foreach (var site in facts.CallSites)
        {
            if (PoolApis.Find(site.Api) is not { TagArg: >= 0 } signature) continue;
            sites.Add(site);
            var tag = site.Arg(signature.TagArg);
            if (!tag.IsKnown) { unknown++; continue; }
            var type = signature.PoolTypeArg >= 0 && site.Arg(signature.PoolTypeArg) is { IsKnown: true } t ? t.Value : (ulong?)null;
            var flags = signature.PoolFlagsArg >= 0 && site.Arg(signature.PoolFlagsArg) is { IsKnown: true } f ? f.Value : (ulong?)null;
            tags.Add(new TagUse((uint)tag.Value, signature.Name, site.SiteRva, type, flags, site.Shape));
        }
        return new ImageTags(tags, unknown, sites);
    }
}
