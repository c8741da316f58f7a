namespace DriverAudit.Rules.Kernel;

/// <summary>
/// A kernel pool DDI (docs/kernel-pool.md): which argument is the tag, the pool type, the flags (-1: none), and
/// how its arguments are laid out on an x86 stack.
/// </summary>
/// <param name="Name">Exact, case-sensitive export name, as imported.</param>
/// <param name="ArgSizes">Size in bytes of each parameter, in order (x86 pushes 8-byte ones as two dwords).</param>
/// <param name="PoolTypeArg">Index of the POOL_TYPE argument (ExAllocatePoolWith*), or -1.</param>
/// <param name="PoolFlagsArg">Index of the POOL_FLAGS argument (ExAllocatePool2/3), or -1.</param>
/// <param name="TagArg">Index of the pool tag argument, or -1.</param>
public sealed record PoolApi(string Name, int[] ArgSizes, int PoolTypeArg, int PoolFlagsArg, int TagArg)
{
    public int ArgCount => ArgSizes.Length;
    public bool IsAllocator => PoolTypeArg >= 0 || PoolFlagsArg >= 0;
}

/// <summary>
/// The one table of kernel pool DDIs: the scanner finds their call sites, tags and wrappers with it; rules say
/// <c>tag:</c>, <c>pool-type:</c> and <c>pool-flags:</c> instead of raw argument indexes through it.
/// </summary>
public static class PoolApis
{
    // Sizes are what x86 pushes: pointers, SIZE_T, ULONG and enums are 4 bytes there; POOL_FLAGS is a ULONG64.
    // On x64 every argument up to the fourth is one register whatever its size.
    private static readonly PoolApi[] All =
    [
        new("ExAllocatePool", [4, 4], 0, -1, -1),
        new("ExAllocatePoolWithQuota", [4, 4], 0, -1, -1),
        new("ExAllocatePoolWithTag", [4, 4, 4], 0, -1, 2),
        new("ExAllocatePoolWithQuotaTag", [4, 4, 4], 0, -1, 2),
        new("ExAllocatePoolWithTagPriority", [4, 4, 4, 4], 0, -1, 2),
        new("ExAllocatePool2", [8, 4, 4], -1, 0, 2),
        new("ExAllocatePool3", [8, 4, 4, 4, 4], -1, 0, 2),
        new("ExFreePoolWithTag", [4, 4], -1, -1, 1),
        // ExFreePool2(P, Tag, ExtendedParameters, ExtendedParametersCount).
        new("ExFreePool2", [4, 4, 4, 4], -1, -1, 1),
    ];

    private static readonly Dictionary<string, PoolApi> ByName = All.ToDictionary(s => s.Name, StringComparer.Ordinal);

    public static IReadOnlyList<PoolApi> Signatures => All;

    /// <summary>The pool DDI of that exact name (any module), or null.</summary>
    public static PoolApi? Of(string? name) => name is not null && ByName.TryGetValue(name, out var s) ? s : null;

    /// <summary>The pool DDI <paramref name="api"/> names when it is imported from the kernel, or null.</summary>
    public static PoolApi? Find(DriverAudit.Rules.Facts.ImportRef api) => Find(api.Module, api.Name);

    /// <summary>The pool DDI imported from the kernel under that name, or null.</summary>
    public static PoolApi? Find(string module, string? name) => Of(name) is { } s && IsKernelModule(module) ? s : null;

    public static IEnumerable<string> WithTag => All.Where(s => s.TagArg >= 0).Select(s => s.Name);
    public static IEnumerable<string> WithPoolType => All.Where(s => s.PoolTypeArg >= 0).Select(s => s.Name);
    public static IEnumerable<string> WithPoolFlags => All.Where(s => s.PoolFlagsArg >= 0).Select(s => s.Name);

    /// <summary>The untagged allocators, charged to <see cref="PoolTag.None"/>.</summary>
    public static bool IsUntaggedAllocator(PoolApi api) => api.IsAllocator && api.TagArg < 0;

    // ntoskrnl.exe in files; dumps resolve to the kernel's module name (ntoskrnl, ntkrnlmp, ntkrnlpa, ntkrpamp).
    private static bool IsKernelModule(string module) =>
        module.StartsWith("ntoskrnl", StringComparison.OrdinalIgnoreCase) || module.StartsWith("ntkrnl", StringComparison.OrdinalIgnoreCase)
        || module.StartsWith("ntkrpamp", StringComparison.OrdinalIgnoreCase) || module.Equals("nt", StringComparison.OrdinalIgnoreCase);
}
