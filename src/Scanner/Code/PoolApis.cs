namespace DriverAudit.Scanner.Code;

/// <summary>What each argument of a known API means, and how it is laid out on an x86 stack.</summary>
/// <param name="ArgSizes">Size in bytes of each parameter, in order (x86 pushes 8-byte ones as two dwords).</param>
/// <param name="PoolTypeArg">Index of the POOL_TYPE argument (ExAllocatePoolWith*), or -1.</param>
/// <param name="PoolFlagsArg">Index of the POOL_FLAGS argument (ExAllocatePool2/3), or -1.</param>
/// <param name="TagArg">Index of the pool tag argument, or -1.</param>
public sealed record ApiSignature(string Name, int[] ArgSizes, int PoolTypeArg, int PoolFlagsArg, int TagArg)
{
    public int ArgCount => ArgSizes.Length;
    public bool IsAllocator => PoolTypeArg >= 0 || PoolFlagsArg >= 0;
}

/// <summary>The kernel pool DDIs (docs/kernel-pool.md): which argument is the tag, the pool type, the flags.</summary>
public static class PoolApis
{
    // Sizes are what x86 pushes: pointers, SIZE_T, ULONG and enums are 4 bytes there; POOL_FLAGS is a ULONG64.
    // On x64 every argument up to the fourth is one register whatever its size.
    private static readonly ApiSignature[] All =
    [
        new("ExAllocatePool", [4, 4], 0, -1, -1),
        new("ExAllocatePoolWithQuota", [4, 4], 0, -1, -1),
        new("ExAllocatePoolWithTag", [4, 4, 4], 0, -1, 2),
        new("ExAllocatePoolWithQuotaTag", [4, 4, 4], 0, -1, 2),
        new("ExAllocatePoolWithTagPriority", [4, 4, 4, 4], 0, -1, 2),
        new("ExAllocatePool2", [8, 4, 4], -1, 0, 2),
        new("ExAllocatePool3", [8, 4, 4, 4, 4], -1, 0, 2),
        new("ExFreePoolWithTag", [4, 4], -1, -1, 1),
    ];

    private static readonly Dictionary<string, ApiSignature> ByName = All.ToDictionary(s => s.Name, StringComparer.Ordinal);

    /// <summary>The signature of a pool DDI imported from the kernel, or null.</summary>
    public static ApiSignature? Find(CodeImport api) =>
        api.Name is { } name && IsKernelModule(api.Module) && ByName.TryGetValue(name, out var s) ? s : null;

    public static IReadOnlyList<ApiSignature> Signatures => All;

    /// <summary>APIs that take a tag (the tagged allocators and ExFreePoolWithTag).</summary>
    public static bool TakesTag(CodeImport api) => Find(api) is { TagArg: >= 0 };

    // ntoskrnl.exe in files; dumps resolve to the kernel's module name (ntoskrnl, ntkrnlmp, ntkrnlpa, ntkrpamp).
    private static bool IsKernelModule(string module)
    {
        var m = module.ToLowerInvariant();
        return m.StartsWith("ntoskrnl", StringComparison.Ordinal) || m.StartsWith("ntkrnl", StringComparison.Ordinal)
            || m.StartsWith("ntkrpamp", StringComparison.Ordinal) || m == "nt";
    }
}
