using System.Text;

namespace DriverAudit.Rules.Kernel;

/// <summary>Which argument of a pool API holds what (see docs/kernel-pool.md). -1: the API has no such argument.</summary>
internal readonly record struct PoolSignature(int PoolType, int PoolFlags, int Tag);

/// <summary>
/// Signatures of the kernel pool allocators, so rules can say <c>tag:</c>, <c>pool-type:</c> and
/// <c>pool-flags:</c> instead of raw argument indexes. Names are exact and case-sensitive, as imported.
/// </summary>
internal static class PoolApis
{
    private static readonly Dictionary<string, PoolSignature> Known = new(StringComparer.Ordinal)
    {
        ["ExAllocatePool"] = new(0, -1, -1),
        ["ExAllocatePoolWithQuota"] = new(0, -1, -1),
        ["ExAllocatePoolWithTag"] = new(0, -1, 2),
        ["ExAllocatePoolWithQuotaTag"] = new(0, -1, 2),
        ["ExAllocatePoolWithTagPriority"] = new(0, -1, 2),
        ["ExAllocatePool2"] = new(-1, 0, 2),
        ["ExAllocatePool3"] = new(-1, 0, 2),
        ["ExFreePoolWithTag"] = new(-1, -1, 1),
        ["ExFreePool2"] = new(-1, -1, 1),
    };

    /// <summary>The APIs with a named argument, for load-time checks and documentation.</summary>
    public static IEnumerable<string> Names => Known.Keys;

    public static PoolSignature? Of(string? api) => api is not null && Known.TryGetValue(api, out var s) ? s : null;

    public static IEnumerable<string> WithTag => Known.Where(k => k.Value.Tag >= 0).Select(k => k.Key);
    public static IEnumerable<string> WithPoolType => Known.Where(k => k.Value.PoolType >= 0).Select(k => k.Key);
    public static IEnumerable<string> WithPoolFlags => Known.Where(k => k.Value.PoolFlags >= 0).Select(k => k.Key);

    /// <summary>"Ddk " → 0x206B6444: the tag as it reads in memory (and in !poolused), little-endian.</summary>
    public static uint TagFromText(string text)
    {
        uint value = 0;
        for (int i = 3; i >= 0; i--) value = (value << 8) | text[i];
        return value;
    }

    /// <summary>0x74736554 → "Test": memory order, trailing spaces kept, bytes outside printable ASCII as \xNN.</summary>
    public static string TagToText(ulong value)
    {
        var sb = new StringBuilder(16);
        for (int i = 0; i < 4; i++)
        {
            byte b = (byte)(value >> (8 * i));
            if (b is >= 0x20 and < 0x7F && b != (byte)'\\') sb.Append((char)b);
            else sb.Append("\\x").Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
